//! Forward rules (`[forward.NAME]`, conditional forwarding) end to end: a real pixelguard on
//! loopback, in-process authoritative servers standing in for an organisation's domain
//! controllers (the forward zone, a delegated site zone, the 10/8 reverse zone) and a recording
//! authoritative server as the public upstream. Internal names and private PTRs reach the DCs
//! and never the public upstream; public names never reach a DC; blocked names reach nobody;
//! a rule whose servers are down gives stale or SERVFAIL, never the public upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, answer_ips, ede, query};

const CORP: &str = "$ORIGIN corp.example.test.
$TTL 300
@     3600 IN SOA dc1.corp.example.test. hostmaster.corp.example.test. 1 7200 900 1209600 300
@     3600 IN NS dc1
dc1        IN A 10.1.0.10
files      IN A 10.1.0.20
short    2 IN A 10.1.0.21
cloak      IN CNAME tracker.example.test.
_ldap._tcp.dc._msdcs 600 IN SRV 0 100 389 dc1.corp.example.test.
";

const SITES: &str = "$ORIGIN sites.corp.example.test.
$TTL 300
@     3600 IN SOA dc2.sites.corp.example.test. hostmaster.corp.example.test. 1 7200 900 1209600 300
@     3600 IN NS dc2
pc1        IN A 10.2.0.1
";

const REVERSE: &str = "$ORIGIN 10.in-addr.arpa.
$TTL 300
@     3600 IN SOA dc1.corp.example.test. hostmaster.corp.example.test. 1 7200 900 1209600 300
@     3600 IN NS dc1.corp.example.test.
10.0.1     IN PTR dc1.corp.example.test.
";

const BLOCKED: &str = "tracker.example.test\nads.corp.example.test\n";

/// The DCs and the public upstream.
struct Net {
    corp: AuthServer,
    sites: AuthServer,
    reverse: AuthServer,
    public: AuthServer,
}

impl Net {
    fn start() -> Net {
        Net {
            corp: AuthServer::start("corp.example.test.", CORP),
            sites: AuthServer::start("sites.corp.example.test.", SITES),
            reverse: AuthServer::start("10.in-addr.arpa.", REVERSE),
            public: AuthServer::start_test_zone(),
        }
    }

    /// Rules `corp` (the forward zone and `_msdcs`), `sites` (a longer suffix, written in
    /// upper case with the trailing dot) and `reverse` (10/8).
    fn rules(&self) -> String {
        format!(
            "[forward.corp]\ndomains = [\"corp.example.test\", \"_msdcs.corp.example.test\"]\nservers = [\"{}\"]\n\n\
             [forward.sites]\ndomains = [\"Sites.Corp.Example.Test.\"]\nservers = [\"{}\"]\nstrategy = \"fastest\"\n\n\
             [forward.reverse]\ndomains = [\"10.in-addr.arpa\"]\nservers = [\"{}\"]\ntimeout = \"300ms\"\n\n",
            self.corp.addr(),
            self.sites.addr(),
            self.reverse.addr()
        )
    }

    fn config(&self) -> String {
        format!(
            "{}{}[lists.bl]\nsource = \"bl.txt\"\nformat = \"domains\"\n\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"bl\"]\n",
            base(&[self.public.addr()]),
            self.rules()
        )
    }

    fn clear(&self) {
        for s in [&self.corp, &self.sites, &self.reverse, &self.public] {
            s.clear_seen();
        }
    }
}

