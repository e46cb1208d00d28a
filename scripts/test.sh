#!/usr/bin/env bash
# The one command that runs every check of TheraRoom:
#   formatting, clippy (warnings are errors), and every test of the workspace.
#
# - REST tests run on SQLite and on PostgreSQL (127.0.0.1:5432, database `test`, user
#   postgres or root, trust auth). Without PostgreSQL the PostgreSQL variants print SKIP,
#   unless CI=true: then they fail. Same for coturn (TURN credential tests).
# - Media tests (sfu crate, theraroom's tests/rtc_*) run inside a private network
#   namespace that has only `lo` (unshare -n), so nothing leaves loopback. The REST tests
#   stay outside it, because PostgreSQL listens on the host's loopback.
# - Browser end-to-end tests run when e2e/run.sh exists (see e2e/): every scenario over
#   HTTPS (the server's --tls-self-signed), and one_to_one again over plain HTTP.
#
# Usage: scripts/test.sh            (from anywhere; CARGO_TARGET_DIR is honoured)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/theraroom-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

step() { printf '\n==> %s\n' "$*" >&2; }

# Test targets of the root package: tests/<name>.rs and tests/<name>/main.rs.
rest_targets=() media_targets=()
for f in tests/*.rs tests/*/main.rs; do
  [ -e "$f" ] || continue
  case "$f" in
    */main.rs) name=$(basename "$(dirname "$f")") ;;
    *) name=$(basename "$f" .rs) ;;
  esac
  [ "$name" = common ] && continue
  case "$name" in
    rtc_*) media_targets+=(--test "$name") ;;
    *) rest_targets+=(--test "$name") ;;
  esac
done

# Packages whose tests need the private network namespace (signaling's do not: they
# run on an in-memory media plane and open no sockets).
media_packages=()
for p in sfu theraroom-load; do
  [ -f "$p/Cargo.toml" ] && media_packages+=("$p")
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "build every test"
cargo test --workspace --no-run

step "tests outside the namespace: REST (SQLite + PostgreSQL), coturn, signaling, units"
exclude=()
for p in theraroom "${media_packages[@]}"; do exclude+=(--exclude "$p"); done
cargo test --workspace "${exclude[@]}"
cargo test -p theraroom --lib --bins "${rest_targets[@]}"
cargo test -p theraroom --doc

# Runs a command inside a network namespace with only loopback, when possible.
in_namespace() {
  if unshare -n true 2>/dev/null; then
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    echo "WARNING: unshare -n is not available here (needs root or user namespaces);" \
         "running media tests in the normal network" >&2
    "$@"
  fi
}

step "media tests inside a private network namespace"
for p in "${media_packages[@]}"; do
  in_namespace cargo test --offline -p "$p"
done
if [ ${#media_targets[@]} -gt 0 ]; then
  in_namespace cargo test --offline -p theraroom "${media_targets[@]}"
fi

step "load tool smoke run: theraroom-load --smoke against a spawned server (namespace; asserts delivery, no timings)"
cargo build --offline -p theraroom -p theraroom-load
in_namespace "$CARGO_TARGET_DIR/debug/theraroom-load" --smoke --server-bin "$CARGO_TARGET_DIR/debug/theraroom"

if [ -f e2e/run.sh ]; then
  step "browser end-to-end tests over HTTPS/WSS (THERAROOM_E2E_TLS=1 scripts/e2e.sh → e2e/run.sh, --tls-self-signed, private network namespace)"
  THERAROOM_E2E_TLS=1 scripts/e2e.sh
  step "browser end-to-end one_to_one over plain HTTP/WS (scripts/e2e.sh one_to_one)"
  scripts/e2e.sh one_to_one
fi

step "all checks passed"
