// The console's shell: sign-in, the navigation the role allows, and the views behind #/<name>.

import {
  api,
  forgetSession,
  forgetToken,
  keepSession,
  keepToken,
  mayHaveSession,
  token,
  whenUnauthorized,
} from "./api.js";
import { field, fill, h } from "./dom.js";
import { language, preferredLanguage, t, useLanguage } from "./i18n.js";
import { errorBox } from "./ui.js";
import * as compose from "./views/compose.js";
import * as alerts from "./views/alerts.js";
import * as follow from "./views/follow.js";
import * as relay from "./views/relay.js";
import * as feedback from "./views/feedback.js";
import * as members from "./views/members.js";
import * as evaluation from "./views/evaluation.js";
import * as drills from "./views/drills.js";
import * as joins from "./views/joins.js";
import * as charter from "./views/charter.js";
import * as notifications from "./views/notifications.js";
import * as access from "./views/access.js";
import * as auditLog from "./views/audit.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");

/** The views, in the order of the navigation, and the roles that see each. */
const VIEWS = [
  { name: "compose", module: compose, roles: ["police", "coordinator", "admin"] },
  { name: "alerts", module: alerts, roles: ["police", "coordinator", "admin"] },
  { name: "relay", module: relay, roles: ["coordinator", "admin"] },
  { name: "feedback", module: feedback, roles: ["police", "coordinator", "admin"] },
  { name: "members", module: members, roles: ["coordinator", "admin"] },
  { name: "evaluation", module: evaluation, roles: ["coordinator", "admin", "police"] },
  { name: "drills", module: drills, roles: ["coordinator", "admin", "police"] },
  { name: "joins", module: joins, roles: ["coordinator", "admin"] },
  { name: "charter", module: charter, roles: ["coordinator", "admin"] },
  { name: "notifications", module: notifications, roles: ["coordinator", "admin", "police"] },
  { name: "access", module: access, roles: ["coordinator", "admin", "police"] },
  { name: "audit", module: auditLog, roles: ["coordinator", "admin", "police"] },
];

const session = { me: null };
let current = null; // the view on screen: {dispose?}

function allowed(view) {
  return session.me && view.roles.includes(session.me.role);
}

function route() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, params: new URLSearchParams(search) };
}

async function show() {
  if (current && current.dispose) current.dispose();
  current = null;
  if (!session.me) return showSignIn();
  const { parts, params } = route();
  let view = VIEWS.find((v) => v.name === parts[0]);
  if (parts[0] === "alerts" && parts[1]) view = { name: "alerts", module: follow, roles: VIEWS[1].roles };
  if (!view || !allowed(view)) {
    location.replace(`#/${session.me.role === "coordinator" ? "relay" : "compose"}`);
    return;
  }
  renderNav(view.name);
  const context = { me: session.me, params, id: parts[1], go: (hash) => (location.hash = hash) };
  fill(main, h("p", { class: "loading" }, t("app.loading")));
  try {
    current = (await view.module.render(main, context)) || null;
  } catch (error) {
    fill(main, errorBox(error));
  }
  // A new screen: keyboard and screen reader users start at its top, not where the old one was.
  if (!main.contains(document.activeElement) || document.activeElement === document.body) main.focus({ preventScroll: true });
}

function renderNav(active) {
  nav.hidden = false;
  fill(
    nav,
    h("ul", {},
      VIEWS.filter(allowed).map((v) =>
        h("li", {},
          h("a", { href: `#/${v.name}`, "aria-current": v.name === active ? "page" : null }, t(`nav.${v.name}`)),
        ),
      ),
    ),
  );
}

function showSignIn(message) {
  nav.hidden = true;
  document.getElementById("session").hidden = true;
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const linkStatus = h("div", { class: "status" });
  const byLink = h(
    "form",
    { class: "card signin", id: "signin-link", onsubmit: (event) => askLink(event, email, linkStatus) },
    h("h2", {}, t("signin.by_link")),
    h("p", {}, t("signin.link_intro")),
    field(t("signin.email"), email, t("signin.email_hint")),
    linkStatus,
    h("button", { type: "submit" }, t("signin.send_link")),
  );
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const status = h("div", { class: "status" }, message ? errorBox(message) : null);
  const form = h(
    "form",
    { class: "card signin", onsubmit: (event) => signIn(event, input, status) },
    h("h1", {}, t("signin.title")),
    h("p", {}, t("signin.intro")),
    field(t("signin.token"), input, t("signin.token_hint")),
    status,
    h("button", { class: "primary", type: "submit" }, t("signin.submit")),
  );
  const byProvider = h("div");
  fill(main, form, byProvider, byLink);
  input.focus();
  showProvider(byProvider);
}