/// Is `name` (as a server saw it) internal: in or under corp.example.test, or a reverse name?
fn internal(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "corp.example.test." || n.ends_with(".corp.example.test.") || n.ends_with("in-addr.arpa.")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn ask(pg: SocketAddr, name: &str, t: RecordType) -> hickory_proto::op::Message {
    query(pg, name, t, &QueryOpts::default()).await.unwrap()
}

fn tries(pg: &pg::Pg, group: &str, server: SocketAddr, result: &str) -> u64 {
    pg.app
        .pipeline
        .recorder
        .metrics()
        .upstream_queries
        .with_label_values(&[group, &server.to_string(), result])
        .get()
}

#[tokio::test]
async fn internal_names_go_to_their_rule_and_never_to_the_public_upstream() {
    let net = Net::start();
    let pg = pg::start(&net.config(), &[("bl.txt", BLOCKED)]).await;

    // Internal names, SRV under _msdcs, and a private PTR: answered by the DCs.
    let m = ask(pg.addr, "files.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.20")]);
    let m = ask(
        pg.addr,
        "_ldap._tcp.dc._msdcs.corp.example.test.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 1, "{m:?}");
    let m = ask(pg.addr, "10.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1, "{m:?}");
    // An internal name that does not exist: the DC's NXDOMAIN, not the public upstream's.
    let m = ask(pg.addr, "nothing.corp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.corp.saw_name("files.corp.example.test."));
    assert!(net.corp.saw_name("_ldap._tcp.dc._msdcs.corp.example.test."));
    assert!(net.corp.saw_name("nothing.corp.example.test."));
    assert!(net.reverse.saw_name("10.0.1.10.in-addr.arpa."));

    // Longest suffix wins: sites.corp.example.test goes to its own DC, not corp's.
    let m = ask(pg.addr, "PC1.sites.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.2.0.1")]);
    assert!(net.sites.saw_name("pc1.sites.corp.example.test."));
    assert!(!net.corp.saw_name("pc1.sites.corp.example.test."));

    // Label boundaries: xcorp.example.test is not under corp.example.test.
    let m = ask(pg.addr, "xcorp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.public.saw_name("xcorp.example.test."));

    // Public names go to the public upstream and never to a DC.
    let m = ask(pg.addr, "www.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    for dc in [&net.corp, &net.sites, &net.reverse] {
        assert!(!dc.saw_name("www.example.test."));
        assert!(!dc.saw_name("xcorp.example.test."));
    }

    // Blocked names (public and internal) reach nobody.
    for name in ["tracker.example.test.", "ads.corp.example.test."] {
        let m = ask(pg.addr, name, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(!ede(&m).is_empty(), "{name} blocked with an EDE");
        for s in [&net.corp, &net.sites, &net.reverse, &net.public] {
            assert!(!s.saw_name(name), "{name} reached a server");
        }
    }

    // Uncloaking checks a rule's answers too: the DC's CNAME into a blocked name blocks it.
    let m = ask(pg.addr, "cloak.corp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.corp.saw_name("cloak.corp.example.test."));

    // Nothing internal ever reached the public upstream.
    assert!(
        net.public.seen().iter().all(|q| !internal(&q.name)),
        "internal names leaked: {:?}",
        net.public.seen()
    );

    // A rule's answer is cached under its question: the second time no server is asked.
    net.clear();
    let m = ask(pg.addr, "files.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.20")]);
    let m = ask(pg.addr, "10.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        net.corp.count() + net.reverse.count() + net.public.count(),
        0
    );

    // Metrics: every try counted under its group.
    assert!(tries(&pg, "corp", net.corp.addr(), "ok") >= 4);
    assert!(tries(&pg, "sites", net.sites.addr(), "ok") >= 1);
    assert!(tries(&pg, "reverse", net.reverse.addr(), "ok") >= 1);
    assert!(tries(&pg, "default", net.public.addr(), "ok") >= 2);
    assert_eq!(tries(&pg, "default", net.corp.addr(), "ok"), 0);
}

#[tokio::test]
async fn a_rule_whose_servers_are_down_gives_stale_or_servfail_never_the_public_upstream() {
    let net = Net::start();
    let pg = pg::start(&net.config(), &[("bl.txt", BLOCKED)]).await;
    let m = ask(pg.addr, "short.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.21")]);
    let corp_addr = net.corp.addr();
    let Net { corp, public, .. } = net;
    drop(corp); // the DC goes away
    // Until the 2 s TTL has run out: the cached entry is stale.
    let key = pixelguard::cache::CacheKey::new("short.corp.example.test", 1, 1, false, false);
    assert!(
        support::wait_until(Duration::from_secs(5), || pg
            .app
            .pipeline
            .cache
            .get(key.as_bytes(), Instant::now())
            .is_none())
        .await,
        "the entry expires"
    );
    let m = ask(pg.addr, "short.corp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.21")], "the stale answer");
    assert_eq!(ede(&m).first().map(|e| e.0), Some(3), "EDE 3 Stale Answer");
    // Never cached: SERVFAIL from the rule, not the public upstream's answer.
    let m = ask(pg.addr, "files.corp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        public.seen().iter().all(|q| !internal(&q.name)),
        "the public upstream was asked: {:?}",
        public.seen()
    );
    assert!(
        tries(&pg, "corp", corp_addr, "network") + tries(&pg, "corp", corp_addr, "timeout") >= 1
    );
    // Public names still resolve, and /readyz follows [upstream] only.
    let m = ask(pg.addr, "www.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    assert!(pg.app.pipeline.recorder.upstream_health().ready().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_check_name_the_rule_and_its_servers() {
    let net = Net::start();
    let pg = pg::start(&net.config(), &[("bl.txt", BLOCKED)]).await;
    let client = ip("127.0.0.1");
    let ex = pixelguard::explain::explain_on(
        &pg.app.pipeline,
        client,
        "pc9.sites.corp.example.test",
        RecordType::A,
        false,
    )
    .await;
    let dc = net.sites.addr().to_string();
    assert!(
        ex.text.contains(&format!(
            "forward rule sites (domain sites.corp.example.test): sent to {dc}"
        )),
        "{}",
        ex.text
    );
    assert_eq!(ex.json["forward"]["rule"], "sites", "{}", ex.json);
    assert_eq!(ex.json["forward"]["servers"][0], dc.as_str());
    let ex = pixelguard::explain::explain_on(
        &pg.app.pipeline,
        client,
        "www.example.test",
        RecordType::A,
        false,
    )
    .await;
    assert!(!ex.text.contains("forward rule"), "{}", ex.text);
    assert!(ex.json.get("forward").is_none());

    // `pixelguard check` prints every rule.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args(["check", "--config"])
        .arg(pg.path("pixelguard.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        format!(
            "forward   corp: corp.example.test, _msdcs.corp.example.test -> {} (udp, tcp fallback)",
            net.corp.addr()
        ),
        format!(
            "forward   sites: sites.corp.example.test -> {} (udp, tcp fallback)",
            net.sites.addr()
        ),
        format!(
            "forward   reverse: 10.in-addr.arpa -> {} (udp, tcp fallback)",
            net.reverse.addr()
        ),
    ] {
        assert!(text.contains(&want), "{want} in:\n{text}");
    }
}

