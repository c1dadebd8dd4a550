#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (python3 standard library only).

Run from anywhere: `python3 fuzz/make-corpus.py`. The files are committed; this script says how
each was made and makes them again. Seeds are named after what they hold, so a change to one shows
in review. wire: DNS requests (plain, EDNS, ECS, cookies, canaries, the names the wire target's
lists block, and malformed shapes). lists: one byte that picks the format (0 domains, 1 hosts,
2 adblock, 3 rpz, 4 catalogue, 5 guess), then a list body. config: the shipped configs and
variants.
"""

import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, SVCB, HTTPS = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 64, 65
AXFR, ANY, CAA = 252, 255, 257


def qname(name):
    out = b""
    for label in name.split(".") if name else []:
        raw = label.encode("latin-1")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def opt(payload=1232, do=False, version=0, ext_rcode=0, flags=0, options=b""):
    f = (0x8000 if do else 0) | flags
    return b"\x00" + struct.pack(">HHBBHH", OPT, payload, ext_rcode, version, f, len(options)) + options


def option(code, data):
    return struct.pack(">HH", code, len(data)) + data


def ecs(family, source, addr):
    return option(8, struct.pack(">HBB", family, source, 0) + addr)


def query(name, qtype=A, qclass=1, qid=0x1234, flags=0x0100, edns=None, qd=None, an=0, ns=0, extra=b""):
    question = qd if qd is not None else qname(name) + struct.pack(">HH", qtype, qclass)
    ar = 1 if edns is not None else 0
    qdcount = 1
    head = struct.pack(">HHHHHH", qid, flags, qdcount, an, ns, ar)
    return head + question + (edns if edns is not None else b"") + extra


def wire_seeds():
    s = {}
    s["a-plain"] = query("www.example.com")
    s["a-edns"] = query("www.example.com", edns=opt())
    s["a-edns-do"] = query("www.example.com", edns=opt(4096, do=True))
    s["a-mixed-case"] = query("WwW.ExAmPlE.CoM", edns=opt())
    s["aaaa-blocked-domains"] = query("tracker.test", AAAA, edns=opt())
    s["a-blocked-subdomain"] = query("a.b.tracker.test", edns=opt())
    s["a-allowed"] = query("ok.tracker.test", edns=opt())
    s["a-hosts"] = query("pixel.test")
    s["a-adblock"] = query("x.ads.test", edns=opt(512))
    s["a-adblock-exception"] = query("ok.ads.test", edns=opt())
    s["a-rpz-nxdomain"] = query("rpz.test", edns=opt())
    s["a-rpz-nodata"] = query("x.rpz.test", edns=opt())
    s["a-catalogue"] = query("google-analytics.com", edns=opt())
    s["a-cloaked"] = query("cloaked.example.com", edns=opt())
    s["txt-big-no-edns"] = query("big.example.com", TXT)
    s["txt-big-edns-512"] = query("big.example.com", TXT, edns=opt(512))
    s["txt-big-edns-1232"] = query("big.example.com", TXT, edns=opt(1232))
    s["any"] = query("example.com", ANY, edns=opt())
    s["axfr"] = query("example.com", AXFR)
    s["canary-doh"] = query("use-application-dns.net", edns=opt())
    s["canary-icloud"] = query("mask.icloud.com", AAAA)
    s["canary-ddr"] = query("_dns.resolver.arpa", SVCB, edns=opt())
    s["https"] = query("www.example.com", HTTPS, edns=opt())
    s["root-ns"] = query("", NS, edns=opt())
    s["chaos-version"] = query("version.bind", TXT, qclass=3)
    s["ptr"] = query("1.2.0.192.in-addr.arpa", PTR)
    s["caa"] = query("example.com", CAA, edns=opt())
    s["label-63"] = query("a" * 63 + ".example.com")
    s["name-253"] = query(".".join(["b" * 49] * 5) + ".com")
    s["underscore"] = query("_sip._tcp.example.com", SRV)
    s["ecs-v4"] = query("www.example.com", edns=opt(options=ecs(1, 24, b"\xc0\x00\x02")))
    s["ecs-v6"] = query("www.example.com", AAAA, edns=opt(options=ecs(2, 56, b"\x20\x01\x0d\xb8\x00\x00\x00")))
    s["ecs-bad-prefix"] = query("www.example.com", edns=opt(options=ecs(1, 40, b"\xc0\x00\x02")))
    s["cookie"] = query("www.example.com", edns=opt(options=option(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")))
    s["padding"] = query("www.example.com", edns=opt(options=option(12, b"\x00" * 32)))
    s["edns-unknown-option"] = query("www.example.com", edns=opt(options=option(65001, b"fuzz")))
    s["edns-unknown-flag"] = query("www.example.com", edns=opt(flags=0x4000))
    s["edns-version-1"] = query("www.example.com", edns=opt(version=1))
    s["edns-ext-rcode"] = query("www.example.com", edns=opt(ext_rcode=1))
    s["edns-payload-0"] = query("www.example.com", edns=opt(0))
    s["edns-payload-max"] = query("www.example.com", edns=opt(65535))
    s["edns-rdlen-short"] = query("www.example.com", edns=opt(options=option(10, b"\x01\x02"))[:-1])
    s["edns-two-opt"] = query("www.example.com", edns=opt() + opt())
    s["cd-set"] = query("www.example.com", flags=0x0110, edns=opt(do=True))
    s["ad-set"] = query("www.example.com", flags=0x0120)
    s["z-set"] = query("www.example.com", flags=0x0140, edns=opt())
    s["tc-set"] = query("www.example.com", flags=0x0300)
    s["no-rd"] = query("www.example.com", flags=0x0000)
    s["opcode-status"] = query("www.example.com", flags=0x1100)
    s["opcode-notify"] = query("example.com", SOA, flags=0x2000)
    s["opcode-update"] = query("example.com", SOA, flags=0x2800)
    s["opcode-15"] = query("www.example.com", flags=0x7900, edns=opt())
    s["response"] = query("www.example.com", flags=0x8180)
    s["rcode-set"] = query("www.example.com", flags=0x0103)
    s["compressed-name"] = query("", qd=b"\x03www\xc0\x11\x00\x01\x00\x01\x07example\x03com\x00")
    s["pointer-loop"] = query("", qd=b"\xc0\x0c\x00\x01\x00\x01")
    s["escaped-label"] = query("", qd=b"\x05a.b c\x07example\x03com\x00\x00\x01\x00\x01")
    s["high-bytes-label"] = query("", qd=b"\x04\xff\xfe\x00\x7f\x03com\x00\x00\x01\x00\x01")
    s["label-64"] = query("", qd=b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01")
    s["name-too-long"] = query("", qd=(b"\x3f" + b"c" * 63) * 4 + b"\x00\x00\x01\x00\x01")
    s["two-questions"] = struct.pack(">HHHHHH", 7, 0x0100, 2, 0, 0, 0) + (qname("a.example") + b"\x00\x01\x00\x01") * 2
    s["no-question"] = struct.pack(">HHHHHH", 7, 0x0100, 0, 0, 0, 0)
    s["answer-in-query"] = query("www.example.com", an=1, extra=qname("www.example.com") + struct.pack(">HHIH", A, 1, 60, 4) + b"\xc0\x00\x02\x01")
    s["opt-in-question"] = query("www.example.com", OPT)
    s["qtype-0"] = query("www.example.com", 0)
    s["trailing-junk"] = query("www.example.com") + b"\xde\xad"
    s["truncated-question"] = query("www.example.com")[:20]
    s["header-only"] = query("www.example.com")[:12]
    s["short"] = b"\x12\x34\x01"
    s["empty"] = b""
    return s


CATALOGUE = """\
schema_version = 1
match = "suffix"
generated = "2026-11"

