#!/usr/bin/env bash
# Checks the Python client: makes its own virtual env, installs the package with its test
# extras from PyPI, runs mypy --strict and pytest against the real tokenlb binary (manager and
# Wopan emulator, each started by the tests on free loopback ports).
#
#   TOKENLB_BIN=target/debug/tokenlb bash clients/python/run-tests.sh [pytest args…]
#
# TOKENLB_BIN   the tokenlb binary to test (required)
# TOKENLB_PY_VENV  where the virtual env goes (default clients/python/.venv, gitignored)
# PYTHON        the interpreter that makes the env (default python3; 3.9 or newer)
# Exits non-zero when mypy or any test fails, and when pytest collected no test (its exit 5).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

log() { printf '\n==> %s\n' "$*" >&2; }

if [ -z "${TOKENLB_BIN:-}" ]; then
  echo "run-tests.sh: set TOKENLB_BIN to the tokenlb binary (cargo build -p tokenlb makes target/debug/tokenlb)" >&2
  exit 2
fi
case "$TOKENLB_BIN" in /*) ;; *) TOKENLB_BIN="$PWD/$TOKENLB_BIN" ;; esac
if [ ! -x "$TOKENLB_BIN" ]; then
  echo "run-tests.sh: TOKENLB_BIN=$TOKENLB_BIN is not an executable file" >&2
  exit 2
fi
export TOKENLB_BIN

PYTHON="${PYTHON:-python3}"
VENV="${TOKENLB_PY_VENV:-$here/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating the virtual env $VENV"
  if ! "$PYTHON" -m venv "$VENV"; then
    # Debian's python3 needs python3-venv for ensurepip.
    if command -v apt-get >/dev/null; then
      log "installing python3-venv from Debian"
      apt-get install -y -q python3-venv >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
      rm -rf "$VENV"
      "$PYTHON" -m venv "$VENV"
    else
      exit 1
    fi
  fi
fi
py="$VENV/bin/python"

log "installing tokenlb (with test extras) into the env"
"$py" -m pip install --quiet --disable-pip-version-check "$here[test]"
# The package itself is rebuilt from the working tree every run (same version number).
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$here"

cd "$here"
log "mypy --strict"
"$py" -m mypy --strict

log "pytest (tokenlb binary: $TOKENLB_BIN)"
set +e
"$py" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run-tests.sh: pytest collected no test" >&2
  exit 1
fi
exit "$rc"
