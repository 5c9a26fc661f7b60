#!/usr/bin/env bash
# Reliability and security checks that need more than `cargo test` (RELIABILITY.md):
#   1. cargo-fuzz: every target in fuzz/fuzz_targets/ for FUZZ_SECS seconds (default 20);
#   2. schemathesis against a running manager's /api/openapi.json (tests/schemathesis/run.sh).
# The Rust reliability tests (crates/cli/tests/reliability/: crash, storage, upstream, load,
# limits, access, secrets, keys) run with every other test under nextest; set
# RELIABILITY_RUST=1 to run them here too and print their figures (the RELIABILITY lines).
#
#   bash scripts/reliability.sh                 # fuzz + schemathesis
#   FUZZ_SECS=300 FUZZ_BUILD=release bash scripts/reliability.sh   # a longer campaign
#   RELIABILITY_RUST=1 bash scripts/reliability.sh
#   SKIP_FUZZ=1 / SKIP_SCHEMATHESIS=1           # leave a part out
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
mkdir -p target

log() { printf '\n==> %s\n' "$*" >&2; }
FUZZ_SECS=${FUZZ_SECS:-20}
# dev: ~3 CPU-minutes to build from scratch, ~15k runs/s; release: ~7 CPU-minutes, ~10x faster
# runs. CI takes dev to stay within its time budget; FUZZ_BUILD=release for long campaigns.
FUZZ_BUILD=${FUZZ_BUILD:-dev}
FUZZ_FLAGS=(-s none)
[ "$FUZZ_BUILD" = dev ] && FUZZ_FLAGS+=(--dev)
FUZZ_TARGETS="import_parse config_parse wopan_envelope api_bodies"

if [ "${RELIABILITY_RUST:-0}" = 1 ]; then
  log "Rust reliability tests (figures below)"
  tests=""
  tests="--test reliability"
  # shellcheck disable=SC2086
  cargo test -p tokenlb --no-fail-fast $tests -- --nocapture --test-threads 2 2>&1 | tee target/reliability-rust.log \
    | grep -E '^RELIABILITY|^test result|FAILED|panicked' || true
  ! grep -q -E 'FAILED|^error' target/reliability-rust.log
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
  fi
  # cargo-fuzz passes nightly-only flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
  # No sanitizer: the code is `forbid(unsafe_code)`; coverage-guided fuzzing finds the panics.
  export RUSTC_BOOTSTRAP=1
  log "building the fuzz targets"
  (cd fuzz && cargo fuzz build "${FUZZ_FLAGS[@]}")
  for t in $FUZZ_TARGETS; do
    log "fuzzing $t for ${FUZZ_SECS} s"
    mkdir -p "fuzz/corpus/$t"
    (cd fuzz && cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "corpus/$t" -- \
      -max_total_time="$FUZZ_SECS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 \
      | tee "$ROOT/target/fuzz-$t.log" | grep -E 'stat::number_of_executed_units|Done|ERROR|panicked' || true)
    if grep -q -E 'ERROR: libFuzzer|panicked|deadly signal' "$ROOT/target/fuzz-$t.log"; then
      echo "fuzz target $t crashed; the input is in fuzz/artifacts/$t/" >&2
      exit 1
    fi
    grep -q 'Done ' "$ROOT/target/fuzz-$t.log" || { echo "fuzz target $t did not finish" >&2; exit 1; }
  done
fi

if [ "${SKIP_SCHEMATHESIS:-0}" != 1 ]; then
  log "schemathesis against the manager's OpenAPI document"
  bash tests/schemathesis/run.sh
fi
