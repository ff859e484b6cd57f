// What the service told the person (too few members acknowledged an urgent alert, a resident asks to join, a
// member changed their details on their own page), newest first, each with what it is about (its alert, the
// join requests, the members); unread ones stand out until marked read (and can be marked unread again). Each person marks their own.
// Reads GET /v1/notifications, writes PUT /v1/notifications/{id}/read.

import { api } from "../api.js";
import { fill, h } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { errorBox, heading } from "../ui.js";

export async function render(main) {
  const list = h("section", { class: "notifications", "aria-live": "polite" });
  const status = h("div", { class: "status", role: "status" });
  fill(main, heading(t("notifications.title")), status, list);

  async function load() {
    const found = await api("GET", "/v1/notifications", { query: { limit: 100 } });
    const unread = found.items.filter((n) => !n.read).length;
    fill(list,
      h("p", { class: "muted" }, tn("notifications.unread", unread)),
      found.items.length ? h("ul", { class: "notification-list" }, found.items.map(item))
        : h("p", { class: "empty" }, t("notifications.none")));
  }

  function item(n) {
    return h("li", { class: `card notification ${n.read ? "read" : "unread"}`, dataset: { id: n.id } },
      h("h2", {}, n.read ? null : h("span", { class: "badge unread" }, t("notifications.new")), " ", n.subject),
      h("p", { class: "muted" }, dateTime(n.created_at)),
      h("p", { class: "kind" }, t(`notifications.kind.${n.kind}`)),
      h("p", { lang: n.language }, n.text),
      n.kind === "member_changed" ? member(n) : null,
      h("div", { class: "row-actions" },
        link(n),
        h("button", { type: "button", class: "secondary small", onclick: () => mark(n, !n.read) },
          t(n.read ? "notifications.mark_unread" : "notifications.mark_read"))));
  }

  // who changed what, in the console's language: the name as it is now (none once the member left)
  function member(n) {
    const who = n.member_name ? t("notifications.member", { name: n.member_name }) : t("notifications.member_gone");
    return h("p", { class: "member-change" }, who, " — ", n.changes.map((c) => t(`notifications.change.${c}`)).join(", "));
  }

  function link(n) {
    if (n.alert_id) return h("a", { href: `#/alerts/${n.alert_id}` }, t("notifications.open_alert"));
    if (n.kind === "join_request") return h("a", { href: `#/joins?plp=${n.plp_id}` }, t("notifications.open_joins"));
    return h("a", { href: `#/members?plp=${n.plp_id}` }, t("notifications.open_members"));
  }

  async function mark(n, read) {
    try {
      await api("PUT", `/v1/notifications/${n.id}/read`, { json: { read } });
      await load();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  await load();
}
