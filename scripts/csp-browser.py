#!/usr/bin/env python3
"""Headless Chromium for the CSP browser tests (tests/csp_browser.rs), driven over stdin.

Started by the Rust test with the Chromium host-resolver rules in the environment
(PIXELGUARD_CSP_RESOLVER_RULES: the tracker hosts mapped to loopback recording servers).
Reads one command per line on stdin and answers one JSON line on stdout:

    visit URL   -> {"url": ..., "first_party": bool, "inline": str|null, "form": str|null}
    quit        -> {"quit": true} and exits

The browser stays open between commands, so that the CSP reports it sends after a page load
reach the endpoint while the test polls pixelguard's metrics. Every wait is bounded.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MARKER_WAIT_SECONDS = 10


def main() -> int:
    rules = os.environ.get("PIXELGUARD_CSP_RESOLVER_RULES", "")
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("PIXELGUARD_CHROMIUM", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        # Reporting API reports within 100 ms instead of a minute's batch.
        "--short-reporting-delay",
        # The recording servers have a self-signed certificate.
        "--ignore-certificate-errors",
        "--host-resolver-rules=" + rules,
        # The fixture site is plain HTTP on loopback under a real-looking name: treat it as the
        # secure context a real site is (the Reporting API works only in secure contexts).
        "--unsafely-treat-insecure-origin-as-secure=" + os.environ.get("PIXELGUARD_CSP_ORIGIN", ""),
    ):
        opts.add_argument(arg)
    service = Service(executable_path=os.environ.get("PIXELGUARD_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    try:
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "quit":
                print(json.dumps({"quit": True}), flush=True)
                return 0
            if cmd != "visit":
                print(json.dumps({"error": "unknown command " + cmd}), flush=True)
                continue
            driver.get(arg)
            try:
                WebDriverWait(driver, MARKER_WAIT_SECONDS).until(
                    lambda d: d.find_elements(By.ID, "first-party-ran")
                )
                first_party = True
            except Exception:  # noqa: BLE001 (a timeout: the marker is missing)
                first_party = False
            root = driver.find_element(By.TAG_NAME, "html")
            print(
                json.dumps(
                    {
                        "url": arg,
                        "first_party": first_party,
                        "inline": root.get_attribute("data-inline"),
                        "form": root.get_attribute("data-form"),
                    }
                ),
                flush=True,
            )
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
