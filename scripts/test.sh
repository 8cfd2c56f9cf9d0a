#!/usr/bin/env bash
# Runs every test: unit, data plane (BPF_PROG_TEST_RUN) and lab (namespaces,
# veth, real traffic). Installs what is missing first. Privileged tests need
# root; with CI=true they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads="${XDPWALL_TEST_THREADS:-4}"
