// api.js — the one way the page talks to the manager.
//
// Adds the CSRF token (read from GET /api/auth/me, kept only in memory) to every unsafe
// method, turns error bodies {"error":{"code","message"}} into ApiError, and sends the
// browser to /login when the session is gone. A 401 from a data route is double-checked
// against /api/auth/me first, so a route that refuses for another reason cannot cause a
// redirect loop. A 403 "csrf" (token rotated) is retried once with a fresh token.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let me = null; // {username, csrf_token}

export class ApiError extends Error {
  constructor(status, code, message, headers) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.headers = headers;
  }
}

export function goToLogin() {
  if (location.pathname !== "/login") location.assign("/login");
}

/** Who is signed in; null when nobody (401). */
export async function whoAmI(force = false) {
  if (me && !force) return me;
  const res = await fetch("/api/auth/me", { credentials: "same-origin", cache: "no-store" });
  if (res.status === 401) {
    me = null;
    return null;
  }
  if (!res.ok) throw await toError(res);
  me = await res.json();
  return me;
}

async function toError(res) {
  let code = "";
  let message = "";
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || "";
      message = body.error.message || "";
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message || res.statusText, res.headers);
}

async function send(method, path, opts) {
  const headers = { Accept: "application/json" };
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = opts.contentType || "text/plain; charset=utf-8";
    body = opts.body;
  }
  if (UNSAFE.has(method)) {
    const who = await whoAmI();
    if (!who) {
      goToLogin();
      throw new ApiError(401, "unauthorized", "not signed in");
    }
    headers["X-CSRF-Token"] = who.csrf_token;
  }
  return fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
}

/**
 * request("GET", "/api/tokens") → parsed JSON (or the Response when opts.raw).
 * opts: {json} | {body, contentType}, raw.
 */
export async function request(method, path, opts = {}) {
  let res;
  try {
    res = await send(method, path, opts);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(0, "network", String(e && e.message ? e.message : e));
  }
  if (res.status === 403 && UNSAFE.has(method)) {
    const err = await toError(res);
    if (err.code !== "csrf") throw err;
    await whoAmI(true);
    res = await send(method, path, opts);
  }
  if (res.status === 401) {
    const who = await whoAmI(true).catch(() => null);
    if (!who) goToLogin();
    throw await toError(res);
  }
  if (!res.ok) throw await toError(res);
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => request("GET", path);
export const post = (path, json) => request("POST", path, { json });
export const patch = (path, json) => request("PATCH", path, { json });
export const del = (path, json) => request("DELETE", path, { json });

export async function logout() {
  try {
    await request("POST", "/api/auth/logout", { json: {} });
  } finally {
    me = null;
    location.assign("/login");
  }
}

/** Accepts `[…]` or `{key: […]}`. */
export function listOf(body, key) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body[key])) return body[key];
  return [];
}
