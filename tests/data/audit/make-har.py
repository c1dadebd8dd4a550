#!/usr/bin/env python3
"""Regenerates site.har from the fixture pages in site/ (run from this folder).

The HAR is what a browser's dev tools save ("Save all as HAR with content") after visiting four
pages of https://www.force.test/: each page's HTML plus the tracker requests the page made.
tests/audit.rs checks that the HAR's HTML still equals the files in site/.
"""
import base64, json, pathlib

site = pathlib.Path("site")
origin = "https://www.force.test/"

def doc(pageref, name, encode=False, csp=None):
    text = (site / name).read_text()
    content = {"size": len(text), "mimeType": "text/html; charset=utf-8", "text": text}
    if encode:
        content["text"] = base64.b64encode(text.encode()).decode()
        content["encoding"] = "base64"
    headers = [{"name": "Content-Type", "value": "text/html; charset=utf-8"}]
    if csp:
        headers.append({"name": "Content-Security-Policy", "value": csp})
    return {"pageref": pageref, "startedDateTime": "2026-12-01T10:00:00.000Z", "time": 42,
            "request": {"method": "GET", "url": origin + name, "httpVersion": "HTTP/2", "headers": [],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2", "headers": headers,
                         "cookies": [], "content": content, "redirectURL": "", "headersSize": -1,
                         "bodySize": len(text)},
            "cache": {}, "timings": {"send": 0, "wait": 40, "receive": 2}}

def req(pageref, url, mime):
    return {"pageref": pageref, "startedDateTime": "2026-12-01T10:00:00.100Z", "time": 12,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/2", "headers": [],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2", "headers": [],
                         "cookies": [], "content": {"size": 0, "mimeType": mime}, "redirectURL": "",
                         "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 2}}

entries = [
    doc("page_1", "report-a-crime.html"),
    req("page_1", "https://connect.facebook.net/en_US/fbevents.js", "application/x-javascript"),
    req("page_1", "https://connect.facebook.net/signals/config/1234567890123456?v=2.9.180&r=stable", "application/x-javascript"),
    req("page_1", "https://www.facebook.com/tr/?id=1234567890123456&ev=PageView&dl=https%3A%2F%2Fwww.force.test%2Freport-a-crime.html", "image/gif"),
    doc("page_2", "news.html"),
    req("page_2", "https://www.googletagmanager.com/gtm.js?id=GTM-P7X2Q9K", "application/javascript"),
    req("page_2", "https://www.googletagmanager.com/gtag/js?id=G-8XK2M4PL1Q", "application/javascript"),
    req("page_2", "https://www.google-analytics.com/g/collect?v=2&tid=G-8XK2M4PL1Q&en=page_view", "text/plain"),
    doc("page_3", "careers.html"),
    req("page_3", "https://snap.licdn.com/li.lms-analytics/insight.min.js", "application/javascript"),
    req("page_3", "https://px.ads.linkedin.com/collect?v=2&fmt=js&pid=4567890&url=https%3A%2F%2Fwww.force.test%2Fcareers.html", "image/gif"),
    doc("page_4", "about.html", encode=True),
    req("page_4", "https://www.force.test/js/AppMeasurement.js", "application/javascript"),
    req("page_4", "https://smetrics.force.test/b/ss/forcetestprod/1/JS-2.22.0/s1234", "image/gif"),
]
pages = [{"startedDateTime": "2026-12-01T10:00:00.000Z", "id": f"page_{i}", "title": t,
          "pageTimings": {"onContentLoad": 300, "onLoad": 500}}
         for i, t in [(1, origin + "report-a-crime.html"), (2, origin + "news.html"),
                      (3, origin + "careers.html"), (4, origin + "about.html")]]
har = {"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "133.0"},
               "pages": pages, "entries": entries}}
pathlib.Path("site.har").write_text(json.dumps(har, indent=1) + "\n")
