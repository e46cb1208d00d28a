#!/bin/sh
# Reproduces loadtests/RESULTS.md: builds the release binaries, makes the media files,
# then runs theraroom-load inside a private network namespace (loopback only) against a
# spawned TheraRoom and a Janus started by janus/start.sh, plus the raw relay baseline.
# Extra arguments go to theraroom-load, e.g.:
#   loadtests/run.sh --scenario one-to-one --rooms 10,25 --json /tmp/out.json
#   loadtests/run.sh --target theraroom --ramp --ramp-step 10
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-load}"
cargo build --release --offline -p theraroom -p theraroom-load
loadtests/media/make.sh >/dev/null
BIN="$CARGO_TARGET_DIR/release"
exec unshare -n sh -c '
  set -eu
  ip link set lo up
  BIN=$1; shift
  JANUS_ARGS=""
  if command -v janus >/dev/null; then
    eval "$(loadtests/janus/start.sh 8188)"
    trap "loadtests/janus/stop.sh \"$JANUS_DIR\"" EXIT
    JANUS_ARGS="--janus-ws $JANUS_WS_URL --janus-pid $JANUS_PID"
  fi
  # shellcheck disable=SC2086
  "$BIN/theraroom-load" --server-bin "$BIN/theraroom" $JANUS_ARGS "$@"
' sh "$BIN" "$@"