#[tokio::test]
async fn reload_swaps_the_rules_and_a_bad_reload_keeps_them() {
    let net = Net::start();
    let pg = pg::start(&net.config(), &[("bl.txt", BLOCKED)]).await;
    let m = ask(pg.addr, "files.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.20")]);

    // A bad reload (a domain in two rules) is refused; the rules stay.
    let bad = net.config().replace(
        "domains = [\"10.in-addr.arpa\"]",
        "domains = [\"10.in-addr.arpa\", \"corp.example.test\"]",
    );
    std::fs::write(pg.path("pixelguard.toml"), &bad).unwrap();
    let e = pg.app.reload().await.unwrap_err().to_string();
    assert!(
        e.contains(
            "forward.reverse.domains[1]: \"corp.example.test\" is already in forward rule \"corp\""
        ),
        "{e}"
    );
    assert!(
        pg.app
            .pipeline
            .snapshot
            .load()
            .forwards
            .covers("files.corp.example.test")
    );

    // Without the rule, the names go to [upstream] (here, public: a lab setup).
    let without = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[net.public.addr()])
    );
    std::fs::write(pg.path("pixelguard.toml"), without).unwrap();
    pg.app.reload().await.unwrap();
    assert!(
        !pg.app
            .pipeline
            .snapshot
            .load()
            .forwards
            .covers("files.corp.example.test")
    );
    net.clear();
    let m = ask(pg.addr, "dc1.corp.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.public.saw_name("dc1.corp.example.test."));
    assert_eq!(net.corp.count(), 0);
}

#[tokio::test]
async fn rules_apply_in_recursive_mode() {
    let net = Net::start();
    // A "root" on 127.0.0.10 that records what the recursor asks it.
    let root = AuthServer::start_on(support::loopback(10), "example.test.", support::TEST_ZONE);
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nmode = \"recursive\"\nroot_hints = \"root.hints\"\ndnssec = \"off\"\nrecursion_ports = [\"{}\"]\ntimeout = \"300ms\"\ndeadline = \"1s\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        root.addr(),
        net.rules()
    );
    let hints = ".  3600000 IN NS root.servers.\nroot.servers. 3600000 IN A 127.0.0.10\n";
    let pg = pg::start(&cfg, &[("root.hints", hints)]).await;
    let m = ask(pg.addr, "files.corp.example.test.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.20")]);
    let m = ask(pg.addr, "10.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        root.count(),
        0,
        "the recursor was not asked: {:?}",
        root.seen()
    );
    // A name no rule covers is recursed (the root is asked).
    let _ = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    assert!(root.count() >= 1, "the recursor asked the root");
    assert_eq!(net.public.count(), 0);
}