[sources]
META_DOCS = "https://developers.facebook.com/docs/meta-pixel/get-started"
AG = "AdGuard cname-trackers; MIT"
MOZILLA_CANARY = "https://support.mozilla.org/en-US/kb/canary-domain-use-application-dnsnet"
CHROMIUM_DOH = "chromium net/dns/public/doh_provider_entry.cc"

[vendor.meta]
name = "Meta Platforms (Facebook, Instagram) - Meta Pixel"

[vendor.meta.advertising]
block = ["connect.facebook.net", "pixel.facebook.com"]
shared = ["www.facebook.com"]
shared_paths = ["/tr", "/tr/"]
sources = ["META_DOCS"]
notes = "The pixel's script host."

[vendor.meta.whole_service]
caution = ["facebook.com", "instagram.com"]
sources = ["META_DOCS"]
notes = "Only for organisations blocking Meta services entirely."

[cname_cloak]
sources = ["AG"]
notes = "Targets matched only inside answers."

[cname_cloak.targets]
"Meta Platforms (Facebook, Instagram) - Meta Pixel" = ["cloak.facebook.test"]

[canary.firefox_doh]
names = ["use-application-dns.net"]
answer = "NXDOMAIN"
sources = ["MOZILLA_CANARY"]
notes = "Firefox's DoH canary."

[canary.ddr]
names = ["_dns.resolver.arpa"]
answer = "NODATA"
sources = ["MOZILLA_CANARY"]
notes = "DDR."

[doh]
notes = "DoH endpoints."

