// Compose an alert: urgency, category, target PLPs, where in them (whole, some sectors, around a point, some
// streets), texts per language; a live preview of the SMS segments per language, the charter's channels, the
// members reached (per PLP and sector, and those without a known place) and the cost; a confirmation step for
// urgent alerts; sent once however often the button is pressed (Idempotency-Key).

import { api, ApiError } from "../api.js";
import { ask, debounce, field, fill, h, randomKey, uid } from "../dom.js";
import { dateTime, money, number, t, tn } from "../i18n.js";
import { AreaMap } from "../map.js";
import { CATEGORIES, errorBox, heading, myPlps } from "../ui.js";

const LANGS = ["fr", "nl", "de", "en"];
// How long a send waits for a service that answers 503 (its database restarting), trying again with the same key.
const SEND_PATIENCE_MS = 120_000;

export async function render(main, { me, params, go }) {
  const about = params.get("about");
  const earlier = about ? await api("GET", `/v1/alerts/${about}`) : null;
  const state = {
    urgency: me.role === "coordinator" || earlier ? "non_urgent" : "urgent",
    category: earlier ? earlier.category : "burglary",
    selected: new Map(), // PLP id -> PLP
    key: randomKey(), // one composition, one alert: a double click replays instead of sending twice
    sending: false,
    area: { kind: "plps", sectors: new Set(), lat: "", lon: "", radius: "500", streets: "", street: "", number: "", postcode: "", commune: "" },
  };
  const sectorsOf = new Map(); // PLP id -> its sectors
  let disposed = false;
  const plps = await myPlps();
  if (earlier) for (const p of plps.filter((p) => earlier.plp_ids.includes(p.id))) state.selected.set(p.id, p);
  else if (plps.length === 1) state.selected.set(plps[0].id, plps[0]);

  const preview = h("section", { class: "card preview", "aria-live": "polite", "aria-labelledby": "preview-title" });
  const status = h("div", { class: "status" });
  const counters = {}; // language -> <p> with the segment count
  const texts = {}; // language -> <textarea>
  const refresh = debounce(() => { updatePreview(); drawMap(); }, 350);
  const areaMap = await AreaMap.open(t("compose.map"), { id: "compose-map" });

  const body = () => {
    const found = {};
    for (const lang of LANGS) if (texts[lang].value.trim()) found[lang] = texts[lang].value.trim();
    const payload = { urgency: state.urgency, category: state.category, plp_ids: [...state.selected.keys()], texts: found };
    if (earlier) payload.about_alert_id = earlier.id;
    const area = areaOf();
    if (area) payload.area = area;
    return payload;
  };
  // An empty field is sent as null (the service names it), never as 0.
  const degrees = (text) => (String(text).trim() === "" ? null : Number(String(text).trim().replace(",", ".")));
  function areaOf() {
    const a = state.area;
    if (a.kind === "sectors") return { sectors: [...a.sectors] };
    if (a.kind === "circle" && !a.lat.trim() && !a.lon.trim() && a.street.trim()) {
      const address = Object.fromEntries(["street", "number", "postcode", "commune"].map((k) => [k, a[k].trim()]).filter(([, v]) => v));
      return { circle: { address, radius_m: degrees(a.radius) } };
    }
    if (a.kind === "circle") return { circle: { center: { lat: degrees(a.lat), lon: degrees(a.lon) }, radius_m: degrees(a.radius) } };
    if (a.kind === "streets") return { streets: a.streets.split("\n").map((s) => s.trim()).filter(Boolean) };
    return null;
  }

  // -- urgency and category
  const urgencies = me.role === "coordinator" || earlier ? ["non_urgent"] : ["urgent", "non_urgent"];
  const urgencyGroup = h("fieldset", { class: "choices" },
    h("legend", {}, t("compose.urgency")),
    urgencies.map((u) => {
      const id = uid("urgency");
      return h("div", { class: `choice urgency-${u}` },
        h("input", { type: "radio", name: "urgency", id, value: u, checked: state.urgency === u, "aria-describedby": `${id}-hint`,
          onchange: () => { state.urgency = u; refresh(); } }),
        h("div", {}, h("label", { for: id }, t(`urgency.${u}`)), h("p", { class: "hint", id: `${id}-hint` }, t(`compose.urgency_hint.${u}`))),
      );
    }),
    me.role === "coordinator" ? h("p", { class: "hint" }, t("compose.coordinator_note")) : null,
  );
  const category = h("select", { name: "category", onchange: (e) => { state.category = e.target.value; refresh(); } },
    CATEGORIES.map((c) => h("option", { value: c, selected: c === state.category }, t(`category.${c}`))));

  // -- target PLPs: search by name or commune, tick the ones to reach
  const results = h("ul", { class: "plp-results", id: uid("plps") });
  const chosen = h("p", { class: "chosen", "aria-live": "polite" });
  const search = h("input", { type: "search", name: "plp-search", autocomplete: "off",
    "aria-controls": results.id, placeholder: t("compose.plp_search_placeholder") });
  const showPlps = (list) => {
    fill(results, list.length ? list.map((p) => {
      const id = uid("plp");
      return h("li", {},
        h("input", { type: "checkbox", id, value: p.id, checked: state.selected.has(p.id), disabled: Boolean(earlier),
          onchange: (e) => { if (e.target.checked) state.selected.set(p.id, p); else state.selected.delete(p.id); showChosen(); showSectors(); refresh(); } }),
        h("label", { for: id }, h("strong", {}, p.name), " ", h("span", { class: "muted" }, `${p.commune} · ${t("role.zone", { zone: p.police_zone })}`)),
      );
    }) : h("li", { class: "muted" }, t("compose.no_plp")));
  };
  const showChosen = () => fill(chosen, state.selected.size
    ? tn("compose.chosen", state.selected.size, { names: [...state.selected.values()].map((p) => p.name).join(", ") })
    : t("compose.none_chosen"));
  const searchPlps = debounce(async () => showPlps(await myPlps(search.value.trim())), 250);
  search.addEventListener("input", searchPlps);
  showPlps(plps);
  showChosen();

  // -- where in the PLPs: all of them, some sectors, around a point, some streets
  const sectorList = h("ul", { class: "sector-choices", id: "sector-choices" });
  const decimalInput = (name, key, attrs = {}) => h("input", { name, inputmode: "decimal", autocomplete: "off", value: state.area[key],
    oninput: (e) => { state.area[key] = e.target.value; refresh(); }, ...attrs });
  const circleInputs = { lat: decimalInput("area-lat", "lat"), lon: decimalInput("area-lon", "lon"), radius: decimalInput("area-radius", "radius") };
  const addressInput = (name, key) => h("input", { name, autocomplete: "off", value: state.area[key],
    oninput: (e) => { state.area[key] = e.target.value; refresh(); } });
  const streetsInput = h("textarea", { name: "area-streets", rows: 3, oninput: (e) => { state.area.streets = e.target.value; refresh(); } });
  const areaParts = {
    sectors: h("div", { class: "area-part" }, sectorList),
    circle: h("div", { class: "area-part" },
      h("div", { class: "grid-3" }, field(t("compose.area_lat"), circleInputs.lat), field(t("compose.area_lon"), circleInputs.lon),
        field(t("compose.area_radius"), circleInputs.radius)),
      h("fieldset", { class: "around-address" }, h("legend", {}, t("compose.area_address")),
        h("div", { class: "grid-2" }, field(t("members.street"), addressInput("area-street", "street")),
          field(t("members.number"), addressInput("area-number", "number")),
          field(t("members.postcode"), addressInput("area-postcode", "postcode")),
          field(t("members.commune"), addressInput("area-commune", "commune"))))),
    streets: h("div", { class: "area-part" }, field(t("compose.area_streets"), streetsInput, t("compose.area_streets_hint"))),
  };
  const showArea = () => { for (const [kind, part] of Object.entries(areaParts)) part.hidden = state.area.kind !== kind; };
  const areaGroup = h("fieldset", { class: "choices area", id: "area" },
    h("legend", {}, t("compose.area")),
    ["plps", "sectors", "circle", "streets"].map((kind) => {
      const id = uid("area");
      return h("span", { class: "choice" },
        h("input", { type: "radio", name: "area", id, value: kind, checked: state.area.kind === kind,
          onchange: () => { state.area.kind = kind; showArea(); refresh(); } }),
        h("label", { for: id }, t(`compose.area_${kind}`)));
    }),
    Object.values(areaParts),
    h("p", { class: "hint" }, t("compose.area_hint")),
    areaMap.element,
    h("p", { class: "hint" }, t("compose.map_hint")));
  areaMap.onClick((point) => {
    if (state.area.kind !== "circle") return;
    state.area.lat = point.lat.toFixed(5);
    state.area.lon = point.lng.toFixed(5);
    circleInputs.lat.value = state.area.lat;
    circleInputs.lon.value = state.area.lon;
    refresh();
  });
  let mapFitted = "";
  function drawMap() {
    const offered = [...state.selected.keys()].flatMap((id) => sectorsOf.get(id) || []);
    const chosen = state.area.kind === "sectors" ? state.area.sectors : new Set();
    areaMap.showSectors(offered, { chosen });
    const area = areaOf();
    areaMap.showCircle(area && area.circle ? area.circle : null);
    const shown = offered.map((s) => s.id).join() + (area && area.circle ? JSON.stringify(area.circle) : "");
    if (shown !== mapFitted) areaMap.fit();
    mapFitted = shown;
  }
  async function showSectors() {
    for (const id of state.selected.keys()) {
      if (!sectorsOf.has(id)) sectorsOf.set(id, (await api("GET", `/v1/plps/${id}/sectors`)).items);
    }
    const offered = [...state.selected.values()].flatMap((p) => (sectorsOf.get(p.id) || []).map((s) => ({ ...s, plp: p })));
    for (const id of [...state.area.sectors]) if (!offered.some((s) => s.id === id)) state.area.sectors.delete(id);
    fill(sectorList, offered.length ? offered.map((s) => {
      const id = uid("sector");
      return h("li", {},
        h("input", { type: "checkbox", id, value: s.id, checked: state.area.sectors.has(s.id),
          onchange: (e) => { if (e.target.checked) state.area.sectors.add(s.id); else state.area.sectors.delete(s.id); refresh(); } }),
        h("label", { for: id }, s.name, " ", h("span", { class: "muted" }, s.plp.name)));
    }) : h("li", { class: "muted" }, t("compose.no_sectors")));
    if (areaMap.map) drawMap();
  }
  const sectorName = (id) => {
    for (const found of sectorsOf.values()) for (const s of found) if (s.id === id) return s.name;
    return id;
  };

  // -- the texts, one per language, each with its SMS segment count
  const textFields = LANGS.map((lang) => {
    texts[lang] = h("textarea", { name: `text-${lang}`, rows: 3, maxlength: 1600, lang, oninput: refresh });
    counters[lang] = h("p", { class: "segments", id: `segments-${lang}`, "aria-live": "polite" });
    texts[lang].setAttribute("aria-describedby", counters[lang].id);
    const id = uid("text");
    texts[lang].id = id;
    return h("div", { class: "field text-field" },
      h("label", { for: id }, t(`language.${lang}`)), texts[lang], counters[lang]);
  });

  const send = h("button", { type: "submit", class: "primary big" }, t("compose.send"));
  const form = h("form", { class: "compose", novalidate: true, onsubmit: (e) => submit(e) },
    earlier ? h("p", { class: "notice" }, t("compose.about", { category: t(`category.${earlier.category}`), when: dateTime(earlier.created_at) })) : null,
    h("div", { class: "grid-2" },
      h("div", {}, urgencyGroup, field(t("compose.category"), category)),
      h("fieldset", { class: "targets" }, h("legend", {}, t("compose.targets")),
        field(t("compose.plp_search"), search), results, chosen),
    ),
    areaGroup,
    h("fieldset", { class: "texts" }, h("legend", {}, t("compose.texts")),
      h("p", { class: "hint" }, t("compose.texts_hint")), h("div", { class: "grid-2" }, textFields)),
    preview,
    status,
    h("div", { class: "actions" }, send),
  );
  fill(main, heading(earlier ? t("compose.feedback_title") : t("compose.title")), form);
  showArea();
  await showSectors();
  drawMap();
  showPreview(null);
  return { dispose: () => { disposed = true; areaMap.dispose(); } };

  function showPreview(found, error) {
    const parts = [h("h2", { id: "preview-title" }, t("compose.preview"))];
    const channels = [...state.selected.values()].map((p) => {
      const plan = p.charter[earlier ? "police_feedback" : state.urgency];
      return h("li", {}, h("strong", {}, p.name), ": ",
        plan.channels.map((c) => t(`channel.${c}`)).join(", "), " — ", t(`mode.${plan.mode}`),
        state.urgency === "non_urgent" && !earlier && p.charter.relay === "coordinator" && me.role === "police"
          ? h("span", { class: "muted" }, ` (${t("compose.via_coordinator")})`) : null);
    });
    if (channels.length) parts.push(h("h3", {}, t("compose.channels")), h("ul", { class: "plans" }, channels));
    if (error) parts.push(errorBox(error));
    if (found) {
      parts.push(h("dl", { class: "figures" },
        h("div", {}, h("dt", {}, t("compose.reached")), h("dd", { id: "members-reached" }, number(found.members_reached))),
        h("div", {}, h("dt", {}, t("compose.cost")), h("dd", { id: "estimated-cost" }, money(found.cost.estimated, found.cost.currency))),
        h("div", {}, h("dt", {}, t("compose.unreachable")), h("dd", {}, number(found.members_unreachable))),
        h("div", {}, h("dt", {}, t("compose.opted_out")), h("dd", {}, number(found.members_opted_out))),
        found.members_declined_non_urgent
          ? h("div", {}, h("dt", {}, t("compose.declined_non_urgent")),
            h("dd", { id: "members-declined" }, number(found.members_declined_non_urgent)))
          : null,
      ));
      if (found.members_unlocated || found.members_unlocated_left_out || state.area.kind !== "plps") {
        parts.push(h("p", { id: "members-unlocated" }, t("compose.unlocated", {
          reached: number(found.members_unlocated || 0), left: number(found.members_unlocated_left_out || 0) })));
      }
      const byPlp = Object.entries(found.by_plp || {});
      if (byPlp.length > 1 || state.area.kind !== "plps") parts.push(h("p", { id: "reached-by-plp" }, t("compose.by_plp"), " ",
        byPlp.map(([id, n]) => `${(state.selected.get(id) || { name: id }).name} ${number(n)}`).join(" · ")));
      if ((found.by_sector || []).length) parts.push(h("p", { id: "reached-by-sector" }, t("compose.by_sector"), " ",
        found.by_sector.map((s) => `${sectorName(s.sector_id)} ${number(s.members)}`).join(" · ")));
      const byChannel = Object.entries(found.by_channel);
      if (byChannel.length) parts.push(h("p", {}, t("compose.by_channel"), " ",
        byChannel.map(([c, n]) => `${t(`channel.${c}`)} ${number(n)}`).join(" · ")));
    } else if (!error) {
      parts.push(h("p", { class: "muted" }, t("compose.preview_empty")));
    }
    fill(preview, parts);
    const anyText = LANGS.some((lang) => texts[lang].value.trim());
    for (const lang of LANGS) {
      const sms = found && found.sms.find((s) => s.language === lang);
      if (!texts[lang].value.trim()) fill(counters[lang], anyText ? t("compose.no_text") : "");
      else fill(counters[lang], sms ? tn("compose.segments", sms.segments, { encoding: sms.encoding === "gsm7" ? "GSM-7" : "UCS-2" }) : "…");
    }
  }

  async function updatePreview() {
    const payload = body();
    if (!payload.plp_ids.length || !Object.keys(payload.texts).length) return showPreview(null);
    try {
      showPreview(await api("POST", "/v1/alerts/preview", { json: payload }));
    } catch (error) {
      showPreview(null, error);
      // The address of "around a point" is being located in the background: ask again shortly.
      if (error instanceof ApiError && error.problem.title === "Address being located") setTimeout(() => disposed || refresh(), 2000);
    }
  }

  async function submit(event) {
    event.preventDefault();
    if (state.sending) return; // the second click of a double click
    const payload = body();
    fill(status);
    if (!payload.plp_ids.length) return fill(status, errorBox(t("compose.need_plp")));
    if (!Object.keys(payload.texts).length) return fill(status, errorBox(t("compose.need_text")));
    state.sending = true;
    send.disabled = true;
    try {
      if (payload.urgency === "urgent" && !(await confirmUrgent(payload))) return;
      fill(status, h("p", { class: "muted" }, t("compose.sending")));
      const alert = await api("POST", "/v1/alerts", {
        json: payload,
        headers: { "Idempotency-Key": state.key },
        patience: SEND_PATIENCE_MS,
        onWait: (seconds) =>
          fill(status, h("p", { class: "waiting", role: "status" }, t("compose.waiting", { seconds }))),
      });
      go(`#/alerts/${alert.id}`);
    } catch (error) {
      fill(status, errorBox(error));
    } finally {
      state.sending = false;
      send.disabled = false;
    }
  }

  async function confirmUrgent(payload) {
    let found = null;
    try {
      found = await api("POST", "/v1/alerts/preview", { json: payload });
    } catch (error) {
      fill(status, errorBox(error));
      return false;
    }
    const names = [...state.selected.values()].map((p) => p.name).join(", ");
    return ask({
      title: t("compose.confirm_title"),
      body: [
        h("p", {}, tn("compose.confirm_text", found.members_reached, { plps: names })),
        h("p", {}, t("compose.confirm_cost", { cost: money(found.cost.estimated, found.cost.currency) })),
        h("blockquote", {}, Object.values(payload.texts)[0]),
      ],
      confirm: t("compose.confirm_send"),
      cancel: t("compose.confirm_back"),
      danger: true,
    });
  }
}
