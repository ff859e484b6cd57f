// The feedback inbox: members' replies to alerts, per PLP, newest first, each linked to its alert;
// and the police's feedback to a PLP, linked to the alert it is about.

import { api } from "../api.js";
import { field, fill, h } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { errorBox, heading, myPlps } from "../ui.js";

export async function render(main, { params, go }) {
  const plps = await myPlps();
  const chosen = params.get("plp") || "";
  const names = new Map(plps.map((p) => [p.id, p.name]));
  const select = h("select", { name: "plp", onchange: (e) => go(`#/feedback${e.target.value ? `?plp=${e.target.value}` : ""}`) },
    h("option", { value: "" }, t("feedback.all_plps")),
    plps.map((p) => h("option", { value: p.id, selected: p.id === chosen }, p.name)));
  const replies = h("section", { class: "card" });
  const police = h("section", { class: "card" });
  fill(main, heading(t("feedback.title")), h("div", { class: "toolbar" }, field(t("feedback.plp"), select)), replies, police);

  const targets = chosen ? plps.filter((p) => p.id === chosen) : plps;
  const [lists, alerts] = await Promise.all([
    Promise.all(targets.map((p) => api("GET", `/v1/plps/${p.id}/feedback`, { query: { limit: 100 } }).catch((e) => e))),
    api("GET", "/v1/alerts", { query: { limit: 200 } }),
  ]);
  const errors = lists.filter((l) => l instanceof Error);
  const byId = new Map();
  for (const list of lists) if (!(list instanceof Error)) for (const f of list.items) byId.set(f.id, f);
  const items = [...byId.values()].sort((a, b) => new Date(b.received_at) - new Date(a.received_at));
  const alertsById = new Map(alerts.items.map((a) => [a.id, a]));

  fill(replies, h("h2", {}, tn("feedback.replies", items.length)), errors.map(errorBox),
    items.length ? h("ul", { class: "feed", id: "replies" }, items.map((f) => {
      const alert = f.alert_id && alertsById.get(f.alert_id);
      return h("li", {},
        h("p", { class: "meta" }, dateTime(f.received_at), " · ", f.member_name || t("feedback.member"), " · ",
          t(`channel.${f.channel}`), " · ", f.plp_ids.map((p) => names.get(p) || p).join(", ")),
        h("p", { class: "text" }, f.text),
        f.alert_id ? h("p", {}, h("a", { href: `#/alerts/${f.alert_id}` },
          alert ? t("feedback.about_alert", { category: t(`category.${alert.category}`), when: dateTime(alert.created_at) }) : t("feedback.open_alert"))) : null);
    })) : h("p", { class: "empty" }, t("feedback.none")));

  const sent = alerts.items.filter((a) => a.about_alert_id && (!chosen || a.plp_ids.includes(chosen)));
  fill(police, h("h2", {}, tn("feedback.police", sent.length)),
    sent.length ? h("ul", { class: "feed", id: "police-feedback" }, sent.map((a) => {
      const earlier = alertsById.get(a.about_alert_id);
      return h("li", {},
        h("p", { class: "meta" }, dateTime(a.created_at), " · ", a.plp_ids.map((p) => names.get(p) || p).join(", ")),
        h("p", { class: "text" }, Object.values(a.texts)[0]),
        h("p", {}, h("a", { href: `#/alerts/${a.about_alert_id}` }, earlier
          ? t("feedback.about_alert", { category: t(`category.${earlier.category}`), when: dateTime(earlier.created_at) })
          : t("feedback.open_alert"))));
    })) : h("p", { class: "muted" }, t("feedback.no_police")));
}
