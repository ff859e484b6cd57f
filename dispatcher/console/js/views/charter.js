// A PLP's charter for its coordinators (and admins): per message class the channels in order, all of them or the
// first that works, the time-to-live and the quiet hours (non-urgent classes), for urgent alerts the escalation and
// the acknowledgement check; how police advice is relayed, and whether alerts to part of the PLP reach the members
// whose place is unknown.
// "Preview changes" shows what the proposed charter changes for the next alert of each class (members reached,
// deliveries per channel, cost) without saving (POST /v1/plps/{id}/charter/preview); "Save" replaces it
// (PUT /v1/plps/{id}/charter). A channel this service cannot send is refused by name, by both.

import { api } from "../api.js";
import { field, fill, h, uid } from "../dom.js";
import { money, number, t } from "../i18n.js";
import { CHANNELS, errorBox, heading, myPlps, plpSelect, table } from "../ui.js";

const CLASSES = ["urgent", "non_urgent", "police_feedback"];

export async function render(main, { params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("charter.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const current = (await api("GET", `/v1/plps/${plp.id}`)).charter;
  const editors = Object.fromEntries(CLASSES.map((name) => [name, classEditor(name, current[name])]));
  const unlocatedId = uid("unlocated");
  const unlocated = h("input", { type: "checkbox", id: unlocatedId, name: "area-reaches-unlocated", checked: current.area_reaches_unlocated });
  const relay = h("select", { name: "relay" },
    ["coordinator", "auto"].map((v) => h("option", { value: v, selected: current.relay === v }, t(`charter.relay_${v}`))));
  const status = h("div", { class: "status", role: "status", tabindex: "-1" });
  const preview = h("section", { class: "card charter-preview", "aria-live": "polite", hidden: true });

  fill(main,
    heading(t("charter.title"), plps.length > 1
      ? field(t("members.plp"), plpSelect(plps, plp.id, (e) => go(`#/charter?plp=${e.target.value}`)))
      : h("p", { class: "muted" }, plp.name)),
    h("p", { class: "hint" }, t("charter.intro")),
    h("form", { class: "charter-form", onsubmit: save },
      h("div", { class: "grid-3" }, CLASSES.map((name) => editors[name].element)),
      h("div", { class: "card" }, field(t("charter.relay"), relay, t("charter.relay_hint")),
        h("span", { class: "choice" }, unlocated, h("label", { for: unlocatedId }, t("charter.unlocated")))),
      status,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: showPreview }, t("charter.preview")),
        h("button", { type: "submit", class: "primary" }, t("charter.save")))),
    preview);

  function proposed() {
    const charter = { ...current, relay: relay.value, area_reaches_unlocated: unlocated.checked };
    for (const name of CLASSES) charter[name] = editors[name].read();
    return charter;
  }

  async function showPreview() {
    fill(status);
    try {
      const found = await api("POST", `/v1/plps/${plp.id}/charter/preview`, { json: proposed() });
      fill(preview, h("h2", {}, t("charter.preview_title")), h("p", { class: "hint" }, t("charter.preview_intro")),
        found.classes.map((c) => classPreview(c, found.currency)),
        h("p", {}, t("charter.relay"), ": ", t(`charter.relay_${found.relay.before}`), " → ",
          found.relay.before === found.relay.after ? t(`charter.relay_${found.relay.after}`)
            : h("strong", { class: "changed" }, t(`charter.relay_${found.relay.after}`))));
      preview.hidden = false;
    } catch (error) {
      preview.hidden = true;
      fill(status, errorBox(error));
      status.focus();
    }
  }

  async function save(event) {
    event.preventDefault();
    try {
      await api("PUT", `/v1/plps/${plp.id}/charter`, { json: proposed() });
      fill(status, h("p", { class: "ok" }, t("charter.saved")));
    } catch (error) {
      fill(status, errorBox(error));
    }
    status.focus();
  }
}

