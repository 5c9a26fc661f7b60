// util.mjs — small helpers shared by the browser tests: polling, API calls, screenshots.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(here, "../artifacts");
export const DOC_SHOTS = path.resolve(here, "../../../docs/screenshots");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value; fails with `what` and the last value after
 * `timeout` ms. A deadline for a condition to come true, not a measurement.
 */
export async function until(fn, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(100);
  }
}

/** JSON API call from the test process (outside the browser). */
export async function api(base, method, route, { key, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const res = await fetch(base + route, { method, headers: h, body });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, headers: res.headers, data };
}

export async function screenshot(page, name, opts = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, ...opts });
  return file;
}

/** Copies an artifact into docs/screenshots (only when UPDATE_DOC_SCREENSHOTS=1). */
export function publish(file, name) {
  if (process.env.UPDATE_DOC_SCREENSHOTS !== "1") return;
  fs.mkdirSync(DOC_SHOTS, { recursive: true });
  fs.copyFileSync(file, path.join(DOC_SHOTS, name));
}

/** "abcd…wxyz", as the manager masks a secret of 12 characters or more. */
export function masked(secret) {
  return `${secret.slice(0, 4)}…${secret.slice(-4)}`;
}
