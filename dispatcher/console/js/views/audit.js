// The audit log: who did what, when, to which ids (never personal data). Admins read all of it; the police and the
// coordinators the entries about their part (their zone's PLPs, their own PLPs) and what they did themselves.
// Filters: who (admins: any actor; the others: everyone or themselves), the action, the PLP, a time range.
// Reads GET /v1/audit, an "Older" page at a time.

import { api } from "../api.js";
import { field, fill, h } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { errorBox, heading, myPlps, table } from "../ui.js";

export const ACTIONS = [
  "alert.created", "alert.cancelled", "relay.approved", "relay.declined",
  "member.created", "member.linked", "member.viewed", "member.listed", "member.imported", "member.changed",
  "member.removed", "member.erased", "member.exported", "member.chose", "member.link_sent", "member.left",
  "actor.created", "actor.changed", "actor.removed", "token.issued", "token.revoked",
  "session.opened", "session.closed", "signin.refused", "charter.changed", "plp.created", "sector.changed",
  "drill.scheduled", "drill.deleted",
];

/** The catalog key of an action: "member.link_sent" -> "audit.action_member_link_sent". */
export function actionKey(action) {
  return `audit.action_${action.replace(".", "_")}`;
}

export async function render(main, { me }) {
  const plps = await myPlps();
  const actors = me.role === "admin" ? (await api("GET", "/v1/actors")).items : [me];
  const actorName = (id) => (actors.find((a) => a.id === id) || { name: id }).name;
  const plpName = (id) => (plps.find((p) => p.id === id) || { name: id }).name;
  const who = h("select", { name: "actor" }, h("option", { value: "" }, t("audit.everyone")),
    actors.map((a) => h("option", { value: a.id }, a.id === me.id ? t("audit.me", { name: a.name }) : a.name)));
  const action = h("select", { name: "action" }, h("option", { value: "" }, t("audit.all_actions")),
    ACTIONS.map((a) => h("option", { value: a }, t(actionKey(a)))));
  const plp = h("select", { name: "plp" }, h("option", { value: "" }, t(me.role === "admin" ? "audit.all_plps" : "audit.my_plps")),
    plps.map((p) => h("option", { value: p.id }, `${p.name} — ${p.commune}`)));
  const since = h("input", { type: "datetime-local", name: "since" });
  const until = h("input", { type: "datetime-local", name: "until" });
  const results = h("section", { class: "card audit", "aria-live": "polite" });
  let rows = [];

  fill(main,
    heading(t("audit.title")),
    h("p", { class: "hint" }, t(me.role === "admin" ? "audit.intro_admin" : "audit.intro")),
    h("form", { class: "toolbar filters", onsubmit: (e) => { e.preventDefault(); rows = []; load(); } },
      field(t("audit.who"), who), field(t("audit.action"), action), field(t("audit.plp"), plp),
      field(t("audit.since"), since), field(t("audit.until"), until),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("audit.filter")))),
    results);

  const iso = (input) => (input.value ? new Date(input.value).toISOString() : undefined);

  function target(entry) {
    return Object.entries(entry.target).map(([kind, id]) =>
      h("span", { class: "target" }, `${t(`audit.target_${kind}`)} `, h("code", {}, kind === "plp" ? plpName(id) : id)));
  }

  async function load(before) {
    try {
      const query = { actor_id: who.value, action: action.value, plp_id: plp.value, since: iso(since), until: iso(until), limit: 50, before };
      const page = await api("GET", "/v1/audit", { query });
      rows = rows.concat(page.items);
      fill(results,
        rows.length ? table(null, [t("audit.when"), t("audit.who"), t("audit.action"), t("audit.target"), t("audit.detail")],
          rows.map((e) => [
            dateTime(e.at),
            [e.actor_id === "cli" ? t("audit.cli") : e.actor_name || actorName(e.actor_id), h("span", { class: "muted" }, ` · ${t(`audit.role_${e.role}`)}`)],
            t(actionKey(e.action)), target(e), e.detail,
          ]), { className: "audit-list" })
          : h("p", { class: "empty" }, t("audit.none")),
        page.next_before ? h("div", { class: "pager" },
          h("button", { type: "button", class: "secondary", onclick: () => load(page.next_before) }, t("audit.older"))) : null);
    } catch (error) {
      fill(results, errorBox(error));
    }
  }

  await load();
}
