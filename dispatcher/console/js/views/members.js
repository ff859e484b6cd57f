// A PLP's members for its coordinators: who can be reached on which channel and when they last
// acknowledged; adding and editing a member; importing a sheet (CSV or Excel) with a preview of the rows that
// will be rejected, and why; the personal Telegram link to hand to a member.

import { api } from "../api.js";
import { ask, field, fill, h, uid } from "../dom.js";
import { dateTime, t, tn } from "../i18n.js";
import { CHANNELS, errorBox, heading, myPlps, plpSelect, table } from "../ui.js";

const LANGS = ["fr", "nl", "de", "en"];
// What the import reads (CSV, Excel), and what it refuses saying how to convert it (.xls, .ods).
const SHEET_FILES = ".csv,.tsv,.txt,.xlsx,.xlsm,.xls,.ods,text/csv,text/plain,text/tab-separated-values," +
  "application/vnd.ms-excel,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

export async function render(main, { params, go }) {
  const plps = await myPlps();
  if (!plps.length) return fill(main, heading(t("members.title")), h("p", { class: "empty" }, t("members.no_plp")));
  const plp = plps.find((p) => p.id === params.get("plp")) || plps[0];
  const listBox = h("section", { class: "card", "aria-labelledby": "members-list-title" });
  const status = h("div", { class: "status", role: "status", tabindex: "-1" });
  const pages = [null]; // cursors of the pages seen
  let page = 0;

  fill(main,
    heading(t("members.title"), plps.length > 1 ? field(t("members.plp"), plpSelect(plps, plp.id, (e) => go(`#/members?plp=${e.target.value}`))) : h("p", { class: "muted" }, plp.name)),
    status,
    h("div", { class: "grid-2" }, addForm(), importForm()),
    listBox);

  async function load() {
    const found = await api("GET", `/v1/plps/${plp.id}/members`, { query: { cursor: pages[page], limit: 50 } });
    if (found.next_cursor) pages[page + 1] = found.next_cursor;
    const rows = found.items.map((m) => [
      h("span", { class: "name" }, m.name),
      t(`language.${m.language}`),
      m.status === "active" ? reachability(m) : h("span", { class: "badge status-cancelled" }, t("members.opted_out")),
      m.last_acknowledged_at ? [dateTime(m.last_acknowledged_at), h("span", { class: "muted" }, ` · ${t(`channel.${m.last_acknowledged_via}`)}`)] : h("span", { class: "muted" }, t("members.never")),
      h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary small", onclick: () => edit(m) }, t("members.edit")),
        h("button", { type: "button", class: "secondary small", onclick: () => telegram(m) }, t("members.telegram")),
        h("button", { type: "button", class: "link small", onclick: () => remove(m) }, t("members.remove"))),
    ]);
    fill(listBox, h("h2", { id: "members-list-title" }, t("members.list", { plp: plp.name })),
      rows.length ? table(null, [t("members.name"), t("members.language"), t("members.channels"), t("members.last_ack"), t("members.actions")], rows, { className: "members" })
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
    const read = () => {
      const body = { name: inputs.name.value.trim(), language: inputs.language.value, channels: boxes.filter(([b]) => b.checked).map(([b]) => b.value) };
      const phone = inputs.phone.value.trim();
      const email = inputs.email.value.trim();
      if (phone || m.phone) body.phone = phone || null;
      if (email || m.email) body.email = email || null;
      return body;
    };
    const controls = [
      field(t("members.name"), inputs.name),
      field(t("members.phone"), inputs.phone, t("members.phone_hint")),
      field(t("members.email"), inputs.email),
      field(t("members.language"), inputs.language),
      h("fieldset", { class: "choices inline" }, h("legend", {}, t("members.accepts")), boxes.map(([, el]) => el)),
    ];
    return { controls, read, inputs };
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
        const member = await api("POST", `/v1/plps/${plp.id}/members`, { json: body });
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
    const { controls, read } = memberFields(m);
    const statusSelect = h("select", { name: "status" }, ["active", "opted_out"].map((s) => h("option", { value: s, selected: s === m.status }, t(`members.status_${s}`))));
    const out = h("div", { class: "status" });
    const dialog = h("dialog", { class: "dialog", "aria-label": t("members.edit_title", { name: m.name }) },
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        try {
          const saved = await api("PATCH", `/v1/plps/${plp.id}/members/${m.id}`, { json: { ...read(), status: statusSelect.value } });
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

  await load();
}