fn errors(text: &str) -> String {
    match pixelguard::config::Config::from_str(
        text,
        "test.toml",
        std::path::Path::new("."),
        &pixelguard::config::Overrides::default(),
    ) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_errors_name_file_line_and_what_was_expected() {
    let head = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";
    // Lines 5.. below.
    let e = errors(&format!(
        "{head}[forward.corp]\ndomains = [\"corp.example\", \"a..b\"]\nservers = [\"10.1.0.10\", \"dc1.corp.example\"]\n"
    ));
    assert!(
        e.contains("test.toml:6:28: forward.corp.domains[1]: invalid domain \"a..b\": empty label"),
        "{e}"
    );
    assert!(
        e.contains("test.toml:7:25: forward.corp.servers[1]: invalid server \"dc1.corp.example\": expected \"IP:PORT\" or \"IP\""),
        "{e}"
    );
    let e = errors(&format!(
        "{head}[forward.a]\ndomains = [\"corp.example\"]\nservers = [\"10.1.0.10\"]\n[forward.b]\ndomains = [\"CORP.example.\"]\nservers = [\"10.1.0.11\"]\n"
    ));
    assert!(
        e.contains("test.toml:9:12: forward.b.domains[0]: \"corp.example\" is already in forward rule \"a\"; a domain belongs to one rule (forward.a and forward.b)"),
        "{e}"
    );
    let e = errors(&format!(
        "{head}[forward.default]\ndomains = [\"corp.example\"]\nservers = [\"10.1.0.10\"]\n"
    ));
    assert!(
        e.contains("test.toml:5:1: forward.default: the name \"default\" is reserved"),
        "{e}"
    );
    let e = errors(&format!(
        "{head}[forward.Corp]\ndomains = [\"corp.example\"]\nservers = [\"10.1.0.10\"]\n"
    ));
    assert!(e.contains("test.toml:5:1: forward.\"Corp\": invalid rule name; expected 1 to 32 characters of a-z, 0-9, '_' and '-'"), "{e}");
    let e = errors(&format!(
        "{head}[forward.corp]\nservers = [\"10.1.0.10\"]\n"
    ));
    assert!(
        e.contains("test.toml:5:1: forward.corp.domains: missing or empty"),
        "{e}"
    );
    let e = errors(&format!(
        "{head}[forward.corp]\ndomains = [\"corp.example\"]\n"
    ));
    assert!(
        e.contains("test.toml:5:1: forward.corp.servers: missing or empty"),
        "{e}"
    );
    let e = errors(&format!(
        "{head}[forward.corp]\ndomains = [\".\"]\nservers = [\"10.1.0.10\"]\ntimeout = \"2h\"\nstrategy = \"random\"\n"
    ));
    assert!(
        e.contains(
            "forward.corp.domains[0]: invalid domain \".\": the root cannot be a forward domain"
        ),
        "{e}"
    );
    assert!(
        e.contains("test.toml:8:11: forward.corp.timeout: at most 1m, got 2h"),
        "{e}"
    );
    assert!(e.contains("test.toml:9:12: forward.corp.strategy: unknown strategy \"random\"; expected ordered or fastest"), "{e}");
    let e = errors(&format!(
        "{head}[forward.corp]\ndomains = [\"corp.example\"]\nservers = [\"10.1.0.10\"]\nretries = 3\n"
    ));
    assert!(e.contains("test.toml:8:1: unknown field `retries`"), "{e}");

    // Defaults come from [upstream]; the domains are normalised.
    let c = pixelguard::config::Config::from_str(
        &format!("{head}timeout = \"700ms\"\nstrategy = \"fastest\"\n[forward.corp]\ndomains = [\"Corp.Example.\"]\nservers = [\"10.1.0.10\", \"tls://10.1.0.11#dc2.corp.example\"]\n"),
        "test.toml",
        std::path::Path::new("."),
        &pixelguard::config::Overrides::default(),
    )
    .unwrap();
    let r = &c.forwards[0];
    assert_eq!(r.domains, vec!["corp.example"]);
    assert_eq!(r.timeout, Duration::from_millis(700));
    assert_eq!(r.strategy, pixelguard::config::Strategy::Fastest);
    assert_eq!(r.servers[1].protocol_word(), "dot");
}
