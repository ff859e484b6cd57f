// The alerts of the caller's part, newest first; each opens its live view.

import { api } from "../api.js";
import { h } from "../dom.js";
import { dateTime, number, percent, t } from "../i18n.js";
import { badge, heading, myPlps, table } from "../ui.js";

export async function render(main) {
  const [list, plps] = await Promise.all([api("GET", "/v1/alerts", { query: { limit: 100 } }), myPlps()]);
  const names = new Map(plps.map((p) => [p.id, p.name]));
  const rows = list.items.map((a) => {
    const c = a.counts;
    const done = c.by_status.sent + c.by_status.delivered;
    return [
      h("a", { href: `#/alerts/${a.id}` }, dateTime(a.created_at)),
      badge("urgency", a.urgency),
      [t(`category.${a.category}`), a.about_alert_id ? h("span", { class: "muted" }, ` · ${t("alerts.feedback_about")}`) : null,
        a.kind ? h("span", { class: "muted follow-up-kind" }, ` · ${t(`follow.kind_${a.kind}`)}`) : null],
      a.plp_ids.map((id) => names.get(id) || id).join(", "),
      badge("status", a.status),
      c.total ? `${number(done)} / ${number(c.total)} (${percent(done / c.total)})` : "—",
    ];
  });
  main.replaceChildren(
    heading(t("alerts.title"), h("a", { class: "button primary", href: "#/compose" }, t("nav.compose"))),
    rows.length
      ? table(null, [t("alerts.when"), t("alerts.urgency"), t("alerts.category"), t("alerts.plps"), t("alerts.status"), t("alerts.handed_over")], rows, { className: "alerts" })
      : h("p", { class: "empty" }, t("alerts.none")),
  );
}
