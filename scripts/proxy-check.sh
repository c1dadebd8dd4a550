#!/usr/bin/env bash
# Runs tests/behind_forwarders.rs: pixelguard behind Debian's dnsdist (PROXY protocol v2 over UDP
# and TCP) and dnsmasq (EDNS Client Subnet with add-subnet), on loopback. `cargo test` leaves
# these tests ignored so that it passes with the Rust toolchain alone; this script is the real
# check, and .ci/run runs it after installing both packages.
#
# A missing tool is a failure, never a silent skip. PIXELGUARD_SKIP_PROXY_CHECK=1 says explicitly
# that the check is not wanted (then the script says so and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dnsdist >/dev/null || missing+=("dnsdist (Debian: apt-get install dnsdist)")
command -v dnsmasq >/dev/null || missing+=("dnsmasq (Debian: apt-get install dnsmasq)")
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${PIXELGUARD_SKIP_PROXY_CHECK:-}" = "1" ]; then
        echo "skip  tests/behind_forwarders.rs (PIXELGUARD_SKIP_PROXY_CHECK=1)"
        exit 0
    fi
    for m in "${missing[@]}"; do
        echo "FAIL  not installed: $m" >&2
    done
    echo "FAIL  tests/behind_forwarders.rs needs dnsdist and dnsmasq;" \
        "set PIXELGUARD_SKIP_PROXY_CHECK=1 to skip this check on purpose" >&2
    exit 1
fi
timeout 600 cargo test --locked --test behind_forwarders -- --ignored
echo "ok    tests/behind_forwarders.rs against $(dnsdist --version | head -n1 | cut -d' ' -f1-2) and $(dnsmasq --version | head -n1 | cut -d' ' -f1-3)"
