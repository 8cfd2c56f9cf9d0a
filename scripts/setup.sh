#!/usr/bin/env bash
# Installs the system packages that building and testing xdpwall need.
# Idempotent: installs only what is missing, and runs `apt-get update` only
# when something is.
set -euo pipefail

# Build: clang-19 compiles the XDP program; libbpf-sys (vendored libbpf) needs
# make, cc, pkg-config, libelf and zlib; linux-libc-dev has the uapi headers.
# Lab and tests: iproute2 (ip netns / veth), util-linux (nsenter, taskset).
# Not libbpf-dev: the BPF programs compile against the libbpf headers that
# libbpf-cargo extracts, and the bench's C consumer against libbpf-sys's
# vendored libbpf.
# Peers and readers used by tests where present: tshark reads pcapng back.
# systemd-analyze (systemd) checks dist/xdpwall@.service.
PACKAGES=(clang-19 llvm-19 make gcc pkg-config libelf-dev zlib1g-dev
          linux-libc-dev iproute2 util-linux systemd)
if [[ "${XDPWALL_SETUP_EXTRA:-}" == 1 ]]; then
    PACKAGES+=(bpftool tshark tcpdump)
fi
# `xdpwall bench dataplane` compares xdpwall with these peers (xdp-filter,
# nftables, iptables and iptables-legacy); without them their rows are skipped.
if [[ "${XDPWALL_SETUP_BENCH:-}" == 1 ]]; then
    PACKAGES+=(xdp-tools nftables iptables)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        :
    else
        echo "setup: cargo not found; install Rust (stable) with rustup first" >&2
        exit 1
    fi
fi
