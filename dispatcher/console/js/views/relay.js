// The coordinator's relay inbox: non-urgent police messages waiting for them, to read, edit or
// translate, and approve (they go out to the PLP's members) or decline with a reason the police see.

import { api } from "../api.js";
import { field, fill, h } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { errorBox, FINAL, heading, myPlps } from "../ui.js";

const LANGS = ["fr", "nl", "de", "en"];

export async function render(main, { me }) {
  const plps = await myPlps();
  const names = new Map(plps.map((p) => [p.id, p.name]));
  const mine = (plpId) => me.role === "admin" || me.plp_ids.includes(plpId);
  const list = h("div", { class: "inbox" });
  const done = h("div", { class: "status", role: "status" });
  fill(main, heading(t("relay.title")), h("p", { class: "hint" }, t("relay.intro")), done, list);

  async function load() {
    const found = await api("GET", "/v1/alerts", { query: { limit: 200 } });
    const waiting = [];
    for (const alert of found.items) {
      if (FINAL.includes(alert.status)) continue; // cancelled or expired: nothing to decide any more
      for (const relay of alert.relays) {
        if (relay.state === "awaiting" && mine(relay.plp_id)) waiting.push({ alert, relay });
      }
    }
    fill(list, waiting.length
      ? [h("p", { class: "count" }, tn("relay.waiting", waiting.length)), waiting.map(item)]
      : h("p", { class: "empty" }, t("relay.none")));
  }

  function item({ alert, relay }) {
    const status = h("div", { class: "status" });
    const texts = {};
    const fields = LANGS.map((lang) => {
      texts[lang] = h("textarea", { rows: 3, maxlength: 1600, lang, name: `relay-${lang}`, value: alert.texts[lang] || "" });
      return field(alert.texts[lang] ? t(`language.${lang}`) : t("relay.add_translation", { language: t(`language.${lang}`) }), texts[lang]);
    });
    const reason = h("textarea", { rows: 2, maxlength: 500, name: "reason" });
    const plpName = names.get(relay.plp_id) || relay.plp_id;
    const card = h("article", { class: "card relay-item", "aria-label": t("relay.item_label", { plp: plpName }) },
      h("h2", {}, t(`category.${alert.category}`), " · ", plpName),
      h("p", { class: "muted" }, t("relay.received", { when: dateTime(alert.created_at) }), " · ",
        t("relay.expires", { when: dateTime(alert.expires_at) })),
      h("dl", { class: "texts" }, Object.entries(alert.texts).map(([lang, text]) =>
        h("div", {}, h("dt", {}, t(`language.${lang}`)), h("dd", {}, h("blockquote", { lang }, text))))),
      h("form", { class: "relay-form", onsubmit: (e) => approve(e) },
        h("details", { class: "edit" }, h("summary", {}, t("relay.edit")),
          h("p", { class: "hint" }, t("relay.texts_hint")), h("div", { class: "grid-2" }, fields)),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("relay.approve")))),
      h("details", { class: "decline" }, h("summary", {}, t("relay.decline_open")),
        h("form", { class: "decline-form", onsubmit: (e) => decline(e) },
          field(t("relay.reason"), reason, t("relay.reason_hint")),
          h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, t("relay.decline"))))),
      status,
    );

    async function approve(event) {
      event.preventDefault();
      const edited = {};
      for (const lang of LANGS) {
        const value = texts[lang].value.trim();
        if (value && value !== (alert.texts[lang] || "")) edited[lang] = value;
      }
      await decide("approve", Object.keys(edited).length ? { texts: edited } : {}, "relay.approved");
    }

    async function decline(event) {
      event.preventDefault();
      if (!reason.value.trim()) {
        fill(status, errorBox(t("relay.reason_needed")));
        reason.focus();
        return;
      }
      await decide("decline", { reason: reason.value.trim() }, "relay.declined");
    }

    async function decide(action, body, message) {
      for (const button of card.querySelectorAll("button")) button.disabled = true;
      try {
        await api("POST", `/v1/alerts/${alert.id}/relays/${relay.plp_id}/${action}`, { json: body });
        fill(done, h("p", { class: "success" }, t(message, { plp: plpName })));
        await load();
        done.focus();
      } catch (error) {
        fill(status, errorBox(error));
        for (const button of card.querySelectorAll("button")) button.disabled = false;
      }
    }
    return card;
  }

  done.tabIndex = -1;
  await load();
}
