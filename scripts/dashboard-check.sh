#!/usr/bin/env bash
# The dashboard beyond `cargo test` (tests/dashboard_browser.rs, ignored there):
#   1. in a real browser: headless Chromium driven by chromedriver through Python selenium
#      (scripts/dashboard_browser.py) signs in, loads the page after a known load, checks the
#      charts, the table against /metrics, that nothing left for another host and that the
#      console is clean; the screenshot lands in target/dashboard.png;
#   2. the cluster view: Debian's prometheus, on loopback with a 1 s scrape interval, over two
#      pixelguards with different loads; each page shows the sum.
# Needs chromium, chromedriver (Debian chromium, chromium-driver), prometheus (Debian
# prometheus), python3 with its venv module, and PyPI once (selenium, pinned, into a venv under
# target/). A missing tool is a failure, never a skip. Bounded: pip 300 s, the tests 600 s.
set -euo pipefail
cd "$(dirname "$0")/.."

SELENIUM_VERSION=4.27.1
venv="target/dashboard-check-venv"
fail() { echo "FAIL  $*" >&2; exit 1; }

command -v chromium >/dev/null || fail "chromium is not installed (Debian 12: apt-get install chromium)"
command -v chromedriver >/dev/null || fail "chromedriver is not installed (Debian 12: apt-get install chromium-driver)"
command -v prometheus >/dev/null || fail "prometheus is not installed (Debian 12: apt-get install prometheus)"
command -v python3 >/dev/null || fail "python3 is not installed (Debian: apt-get install python3 python3-venv)"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    python3 -m venv "$venv" || fail "python3 -m venv (Debian: apt-get install python3-venv)"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "selenium==$SELENIUM_VERSION" || fail "pip install selenium==$SELENIUM_VERSION"
fi

PIXELGUARD_DASHBOARD_PYTHON="$PWD/$venv/bin/python" timeout 600 \
    cargo test --locked --test dashboard_browser -- --ignored --test-threads=1 --nocapture \
    || fail "the dashboard's browser or cluster check (tests/dashboard_browser.rs)"
echo "ok    dashboard: browser check (screenshot: target/dashboard.png) and cluster view"
