// A PLP's members for its coordinators: who can be reached on which channel and when they last
// acknowledged, where they live (their sector, or why they could not be located), filtered by sector or
// "not located"; adding and editing a member (address, position, sector by hand); importing a sheet (CSV or
// Excel) with a preview of the rows that will be rejected, and why; the personal Telegram link to hand to a member;
// members' health (not reachable for months, never acknowledging, no working channel) as a filter and a CSV file.

import { api, download } from "../api.js";
import { ask, field, fill, h, uid } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { AreaMap, polygonOf } from "../map.js";
import { CHANNELS, errorBox, heading, myPlps, plpSelect, table } from "../ui.js";

/** Consents given in this form are recorded as the console's (the API's X-PLP-Client header). */
const CONSOLE = { "X-PLP-Client": "console" };

const LANGS = ["fr", "nl", "de", "en"];
/** The members' health problems the filter offers (see docs/api.md#members-health). */
const HEALTH = ["not_reachable", "never_acknowledges", "no_working_channel"];
// What the import reads (CSV, Excel), and what it refuses saying how to convert it (.xls, .ods).
const SHEET_FILES = ".csv,.tsv,.txt,.xlsx,.xlsm,.xls,.ods,text/csv,text/plain,text/tab-separated-values," +
  "application/vnd.ms-excel,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