[doh.chromium]
sources = ["CHROMIUM_DOH"]
notes = "Chrome's providers."
doh = ["dns.google", "chrome.cloudflare-dns.com"]
dot = ["dns.google.com"]
"""


LIST_SEEDS = {
    "domains": (0, "# comment\ntracker.test\nmetrics.example.net  # inline\n\n*.wild.test\nBÜCHER.example\nxn--bcher-kva.example\nbad_name!.test\n-hyphen.test\n192.0.2.1\nlocalhost\n.leading.dot\ntrailing.dot.\n"),
    "domains-crlf-bom": (0, "\ufefftracker.test\r\npixel.test\r\n"),
    "hosts": (1, "127.0.0.1 localhost\n::1 localhost ip6-localhost\n0.0.0.0 pixel.test beacon.test # two names\n0.0.0.0\tads.test\n192.0.2.1 a.test\nfe80::1%lo0 zone.test\n0.0.0.0 0.0.0.0\nnotanaddress host.test\n"),
    "adblock": (2, "[Adblock Plus 2.0]\n! Title: fuzz\n||ads.test^\n||ads.test^$third-party\n@@||ok.ads.test^\n|https://full.test/path|\n||path.test/pixel.gif\nexample.com##.banner\n/ads[0-9]+/\n||opt.test^$domain=a.test|~b.test\n||*.star.test^\n||cap.test^$important\nplain.test\n||xn--bcher-kva.test^\n"),
    "rpz": (3, "$ORIGIN rpz.example.\n$TTL 300\n@ IN SOA localhost. root.localhost. 1 3600 600 86400 300\n  IN NS localhost.\nrpz.test CNAME .\n*.rpz.test CNAME *.\npass.rpz.test CNAME rpz-passthru.\ndrop.test CNAME rpz-drop.\n32.1.2.0.192.rpz-ip CNAME .\nlocal.test A 192.0.2.1\n; comment\nbad.test CNAME elsewhere.example.\n(\n"),
    "catalogue": (4, CATALOGUE),
    "guess-catalogue": (5, CATALOGUE),
    "guess-hosts": (5, "0.0.0.0 a.test\n0.0.0.0 b.test\n"),
    "guess-adblock": (5, "||a.test^\n"),
    "guess-rpz": (5, "$TTL 60\na.test CNAME .\n"),
    "guess-domains": (5, "a.test\nb.test\n"),
    "not-utf8": (0, b"good.test\n\xff\xfe.test\nafter.test\n"),
    "long-line": (0, "a" * 5000 + ".test\nshort.test\n"),
}


def config_seeds():
    s = {}
    for name, path in [("reference", "config/pixelguard.toml"), ("default", "config/default.toml"), ("debian", "deploy/debian/pixelguard.toml")]:
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            s[name] = f.read()
    base = '[server]\nlisten = ["127.0.0.1:5353"]\n\n[upstream]\nservers = ["192.0.2.53", "tls://192.0.2.54:853#dns.example"]\ntimeout = "2s"\n\n[lists.t]\nsource = "builtin:trackers"\n\n[zones.lo]\nnetworks = ["127.0.0.0/8", "::1/128"]\nblock = ["t"]\n'
    s["minimal"] = base
    s["remote-list"] = base + '\n[lists.r]\nsource = "https://lists.example/r.txt"\nrefresh = "1h"\ntimeout = "30s"\nmax_size = 1048576\n'
    s["huge-duration"] = base.replace('timeout = "2s"', 'timeout = "400000000000y"')
    s["zero-duration"] = base.replace('timeout = "2s"', 'timeout = "0s"')
    s["unknown-key"] = base + "\n[cache]\nmax_entrys = 5\n"
    s["bad-network"] = base.replace('"::1/128"', '"::1/129"')
    s["responses"] = base + '\n[zones.a]\nnetworks = ["10.0.0.0/8"]\nblock = ["t"]\nresponse = ["192.0.2.10", "2001:db8::10"]\nmode = "log"\nrate_limit = { qps = 10, burst = 20, action = "drop" }\n'
    s["query-log"] = base + '\n[query_log]\npath = "q.jsonl"\nrecord = "all"\nclient = "masked"\nmax_size = "64MiB"\nkeep = 3\nmax_age = "1d"\n'
    s["recursive"] = base.replace('servers = ["192.0.2.53", "tls://192.0.2.54:853#dns.example"]', 'mode = "recursive"')
    s["not-toml"] = "[server\nlisten = \n"
    return s


def write(target, seeds):
    d = os.path.join(ROOT, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("wire", wire_seeds())
    lists = {}
    for name, (selector, body) in LIST_SEEDS.items():
        if isinstance(body, str):
            body = body.encode("utf-8")
        lists[name] = bytes([selector]) + body
    write("lists", lists)
    write("config", config_seeds())


if __name__ == "__main__":
    main()
