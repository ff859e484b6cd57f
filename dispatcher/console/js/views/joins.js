// A PLP's join requests: residents who asked on its public join page, their phone or e-mail confirmed by
// code, to approve (they become members) or decline with a reason (they are told it); and the join page
// itself, on or off, with its privacy notice in four languages. Coordinators of the PLP and admins.
// Reads and writes /v1/plps/{id}/join-requests and /v1/plps/{id}/join-page.

import { api } from "../api.js";
import { field, fill, h } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { errorBox, heading, myPlps, plpSelect } from "../ui.js";

const LANGS = ["fr", "nl", "de", "en"];

export async function render(main, { params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("joins.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const list = h("section", { class: "joins", "aria-live": "polite" });
  const settings = h("details", { class: "card join-page" });
  fill(main,
    heading(t("joins.title")),
    h("p", { class: "hint" }, t("joins.intro")),
    h("div", { class: "toolbar" },
      field(t("evaluation.plp"), plpSelect(plps, plp.id, (e) => go(`#/joins?plp=${e.target.value}`)))),
    list,
    settings);

  async function load() {
    try {
      const found = await api("GET", `/v1/plps/${plp.id}/join-requests`);
      fill(list, found.items.length
        ? [h("p", { class: "count" }, tn("joins.count", found.items.length)), found.items.map(item)]
        : h("p", { class: "empty" }, t("joins.none")));
    } catch (error) {
      fill(list, errorBox(error));
    }
  }

  function item(request) {
    const status = h("div", { class: "status", role: "status" });
    const reason = h("textarea", { rows: 2, maxlength: 500, name: "reason", required: true });
    const address = request.address
      ? [request.address.street, request.address.number, request.address.postcode, request.address.commune].filter(Boolean).join(" ")
      : null;
    const facts = [
      [t("joins.phone"), request.phone],
      [t("joins.email"), request.email],
      [t("joins.language"), t(`language.${request.language}`)],
      [t("joins.address"), address],
      [t("joins.received"), dateTime(request.confirmed_at || request.created_at)],
    ].filter(([, value]) => value);
    const pending = request.state === "pending";
    const card = h("article", { class: "card join-request", "aria-label": request.name },
      h("h2", {}, request.name, " ", h("span", { class: `badge join-${request.state}` }, t(`joins.state_${request.state}`))),
      h("dl", { class: "facts" }, facts.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value)))),
      pending ? h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: approve }, t("joins.approve"))) : null,
      pending ? h("details", { class: "decline" }, h("summary", {}, t("joins.decline_open")),
        h("form", { onsubmit: decline },
          field(t("joins.reason"), reason, t("joins.reason_hint")),
          h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, t("joins.decline")))))
        : h("p", { class: "muted" }, t("joins.declined", { reason: request.reason || "" })),
      status);

    async function approve() {
      try {
        await api("POST", `/v1/plps/${plp.id}/join-requests/${request.id}/approve`);
        fill(card, h("p", { class: "success", role: "status" }, t("joins.approved", { name: request.name })));
      } catch (error) {
        fill(status, errorBox(error));
      }
    }

    async function decline(event) {
      event.preventDefault();
      try {
        await api("POST", `/v1/plps/${plp.id}/join-requests/${request.id}/decline`, { json: { reason: reason.value.trim() } });
        await load();
      } catch (error) {
        fill(status, errorBox(error));
      }
    }
    return card;
  }

  async function loadSettings() {
    let page;
    try {
      page = await api("GET", `/v1/plps/${plp.id}/join-page`);
    } catch (error) {
      return fill(settings, h("summary", {}, t("joins.page")), errorBox(error));
    }
    const enabled = h("input", { type: "checkbox", name: "enabled", checked: page.enabled });
    const notices = Object.fromEntries(LANGS.map((lang) =>
      [lang, h("textarea", { rows: 4, maxlength: 8000, lang, name: `notice-${lang}`, value: page.privacy_notice[lang] || "" })]));
    const status = h("div", { class: "status", role: "status" });
    fill(settings,
      h("summary", {}, t("joins.page"), " · ", t(page.enabled ? "joins.open" : "joins.closed")),
      h("p", {}, t("joins.url"), " ", h("a", { href: page.url, target: "_blank", rel: "noopener" }, page.url)),
      h("form", { onsubmit: save },
        h("label", { class: "check" }, enabled, " ", t("joins.enabled")),
        h("p", { class: "hint" }, t("joins.notice_hint")),
        h("div", { class: "grid-2" }, LANGS.map((lang) =>
          field(t("joins.notice", { language: t(`language.${lang}`) }), notices[lang]))),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("joins.save")))),
      status);
    settings.open = !page.enabled;

    async function save(event) {
      event.preventDefault();
      const written = Object.fromEntries(LANGS.filter((l) => notices[l].value.trim()).map((l) => [l, notices[l].value.trim()]));
      try {
        await api("PUT", `/v1/plps/${plp.id}/join-page`, { json: { enabled: enabled.checked, privacy_notice: written } });
        await loadSettings();
        settings.open = true;
        fill(settings.querySelector(".status"), h("p", { class: "ok" }, t("joins.saved")));
      } catch (error) {
        fill(status, errorBox(error));
      }
    }
  }

  await Promise.all([load(), loadSettings()]);
}