export async function render(main, { params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("members.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const listBox = h("section", { class: "card", "aria-labelledby": "members-list-title" });
  const status = h("div", { class: "status", role: "status", tabindex: "-1" });
  let pages = [null]; // cursors of the pages seen
  let page = 0;
  let sectors = (await api("GET", `/v1/plps/${plp.id}/sectors`)).items;
  const sectorMap = await AreaMap.open(t("sectors.map"), { id: "sector-map" });
  const sectorName = (id) => (sectors.find((s) => s.id === id) || { name: id }).name;
  const filters = { sector: null, located: null };
  const refilter = () => { pages = [null]; page = 0; load(); };
  const sectorFilter = h("select", { name: "sector-filter", onchange: (e) => { filters.sector = e.target.value || null; refilter(); } },
    h("option", { value: "" }, t("members.all_sectors")),
    sectors.map((s) => h("option", { value: s.id }, s.name)),
    h("option", { value: "none" }, t("members.no_sector")));
  const healthFilter = h("select", { name: "health-filter", onchange: () => refilter() },
    h("option", { value: "" }, t("members.health_any")),
    HEALTH.map((p) => h("option", { value: p }, t(`members.health_${p}`))));
  const unlocatedId = uid("unlocated");
  const unlocatedFilter = h("span", { class: "choice" },
    h("input", { type: "checkbox", id: unlocatedId, name: "not-located", onchange: (e) => { filters.located = e.target.checked ? "false" : null; refilter(); } }),
    h("label", { for: unlocatedId }, t("members.not_located_only")));

  fill(main,
    heading(t("members.title"), plps.length > 1 ? field(t("members.plp"), plpSelect(plps, plp.id, (e) => go(`#/members?plp=${e.target.value}`))) : h("p", { class: "muted" }, plp.name)),
    status,
    h("div", { class: "grid-2" }, addForm(), importForm()),
    sectorsPanel(),
    h("div", { class: "filters" }, field(t("members.sector_filter"), sectorFilter), unlocatedFilter,
      field(t("members.health_filter"), healthFilter, t("members.health_hint")),
      h("button", { type: "button", class: "secondary", onclick: exportHealth }, t("members.health_csv"))),
    listBox);

  function place(m) {
    if (m.sector_id) return h("span", { class: "sector" }, sectorName(m.sector_id));
    const state = m.locating ? m.locating.state : "no_address";
    if (state === "located") return h("span", { class: "muted" }, t("members.no_sector"));
    return h("span", { class: `unlocated state-${state}` }, t(`members.locating_${state}`),
      m.locating && m.locating.reason ? h("span", { class: "muted" }, ` · ${m.locating.reason}`) : null);
  }

  async function exportHealth() {
    try {
      await download(`/v1/plps/${plp.id}/member-health`, { query: { format: "csv", problem: healthFilter.value }, name: `member-health-${plp.id}.csv` });
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  /** The members with the chosen health problem, from the delivery history (no contact point shown). */
  async function loadHealth() {
    const found = await api("GET", `/v1/plps/${plp.id}/member-health`, { query: { problem: healthFilter.value } });
    const when = (at) => (at ? dateTime(at) : h("span", { class: "muted" }, t("members.never")));
    const rows = found.items.map((m) => [
      h("span", { class: "name" }, m.name),
      h("ul", { class: "chips" }, m.problems.map((p) => h("li", { class: "chip ko" }, t(`members.health_${p}`)))),
      m.working_channels.map((c) => t(`channel.${c}`)).join(", ") || "—",
      t("members.health_counts", { planned: m.alerts_planned, reached: m.alerts_reached, acknowledged: m.alerts_acknowledged }),
      when(m.last_reached_at), when(m.last_acknowledged_at),
    ]);
    const th = found.thresholds;
    fill(listBox, h("h2", { id: "members-list-title" }, t(`members.health_${healthFilter.value}`)),
      h("p", { class: "hint" }, t("members.health_thresholds", { days: th.unreachable_days, after: th.unreachable_after, acks: th.never_acknowledges_after, alerts: th.history_alerts })),
      rows.length ? table(null, [t("members.name"), t("members.health_problems"), t("members.health_working"), t("members.health_alerts"), t("members.health_last_reached"), t("members.last_ack")], rows, { className: "member-health" })
        : h("p", { class: "empty" }, t("members.health_none")));
  }

  async function load() {
    if (healthFilter.value) return loadHealth();
    const found = await api("GET", `/v1/plps/${plp.id}/members`, { query: { cursor: pages[page], limit: 50, ...filters } });
    if (found.next_cursor) pages[page + 1] = found.next_cursor;
    const rows = found.items.map((m) => [
      h("span", { class: "name" }, m.name),
      t(`language.${m.language}`),
      m.status === "active" ? reachability(m) : h("span", { class: "badge status-cancelled" }, t("members.opted_out")),
      m.last_acknowledged_at ? [dateTime(m.last_acknowledged_at), h("span", { class: "muted" }, ` · ${t(`channel.${m.last_acknowledged_via}`)}`)] : h("span", { class: "muted" }, t("members.never")),
      place(m),
      h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary small", onclick: () => edit(m) }, t("members.edit")),
        h("button", { type: "button", class: "secondary small", onclick: () => telegram(m) }, t("members.telegram")),
        h("button", { type: "button", class: "secondary small", onclick: () => profileLink(m) }, t("members.profile_link")),
        h("button", { type: "button", class: "link small", onclick: () => remove(m) }, t("members.remove"))),
    ]);
    fill(listBox, h("h2", { id: "members-list-title" }, t("members.list", { plp: plp.name })),
      rows.length ? table(null, [t("members.name"), t("members.language"), t("members.channels"), t("members.last_ack"), t("members.place"), t("members.actions")], rows, { className: "members" })
        : h("p", { class: "empty" }, t("members.none")),
      h("div", { class: "pager" },
        page > 0 ? h("button", { type: "button", class: "secondary", onclick: () => { page -= 1; load(); } }, t("members.previous")) : null,
        found.next_cursor ? h("button", { type: "button", class: "secondary", onclick: () => { page += 1; load(); } }, t("members.next")) : null));
  }

  function reachability(m) {
    return h("ul", { class: "chips" }, CHANNELS.filter((c) => m.channels.includes(c)).map((c) => {
      const works = m.working_channels.includes(c);
      const why = m.unusable[c] || (works ? "" : t("members.no_contact"));
      return h("li", { class: `chip ${works ? "ok" : "ko"}`, title: why || null },
        `${works ? "✓" : "✗"} ${t(`channel.${c}`)}`, why ? h("span", { class: "visually-hidden" }, ` (${why})`) : null);
    }));
  }

  function memberFields(m = {}) {
    const inputs = {
      name: h("input", { name: "name", required: true, maxlength: 200, autocomplete: "off", value: m.name || "" }),
      phone: h("input", { name: "phone", type: "tel", maxlength: 32, autocomplete: "off", value: m.phone || "" }),
      email: h("input", { name: "email", type: "email", maxlength: 254, autocomplete: "off", value: m.email || "" }),
      language: h("select", { name: "language" }, LANGS.map((l) => h("option", { value: l, selected: l === (m.language || "fr") }, t(`language.${l}`)))),
    };
    const boxes = CHANNELS.map((c) => {
      const id = uid("ch");
      const box = h("input", { type: "checkbox", id, name: "channels", value: c, checked: m.channels ? m.channels.includes(c) : true });
      return [box, h("span", { class: "choice" }, box, h("label", { for: id }, t(`channel.${c}`)))];
    });
    const consentId = uid("wa");
    const whatsapp = h("input", { type: "checkbox", id: consentId, name: "whatsapp", checked: Boolean(m.whatsapp_consent) });
    const consent = h("span", { class: "choice" }, whatsapp, h("label", { for: consentId }, t("members.whatsapp_consent")));
    const address = m.address || {};
    const given = m.location && m.location.source === "given" ? m.location : {};
    const where = {
      street: h("input", { name: "street", maxlength: 120, autocomplete: "off", value: address.street || "" }),
      number: h("input", { name: "number", maxlength: 12, autocomplete: "off", value: address.number || "" }),
      postcode: h("input", { name: "postcode", maxlength: 4, inputmode: "numeric", autocomplete: "off", value: address.postcode || "" }),
      commune: h("input", { name: "commune", maxlength: 80, autocomplete: "off", value: address.commune || "" }),
      lat: h("input", { name: "lat", inputmode: "decimal", autocomplete: "off", value: given.lat ?? "" }),
      lon: h("input", { name: "lon", inputmode: "decimal", autocomplete: "off", value: given.lon ?? "" }),
    };
    const sectorPick = h("select", { name: "sector" },
      h("option", { value: "" }, t("members.sector_auto")),
      sectors.map((s) => h("option", { value: s.id, selected: (m.sector_ids || {})[plp.id] === s.id }, s.name)));
    const read = () => {
      const body = { name: inputs.name.value.trim(), language: inputs.language.value, channels: boxes.filter(([b]) => b.checked).map(([b]) => b.value), whatsapp: whatsapp.checked };
      const phone = inputs.phone.value.trim();
      const email = inputs.email.value.trim();
      if (phone || m.phone) body.phone = phone || null;
      if (email || m.email) body.email = email || null;
      const text = (name) => where[name].value.trim() || null;
      const written = { street: text("street"), number: text("number"), postcode: text("postcode"), commune: text("commune") };
      if (written.street || written.postcode || written.commune) body.address = Object.fromEntries(Object.entries(written).filter(([, v]) => v));
      else if (m.address) body.address = null;
      const degrees = (name) => (text(name) === null ? null : Number(text(name).replace(",", ".")));
      if (text("lat") || text("lon")) body.coordinates = { lat: degrees("lat"), lon: degrees("lon") };
      else if (given.lat !== undefined) body.coordinates = null;
      return body;
    };
    const readSector = () => (sectorPick.value || null);
    const controls = [
      field(t("members.name"), inputs.name),
      field(t("members.phone"), inputs.phone, t("members.phone_hint")),
      field(t("members.email"), inputs.email),
      field(t("members.language"), inputs.language),
      h("fieldset", { class: "choices inline" }, h("legend", {}, t("members.accepts")), boxes.map(([, el]) => el), consent),
      h("fieldset", { class: "address" }, h("legend", {}, t("members.address")),
        h("div", { class: "grid-2" }, field(t("members.street"), where.street), field(t("members.number"), where.number),
          field(t("members.postcode"), where.postcode), field(t("members.commune"), where.commune)),
        h("p", { class: "hint" }, t("members.position_hint")),
        h("div", { class: "grid-2" }, field(t("members.lat"), where.lat), field(t("members.lon"), where.lon)),
        sectors.length && m.id ? field(t("members.sector"), sectorPick) : null),
    ];
    return { controls, read, readSector, inputs };
  }

  function addForm() {
    const { controls, read } = memberFields();
    const out = h("div", { class: "status" });
    const form = h("form", { class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = read();
      if (body.phone === null) delete body.phone;
      if (body.email === null) delete body.email;
      try {
        const member = await api("POST", `/v1/plps/${plp.id}/members`, { json: body, headers: CONSOLE });
        form.reset();
        fill(out);
        fill(status, h("p", { class: "success" }, t("members.added", { name: member.name })));
        await load();
      } catch (error) {
        fill(out, errorBox(error));
      }
    } }, controls, out, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("members.add_submit"))));
    return h("details", { class: "panel" }, h("summary", {}, t("members.add")), form);
  }

  async function edit(m) {
    const { controls, read, readSector } = memberFields(m);
    const statusSelect = h("select", { name: "status" }, ["active", "opted_out"].map((s) => h("option", { value: s, selected: s === m.status }, t(`members.status_${s}`))));
    const out = h("div", { class: "status" });
    const dialog = h("dialog", { class: "dialog", "aria-label": t("members.edit_title", { name: m.name }) },
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        try {
          const changes = { ...read(), status: statusSelect.value };
          if (sectors.length && readSector() !== ((m.sector_ids || {})[plp.id] || null)) changes.sector_id = readSector();
          const saved = await api("PATCH", `/v1/plps/${plp.id}/members/${m.id}`, { json: changes, headers: CONSOLE });
          dialog.close();
          fill(status, h("p", { class: "success" }, t("members.saved", { name: saved.name })));
          await load();
        } catch (error) {
          fill(out, errorBox(error));
        }
      } },
      h("h2", {}, t("members.edit_title", { name: m.name })), controls, field(t("members.status"), statusSelect), out,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, t("members.cancel")),
        h("button", { type: "submit", class: "primary" }, t("members.save")))));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  async function telegram(m) {
    try {
      const link = await api("POST", `/v1/plps/${plp.id}/members/${m.id}/telegram-link`);
      const body = [h("p", {}, t("members.telegram_intro", { name: m.name }))];
      if (link.url) body.push(h("p", {}, h("a", { href: link.url, class: "telegram-url", rel: "noopener", target: "_blank" }, link.url)));
      body.push(h("p", {}, t("members.telegram_command")), h("p", {}, h("code", { class: "telegram-command" }, link.start_command)),
        h("p", { class: "muted" }, t("members.telegram_expires", { when: dateTime(link.expires_at) })));
      await ask({ title: t("members.telegram_title"), body, confirm: t("members.close") });
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function profileLink(m) {
    // the link goes to the member only: the coordinator never holds it, so nobody acts as the member
    try {
      const sent = await api("POST", `/v1/plps/${plp.id}/members/${m.id}/profile-link`);
      fill(status, h("p", { class: "success" }, t("members.profile_link_sent", { name: m.name, channel: t(`channel.${sent.channel}`) })));
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function remove(m) {
    const yes = await ask({ title: t("members.remove_title", { name: m.name }), body: h("p", {}, t("members.remove_text")),
      confirm: t("members.remove"), cancel: t("members.cancel"), danger: true });
    if (!yes) return;
    try {
      await api("DELETE", `/v1/plps/${plp.id}/members/${m.id}`);
      fill(status, h("p", { class: "success" }, t("members.removed", { name: m.name })));
      await load();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  function importForm() {
    const file = h("input", { type: "file", name: "sheet", accept: SHEET_FILES });
    const report = h("div", { class: "import-report", "aria-live": "polite" });
    // The file's bytes as they are, read once (the preview and the import send the same): the server finds
    // their encoding (a CSV from Excel is often Windows-1252) and whether they are a workbook.
    let upload = null;
    file.addEventListener("change", async () => {
      fill(report);
      upload = null;
      if (!file.files.length) return;
      const chosen = file.files[0];
      upload = { bytes: await chosen.arrayBuffer(), type: chosen.type || "application/octet-stream", sheet: null };
      await preview();
    });

    async function preview() {
      try {
        showReport(await send(true));
      } catch (error) {
        fill(report, errorBox(error));
      }
    }

    function send(dryRun) {
      const query = { dry_run: dryRun ? "true" : null, sheet: upload.sheet };
      return api("POST", `/v1/plps/${plp.id}/members/import`, { bytes: upload.bytes, type: upload.type, query });
    }

    function howRead(source) {
      if (!source) return null;
      if (source.format === "xlsx") {
        const read = h("p", { class: "muted", id: "import-source" }, t("members.read_sheet", { sheet: source.sheet }));
        if (source.sheets.length < 2) return read;
        const pick = h("select", { name: "sheet", onchange: (e) => { upload.sheet = e.target.value; preview(); } },
          source.sheets.map((s) => h("option", { value: s, selected: s === source.sheet }, s)));
        return [read, field(t("members.sheet_pick"), pick)];
      }
      const delimiter = source.delimiter === "\t" ? t("members.tab") : `“${source.delimiter}”`;
      return h("p", { class: "muted", id: "import-source" }, t("members.read_csv", { encoding: source.encoding, delimiter }));
    }

    function rejectedTable(rejected) {
      return table(t("members.rejected_caption"), [t("members.line"), t("members.reasons")],
        rejected.map((r) => [String(r.row), h("ul", {}, r.errors.map((e) => h("li", {}, `${e.field}: ${e.reason}`)))]), { className: "rejected" });
    }

    function showReport(found) {
      const ok = found.imported.length;
      const go = h("button", { type: "button", class: "primary", disabled: ok === 0, onclick: commit }, tn("members.import_go", ok));
      fill(report,
        h("p", { class: "summary", id: "import-preview" }, tn("members.will_import", ok), " ", tn("members.will_reject", found.rejected.length)),
        howRead(found.source),
        found.rejected.length ? rejectedTable(found.rejected) : null,
        h("div", { class: "actions" }, go));
    }

    async function commit() {
      try {
        const done = await send(false);
        fill(report, h("p", { class: "success", id: "import-done" }, tn("members.imported", done.imported.length), " ", tn("members.will_reject", done.rejected.length)),
          done.rejected.length ? rejectedTable(done.rejected) : null);
        file.value = "";
        await load();
      } catch (error) {
        fill(report, errorBox(error));
      }
    }

    return h("details", { class: "panel" }, h("summary", {}, t("members.import")),
      h("div", { class: "card" }, h("p", { class: "hint" }, t("members.import_hint")),
        field(t("members.sheet_file"), file), report));
  }

  function sectorsPanel() {
    const list = h("ul", { class: "sector-list", id: "sector-list" });
    const out = h("div", { class: "status", role: "status" });
    const name = h("input", { name: "sector-name", maxlength: 80, autocomplete: "off" });
    const streets = h("textarea", { name: "sector-streets", rows: 2 });
    const points = [];
    const drawBox = h("div", { class: "draw", hidden: true },
      h("p", { class: "hint", id: "draw-hint" }, t("sectors.draw_hint")),
      field(t("sectors.name"), name), field(t("sectors.streets"), streets, t("compose.area_streets_hint")),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => { points.length = 0; sectorMap.showOutline(points); drawBox.hidden = true; } }, t("members.cancel")),
        h("button", { type: "button", class: "primary", onclick: save }, t("sectors.save"))));
    const file = h("input", { type: "file", name: "sectors-file", accept: ".geojson,.json,application/geo+json,application/json",
      onchange: async () => {
        if (!file.files.length) return;
        try {
          const collection = JSON.parse(await file.files[0].text());
          const done = await api("POST", `/v1/plps/${plp.id}/sectors/import`, { json: collection });
          fill(out, h("p", { class: "success" }, tn("sectors.imported", done.items.length)));
          await reload();
        } catch (error) {
          fill(out, errorBox(error));
        }
        file.value = "";
      } });
    sectorMap.onClick((point) => {
      if (drawBox.hidden) return;
      points.push([point.lat, point.lng]);
      sectorMap.showOutline(points);
      fill(drawBox.querySelector("#draw-hint"), tn("sectors.points", points.length));
    });

    async function save() {
      const body = { name: name.value.trim() };
      const written = streets.value.split("\n").map((x) => x.trim()).filter(Boolean);
      if (written.length) body.streets = written;
      if (points.length) body.geometry = polygonOf(points);
      try {
        const sector = await api("POST", `/v1/plps/${plp.id}/sectors`, { json: body });
        fill(out, h("p", { class: "success" }, t("sectors.saved", { name: sector.name })));
        points.length = 0;
        sectorMap.showOutline(points);
        name.value = "";
        streets.value = "";
        drawBox.hidden = true;
        await reload();
      } catch (error) {
        fill(out, errorBox(error));
      }
    }

    async function remove(sector) {
      const yes = await ask({ title: t("sectors.delete_title", { name: sector.name }), body: h("p", {}, t("sectors.delete_text")),
        confirm: t("sectors.delete"), cancel: t("members.cancel"), danger: true });
      if (!yes) return;
      try {
        await api("DELETE", `/v1/plps/${plp.id}/sectors/${sector.id}`);
        await reload();
      } catch (error) {
        fill(out, errorBox(error));
      }
    }

    async function reload() {
      sectors = (await api("GET", `/v1/plps/${plp.id}/sectors`)).items;
      drawList();
      await load();
    }

    function drawList() {
      fill(list, sectors.length ? sectors.map((s) => h("li", {}, h("span", { class: "sector" }, s.name),
        s.streets.length ? h("span", { class: "muted" }, ` · ${s.streets.join(", ")}`) : null, " ",
        h("button", { type: "button", class: "link small", onclick: () => remove(s) }, t("sectors.delete"))))
        : h("li", { class: "muted" }, t("sectors.none")));
      sectorMap.showSectors(sectors);
      sectorMap.fit();
    }

    const panel = h("details", { class: "panel sectors-panel", ontoggle: () => { if (panel.open) drawList(); } },
      h("summary", {}, t("sectors.title")),
      h("div", { class: "card" }, h("p", { class: "hint" }, t("sectors.intro")), list, sectorMap.element,
        h("div", { class: "actions" },
          h("button", { type: "button", class: "secondary", onclick: () => { drawBox.hidden = false; name.focus(); } }, t("sectors.draw"))),
        drawBox, field(t("sectors.import"), file), out));
    return panel;
  }

  await load();
  return { dispose: () => sectorMap.dispose() };
}
