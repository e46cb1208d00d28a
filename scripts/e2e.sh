#!/usr/bin/env bash
# Runs the Chromium end-to-end scenarios (e2e/run.sh) against a fresh TheraRoom server
# with its own temporary data directory, inside a network namespace that has only `lo`
# (so the browser and the SFU talk over loopback and nothing else).
#
# Usage: scripts/e2e.sh [scenario ...]   (needs a built debug binary, chromium, and
#        `npm ci` done in e2e/; scripts/test.sh and .ci/run take care of both)
#        THERAROOM_E2E_KEEP_LOG=/tmp/server.log RUST_LOG=... scripts/e2e.sh ...   keeps the log
#        THERAROOM_E2E_TLS=1 scripts/e2e.sh ...   serves HTTPS/WSS with --tls-self-signed
#        (Chromium gets --ignore-certificate-errors from e2e/lib.mjs, Node's fetch
#        NODE_TLS_REJECT_UNAUTHORIZED=0: both only in this mode)
set -euo pipefail

self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/theraroom-target}"

if [ -z "${THERAROOM_E2E_IN_NS:-}" ] && unshare -n true 2>/dev/null; then
  export THERAROOM_E2E_IN_NS=1
  exec unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$self" "$@"
fi

bin="$CARGO_TARGET_DIR/debug/theraroom"
[ -x "$bin" ] || cargo build --offline -p theraroom --bin theraroom

data=$(mktemp -d "${TMPDIR:-/tmp}/theraroom-e2e.XXXXXX")
if [ -n "${THERAROOM_E2E_IN_NS:-}" ]; then
  port=8080  # a namespace of our own: every port is free
else
  echo "WARNING: unshare -n is not available; running e2e on the host network" >&2
  port=$((20000 + RANDOM % 20000))
fi
tls_args=() curl_args=(-fsS)
if [ "${THERAROOM_E2E_TLS:-0}" = 1 ]; then
  base="https://127.0.0.1:$port"
  tls_args=(--tls-self-signed)
  curl_args+=(-k)  # the certificate the server generated a moment ago
  export NODE_TLS_REJECT_UNAUTHORIZED=0
else
  base="http://127.0.0.1:$port"
fi
echo "e2e: server at $base" >&2

# Every browser page comes from 127.0.0.1: per-address REST limits well above the scenarios.
"$bin" --data-dir "$data" --static-dir "$PWD/static" --bind "127.0.0.1:$port" "${tls_args[@]}" \
  --rate-guest-tokens 1000/min --rate-share-lookups 1000/min --rate-session-creation 1000/min \
  >"$data/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  # THERAROOM_E2E_KEEP_LOG=<file>: keep the whole server log (e.g. with RUST_LOG=...).
  [ -z "${THERAROOM_E2E_KEEP_LOG:-}" ] || cp "$data/server.log" "$THERAROOM_E2E_KEEP_LOG"
  rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl "${curl_args[@]}" "$base/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$data/server.log" >&2
    echo "e2e: the server did not start" >&2
    exit 1
  fi
  sleep 0.2
done
curl "${curl_args[@]}" "$base/readyz" >/dev/null || { cat "$data/server.log" >&2; exit 1; }

demo_json=$("$bin" --data-dir "$data" demo --json)
status=0
# The data dir (server log, SQLite file) lets scenarios check what the server kept (e.g.
# that chat text is in neither the log nor the database).
BASE_URL="$base" DEMO_JSON="$demo_json" THERAROOM_E2E_DATA_DIR="$data" sh e2e/run.sh "$@" || status=$?
# What the server saw and spent (for the closing notes; not asserted).
curl "${curl_args[@]}" "$base/metrics" 2>/dev/null | grep -E '^(sfu_|theraroom_)' | grep -v '_bucket' >&2 || true
if [ -r "/proc/$server/stat" ]; then
  ticks=$(getconf CLK_TCK)
  awk -v t="$ticks" '{printf "e2e: server CPU %.2f s (user %.2f, system %.2f)\n", ($14+$15)/t, $14/t, $15/t}' "/proc/$server/stat" >&2
fi
if [ "$status" -ne 0 ]; then
  echo "---- server log (last 50 lines) ----" >&2
  tail -n 50 "$data/server.log" >&2
fi
exit "$status"
