#!/usr/bin/env bash
# Stop a Janus started by start.sh: stop.sh JANUS_DIR (the dir start.sh printed).
# Sends SIGTERM (Janus shuts down cleanly), waits up to 5 s, then SIGKILL.
set -euo pipefail
DIR="${1:-${JANUS_DIR:?usage: stop.sh JANUS_DIR}}"
PID="$(cat "$DIR/janus.pid")"
kill -TERM "$PID" 2>/dev/null || exit 0
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || exit 0; sleep 0.1; done
kill -KILL "$PID" 2>/dev/null || true
