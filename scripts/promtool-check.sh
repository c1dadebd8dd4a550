#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) with promtool, the way
# Prometheus itself will load them: syntax, PromQL, templates; then runs their unit tests
# (deploy/prometheus/alerts.test.yml). `cargo test` (tests/observability.rs) only checks that
# the rules use known metric names, so that it passes with the Rust toolchain alone; this
# script is the real check and .ci/run runs it after installing Debian's `prometheus` package
# (which ships promtool).
#
# A missing promtool is a failure, never a silent skip. PIXELGUARD_SKIP_PROMTOOL=1 says
# explicitly that the check is not wanted (then the script says so and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
    if [ "${PIXELGUARD_SKIP_PROMTOOL:-}" = "1" ]; then
        echo "skip  promtool check of deploy/prometheus/alerts.yml (PIXELGUARD_SKIP_PROMTOOL=1)"
        exit 0
    fi
    echo "FAIL  promtool is not installed (Debian: apt-get install prometheus);" \
        "set PIXELGUARD_SKIP_PROMTOOL=1 to skip this check on purpose" >&2
    exit 1
fi
timeout 60 promtool check rules deploy/prometheus/alerts.yml
echo "ok    promtool check rules deploy/prometheus/alerts.yml"
# The alerts' unit tests (series in, alerts out), next to the rules they test.
timeout 60 promtool test rules deploy/prometheus/alerts.test.yml
echo "ok    promtool test rules deploy/prometheus/alerts.test.yml"
