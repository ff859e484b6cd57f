// The console's shell: sign-in, the navigation the role allows, and the views behind #/<name>.

import { api, forgetToken, keepToken, token, whenUnauthorized } from "./api.js";
import { field, fill, h } from "./dom.js";
import { preferredLanguage, t, useLanguage } from "./i18n.js";
import { errorBox } from "./ui.js";
import * as compose from "./views/compose.js";
import * as alerts from "./views/alerts.js";
import * as follow from "./views/follow.js";
import * as relay from "./views/relay.js";
import * as feedback from "./views/feedback.js";
import * as members from "./views/members.js";
import * as evaluation from "./views/evaluation.js";

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
  fill(main, form);
  input.focus();
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

function signOut(message) {
  forgetToken();
  session.me = null;
  if (current && current.dispose) current.dispose();
  current = null;
  if (location.hash) history.replaceState(null, "", location.pathname);
  showSignIn(message);
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
  whenUnauthorized((error) => signOut(error));
  window.addEventListener("hashchange", show);
  if (!token()) return showSignIn();
  try {
    await start();
  } catch (error) {
    signOut(error);
  }
}

boot();
