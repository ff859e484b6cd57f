// Follow one alert live: counts per status and per channel, the share of members who acknowledged
// over time (a chart), reach, acknowledgements and answers per sector on a map (counts only), who was not reached
// or has not acknowledged, the live tally of its answers beside the members' replies (the police see a name only
// from a member who consented to be contacted about the alert); cancel; send an update or the all-clear to the members it reached (police
// and admins), and the links between an alert and its follow-ups. Updated by the
// server-sent events of GET /v1/alerts/{id}/events, read with fetch() so the token stays in a header.

import { api, ApiError, stream } from "../api.js";
import { ask, field, fill, h, randomKey } from "../dom.js";
import { dateTime, duration, language, money, number, percent, t, time, tn } from "../i18n.js";
import { shareChart } from "../charts.js";
import { AreaMap } from "../map.js";
import { badge, CHANNELS, errorBox, FINAL, heading, myPlps, STATUSES, table } from "../ui.js";

/** Nothing more will change: the alert ended, and nothing was sent or its time-to-live passed (members
 * go on acknowledging a completed alert until then). The same rule ends the server's stream. */
function isOver(alert) {
  return FINAL.includes(alert.status) && (alert.status === "declined" || Date.now() >= new Date(alert.expires_at));
}

export async function render(main, { me, id }) {
  const first = await api("GET", `/v1/alerts/${id}`);
  const plps = await myPlps();
  const names = new Map(plps.map((p) => [p.id, p.name]));
  const controller = new AbortController();
  const view = {
    alert: first,
    members: 0,
    acknowledged: 0,
    ackTimes: [], // seconds after the alert was created at which each member first acknowledged
    finished: FINAL.includes(first.status),
    over: isOver(first), // nothing more will change: the stream ends for good
  };

  const live = h("p", { class: "live", role: "status" });
  const head = h("div", { class: "alert-head" });
  const figures = h("section", { class: "figures-row", "aria-label": t("follow.summary") });
  const byStatus = h("section", { class: "card" });
  const byChannel = h("section", { class: "card" });
  const canvas = h("canvas", { role: "img", id: "ack-chart" });
  const chartCaption = h("figcaption", { id: "ack-chart-caption" });
  canvas.setAttribute("aria-labelledby", chartCaption.id);
  const chartBox = h("figure", { class: "card chart" }, h("h2", {}, t("follow.chart_title")),
    h("div", { class: "chart-area" }, canvas), chartCaption);
  const audience = h("section", { class: "card audience", "aria-live": "polite" });
  const relays = h("section", { class: "card relays" });
  const sectorBox = h("section", { class: "card sectors", id: "alert-sectors", hidden: true });
  const sectorMap = await AreaMap.open(t("follow.sectors_map"), { id: "follow-map" });
  const answers = h("section", { class: "card answers", id: "answers", "aria-live": "polite" });
  const replies = h("section", { class: "card replies" });
  const actions = h("div", { class: "actions" });
  const status = h("div", { class: "status" });

  fill(main,
    heading(t("follow.title"), live),
    head, status, actions, figures,
    h("div", { class: "grid-2" }, chartBox, audience),
    h("div", { class: "grid-2" }, byStatus, byChannel),
    sectorBox, relays, h("div", { class: "grid-2" }, answers, replies));

  const chart = shareChart(canvas, t("follow.chart_axis_y"));
  let audienceDue = 0;

  function draw() {
    const a = view.alert;
    fill(head,
      h("div", { class: "badges" }, badge("urgency", a.urgency), badge("status", a.status),
        h("span", {}, t(`category.${a.category}`))),
      h("p", { class: "muted" }, t("follow.sent_at", { when: dateTime(a.created_at) }), " · ",
        a.plp_ids.map((p) => names.get(p) || p).join(", "), " · ", t("follow.expires", { when: dateTime(a.expires_at) })),
      h("details", {}, h("summary", {}, t("follow.texts")),
        h("dl", { class: "texts" }, Object.entries(a.texts).map(([lang, text]) =>
          h("div", {}, h("dt", {}, t(`language.${lang}`)), h("dd", { lang }, text))))),
      a.about_alert_id ? h("p", {}, h("a", { href: `#/alerts/${a.about_alert_id}` }, t("follow.about_link"))) : null,
      a.follows ? h("p", { class: "follows" }, h("strong", {}, t(`follow.kind_${a.kind}`)), " · ",
        h("a", { href: `#/alerts/${a.follows}` }, t("follow.follows_link"))) : null,
      a.follow_ups && a.follow_ups.length ? h("p", { class: "follow-ups" }, t("follow.follow_ups"), " ",
        a.follow_ups.map((f, i) => [i ? ", " : "", h("a", { href: `#/alerts/${f}` }, f)])) : null,
    );
    const c = a.counts;
    const handed = c.by_status.sent + c.by_status.delivered;
    const share = view.members ? view.acknowledged / view.members : 0;
    fill(figures,
      figure("ack", t("follow.acknowledged"), `${number(view.acknowledged)} / ${number(view.members)}`, percent(share), share),
      figure("handed", t("follow.handed_over"), `${number(handed)} / ${number(c.total)}`, c.total ? percent(handed / c.total) : "—", c.total ? handed / c.total : 0),
      figure("failed", t("follow.failed"), number(c.by_status.failed + c.by_status.expired), t("follow.unreachable_n", { n: c.members_unreachable })),
      figure("cost", t("follow.cost"), money(a.cost.estimated, a.cost.currency), tn("follow.segments", a.cost.sms_segments)),
    );
    fill(byStatus, h("h2", {}, t("follow.by_status")),
      table(null, [t("follow.status"), t("follow.deliveries")],
        STATUSES.map((s) => [badge("dstatus", s), number(c.by_status[s])]), { className: "by-status" }),
      c.possible_duplicates
        ? h("p", { class: "muted", id: "possible-duplicates" }, tn("follow.possible_duplicates", c.possible_duplicates))
        : null,
      c.by_status.outbox ? h("p", { class: "muted", id: "outbox" }, tn("follow.outbox", c.by_status.outbox)) : null);
    const channels = CHANNELS.filter((ch) => c.by_channel[ch]);
    const seen = STATUSES.filter((s) => channels.some((ch) => c.by_channel[ch][s])); // columns of zeros left out
    fill(byChannel, h("h2", {}, t("follow.by_channel")),
      channels.length
        ? table(null, [t("follow.channel"), ...seen.map((s) => t(`dstatus.${s}`))],
          channels.map((ch) => [t(`channel.${ch}`), ...seen.map((s) => number(c.by_channel[ch][s]))]), { className: "by-channel" })
        : h("p", { class: "muted" }, t("follow.no_deliveries")));
    const awaiting = a.relays.filter((r) => r.state !== "auto");
    fill(relays, awaiting.length ? [h("h2", {}, t("follow.relays")), h("ul", {}, awaiting.map((r) =>
      h("li", {}, h("strong", {}, names.get(r.plp_id) || r.plp_id), ": ", t(`relay_state.${r.state}`),
        r.decided_at ? ` · ${dateTime(r.decided_at)}` : "", r.reason ? ` — « ${r.reason} »` : "")))] : []);
    relays.hidden = !awaiting.length;
    drawActions();
    drawChart();
    drawAnswers();
  }

  /** The live tally per answer option (each member's latest answer), and the members who consented to be
   * contacted about the alert (their name and phone: the API shows the police only those). */
  function drawAnswers() {
    const a = view.alert;
    answers.hidden = !a.answers.length;
    if (!a.answers.length) return;
    const counts = new Map(a.answer_tally.map((row) => [row.id, row.members]));
    const answered = a.answer_tally.reduce((sum, row) => sum + row.members, 0);
    fill(answers, h("h2", {}, t("follow.answers")),
      h("p", { class: "muted", id: "answered" }, tn("follow.answered", answered)),
      table(null, [t("follow.answer"), t("follow.answer_members")],
        a.answers.map((o) => [
          h("span", {}, optionText(o), o.consent ? h("span", { class: "chip" }, t("follow.asks_consent")) : null),
          h("span", { class: "tally" }, number(counts.get(o.id) || 0),
            h("progress", { max: answered || 1, value: counts.get(o.id) || 0, "aria-label": optionText(o) }))]),
        { className: "answer-tally" }),
      a.answers.some((o) => o.consent) ? consenting(a.consenting) : null);
  }

  function optionText(option) {
    const texts = option.texts;
    return texts[language()] || texts.fr || texts.nl || texts.de || texts.en || option.id;
  }

  function consenting(people) {
    return h("div", { class: "consenting" }, h("h3", {}, t("follow.consent_title")),
      people.length ? h("ul", {}, people.map((p) => h("li", {}, h("span", { class: "name" }, p.name),
        p.phone ? [" · ", h("a", { href: `tel:${p.phone}` }, p.phone)] : null, " · ", time(p.answered_at))))
        : h("p", { class: "muted" }, t("follow.consent_none")));
  }

  function figure(name, label, value, detail, share) {
    return h("div", { class: `figure figure-${name}`, id: `figure-${name}` },
      h("span", { class: "label" }, label),
      h("span", { class: "value" }, value),
      share !== undefined ? h("progress", { max: 1, value: share, "aria-label": label }) : null,
      h("span", { class: "detail" }, detail));
  }

  function drawChart() {
    const total = view.members || 1;
    const created = new Date(view.alert.created_at);
    const end = view.over && view.alert.status_times[view.alert.status]
      ? (new Date(view.alert.status_times[view.alert.status]) - created) / 1000
      : (Date.now() - created) / 1000;
    const span = Math.max(end, view.ackTimes.at(-1) || 0);
    const unit = span <= 180 ? "second" : "minute"; // a short span in seconds, a longer one in minutes
    const scale = unit === "second" ? 1 : 60;
    const points = [{ x: 0, y: 0 }];
    view.ackTimes.forEach((seconds, i) => points.push({ x: seconds / scale, y: ((i + 1) / total) * 100 }));
    points.push({ x: span / scale, y: (view.ackTimes.length / total) * 100 });
    chart.show(points, t(`follow.chart_axis_x_${unit}`));
    fill(chartCaption, t("follow.chart_caption", {
      share: percent(view.acknowledged / total),
      duration: duration(Math.round(span / scale), unit),
    }));
  }

  function drawActions() {
    const a = view.alert;
    const items = [];
    const mayCancel = me.role === "admin" || me.role === "police" || a.author_id === me.id;
    if (!FINAL.includes(a.status) && mayCancel) {
      items.push(h("button", { type: "button", class: "danger", onclick: cancel }, t("follow.cancel")));
    }
    if ((me.role === "police" || me.role === "admin") && !a.about_alert_id) {
      items.push(h("a", { class: "button secondary", href: `#/compose?about=${a.id}` }, t("follow.send_feedback")));
    }
    // Follow-ups speak for the police (the API refuses them to coordinators), and a follow-up is not followed up.
    if ((me.role === "police" || me.role === "admin") && !a.follows) {
      items.push(h("button", { type: "button", class: "secondary", onclick: () => followUp("update") },
        t("follow.send_update")));
      items.push(h("button", { type: "button", class: "primary", onclick: () => followUp("all_clear") },
        t("follow.send_all_clear")));
    }
    fill(actions, items);
  }

  /** Ask for the follow-up's text in each language of the alert, then send it once (an Idempotency-Key kept
   * for this dialog) and open it. */
  async function followUp(kind) {
    const boxes = Object.keys(view.alert.texts).map((lang) =>
      h("textarea", { id: `follow-up-${lang}`, lang, rows: 3, maxlength: 1600 }));
    const yes = await ask({
      title: t(`follow.${kind}_title`),
      body: [h("p", {}, t(`follow.${kind}_text`)), boxes.map((box) => field(t(`language.${box.lang}`), box))],
      confirm: t(`follow.${kind}_confirm`), cancel: t("follow.cancel_back_follow_up"),
    });
    if (!yes) return;
    const texts = Object.fromEntries(boxes.filter((b) => b.value.trim()).map((b) => [b.lang, b.value.trim()]));
    try {
      const sent = await api("POST", `/v1/alerts/${id}/follow-ups`, {
        json: { kind, texts }, headers: { "Idempotency-Key": randomKey() }, patience: 30000,
      });
      location.hash = `#/alerts/${sent.id}`;
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function cancel() {
    const yes = await ask({ title: t("follow.cancel_title"), body: h("p", {}, t("follow.cancel_text")),
      confirm: t("follow.cancel_confirm"), cancel: t("follow.cancel_back"), danger: true });
    if (!yes) return;
    try {
      view.alert = await api("POST", `/v1/alerts/${id}/cancel`);
      draw();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function drawAudience() {
    audienceDue = Date.now() + 2000;
    let found;
    try {
      found = await api("GET", `/v1/alerts/${id}/audience`, { signal: controller.signal });
    } catch (error) {
      if (!controller.signal.aborted) fill(audience, errorBox(error));
      return;
    }
    const counts = h("dl", { class: "figures compact" },
      [["members", found.members], ["reached", found.reached], ["acknowledged", found.acknowledged], ["unreachable", found.unreachable]]
        .map(([k, n]) => h("div", {}, h("dt", {}, t(`follow.audience_${k}`)), h("dd", { id: `audience-${k}` }, number(n)))));
    const lists = found.names_shown
      ? [list("not_reached", found.not_reached, found.members - found.reached),
        list("not_acknowledged", found.not_acknowledged, found.members - found.acknowledged),
        found.unreachable ? list("unreachable_members", found.unreachable_members, found.unreachable) : null]
      : [h("p", { class: "muted", id: "names-hidden" }, t("follow.names_hidden"))];
    fill(audience, h("h2", {}, t("follow.audience")), counts, lists,
      found.truncated ? h("p", { class: "muted" }, t("follow.truncated")) : null);
  }

  function list(kind, people, count) {
    return h("details", { class: `people ${kind}`, open: count > 0 && count <= 20 },
      h("summary", {}, tn(`follow.${kind}`, count)),
      people.length ? h("ul", {}, people.map((p) => h("li", {},
        h("span", { class: "name" }, p.name || t("follow.erased")), " ",
        Object.entries(p.deliveries).map(([ch, s]) => h("span", { class: `chip dstatus-${s}` }, `${t(`channel.${ch}`)}: ${t(`dstatus.${s}`)}`)))))
        : h("p", { class: "muted" }, t("follow.nobody")));
  }

  async function drawReplies() {
    try {
      const found = await api("GET", `/v1/alerts/${id}/feedback`, { signal: controller.signal });
      fill(replies, h("h2", {}, tn("follow.replies", found.items.length)),
        me.role === "police" ? h("p", { class: "muted", id: "replies-anonymous" }, t("follow.replies_anonymous")) : null,
        found.items.length ? h("ul", { class: "feed" }, found.items.map((f) => h("li", {},
          h("p", { class: "meta" }, time(f.received_at), " · ", f.member_name || f.consented_name || t("feedback.member"), " · ", t(`channel.${f.channel}`)),
          h("p", { class: "text" }, f.text)))) : h("p", { class: "muted" }, t("follow.no_replies")));
    } catch (error) {
      if (!controller.signal.aborted) fill(replies, errorBox(error));
    }
  }

  // The lists are read again on a change, at most every 2 s, and once more after the last change.
  let trailing = null;
  function refreshLists() {
    clearTimeout(trailing);
    const wait = audienceDue - Date.now();
    if (wait > 0) {
      trailing = setTimeout(refreshLists, wait);
      return;
    }
    drawAudience();
    drawReplies();
    drawSectors();
  }

  async function drawSectors() {
    let found;
    try {
      found = await api("GET", `/v1/alerts/${id}/sectors`, { signal: controller.signal });
    } catch (error) {
      if (!controller.signal.aborted) fill(sectorBox, errorBox(error));
      return;
    }
    sectorBox.hidden = !found.items.length;
    if (!found.items.length) return;
    const chosen = new Set((view.alert.area && view.alert.area.sectors) || []);
    const labels = Object.fromEntries(found.items.map((s) => [s.sector_id,
      t("follow.sector_label", { name: s.name, acknowledged: number(s.acknowledged), members: number(s.members) })]));
    if (!sectorBox.contains(sectorMap.element)) {
      fill(sectorBox, h("h2", {}, t("follow.sectors")), sectorMap.element, h("div", { class: "sector-table" }));
    }
    const options = view.alert.answers; // each sector's answers, counts only
    fill(sectorBox.querySelector(".sector-table"), table(null,
      [t("follow.sector"), t("follow.audience_members"), t("follow.audience_reached"), t("follow.audience_acknowledged"),
        ...options.map(optionText)],
      found.items.map((s) => [s.name, number(s.members), number(s.reached), number(s.acknowledged),
        ...options.map((o) => number((s.answers || {})[o.id] || 0))]), { className: "by-sector" }),
    found.elsewhere ? h("p", { class: "muted" }, tn("follow.elsewhere", found.elsewhere)) : null);
    const firstTime = !sectorMap.map;
    sectorMap.showSectors(found.items.map((s) => ({ ...s, id: s.sector_id })), { chosen, labels });
    if (view.alert.area && view.alert.area.circle) sectorMap.showCircle(view.alert.area.circle);
    if (firstTime) sectorMap.fit();
  }

  function onSnapshot(snapshot) {
    const seen = view.acknowledged;
    view.alert = snapshot.alert;
    view.members = snapshot.members;
    if (snapshot.acknowledgements) view.ackTimes = snapshot.acknowledgements;
    else {
      const at = (new Date(snapshot.at) - new Date(snapshot.alert.created_at)) / 1000;
      for (let i = seen; i < snapshot.members_acknowledged; i += 1) view.ackTimes.push(at);
    }
    view.acknowledged = snapshot.members_acknowledged;
    view.finished = FINAL.includes(snapshot.alert.status);
    view.over = isOver(snapshot.alert);
    draw();
    refreshLists();
    setLive(view.over ? "finished" : "live");
  }

  function setLive(state) {
    live.className = `live live-${state}`;
    live.textContent = t(`follow.live_${state}`);
  }

  async function follow() {
    let wait = 1000;
    while (!controller.signal.aborted && !view.over) {
      try {
        await stream(`/v1/alerts/${id}/events`, (name, data) => name === "snapshot" && onSnapshot(data), { signal: controller.signal });
        wait = 1000;
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status !== 429 && error.status < 500) {
          fill(status, errorBox(error));
          return;
        }
        setLive("reconnecting");
        wait = Math.min(wait * 2, 15000);
      }
      if (!view.over) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  draw();
  drawAudience();
  drawReplies();
  drawSectors();
  setLive(view.over ? "finished" : "live");
  follow();
  return { dispose: () => { controller.abort(); clearTimeout(trailing); chart.destroy(); sectorMap.dispose(); } };
}
