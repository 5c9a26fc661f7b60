#!/usr/bin/env bash
# Runs every test of tokenlb on a fresh machine: starts the services the tests need when they
# are down, installs the browser-test dependencies (Debian's chromium, the npm packages), then
# runs the Rust tests (cargo-nextest, plus doctests), the Python client's tests (in a virtual
# env of their own) and the browser tests.
#
#   bash scripts/test.sh            # everything
#   SKIP_BROWSER=1 bash scripts/test.sh   # Rust tests only
#   SKIP_RELIABILITY=1 bash scripts/test.sh   # without fuzzing and schemathesis
#   SKIP_PYTHON=1 bash scripts/test.sh     # without the Python client's tests
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

ensure_services() {
  if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest from crates.io"
    cargo install --locked cargo-nextest
  fi
}

ensure_promtool() {
  # The metrics and alerting-rule tests run promtool (Debian's prometheus package); they fail,
  # not skip, without it unless TOKENLB_SKIP_PROMTOOL=1.
  if [ "${TOKENLB_SKIP_PROMTOOL:-0}" != 1 ] && ! command -v promtool >/dev/null; then
    log "installing promtool (Debian's prometheus package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
  fi
}

ensure_services
ensure_nextest
ensure_promtool

log "layers: no import cycle across the manager's layers, no lower layer naming a higher one"
python3 scripts/module-graph.py crates/manager \
  --layer http=app,routes,auth,session,error,openapi,state,server,proxy \
  --layer background=tasks,health,refresh,notify \
  --layer service=service,import,views,metrics,config,validate,wopan_health,probe,shutdown

log "building"
cargo build --workspace --all-targets

log "Rust tests (nextest)"
cargo nextest run --workspace --no-fail-fast

log "doctests"
cargo test --workspace --doc

if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  log "Python client (clients/python: its own virtual env, mypy --strict, pytest against the real binary)"
  TOKENLB_BIN="$PWD/target/debug/tokenlb" bash clients/python/run-tests.sh
fi

if [ "${SKIP_BROWSER:-0}" != 1 ] && [ -x tests/browser/run.sh ]; then
  log "browser tests (Debian chromium + playwright-core)"
  TOKENLB_BIN="$PWD/target/debug/tokenlb" tests/browser/run.sh
fi

if [ "${SKIP_RELIABILITY:-0}" != 1 ]; then
  log "reliability: fuzzing and schemathesis (RELIABILITY.md)"
  bash scripts/reliability.sh
fi
