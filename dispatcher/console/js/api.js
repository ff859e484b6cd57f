// Calls to the service's API, with the bearer token kept in this tab's sessionStorage only.

const TOKEN = "plp.token";

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

function headers(extra = {}) {
  const found = { Accept: "application/json", ...extra };
  const value = token();
  if (value) found.Authorization = `Bearer ${value}`;
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

/**
 * Call the API: `api("GET", "/v1/me")`, `api("POST", "/v1/alerts", {json: body, headers: {...}})`,
 * `api("POST", path, {text: csv, type: "text/csv"})`, `api("POST", path, {bytes: await file.arrayBuffer(), type})`
 * (a file's bytes as they are: the server reads their encoding). Resolves with the parsed JSON (or null);
 * rejects with an ApiError (or a TypeError when the network fails).
 */
export async function api(method, path, { json, text, bytes, type, headers: extra, query, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const init = { method, headers: headers(extra), signal, cache: "no-store" };
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
  const response = await fetch(url, init);
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