/** The "Sign in with <name>" button, when the service is configured with the organisation's identity provider. */
async function showProvider(slot) {
  const name = (await consoleConfig()).sign_in_with;
  if (!name) return;
  const go = () => location.assign(`/v1/sign-in/oidc?language=${encodeURIComponent(language())}`);
  fill(
    slot,
    h(
      "div",
      { class: "card signin", id: "signin-provider" },
      h("h2", {}, t("signin.with_intro")),
      h("button", { class: "primary", type: "button", onclick: go }, t("signin.with", { name })),
    ),
  );
}

let config = null;

async function consoleConfig() {
  if (!config) config = fetch("/console/config.json", { cache: "no-store" }).then((r) => r.json());
  return config;
}

async function askLink(event, email, status) {
  event.preventDefault();
  try {
    await api("POST", "/v1/sign-in", { json: { email: email.value.trim(), language: language() } });
    fill(status, h("p", { class: "notice", role: "status" }, t("signin.link_sent")));
  } catch (error) {
    fill(status, errorBox(error));
  }
}

/** Spend the code of a sign-in link (#signin=<code>), which opens a session cookie. */
async function openSession(code) {
  history.replaceState(null, "", location.pathname); // the code works once: out of the address bar
  forgetToken();
  const opened = await api("POST", "/v1/sessions", { json: { code } });
  keepSession(opened.csrf_token);
}

async function signIn(event, input, status) {
  event.preventDefault();
  keepToken(input.value.trim());
  try {
    await start();
  } catch (error) {
    forgetToken();
    fill(status, errorBox(error));
  }
}

async function start() {
  session.me = await api("GET", "/v1/me");
  const who = document.getElementById("who");
  fill(who, h("strong", {}, session.me.name), " · ", t(`role.${session.me.role}`),
    session.me.police_zone ? ` · ${t("role.zone", { zone: session.me.police_zone })}` : "");
  document.getElementById("session").hidden = false;
  await show();
}

function signOut(message, { everywhere = false } = {}) {
  if (!token() && mayHaveSession() && !message) {
    api("DELETE", everywhere ? "/v1/session/everywhere" : "/v1/session").catch(() => {});
  }
  forgetToken();
  forgetSession();
  session.me = null;
  if (current && current.dispose) current.dispose();
  current = null;
  if (location.hash) history.replaceState(null, "", location.pathname);
  showSignIn(message);
}

/** After a reload: the session cookie's CSRF token, asked again (it is kept in memory only). */
async function resumeSession() {
  const open = await api("GET", "/v1/session");
  keepSession(open.csrf_token);
}

async function boot() {
  const select = document.getElementById("language");
  await useLanguage(preferredLanguage());
  select.value = document.documentElement.lang;
  select.addEventListener("change", async () => {
    await useLanguage(select.value, { remember: true });
    if (session.me) await start();
    else showSignIn();
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  document
    .getElementById("sign-out-everywhere")
    .addEventListener("click", () => signOut(undefined, { everywhere: true }));
  whenUnauthorized((error) => signOut(error));
  window.addEventListener("hashchange", () => (signInLink() ? enter() : show()));
  await enter();
}

function signInLink() {
  return location.hash.match(/^#signin=([A-Za-z0-9_-]+)$/);
}

/** Open the console: by a sign-in link in the address, a session still open, or a token in this tab. */
async function enter() {
  const link = signInLink();
  try {
    if (link) await openSession(link[1]);
    else if (!token() && mayHaveSession()) await resumeSession();
    else if (!token()) return showSignIn();
    await start();
  } catch (error) {
    signOut(error);
  }
}

boot();