/** The editor of one message class: channels in order (ticked, moved up), mode, time-to-live, quiet hours. */
function classEditor(name, plan) {
  const order = [...plan.channels, ...CHANNELS.filter((c) => !plan.channels.includes(c))];
  const boxes = Object.fromEntries(CHANNELS.map((c) => [c, h("input", {
    type: "checkbox", id: uid("cc"), name: `${name}-channel`, value: c, checked: plan.channels.includes(c) })]));
  const list = h("ol", { class: "channel-order" });
  const draw = () => fill(list, order.map((c, i) => h("li", {},
    h("span", { class: "choice" }, boxes[c], h("label", { for: boxes[c].id }, t(`channel.${c}`))),
    i > 0 ? h("button", { type: "button", class: "link small", "aria-label": t("charter.move_up_named", { channel: t(`channel.${c}`) }),
      onclick: () => { order.splice(i - 1, 2, c, order[i - 1]); draw(); } }, t("charter.move_up")) : null)));
  draw();
  const mode = h("select", { name: `${name}-mode` },
    ["all", "first_that_works"].map((v) => h("option", { value: v, selected: plan.mode === v }, t(`mode.${v}`))));
  const ttl = h("input", { type: "number", name: `${name}-ttl`, min: 1, max: 43200, required: true, value: Math.round(plan.ttl_seconds / 60) });
  const quiet = plan.quiet_hours || {};
  const start = h("input", { type: "time", name: `${name}-quiet-start`, value: quiet.start || "" });
  const end = h("input", { type: "time", name: `${name}-quiet-end`, value: quiet.end || "" });
  const minutes = (seconds) => (seconds ? Math.round(seconds / 60) : "");
  const escalateAfter = h("input", { type: "number", name: `${name}-escalate-after`, min: 1, value: minutes(plan.escalate_after_seconds) });
  const escalateTo = h("select", { name: `${name}-escalate-to` },
    CHANNELS.map((c) => h("option", { value: c, selected: plan.escalate_to === c }, t(`channel.${c}`))));
  const checkAfter = h("input", { type: "number", name: `${name}-check-after`, min: 1, value: minutes(plan.ack_check_after_seconds) });
  const threshold = h("input", { type: "number", name: `${name}-threshold`, min: 1, max: 100,
    value: plan.ack_threshold ? Math.round(plan.ack_threshold * 100) : "" });
  const followUps = h("div", { class: "grid-2" },
    field(t("charter.escalate_after"), escalateAfter, t("charter.escalate_hint")), field(t("charter.escalate_to"), escalateTo),
    field(t("charter.check_after"), checkAfter, t("charter.check_hint")), field(t("charter.threshold"), threshold));
  const element = h("fieldset", { class: "card charter-class" },
    h("legend", {}, t(`charter.class_${name}`)),
    h("p", { class: "hint" }, t("charter.channels_hint")),
    list,
    field(t("charter.mode"), mode),
    field(t("charter.ttl"), ttl, t("charter.ttl_hint")),
    name === "urgent" ? [h("p", { class: "hint" }, t("charter.urgent_never_held")), followUps]
      : h("div", { class: "grid-2" }, field(t("charter.quiet_start"), start), field(t("charter.quiet_end"), end)));
  const seconds = (input) => (input.value ? Number(input.value) * 60 : null);
  const read = () => {
    const chosen = { ...plan, channels: order.filter((c) => boxes[c].checked), mode: mode.value, ttl_seconds: Number(ttl.value) * 60 };
    if (name !== "urgent") chosen.quiet_hours = start.value && end.value ? { start: start.value, end: end.value } : null;
    else {
      Object.assign(chosen, { escalate_after_seconds: seconds(escalateAfter), escalate_to: escalateTo.value,
        ack_check_after_seconds: seconds(checkAfter), ack_threshold: threshold.value ? Number(threshold.value) / 100 : null });
    }
    return chosen;
  };
  return { element, read };
}

function classPreview(change, currency) {
  const side = (o) => ({
    channels: o.channels.map((c) => t(`channel.${c}`)).join(", "),
    mode: t(`mode.${o.mode}`),
    ttl: t("charter.minutes", { n: number(Math.round(o.ttl_seconds / 60)) }),
    quiet: o.quiet_hours ? `${o.quiet_hours.start}–${o.quiet_hours.end}` : "—",
    reached: number(o.members_reached),
    per_channel: Object.entries(o.by_channel).map(([c, n]) => `${t(`channel.${c}`)} ${number(n)}`).join(", ") || "—",
    unreachable: number(o.members_unreachable),
    cost: money(o.estimated_cost, currency),
  });
  const before = side(change.before);
  const after = side(change.after);
  const settingOf = { channels: "channels", mode: "mode", ttl: "ttl_seconds", quiet: "quiet_hours" };
  const rows = Object.keys(before).map((key) => {
    const differs = before[key] !== after[key];
    const changed = differs || change.changed.includes(settingOf[key]);
    return [t(`charter.row_${key}`), before[key], changed ? h("strong", { class: "changed" }, after[key]) : after[key]];
  });
  const others = change.changed.filter((s) => !Object.values(settingOf).includes(s));
  return h("div", { class: "class-preview", dataset: { class: change.message_class } },
    table(t(`charter.class_${change.message_class}`), [t("charter.row"), t("charter.before"), t("charter.after")], rows),
    others.length ? h("p", {}, t("charter.also_changed", { settings: others.map((s) => t(`charter.setting_${s}`)).join(", ") })) : null,
    change.changed.length ? null : h("p", { class: "muted" }, t("charter.unchanged")));
}
