// manager.mjs — starts the real `tokenlb manager` binary for the browser tests.
//
// The binary comes from TOKENLB_BIN (default ../../target/debug/tokenlb, built by the
// caller), listens on a free loopback port, keeps its data in a fresh temporary directory,
// and gets its admin password and key from the environment, as an operator would set them.
// Other TOKENLB_* variables of the caller's environment are dropped so they cannot change
// what is tested.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export function binaryPath() {
  const bin = process.env.TOKENLB_BIN || path.resolve(here, "../../../target/debug/tokenlb");
  if (!fs.existsSync(bin)) throw new Error(`manager binary not found at ${bin}: build it first (cargo build -p tokenlb) or set TOKENLB_BIN`);
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts the manager (with `configToml` as its --config when given); resolves when /healthz answers. */
export async function startManager({ password, adminKey, configToml }) {
  const bin = binaryPath();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tokenlb-ui-"));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TOKENLB_")));
  env.TOKENLB_ADMIN_PASSWORD = password;
  env.TOKENLB_ADMIN_KEY = adminKey;
  const args = ["manager", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--tokens-file", path.join(dataDir, "tokens.json")];
  if (configToml) {
    fs.writeFileSync(path.join(dataDir, "tokenlb.toml"), configToml);
    args.push("--config", path.join(dataDir, "tokenlb.toml"));
  }
  const child = spawn(bin, args, { env, cwd: dataDir, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the manager exited (${JSON.stringify(exited)}) before serving:\n${log}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the manager did not answer /healthz within 60 s:\n${log}`);
    }
    await sleep(100);
  }
  return {
    base,
    dataDir,
    log: () => log,
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        for (let i = 0; i < 50 && !exited; i++) await sleep(100);
        if (!exited) child.kill("SIGKILL");
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
