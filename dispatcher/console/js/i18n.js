// The console's words in French, Dutch, German and English: catalogs in /console/i18n/<lang>.json.
// The language follows the browser until the person picks one (remembered on this device).

export const LANGUAGES = ["fr", "nl", "de", "en"];
const STORED = "plp.language";

let lang = "en";
let catalog = {};
let fallback = {};

/** The language to start with: the one picked before, else the browser's first one we have. */
export function preferredLanguage() {
  const stored = localStorage.getItem(STORED);
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).slice(0, 2).toLowerCase();
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

async function load(code) {
  const response = await fetch(`/console/i18n/${code}.json`);
  if (!response.ok) throw new Error(`catalog ${code}: ${response.status}`);
  return response.json();
}

/** Load a language's catalog (English stays loaded to fall back on) and make it current. */
export async function useLanguage(code, { remember = false } = {}) {
  if (!LANGUAGES.includes(code)) code = "en";
  if (!Object.keys(fallback).length) fallback = await load("en");
  catalog = code === "en" ? fallback : await load(code);
  lang = code;
  document.documentElement.lang = code;
  if (remember) localStorage.setItem(STORED, code);
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = t("app.title");
}

export function language() {
  return lang;
}

/** The text of `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = catalog[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? format(vars[name]) : `{${name}}`));
}

/** `key.one` / `key.other` (CLDR plural categories) for the count `n`, placeholders `{n}` and `vars`. */
export function tn(key, n, vars = {}) {
  const rule = new Intl.PluralRules(lang).select(n);
  const chosen = catalog[`${key}.${rule}`] !== undefined || fallback[`${key}.${rule}`] !== undefined ? rule : "other";
  return t(`${key}.${chosen}`, { n, ...vars });
}

function format(value) {
  return typeof value === "number" ? number(value) : String(value);
}

export function number(value, options = {}) {
  return new Intl.NumberFormat(lang, options).format(value);
}

export function percent(share) {
  return new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }).format(share);
}

export function money(amount, currency) {
  return new Intl.NumberFormat(lang, { style: "currency", currency }).format(Number(amount));
}

/** "45 s", "12 min" (unit: "second" or "minute"). */
export function duration(value, unit) {
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "short" }).format(value);
}

export function dateTime(value) {
  if (!value) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
}

export function time(value) {
  if (!value) return "";
  return new Intl.DateTimeFormat(lang, { timeStyle: "medium" }).format(new Date(value));
}
