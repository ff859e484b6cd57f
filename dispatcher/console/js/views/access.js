// Access: bearer tokens for scripts and the command line (each person their own; admins everyone's): issue one
// (its secret shown this once), list them (never a secret), revoke. Admins also manage the actors: add one with a
// role and its binding (a police zone, PLPs), change the role, remove (tokens revoked, sessions ended).
// Reads and writes /v1/tokens, /v1/actors/{id}/tokens and, for admins, /v1/actors.

import { api } from "../api.js";
import { ask, field, fill, h, uid } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { errorBox, heading, myPlps, table } from "../ui.js";

const ROLES = ["coordinator", "police", "admin"];

export async function render(main, { me }) {
  const admin = me.role === "admin";
  const plps = admin ? await myPlps() : [];
  const plpName = (id) => (plps.find((p) => p.id === id) || { name: id }).name;
  const status = h("div", { class: "status", role: "status", tabindex: "-1" });
  const tokensBox = h("section", { class: "card tokens", "aria-labelledby": "tokens-title" });
  const actorsBox = admin ? h("section", { class: "card actors", "aria-labelledby": "actors-title" }) : null;
  const days = h("input", { type: "number", name: "ttl-days", min: 1, max: 365, placeholder: "90" });

  fill(main,
    heading(t("access.title")),
    h("p", { class: "hint" }, t(admin ? "access.intro_admin" : "access.intro")),
    status,
    h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); issue(me.id, me.name, days.value); } },
      h("h2", {}, t("access.issue_mine")),
      field(t("access.ttl_days"), days, t("access.ttl_hint")),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("access.issue")))),
    tokensBox,
    admin ? addActorForm() : null,
    actorsBox);

  /** The new token, shown this once in a box the person copies from. */
  function shown(issued) {
    const secret = h("input", { type: "text", readonly: true, value: issued.token, name: "new-token", class: "secret", "aria-label": t("access.new_token") });
    fill(status, h("div", { class: "notice once" },
      h("p", {}, h("strong", {}, t("access.shown_once", { name: issued.actor.name }))),
      secret,
      h("p", { class: "hint" }, t("access.expires", { when: dateTime(issued.expires_at) }))));
    status.focus();
    secret.select();
  }

  async function issue(actorId, name, ttl) {
    try {
      const body = ttl ? { ttl_days: Number(ttl) } : undefined;
      shown(await api("POST", `/v1/actors/${actorId}/tokens`, { json: body }));
      await loadTokens();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function loadTokens() {
    const found = await api("GET", "/v1/tokens", { query: { limit: 200 } });
    fill(tokensBox, h("h2", { id: "tokens-title" }, t(admin ? "access.tokens_all" : "access.tokens_mine")),
      found.items.length ? table(null,
        [t("access.token_id"), t("access.owner"), t("access.issued"), t("access.expires_at"), t("access.status"), ""],
        found.items.map((tok) => [
          h("code", {}, tok.id),
          tok.actor_name ? `${tok.actor_name} · ${t(`role.${tok.role}`)}` : tok.actor_id,
          dateTime(tok.issued_at), dateTime(tok.expires_at),
          h("span", { class: `badge token-${tok.status}` }, t(`access.status_${tok.status}`)),
          tok.status === "active" ? h("button", { type: "button", class: "danger small", onclick: () => revoke(tok) }, t("access.revoke")) : "",
        ]), { className: "token-list" })
        : h("p", { class: "muted" }, t("access.no_tokens")));
  }

  async function revoke(tok) {
    const sure = await ask({ title: t("access.revoke_title", { id: tok.id }), body: t("access.revoke_body"),
      confirm: t("access.revoke"), cancel: t("members.cancel"), danger: true });
    if (!sure) return;
    try {
      await api("DELETE", `/v1/tokens/${tok.id}`);
      fill(status, h("p", { class: "ok" }, t("access.revoked", { id: tok.id })));
      await loadTokens();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  /** Role, police zone and PLPs: the binding fields follow the chosen role. */
  function roleFields(actor = {}) {
    const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === (actor.role || "coordinator") }, t(`role.${r}`))));
    const zone = h("input", { name: "police-zone", maxlength: 64, value: actor.police_zone || "" });
    const boxes = plps.map((p) => h("input", { type: "checkbox", id: uid("ap"), name: "plps", value: p.id, checked: (actor.plp_ids || []).includes(p.id) }));
    const zoneField = field(t("access.zone"), zone);
    const plpField = h("fieldset", { class: "choices" }, h("legend", {}, t("access.plps")),
      plps.map((p, i) => h("span", { class: "choice" }, boxes[i], h("label", { for: boxes[i].id }, `${p.name} — ${p.commune}`))));
    const follow = () => { zoneField.hidden = role.value !== "police"; plpField.hidden = role.value !== "coordinator"; };
    role.addEventListener("change", follow);
    follow();
    const read = () => ({
      role: role.value,
      police_zone: role.value === "police" ? zone.value.trim() || null : null,
      plp_ids: role.value === "coordinator" ? boxes.filter((b) => b.checked).map((b) => b.value) : [],
    });
    return { controls: [field(t("access.role"), role), zoneField, plpField], read };
  }

  function addActorForm() {
    const name = h("input", { name: "actor-name", required: true, maxlength: 200, autocomplete: "off" });
    const email = h("input", { name: "actor-email", type: "email", maxlength: 254, autocomplete: "off" });
    const binding = roleFields();
    const form = h("form", { class: "card add-actor", onsubmit: async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), ...binding.read() };
      if (email.value.trim()) body.email = email.value.trim();
      try {
        shown(await api("POST", "/v1/actors", { json: body }));
        form.reset();
        await Promise.all([loadActors(), loadTokens()]);
      } catch (error) {
        fill(status, errorBox(error));
      }
    } },
    h("h2", {}, t("access.add_actor")),
    h("div", { class: "grid-2" }, field(t("access.name"), name), field(t("access.email"), email, t("access.email_hint"))),
    binding.controls,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("access.add"))));
    return form;
  }

  async function loadActors() {
    const found = await api("GET", "/v1/actors");
    fill(actorsBox, h("h2", { id: "actors-title" }, t("access.actors")),
      table(null, [t("access.name"), t("access.role"), t("access.binding"), t("access.email"), t("members.actions")],
        found.items.map((a) => [
          a.name, t(`role.${a.role}`),
          a.role === "police" ? t("role.zone", { zone: a.police_zone }) : a.plp_ids.map(plpName).join(", ") || "—",
          a.email || "—",
          h("div", { class: "row-actions" },
            h("button", { type: "button", class: "secondary small", onclick: () => change(a) }, t("access.change")),
            h("button", { type: "button", class: "secondary small", onclick: () => issue(a.id, a.name) }, t("access.issue")),
            a.id === me.id ? null : h("button", { type: "button", class: "danger small", onclick: () => removeActor(a) }, t("members.remove"))),
        ]), { className: "actor-list" }));
  }

  async function change(actor) {
    const binding = roleFields(actor);
    const name = h("input", { name: "actor-name", required: true, maxlength: 200, value: actor.name });
    const sure = await ask({ title: t("access.change_title", { name: actor.name }),
      body: h("div", {}, field(t("access.name"), name), binding.controls),
      confirm: t("access.save"), cancel: t("members.cancel") });
    if (!sure) return;
    try {
      await api("PATCH", `/v1/actors/${actor.id}`, { json: { name: name.value.trim(), ...binding.read() } });
      fill(status, h("p", { class: "ok" }, t("access.changed", { name: name.value.trim() })));
      await loadActors();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function removeActor(actor) {
    const sure = await ask({ title: t("access.remove_title", { name: actor.name }), body: t("access.remove_body"),
      confirm: t("members.remove"), cancel: t("members.cancel"), danger: true });
    if (!sure) return;
    try {
      await api("DELETE", `/v1/actors/${actor.id}`);
      fill(status, h("p", { class: "ok" }, t("access.removed", { name: actor.name })));
      await Promise.all([loadActors(), loadTokens()]);
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  await loadTokens();
  if (admin) await loadActors();
}
