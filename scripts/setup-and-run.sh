#!/usr/bin/env bash
# Sets up what TheraRoom needs to build, then builds and runs the server.
# With no configuration it serves http://127.0.0.1:8080 on an embedded SQLite database
# under ./data/ (secrets are generated and kept there). Extra arguments are passed on,
# e.g. `scripts/setup-and-run.sh --bind 0.0.0.0:8080` (see README.md, Configuration).
set -euo pipefail

cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# A C compiler and linker (the crypto and SQLite crates compile C code).
if ! command -v cc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq build-essential
  else
    echo "setup: please install a C compiler (gcc or clang)" >&2
    exit 1
  fi
fi

# A Rust toolchain through rustup.
if ! cargo --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install stable --profile minimal
    rustup default stable
  else
    echo "setup: installing rustup (https://rustup.rs)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
fi

exec cargo run --release -p theraroom --bin theraroom -- serve "$@"
