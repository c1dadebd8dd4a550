//! Checks of `[dnstap]` (exactly one of `socket` and `tcp`, record and client modes, identity,
//! buffer) and `[syslog]` (the server URL with its transport, facility, format, client mode,
//! host name, TLS CA file, buffer).

use std::path::Path;

use toml::Spanned;

use super::super::export::{
    DEFAULT_EXPORT_BUFFER, DnstapConfig, DnstapTarget, FACILITIES, SYSLOG_PORT, SYSLOG_TLS_PORT,
    SyslogConfig, SyslogTransport, host_name,
};
use super::super::raw::{RawDnstap, RawSyslog};
use super::super::{ClientMode, RecordMode};
use super::Ctx;
use super::bounds::{self, size};
use super::query_log::{parse_client_mode, parse_record_mode};

/// `[dnstap]`; `None` when unusable (errors recorded).
pub(super) fn dnstap(
    cx: &mut Ctx<'_>,
    d: &Spanned<RawDnstap>,
    base: &Path,
) -> Option<DnstapConfig> {
    let r = d.get_ref();
    let target = match (&r.socket, &r.tcp) {
        (Some(s), None) if !s.get_ref().trim().is_empty() => {
            DnstapTarget::Unix(base.join(s.get_ref().trim()))
        }
        (Some(s), None) => {
            cx.spanned(s, "dnstap.socket: empty; expected a Unix socket path such as \"/run/pixelguard/dnstap.sock\"");
            return None;
        }
        (None, Some(t)) => match super::parse_socket_addr(t.get_ref()) {
            Some(a) => DnstapTarget::Tcp(a),
            None => {
                cx.spanned(
                    t,
                    format!(
                        "dnstap.tcp: invalid address {:?}; expected \"IP:PORT\" such as \"192.0.2.10:6000\"",
                        t.get_ref()
                    ),
                );
                return None;
            }
        },
        (Some(_), Some(t)) => {
            cx.spanned(t, "dnstap: both socket and tcp given; expected exactly one");
            return None;
        }
        (None, None) => {
            cx.spanned(
                d,
                "dnstap: no collector; expected socket = \"/run/pixelguard/dnstap.sock\" or tcp = \"IP:PORT\"",
            );
            return None;
        }
    };
    let record = match &r.record {
        None => RecordMode::Policy,
        Some(v) => match parse_record_mode(cx, "dnstap.record", v) {
            Some(RecordMode::None) => {
                cx.spanned(v, "dnstap.record: \"none\" sends nothing; expected policy or all (remove [dnstap] to turn it off)");
                RecordMode::Policy
            }
            Some(m) => m,
            None => RecordMode::Policy,
        },
    };
    let identity = match &r.identity {
        Some(i) if i.get_ref().len() > 255 => {
            cx.spanned(i, "dnstap.identity: at most 255 bytes");
            String::new()
        }
        Some(i) => i.get_ref().clone(),
        None => host_name(),
    };
    Some(DnstapConfig {
        target,
        record,
        client: client(cx, "dnstap.client", r.client.as_ref()),
        forwarder: r.forwarder,
        identity,
        buffer: buffer(cx, "dnstap.buffer", r.buffer.as_ref()),
    })
}

