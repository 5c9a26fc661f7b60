#!/usr/bin/env bash
# Cluster benchmark (issue 8): lease pairs (get + report) per second against
#   1. the embedded single-node manager (SQLite, no Redis),
#   2. one manager in cluster mode (PostgreSQL + Redis),
#   3. two managers in cluster mode on the same PostgreSQL database and Redis,
# in one run, for `round_robin` (global rotation: one Redis INCR + one Lua call per pick)
# and `best` (local choice + one Lua call per pick), with the same load client
# (`tokenlb-bench load --pair`, closed loop, keep-alive HTTP/1.1).
#
# Every process is on loopback. Redis is a private `redis-server` on a free port (the shared
# one is never touched); PostgreSQL is the local server, in a database of this run's own
# that is dropped at the end. Managers are pinned to CPU 0 (all of them: the cluster runs
# get the same server CPU budget as the single node), load clients and Redis to CPU 1, as a
# Redis on its own host would be (left unpinned, the scheduler put it on the managers' CPU
# half the time and the cluster rows measured Redis and the manager sharing one core:
# 20,600 pairs/s against 31,400 with Redis on CPU 1). PostgreSQL is not pinned (stats
# flushes only: under 1 % of a CPU here). Prints a Markdown table and each cluster row's
# ratio to the embedded node (issue 15, goal 4); the figures in docs/cluster.md come from it.
#
# Environment: DURATION (s, default 5), CONNS (connections in all, default 32),
# TOKENS (default 100), PGURL (default postgres://postgres@127.0.0.1:5432),
# PGADMIN_DB (an existing database to create/drop from, default test).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
TOKENS=${TOKENS:-100}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PGADMIN_DB=${PGADMIN_DB:-test}
ADMIN_KEY="bench-cluster-admin-key-0123456789"
ENC_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

cargo build --release -q -p tokenlb -p tokenlb-bench
BIN=$PWD/target/release/tokenlb
LOAD=$PWD/target/release/tokenlb-bench

WORK=$(mktemp -d)
DB="tokenlb_bench_$$"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PGURL/$PGADMIN_DB" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PIN_SERVER=()
PIN_CLIENT=()
PIN_REDIS=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_CLIENT=(--client-cpus 1)
  PIN_REDIS=(taskset -c 1)
else
  PIN_CLIENT=(--no-pin)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
"${PIN_REDIS[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
psql "$PGURL/$PGADMIN_DB" -qc "CREATE DATABASE $DB" >/dev/null

# start_manager NAME ARGS… : starts a manager, sets URL to its base URL and MPID to its pid
# (not in a subshell, so the pid is in PIDS for the cleanup).
start_manager() {
  local name=$1; shift
  TOKENLB_ADMIN_KEY=$ADMIN_KEY TOKENLB_ENCRYPTION_KEY=$ENC_KEY RUST_LOG=warn,tokenlb_manager::server=info \
    "${PIN_SERVER[@]}" "$BIN" manager --listen 127.0.0.1:0 --data-dir "$WORK/$name" \
    --tokens-file "$WORK/none.json" "$@" 2>"$WORK/$name.log" >/dev/null &
  MPID=$!
  PIDS+=("$MPID")
  URL=""
  for _ in $(seq 1 400); do
    URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/$name.log" 2>/dev/null | head -1 | sed 's/listening on //') || true
    [ -n "$URL" ] && break
    sleep 0.05
  done
  [ -n "$URL" ] || { echo "manager $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}

add_tokens() {
  python3 - "$1" "$TOKENS" "$ADMIN_KEY" <<'EOF'
import json, sys, urllib.request
url, n, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = json.dumps({"tokens": [{"token": f"bench-cluster-token-{i:06d}-abcdefgh", "name": f"b{i}"} for i in range(n)]}).encode()
req = urllib.request.Request(url + "/api/tokens/import", data=body, method="POST",
                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
urllib.request.urlopen(req).read()
EOF
}

# rate URL… : loads every URL at once (CONNS split between them), prints the summed rate
# and the error count.
rate() {
  local per=$(( CONNS / $# )) outs=() loads=() i=0
  for u in "$@"; do
    "$LOAD" "${PIN_CLIENT[@]}" load "$u" --pair --connections "$per" --duration "$DURATION" >"$WORK/load.$i.json" &
    loads+=($!)
    outs+=("$WORK/load.$i.json"); i=$((i + 1))
  done
  for p in "${loads[@]}"; do wait "$p"; done
  python3 - "${outs[@]}" <<'EOF'
import json, sys
rs = [json.load(open(p)) for p in sys.argv[1:]]
print(f"{sum(r['rate'] for r in rs):.0f} {sum(r['errors'] for r in rs)} {max(r['p99_us'] for r in rs)/1000:.2f}")
EOF
}

echo "| setup | strategy | instances | lease pairs/s | ÷ embedded | errors | p99 (ms, worst instance) |"
echo "|---|---|---|---|---|---|---|"
declare -A EMBEDDED
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

start_manager single
SINGLE=$URL
add_tokens "$SINGLE"
for s in round_robin best; do
  read -r r e p < <(rate "$SINGLE/api/token/get?strategy=$s")
  EMBEDDED[$s]=$r
  echo "| embedded (SQLite, no Redis) | $s | 1 | $r | 1.00 | $e | $p |"
done
kill "$MPID"

redis_usage() {
  redis-cli -p "$REDIS_PORT" info | tr -d '\r' | awk -F: '/^total_commands_processed/{c=$2} /^used_cpu_(sys|user):/{t+=$2} END{print c, t}'
}
read -r RC0 RT0 < <(redis_usage)
STORE="$PGURL/$DB"
REDIS="redis://127.0.0.1:$REDIS_PORT/0?prefix=bench"
start_manager a --store "$STORE" --redis "$REDIS"
A=$URL
add_tokens "$A"
for s in round_robin best; do
  read -r r e p < <(rate "$A/api/token/get?strategy=$s")
  echo "| PostgreSQL + Redis | $s | 1 | $r | $(ratio "$r" "${EMBEDDED[$s]}") | $e | $p |"
done
start_manager b --store "$STORE" --redis "$REDIS"
B=$URL
sleep 1
for s in round_robin best; do
  read -r r e p < <(rate "$A/api/token/get?strategy=$s" "$B/api/token/get?strategy=$s")
  echo "| PostgreSQL + Redis | $s | 2 | $r | $(ratio "$r" "${EMBEDDED[$s]}") | $e | $p |"
done
for n in a b; do
  if grep -q unreachable "$WORK/$n.log"; then echo "manager $n lost Redis during the run: figures invalid" >&2; exit 1; fi
done
read -r RC1 RT1 < <(redis_usage)
echo
echo "Redis over the four cluster rows: $((RC1 - RC0)) commands, $(python3 -c "print(f'{$RT1 - $RT0:.1f}')") CPU-seconds"
echo "duration ${DURATION}s per row after 1 s warm-up, $CONNS connections in all, $TOKENS tokens, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
