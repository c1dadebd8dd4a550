"""The dashboard in a real browser (run by tests/dashboard_browser.rs via scripts/dashboard-check.sh).

Usage: dashboard_browser.py ADMIN_URL READ_TOKEN SCREENSHOT EXPECTED_JSON

Headless Chromium through chromedriver (Debian chromium, chromium-driver) signs in at /login with
the read token, loads /, and checks: the charts rendered (SVG with the expected vendor series),
the zone x vendor table equals EXPECTED_JSON (rows [zone, vendor, category, mode, count] read from
/metrics by the test), no request went to any host but the admin server (performance log), and
the console has no error. Saves a screenshot. Exit status 0 only when every check passed.
"""

import json
import sys
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main() -> int:
    base, token, shot, expected_json = sys.argv[1:5]
    expected = {tuple(r[:4]): int(r[4]) for r in json.loads(expected_json)}
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1600", "--no-proxy-server", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    failures = []
    try:
        driver.get(base + "/login")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        try:
            WebDriverWait(driver, 10).until(lambda d: urlparse(d.current_url).path == "/")
        except Exception:  # selenium's TimeoutException: report, then go on checking
            failures.append(f"after sign-in the browser is at {driver.current_url}, not /")
        driver.get(base + "/?period=1h")

        series = {g.get_attribute("data-series")
                  for g in driver.find_elements(By.CSS_SELECTOR, "figure.chart svg g.series")}
        bars = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg rect")
        want_vendors = {k[1] for k in expected}
        print(f"chart series: {sorted(series)}; {len(bars)} bars")
        if not bars or not want_vendors <= series:
            failures.append(f"charts: series {sorted(series)}, expected {sorted(want_vendors)}")
        for mode in {k[3] for k in expected}:
            if not driver.find_elements(By.CSS_SELECTOR, f"figure.chart[data-mode='{mode}'] svg"):
                failures.append(f"no chart for mode {mode}")

        got = {}
        for tr in driver.find_elements(By.CSS_SELECTOR, "table#zone-vendor tbody tr"):
            key = [tr.get_attribute(a) for a in ("data-zone", "data-vendor", "data-category")]
            for td in tr.find_elements(By.CSS_SELECTOR, "td[data-mode]"):
                n = int(td.text.strip())
                if n > 0:
                    got[tuple(key + [td.get_attribute("data-mode")])] = n
        print(f"table rows: {len(got)}, /metrics series: {len(expected)}")
        if got != expected:
            failures.append(f"table {sorted(got.items())} != /metrics {sorted(expected.items())}")

        admin_host = urlparse(base).netloc
        urls = set()
        for entry in driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.add(msg["params"]["request"]["url"])
        foreign = sorted(u for u in urls
                         if not u.startswith("data:") and urlparse(u).netloc != admin_host)
        print(f"requests: {len(urls)}, to another host: {foreign}")
        if not urls:
            failures.append("the performance log recorded no request")
        if foreign:
            failures.append(f"requests to other hosts: {foreign}")

        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        if errors:
            failures.append(f"console errors: {errors}")

        driver.save_screenshot(shot)
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
