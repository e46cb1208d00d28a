#!/usr/bin/env bash
# One-shot check: private namespace -> start Janus -> verify_janus.py (real aiortc
# publisher(s) + subscriber through VideoRoom) -> stop. Exit 0 iff media flowed.
# Usage: loadtests/janus/verify.sh [verify_janus.py args...]   (run as root)
# e.g.   loadtests/janus/verify.sh --second-publisher --bind 127.0.0.1
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${JANUS_VENV:-/tmp/janus-venv}"
if ! "$VENV/bin/python" -c 'import aiortc, websockets, numpy' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q aiortc websockets numpy
fi
export HERE VENV
exec unshare -n bash -c '
    set -e
    D=$(mktemp -d /tmp/janus-verify.XXXXXX)
    JANUS_DIR=$D "$HERE/start.sh"
    trap "\"$HERE/stop.sh\" $D" EXIT
    "$VENV/bin/python" "$HERE/verify_janus.py" "$@"
' verify "$@"
