#!/usr/bin/env bash
# Installs what is missing, builds xdpwall, and runs `xdpwall demo`: a
# throwaway lab with real traffic, live counters, then full cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --release --locked -p xdpwall
exec ./target/release/xdpwall demo "$@"
