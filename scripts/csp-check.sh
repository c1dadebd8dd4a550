#!/usr/bin/env bash
# The CSP browser tests (tests/csp_browser.rs): headless Chromium loads the CSP fixture site with
# the policy `pixelguard audit --csp` generated for it, the tracker hosts mapped to loopback
# recording servers; the test checks that no tracker request gets through, that every blocked
# snippet's report reaches pixelguard's endpoint and is counted by vendor, that the site's own
# scripts still run, and that without the policy the trackers are reached.
# Needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver), python3
# with its venv module, and PyPI (once, for selenium in a venv under target/). A missing tool is
# a failure, never a skip. Bounded: pip by 300 s, the test by 600 s.
set -euo pipefail
cd "$(dirname "$0")/.."

SELENIUM_VERSION=4.27.1
venv="target/csp-check-venv"
fail() { echo "FAIL  $*" >&2; echo "csp-check: failed" >&2; exit 1; }

for tool in chromium chromedriver python3 timeout cargo; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (Debian: apt-get install chromium chromium-driver python3 python3-venv coreutils)"
done
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import selenium" 2>/dev/null; then
    python3 -m venv "$venv" || fail "python3 -m venv (Debian: apt-get install python3-venv)"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "selenium==$SELENIUM_VERSION" || fail "pip install selenium"
fi
echo "ok    $(chromium --version 2>/dev/null | head -1), $(chromedriver --version | head -1 | cut -d' ' -f1-2), selenium $SELENIUM_VERSION"
PIXELGUARD_CSP_PYTHON="$PWD/$venv/bin/python" \
PIXELGUARD_CHROMIUM="$(command -v chromium)" \
PIXELGUARD_CHROMEDRIVER="$(command -v chromedriver)" \
    timeout 600 cargo test --test csp_browser -- --ignored || fail "the CSP browser tests"
echo "csp-check: passed"
