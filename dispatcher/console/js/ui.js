// Pieces every view uses: error boxes, status badges, tables, the list of the caller's PLPs.

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

export const CHANNELS = ["sms", "email", "telegram", "voice", "whatsapp"];
export const STATUSES = ["queued", "sending", "sent", "delivered", "outbox", "failed", "expired", "cancelled"];
export const CATEGORIES = ["burglary", "suspect_vehicle", "suspect_person", "incivility", "prevention_advice", "other"];
export const FINAL = ["completed", "expired", "cancelled", "declined"];

/** A box saying what went wrong: the problem's detail and each field at fault, or a network failure. */
export function errorBox(error) {
  let lines;
  if (error instanceof ApiError) lines = error.lines;
  else if (error instanceof TypeError) lines = [t("error.network")];
  else lines = [String(error && error.message ? error.message : error)];
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, t("error.title")),
    h("ul", {}, lines.map((line) => h("li", {}, line))),
  );
}

export function badge(kind, value) {
  return h("span", { class: `badge ${kind}-${value}` }, t(`${kind}.${value}`));
}

/** A table: headers, then rows of cells; wrapped so that it scrolls sideways on a phone. */
export function table(caption, headers, rows, { className = "" } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { class: className },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((head) => h("th", { scope: "col" }, head)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell)))))),
    ),
  );
}

let plpCache = null;

/** The PLPs of the caller's part (police: their zone; coordinators: theirs), optionally searched. */
export async function myPlps(q) {
  if (q) return (await api("GET", "/v1/plps", { query: { q } })).items;
  if (!plpCache) plpCache = (await api("GET", "/v1/plps")).items;
  return plpCache;
}

export function forgetPlps() {
  plpCache = null;
}

/** A <select> of the caller's PLPs (the current one selected). */
export function plpSelect(plps, selected, onchange) {
  return h("select", { onchange },
    plps.map((p) => h("option", { value: p.id, selected: p.id === selected }, `${p.name} — ${p.commune}`)),
  );
}

export function heading(text, ...extra) {
  return h("div", { class: "view-head" }, h("h1", {}, text), extra);
}
