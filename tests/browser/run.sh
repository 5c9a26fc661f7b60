#!/usr/bin/env bash
# Runs the admin UI browser tests (ui.test.mjs; ui-scale.test.mjs, with 100,000 tokens, writes
# its timings to results/ui-scale.json) against a manager binary the caller built.
# Installs what is missing: Debian's chromium (never a browser download), a CJK font so
# Chinese screenshots are legible, and the npm packages from package-lock.json. Exits
# non-zero when a test fails.
#
#   cargo build -p tokenlb && tests/browser/run.sh
#   TOKENLB_BIN=/path/to/tokenlb tests/browser/run.sh
#   tests/browser/run.sh --update-docs   # also refresh docs/screenshots/dashboard-{en,zh}.png
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '==> %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium"
  apt_install chromium
fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  log "installing a CJK font for the Chinese screenshots"
  apt_install fonts-wqy-microhei || log "warning: no CJK font; Chinese screenshots will show boxes"
fi
if [ ! -d node_modules/playwright-core ]; then
  log "npm ci"
  npm ci --no-audit --no-fund
fi

export TOKENLB_BIN="${TOKENLB_BIN:-$PWD/../../target/debug/tokenlb}"
if [ ! -x "$TOKENLB_BIN" ]; then
  echo "error: no manager binary at $TOKENLB_BIN; build it first (cargo build -p tokenlb) or set TOKENLB_BIN" >&2
  exit 2
fi

if [ "${1:-}" = "--update-docs" ]; then
  export UPDATE_DOC_SCREENSHOTS=1
fi

log "browser tests with $TOKENLB_BIN"
node --test --test-concurrency=1 ui.test.mjs ui-scale.test.mjs
