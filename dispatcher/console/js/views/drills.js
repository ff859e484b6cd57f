// A PLP's recurring drills: the schedules with their next occurrence (the PLP's local time), a form to
// schedule one (monthly on the n-th weekday, or weekly, at a time), and delete. Coordinators schedule
// non-urgent drills; the police of the zone and admins may choose the urgent lane too.
// Reads and writes /v1/plps/{id}/drills.

import { api } from "../api.js";
import { ask, field, fill, h } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { errorBox, heading, myPlps, plpSelect, table } from "../ui.js";

const LANGS = ["fr", "nl", "de", "en"];
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

export async function render(main, { me, params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("drills.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const list = h("section", { class: "card drills", "aria-live": "polite" });
  const status = h("div", { class: "status", role: "status" });
  const select = (name, options, label) => h("select", { name },
    options.map((value) => h("option", { value }, label(value))));
  const frequency = select("frequency", ["monthly", "weekly"], (v) => t(`drills.${v}`));
  const week = select("week", ["1", "2", "3", "4"], (v) => t(`drills.week_${v}`));
  const weekday = select("weekday", WEEKDAYS, (v) => t(`drills.${v}`));
  const at = h("input", { type: "time", name: "at", value: "18:00", required: true });
  const urgent = me.role !== "coordinator"; // coordinators send non-urgent messages, their drills too
  const lane = select("urgency", urgent ? ["non_urgent", "urgent"] : ["non_urgent"], (v) => t(`urgency.${v}`));
  const texts = Object.fromEntries(LANGS.map((lang) => [lang, h("textarea", { rows: 2, maxlength: 1600, lang })]));
  const weekField = field(t("drills.week"), week);
  frequency.addEventListener("change", () => { weekField.hidden = frequency.value !== "monthly"; });

  fill(main,
    heading(t("drills.title")),
    h("p", { class: "hint" }, t("drills.intro", { timezone: plp.timezone })),
    h("div", { class: "toolbar" },
      field(t("evaluation.plp"), plpSelect(plps, plp.id, (e) => go(`#/drills?plp=${e.target.value}`)))),
    list,
    h("form", { class: "card drill-form", onsubmit: schedule },
      h("h2", {}, t("drills.new")),
      h("div", { class: "grid-2" }, field(t("drills.frequency"), frequency), weekField,
        field(t("drills.weekday"), weekday), field(t("drills.at"), at), field(t("drills.lane"), lane,
          urgent ? null : t("drills.lane_hint"))),
      h("div", { class: "grid-2" }, LANGS.map((lang) => field(t(`language.${lang}`), texts[lang]))),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("drills.schedule")))),
    status);

  async function load() {
    try {
      const found = await api("GET", `/v1/plps/${plp.id}/drills`);
      fill(list, h("h2", {}, tn("drills.count", found.items.length)), found.items.length
        ? table(null, [t("drills.rule"), t("drills.lane"), t("drills.next"), ""], found.items.map((d) => [
          rule(d.rule), t(`urgency.${d.urgency}`), dateTime(d.next_at),
          h("button", { type: "button", class: "danger small", onclick: () => remove(d) }, t("drills.delete"))]),
        { className: "drill-list" })
        : h("p", { class: "muted" }, t("drills.none")));
    } catch (error) {
      fill(list, errorBox(error));
    }
  }

  function rule(r) {
    const when = t("drills.when", { weekday: t(`drills.${r.weekday}`), at: r.at });
    return r.frequency === "weekly" ? t("drills.every_week", { when })
      : t("drills.every_month", { week: t(`drills.week_${r.week}`), when });
  }

  async function schedule(event) {
    event.preventDefault();
    const rule = { frequency: frequency.value, weekday: weekday.value, at: at.value };
    if (frequency.value === "monthly") rule.week = Number(week.value);
    const written = Object.fromEntries(LANGS.filter((l) => texts[l].value.trim()).map((l) => [l, texts[l].value.trim()]));
    try {
      await api("POST", `/v1/plps/${plp.id}/drills`, { json: { urgency: lane.value, texts: written, rule } });
      LANGS.forEach((l) => { texts[l].value = ""; });
      fill(status, h("p", { class: "ok" }, t("drills.scheduled")));
      await load();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function remove(drill) {
    const yes = await ask({ title: t("drills.delete_title"), body: h("p", {}, rule(drill.rule)),
      confirm: t("drills.delete"), cancel: t("drills.keep"), danger: true });
    if (!yes) return;
    try {
      await api("DELETE", `/v1/plps/${plp.id}/drills/${drill.id}`);
      await load();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  await load();
}
