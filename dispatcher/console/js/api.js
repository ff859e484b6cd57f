// Calls to the service's API: with a pasted bearer token (kept in this tab's sessionStorage only), or
// with the session cookie a sign-in link opened (HttpOnly: this script never sees it) and its CSRF token.

const TOKEN = "plp.token";
const SIGNED_IN = "plp.signed-in"; // a session cookie may be there: ask the service who it is
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
let csrf = null;

/** Keep the CSRF token of the console session, sent as X-CSRF-Token with every change. */
export function keepSession(value) {
  csrf = value;
  localStorage.setItem(SIGNED_IN, "1");
}

export function forgetSession() {
  csrf = null;
  localStorage.removeItem(SIGNED_IN);
}

/** Whether this browser signed in by link (its session may still be open). */
export function mayHaveSession() {
  return localStorage.getItem(SIGNED_IN) === "1";
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function keepToken(value) {
  sessionStorage.setItem(TOKEN, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN);
}

/** An API error: the HTTP status and the problem detail the service answered. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** "detail" followed by each "field: reason". */
  get lines() {
    const errors = (this.problem.errors || []).map((e) => `${e.field}: ${e.reason}`);
    return [this.message, ...errors];
  }
}

let onUnauthorized = () => {};

/** What to do when the token is refused (expired, revoked): sign out. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

function headers(extra = {}, method = "GET") {
  const found = { Accept: "application/json", ...extra };
  const value = token();
  if (value) found.Authorization = `Bearer ${value}`;
  else if (csrf && !SAFE.has(method)) found["X-CSRF-Token"] = csrf;
  return found;
}

async function problemOf(response) {
  let problem = { title: response.statusText, status: response.status };
  try {
    problem = await response.json();
  } catch {
    // not JSON (a proxy's page): keep the status line
  }
  return new ApiError(response.status, problem);
}

/** Milliseconds before try `attempt + 1` of a 503: doubling from 1 s up to 30 s, never less than Retry-After. */
function backoff(response, attempt) {
  const growing = Math.min(30_000, 1000 * 2 ** (attempt - 1));
  const header = (response.headers.get("Retry-After") || "").trim();
  const asked = /^\d+$/.test(header) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(asked) ? Math.max(growing, asked) : growing;
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

/**
 * Call the API: `api("GET", "/v1/me")`, `api("POST", "/v1/alerts", {json: body, headers: {...}})`,
 * `api("POST", path, {text: csv, type: "text/csv"})`, `api("POST", path, {bytes: await file.arrayBuffer(), type})`
 * (a file's bytes as they are: the server reads their encoding). Resolves with the parsed JSON (or null);
 * rejects with an ApiError (or a TypeError when the network fails).
 *
 * With `patience` (milliseconds), a 503 (the service's Redis restarting) is sent again as it was,
 * with the same headers (an alert's Idempotency-Key: it is sent once), after its Retry-After and a
 * growing backoff, until `patience` has passed; `onWait(seconds)` is told of each wait.
 */
export async function api(
  method,
  path,
  { json, text, bytes, type, headers: extra, query, signal, patience = 0, onWait = () => {} } = {},
) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const init = { method, headers: headers(extra, method), signal, cache: "no-store", credentials: "same-origin" };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (text !== undefined) {
    init.body = text;
    init.headers["Content-Type"] = type || "text/plain";
  } else if (bytes !== undefined) {
    init.body = bytes;
    init.headers["Content-Type"] = type || "application/octet-stream";
  }
  const deadline = Date.now() + patience;
  let response = await fetch(url, init);
  for (let attempt = 1; response.status === 503 && Date.now() < deadline; attempt++) {
    const wait = Math.min(backoff(response, attempt), deadline - Date.now());
    onWait(Math.ceil(wait / 1000));
    await pause(wait, signal);
    response = await fetch(url, init);
  }
  if (response.status === 401) {
    const error = await problemOf(response);
    onUnauthorized(error);
    throw error;
  }
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return null;
  const body = await response.text();
  return body ? JSON.parse(body) : null;
}

/**
 * Follow a server-sent event stream with fetch(), so that the token travels in the
 * Authorization header (EventSource cannot send one). Calls `onEvent(name, data)` for each
 * event; resolves when the server ends the stream, rejects on an error or when aborted.
 */
export async function stream(path, onEvent, { signal } = {}) {
  const response = await fetch(path, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
    cache: "no-store",
  });
  if (!response.ok) throw await problemOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a comment: keep-alive
    const colon = line.indexOf(":");
    const fieldName = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (fieldName === "event") name = value;
    else if (fieldName === "data") data.push(value);
  }
  if (data.length) onEvent(name, JSON.parse(data.join("\n")));
}

/**
 * Save a file the API answers (a CSV export) under the name its Content-Disposition gives (else `name`),
 * with the token or the session cookie as every call; rejects with an ApiError.
 */
export async function download(path, { query, accept = "text/csv", name = "export.csv" } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const response = await fetch(url, { headers: headers({ Accept: accept }), cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw await problemOf(response);
  const given = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = given ? given[1] : name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
