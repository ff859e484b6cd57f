// Building the page from data without ever parsing it as HTML: every text goes in as text.

/**
 * h("button", {type: "button", onclick: fn, class: "primary"}, "Send") -> an element.
 * Attributes: `on<event>` adds a listener, `class`, `dataset`, `value` and `checked` set the
 * property; `true` sets an empty attribute, `null`/`false`/`undefined` leave it out.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "checked") el.checked = el.defaultChecked = value;
    else if (key === "value" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Call `fn` once `wait` ms have passed without another call. */
export function debounce(fn, wait) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

let fieldCount = 0;
/** A unique id for a form control, so that its <label for> finds it. */
export function uid(prefix) {
  fieldCount += 1;
  return `${prefix}-${fieldCount}`;
}

/** A labelled control: <div class="field"><label for>…</label>control hint</div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintEl = h("p", { class: "hint", id: `${control.id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return h("div", { class: "field" }, parts);
}

/** A random Idempotency-Key (crypto.getRandomValues works on plain http too, unlike randomUUID). */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A modal dialog; resolves true if its confirm button closed it (false: cancel, Escape). No `cancel`: one button. */
export function ask({ title, body, confirm, cancel, danger = false }) {
  const titleId = uid("dlg");
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId },
    h("form", { method: "dialog" },
      h("h2", { id: titleId }, title),
      h("div", { class: "dialog-body" }, body),
      h("div", { class: "actions" },
        cancel ? h("button", { value: "cancel", class: "secondary" }, cancel) : null,
        h("button", { value: "confirm", class: danger ? "danger" : "primary", autofocus: true }, confirm),
      ),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    dialog.showModal();
  });
}
