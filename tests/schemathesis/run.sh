#!/usr/bin/env bash
# Schemathesis (RELIABILITY.md §5) against a real `tokenlb manager` and its own
# /api/openapi.json, with the admin key on every request: no 5xx, every answer's status,
# content type and body match the document. Bounded: ST_MAX_EXAMPLES per operation (default
# 25) and ST_MAX_TIME seconds for the whole run (default 90). Loopback only.
#
#   bash tests/schemathesis/run.sh            # uses target/debug/tokenlb (built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${TOKENLB_BIN:-$ROOT/target/debug/tokenlb}
VENV=$ROOT/target/schemathesis-venv
[ -x "$BIN" ] || cargo build -p tokenlb
if ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/schemathesis/requirements.txt
fi

WORK=$(mktemp -d)
ADMIN_KEY="schemathesis-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$WORK" && exec env -u TOKENLB_CLIENT_KEYS TOKENLB_ADMIN_KEY="$ADMIN_KEY" \
  "$BIN" manager --listen 127.0.0.1:0 --data-dir "$WORK/data" --tokens-file "$WORK/none.json" \
  >"$WORK/manager.log" 2>&1) &
PID=$!
for _ in $(seq 1 300); do
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/manager.log" | head -n1 | sed 's/listening on //') || true
  [ -n "${URL:-}" ] && break
  sleep 0.1
done
[ -n "${URL:-}" ] || { cat "$WORK/manager.log"; echo "manager did not start" >&2; exit 1; }
# A few tokens so that get/report/patch have something to work on.
for i in 1 2 3; do
  curl -fsS -o /dev/null -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"token\":\"schemathesis-token-$i-0123456789\",\"name\":\"st $i\"}" "$URL/api/token/add"
done

set +e
# --request-timeout is above the longest long poll the API allows (`get?wait_ms=` up to
# 30,000 ms): a get that waits its whole wait_ms on a pool with no free token is an answer,
# not a hang.
"$VENV/bin/schemathesis" --config-file tests/schemathesis/schemathesis.toml run "$URL/api/openapi.json" \
  --url "$URL" \
  -H "Authorization: Bearer $ADMIN_KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${ST_MAX_EXAMPLES:-25}" \
  --max-time "${ST_MAX_TIME:-90}" \
  --request-timeout 35 \
  --seed "${ST_SEED:-1}" \
  --suppress-health-check all \
  --generation-database none \
  --exclude-path /api/auth/logout \
  --no-color
STATUS=$?
set -e
if grep -q panicked "$WORK/manager.log"; then
  echo "the manager panicked:" >&2
  grep -n panicked "$WORK/manager.log" >&2
  STATUS=1
fi
if grep -q "schemathesis-token-[0-9]-0123456789" "$WORK/manager.log"; then
  echo "a token value reached the manager log" >&2
  STATUS=1
fi
exit $STATUS
