// A PLP's annual evaluation for its yearly meeting: members, alerts by urgency and category, reach
// and acknowledgement rates, time to the first acknowledgement of urgent alerts, replies and cost,
// with charts; the same figures as a CSV file; a print layout so that "print to PDF" gives the report.
// Reads GET /v1/plps/{id}/evaluation?year=YYYY (format=json, and format=csv for the download).

import { api, download as downloadFile } from "../api.js";
import { fill, field, h } from "../dom.js";
import { dateTime, duration, money, number, percent, t } from "../i18n.js";
import { barChart } from "../charts.js";
import { CATEGORIES, CHANNELS, errorBox, heading, myPlps, plpSelect, table } from "../ui.js";

export async function render(main, { params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("evaluation.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const thisYear = new Date().getFullYear();
  const year = Number(params.get("year")) || thisYear;
  const charts = [];
  const status = h("div", { class: "status" });
  const report = h("article", { class: "report", "aria-live": "polite" });
  const navigate = (plpId, y) => go(`#/evaluation?plp=${plpId}&year=${y}`);
  const years = h("select", { name: "year", onchange: (e) => navigate(plp.id, e.target.value) },
    Array.from({ length: 5 }, (_, i) => thisYear - i).map((y) => h("option", { value: y, selected: y === year }, String(y))));

  fill(main,
    heading(t("evaluation.title"),
      h("div", { class: "actions no-print" },
        h("button", { type: "button", class: "secondary", onclick: () => download() }, t("evaluation.csv")),
        h("button", { type: "button", class: "primary", onclick: () => window.print() }, t("evaluation.print")))),
    h("div", { class: "toolbar" },
      field(t("evaluation.plp"), plpSelect(plps, plp.id, (e) => navigate(e.target.value, year))),
      field(t("evaluation.year"), years)),
    status, report);

  async function download() {
    try {
      await downloadFile(`/v1/plps/${plp.id}/evaluation`, { query: { year, format: "csv" }, name: `evaluation-${plp.id}-${year}.csv` });
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  let found;
  try {
    found = await api("GET", `/v1/plps/${plp.id}/evaluation`, { query: { year } });
  } catch (error) {
    fill(report, errorBox(error));
    return null;
  }
  const e = found;
  const outboxed = (e.reach.urgent.members_outbox || 0) + (e.reach.non_urgent.members_outbox || 0);
  const rate = (value) => (value === null || value === undefined ? "—" : percent(value));
  const currency = e.cost.currency;

  const figures = (items) => h("dl", { class: "figures" }, items.map(([label, value, id]) =>
    h("div", {}, h("dt", {}, label), h("dd", { id }, value))));
  const chartFigure = (title, id, build, dataTable) => {
    const canvas = h("canvas", { role: "img", "aria-label": title, id });
    const box = h("figure", { class: "card" }, h("h3", {}, title), h("div", { class: "chart-area" }, canvas),
      h("details", { class: "data" }, h("summary", {}, t("evaluation.data")), dataTable));
    queueMicrotask(() => charts.push(build(canvas)));
    return box;
  };
  const months = e.months.map((m) => new Intl.DateTimeFormat(document.documentElement.lang, { month: "short" })
    .format(new Date(`${m.month}-15T12:00:00Z`)));

  fill(report,
    h("header", { class: "card report-title" },
      h("h2", {}, t("evaluation.report_title", { plp: e.plp_name, year: String(e.year) })),
      h("p", {}, `${e.commune} · ${t("role.zone", { zone: e.police_zone })}`),
      h("p", { class: "muted" }, e.complete ? t("evaluation.complete") : t("evaluation.so_far", { when: dateTime(e.generated_at) }))),
    h("section", { class: "card" }, h("h3", {}, t("evaluation.members")),
      figures([
        [t("evaluation.members_start"), number(e.members.start), "eval-members-start"],
        [t("evaluation.members_end"), number(e.members.end), "eval-members-end"],
        [t("evaluation.joined"), number(e.members.joined), "eval-joined"],
        [t("evaluation.left"), number(e.members.left), "eval-left"],
        [t("evaluation.opted_out"), number(e.members.opted_out), "eval-opted-out"],
      ])),
    h("section", { class: "card" }, h("h3", {}, t("evaluation.alerts")),
      figures([
        [t("evaluation.alerts_total"), number(e.alerts.total), "eval-alerts"],
        [t("urgency.urgent"), number(e.alerts.urgent), "eval-urgent"],
        [t("urgency.non_urgent"), number(e.alerts.non_urgent), "eval-non-urgent"],
        [t("evaluation.police_feedback"), number(e.alerts.police_feedback), "eval-police-feedback"],
        [t("evaluation.replies"), number(e.feedback_replies), "eval-replies"],
      ]),
      h("p", { class: "muted" }, t("evaluation.relays", {
        approved: e.alerts.relays.approved, declined: e.alerts.relays.declined, expired: e.alerts.relays.expired }))),
    h("section", { class: "card" }, h("h3", {}, t("evaluation.reach")),
      figures([
        [t("evaluation.reach_urgent"), rate(e.reach.urgent.reach), "eval-reach-urgent"],
        [t("evaluation.ack_urgent"), rate(e.reach.urgent.acknowledgement_rate), "eval-ack-urgent"],
        [t("evaluation.reach_non_urgent"), rate(e.reach.non_urgent.reach), "eval-reach-non-urgent"],
        [t("evaluation.ack_non_urgent"), rate(e.reach.non_urgent.acknowledgement_rate), "eval-ack-non-urgent"],
        [t("evaluation.median_first_ack"), seconds(e.urgent_first_acknowledgement.median_seconds), "eval-median-ack"],
        ...(outboxed ? [[t("evaluation.outbox"), number(outboxed), "eval-outbox"]] : []),
      ])),
    h("div", { class: "grid-2" },
      chartFigure(t("evaluation.chart_months"), "chart-months",
        (c) => barChart(c, months, [
          { label: t("urgency.urgent"), values: e.months.map((m) => m.urgent) },
          { label: t("urgency.non_urgent"), values: e.months.map((m) => m.non_urgent) },
        ], { stacked: true }),
        table(null, [t("evaluation.month"), t("urgency.urgent"), t("urgency.non_urgent"), t("evaluation.police_feedback"), t("evaluation.replies")],
          e.months.map((m, i) => [months[i], number(m.urgent), number(m.non_urgent), number(m.police_feedback), number(m.feedback_replies)]))),
      chartFigure(t("evaluation.chart_categories"), "chart-categories",
        (c) => barChart(c, CATEGORIES.map((k) => t(`category.${k}`)), [
          { label: t("evaluation.alerts_total"), values: CATEGORIES.map((k) => e.alerts.by_category[k] || 0) }], { horizontal: true }),
        table(null, [t("alerts.category"), t("evaluation.alerts_total")], CATEGORIES.map((k) => [t(`category.${k}`), number(e.alerts.by_category[k] || 0)]))),
      chartFigure(t("evaluation.chart_members"), "chart-members",
        (c) => barChart(c, months, [
          { label: t("evaluation.joined"), values: e.months.map((m) => m.members_joined) },
          { label: t("evaluation.left"), values: e.months.map((m) => m.members_left) },
          { label: t("evaluation.opted_out"), values: e.months.map((m) => m.members_opted_out) },
        ]),
        table(null, [t("evaluation.month"), t("evaluation.joined"), t("evaluation.left"), t("evaluation.opted_out")],
          e.months.map((m, i) => [months[i], number(m.members_joined), number(m.members_left), number(m.members_opted_out)]))),
      chartFigure(t("evaluation.chart_cost"), "chart-cost",
        (c) => barChart(c, CHANNELS.map((ch) => t(`channel.${ch}`)), [
          { label: t("evaluation.cost"), values: CHANNELS.map((ch) => Number((e.cost.by_channel[ch] || {}).estimated || 0)) }],
        { format: (v) => money(v, currency), precision: 2 }),
        table(null, [t("follow.channel"), t("follow.deliveries"), t("evaluation.cost")],
          CHANNELS.map((ch) => [t(`channel.${ch}`), number((e.cost.by_channel[ch] || {}).deliveries || 0), money((e.cost.by_channel[ch] || {}).estimated || 0, currency)]))),
    ),
    h("section", { class: "card" }, h("h3", {}, t("evaluation.cost")),
      figures([
        [t("evaluation.cost_total"), money(e.cost.estimated, currency), "eval-cost"],
        [t("evaluation.sms_segments"), number(e.cost.sms_segments), "eval-sms"],
        [t("evaluation.voice_minutes"), number(e.cost.voice_minutes), "eval-voice"],
      ])),
    (e.sectors || []).length ? h("section", { class: "card", id: "eval-sectors" }, h("h3", {}, t("evaluation.sectors")),
      table(null, [t("follow.sector"), t("evaluation.alerts_total"), t("evaluation.sector_aimed"), t("evaluation.sector_targeted")],
        e.sectors.map((s) => [s.name || t("evaluation.sector_deleted"), number(s.alerts), number(s.aimed), number(s.members_targeted)]),
        { className: "by-sector" })) : null,
    h("p", { class: "muted report-only" }, t("evaluation.footer", { when: dateTime(e.generated_at) })),
  );
  return { dispose: () => charts.forEach((c) => c.destroy()) };
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 120) return duration(Math.round(value), "second");
  return duration(Math.round(value / 60), "minute");
}
