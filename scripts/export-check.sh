#!/usr/bin/env bash
# dnstap and syslog export into Debian's own receivers (tests/export_debian.rs): fstrm_capture
# (fstrm-bin) takes the dnstap stream and dnstap-ldns (dnstap-ldns) decodes it; rsyslogd
# (rsyslog, with the gtls driver of rsyslog-gnutls) takes syslog over UDP and TLS. Plain
# `cargo test` leaves these tests out (ignored) so that it passes with the Rust toolchain alone;
# this script runs them, and .ci/run runs it after installing the packages.
#
# A missing tool is a failure, never a silent skip. PIXELGUARD_SKIP_EXPORT=1 says explicitly
# that the check is not wanted (then the script says so and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v fstrm_capture >/dev/null || missing+=("fstrm_capture (Debian: fstrm-bin)")
command -v dnstap-ldns >/dev/null || missing+=("dnstap-ldns (Debian: dnstap-ldns)")
command -v rsyslogd >/dev/null || missing+=("rsyslogd (Debian: rsyslog)")
gtls=$(find /usr/lib -name lmnsd_gtls.so -path '*rsyslog*' 2>/dev/null | head -n1)
[ -n "$gtls" ] || missing+=("rsyslog's TLS driver lmnsd_gtls.so (Debian: rsyslog-gnutls)")
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${PIXELGUARD_SKIP_EXPORT:-}" = "1" ]; then
        echo "skip  export check against Debian's receivers (PIXELGUARD_SKIP_EXPORT=1)"
        exit 0
    fi
    for m in "${missing[@]}"; do
        echo "FAIL  missing: $m" >&2
    done
    echo "FAIL  set PIXELGUARD_SKIP_EXPORT=1 to skip this check on purpose" >&2
    exit 1
fi
timeout 900 cargo test --locked --test export_debian -- --ignored --test-threads 1
echo "ok    dnstap into fstrm_capture / dnstap-ldns, syslog into rsyslogd over UDP and TLS"
