// browser.mjs — Debian's Chromium driven by playwright-core (no browser download ever).
//
// The executable is $CHROMIUM or `which chromium`. The flags keep it from reaching out to
// the network (this machine has none) and from needing a GPU or a sandbox (root in CI).
// playwright-core's launch() gives every run a fresh, empty profile directory.

import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  try {
    return execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("chromium not found: apt-get install -y chromium, or set CHROMIUM");
  }
}

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}