/// `[syslog]`; `None` when unusable (errors recorded).
pub(super) fn syslog(cx: &mut Ctx<'_>, s: &RawSyslog, base: &Path) -> Option<SyslogConfig> {
    let (server, transport) = match parse_server(s.server.get_ref()) {
        Ok(x) => x,
        Err(e) => {
            cx.spanned(
                &s.server,
                format!(
                    "syslog.server: invalid server {:?}: {e}; expected \"udp://IP:514\", \"tcp://IP:514\" or \"tls://IP:6514#NAME\"",
                    s.server.get_ref()
                ),
            );
            return None;
        }
    };
    let facility = match &s.facility {
        None => 21,
        Some(f) => match FACILITIES.iter().find(|(n, _)| *n == f.get_ref().trim()) {
            Some((_, code)) => *code,
            None => {
                cx.spanned(
                    f,
                    format!(
                        "syslog.facility: unknown facility {:?}; expected one of {}",
                        f.get_ref(),
                        FACILITIES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                21
            }
        },
    };
    if let Some(f) = &s.format
        && f.get_ref() != "rfc5424"
    {
        cx.spanned(
            f,
            format!(
                "syslog.format: unknown format {:?}; expected rfc5424",
                f.get_ref()
            ),
        );
    }
    let hostname = match &s.hostname {
        Some(h) => {
            let t = h.get_ref();
            if t.is_empty() || t.len() > 255 || !t.bytes().all(|b| (33..=126).contains(&b)) {
                cx.spanned(
                    h,
                    "syslog.hostname: expected 1 to 255 printable ASCII characters without spaces",
                );
            }
            t.clone()
        }
        None => host_name(),
    };
    let ca_certs = match &s.ca_file {
        None => Vec::new(),
        Some(f) => {
            if !matches!(transport, SyslogTransport::Tls(_)) {
                cx.spanned(f, "syslog.ca_file: only used with a tls:// server");
            }
            let path = base.join(f.get_ref());
            match super::upstream::load_ca_file(&path) {
                Ok(c) => c,
                Err(e) => {
                    cx.spanned(f, format!("syslog.ca_file: {}: {e}", path.display()));
                    Vec::new()
                }
            }
        }
    };
    Some(SyslogConfig {
        server,
        transport,
        facility,
        client: client(cx, "syslog.client", s.client.as_ref()),
        hostname,
        ca_certs,
        buffer: buffer(cx, "syslog.buffer", s.buffer.as_ref()),
    })
}

fn client(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<String>>) -> ClientMode {
    v.and_then(|v| parse_client_mode(cx, key, v))
        .unwrap_or(ClientMode::Hash)
}

fn buffer(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<usize>>) -> usize {
    let n = size(cx, key, v, DEFAULT_EXPORT_BUFFER, bounds::QUERY_LOG_BUFFER);
    if n == 0 {
        if let Some(v) = v {
            cx.spanned(v, format!("{key}: must be at least 1"));
        }
        return DEFAULT_EXPORT_BUFFER;
    }
    n
}

/// `udp://IP[:PORT]`, `tcp://IP[:PORT]`, `tls://IP[:PORT]#NAME`.
fn parse_server(s: &str) -> Result<(std::net::SocketAddr, SyslogTransport), String> {
    let (scheme, rest) = s
        .trim()
        .split_once("://")
        .ok_or_else(|| "no scheme".to_owned())?;
    let (addr, name) = match rest.split_once('#') {
        Some((a, n)) => (a, Some(n)),
        None => (rest, None),
    };
    let (transport, port) = match (scheme, name) {
        ("udp", None) => (SyslogTransport::Udp, SYSLOG_PORT),
        ("tcp", None) => (SyslogTransport::Tcp, SYSLOG_PORT),
        ("tls", Some(n)) => {
            if rustls::pki_types::ServerName::try_from(n.to_owned()).is_err() || n.is_empty() {
                return Err(format!("{n:?} is not a TLS name"));
            }
            (SyslogTransport::Tls(n.to_owned()), SYSLOG_TLS_PORT)
        }
        ("tls", None) => return Err("tls:// needs the certificate's name after '#'".into()),
        ("udp" | "tcp", Some(_)) => return Err("'#NAME' is only for tls://".into()),
        (other, _) => return Err(format!("unknown scheme {other:?}")),
    };
    let a = super::parse_socket_addr(addr)
        .or_else(|| {
            let ip: std::net::IpAddr = addr.trim_matches(['[', ']']).parse().ok()?;
            Some(std::net::SocketAddr::new(ip, port))
        })
        .ok_or_else(|| format!("{addr:?} is not an IP address (and port)"))?;
    Ok((a, transport))
}

#[cfg(test)]
mod tests {
    use super::super::super::Overrides;
    use super::super::validate;
    use super::*;

    const HEAD: &str =
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";

    fn errors(t: &str) -> String {
        match validate(
            &format!("{HEAD}{t}"),
            "t.toml",
            Path::new("/etc/pg"),
            &Overrides::default(),
        ) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn sections_default_and_are_optional() {
        let c = validate(HEAD, "t.toml", Path::new("/etc/pg"), &Overrides::default()).unwrap();
        assert!(c.dnstap.is_none() && c.syslog.is_none());
        let c = validate(
            &format!(
                "{HEAD}[dnstap]\nsocket = \"run/d.sock\"\n[syslog]\nserver = \"tcp://192.0.2.1\"\n"
            ),
            "t.toml",
            Path::new("/etc/pg"),
            &Overrides::default(),
        )
        .unwrap();
        let d = c.dnstap.unwrap();
        assert_eq!(d.target, DnstapTarget::Unix("/etc/pg/run/d.sock".into()));
        assert_eq!(
            (d.record, d.client, d.forwarder),
            (RecordMode::Policy, ClientMode::Hash, false)
        );
        assert_eq!(d.buffer, DEFAULT_EXPORT_BUFFER);
        let s = c.syslog.unwrap();
        assert_eq!(
            (s.server.port(), s.facility, s.client),
            (514, 21, ClientMode::Hash)
        );
    }

    #[test]
    fn errors_name_file_line_and_what_was_expected() {
        let e = errors("[dnstap]\nrecord = \"all\"\n");
        assert!(
            e.contains("t.toml:5:1: dnstap: no collector; expected socket"),
            "{e}"
        );
        let e = errors("[dnstap]\nsocket = \"a\"\ntcp = \"127.0.0.1:6000\"\n");
        assert!(e.contains("t.toml:7:7: dnstap: both socket and tcp"), "{e}");
        let e = errors("[dnstap]\ntcp = \"collector:6000\"\n");
        assert!(e.contains("t.toml:6:7: dnstap.tcp: invalid address"), "{e}");
        let e = errors("[dnstap]\ntcp = \"127.0.0.1:6000\"\nrecord = \"none\"\n");
        assert!(
            e.contains("t.toml:7:10: dnstap.record: \"none\" sends nothing"),
            "{e}"
        );
        let e = errors("[dnstap]\ntcp = \"127.0.0.1:6000\"\nclient = \"ip\"\n");
        assert!(
            e.contains("t.toml:7:10: dnstap.client: unknown value \"ip\"; expected hash"),
            "{e}"
        );
        let e = errors("[syslog]\nserver = \"siem:514\"\n");
        assert!(
            e.contains("t.toml:6:10: syslog.server: invalid server"),
            "{e}"
        );
        let e = errors("[syslog]\nserver = \"udp://127.0.0.1\"\nfacility = \"local9\"\n");
        assert!(
            e.contains(
                "t.toml:7:12: syslog.facility: unknown facility \"local9\"; expected one of kern"
            ),
            "{e}"
        );
        let e = errors("[syslog]\nserver = \"udp://127.0.0.1\"\nformat = \"cef\"\n");
        assert!(
            e.contains("syslog.format: unknown format \"cef\"; expected rfc5424"),
            "{e}"
        );
        let e = errors(
            "[syslog]\nserver = \"tls://127.0.0.1#siem.test\"\nca_file = \"/nonexistent/ca.pem\"\n",
        );
        assert!(
            e.contains("t.toml:7:11: syslog.ca_file: /nonexistent/ca.pem: cannot read"),
            "{e}"
        );
        let e = errors("[syslog]\nserver = \"udp://127.0.0.1\"\nbuffer = 0\n");
        assert!(e.contains("syslog.buffer: must be at least 1"), "{e}");
        let e = errors("[syslog]\nfacility = \"local5\"\n");
        assert!(e.contains("missing field `server`"), "{e}");
    }

    #[test]
    fn server_urls() {
        let (a, t) = parse_server("udp://127.0.0.1").unwrap();
        assert_eq!((a.port(), t), (514, SyslogTransport::Udp));
        let (a, t) = parse_server("tcp://[::1]:1514").unwrap();
        assert_eq!(
            (a.to_string(), t),
            ("[::1]:1514".into(), SyslogTransport::Tcp)
        );
        let (a, t) = parse_server("tls://192.0.2.1#siem.example").unwrap();
        assert_eq!(a.port(), 6514);
        assert_eq!(t, SyslogTransport::Tls("siem.example".into()));
        for bad in [
            "127.0.0.1:514",
            "tls://192.0.2.1",
            "udp://192.0.2.1#x",
            "http://192.0.2.1",
            "udp://siem.example:514",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
