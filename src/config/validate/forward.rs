//! Checks of `[forward.NAME]` (forward rules): the rule name (a bounded `[a-z0-9_-]` word, not
//! `default`, which labels `[upstream]`), the domains (valid names, normalised to lower case
//! without the trailing dot, each in one rule only), the servers (the `upstream.servers` parser)
//! and timeout, deadline and strategy (bounded as `[upstream]`'s, defaulting to its values).

use std::collections::BTreeMap;

use toml::Spanned;

use super::super::raw::RawForward;
use super::super::{
    DEFAULT_GROUP, ForwardRule, MAX_FORWARD_DOMAINS, MAX_FORWARD_NAME_LEN, MAX_FORWARD_RULES,
    Strategy, UpstreamConfig, UpstreamServer,
};
use super::Ctx;
use super::bounds::{self, duration};

/// `[forward.*]`, in name order. `upstream` gives the defaults of timeout, deadline and
/// strategy.
pub(super) fn forwards(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<String, Spanned<RawForward>>,
    upstream: &UpstreamConfig,
) -> Vec<ForwardRule> {
    let mut out = Vec::new();
    // Domain → the rule that has it, to report a domain in two rules naming both.
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (i, (name, r)) in raw.iter().enumerate() {
        let key = format!("forward.{name}");
        if i == MAX_FORWARD_RULES {
            cx.spanned(
                r,
                format!("{key}: too many forward rules; at most {MAX_FORWARD_RULES}"),
            );
        }
        check_name(cx, name, r);
        let fr = r.get_ref();
        if fr.domains.is_empty() {
            cx.spanned(
                r,
                format!("{key}.domains: missing or empty; a forward rule needs at least one domain, e.g. domains = [\"corp.example\"]"),
            );
        }
        if fr.domains.len() > MAX_FORWARD_DOMAINS {
            cx.spanned(
                r,
                format!(
                    "{key}.domains: at most {MAX_FORWARD_DOMAINS} domains in one rule, got {}",
                    fr.domains.len()
                ),
            );
        }
        let mut domains = Vec::new();
        for (j, d) in fr.domains.iter().enumerate() {
            match normalise_domain(d.get_ref()) {
                Ok(n) => {
                    if let Some(other) = owner.get(&n) {
                        if other == name {
                            cx.spanned(d, format!("{key}.domains[{j}]: {n:?} is listed twice in this rule"));
                        } else {
                            cx.spanned(d, format!("{key}.domains[{j}]: {n:?} is already in forward rule {other:?}; a domain belongs to one rule (forward.{other} and forward.{name})"));
                        }
                    } else {
                        owner.insert(n.clone(), name.clone());
                        domains.push(n);
                    }
                }
                Err(why) => cx.spanned(
                    d,
                    format!("{key}.domains[{j}]: invalid domain {:?}: {why}; expected a DNS name such as \"corp.example\" or \"10.in-addr.arpa\"", d.get_ref()),
                ),
            }
        }
        if fr.servers.is_empty() {
            cx.spanned(
                r,
                format!("{key}.servers: missing or empty; a forward rule needs at least one server, e.g. servers = [\"10.1.0.10\"]"),
            );
        }
        let mut servers = Vec::new();
        for (j, s) in fr.servers.iter().enumerate() {
            match UpstreamServer::parse(s.get_ref()) {
                Ok(u) => servers.push(u),
                Err(e) => cx.spanned(
                    s,
                    format!("{key}.servers[{j}]: invalid server {:?}: {e}; expected \"IP:PORT\", \"IP\", \"tls://IP:PORT#NAME\" or \"https://IP:PORT/dns-query#NAME\"", s.get_ref()),
                ),
            }
        }
        let timeout = duration(
            cx,
            &format!("{key}.timeout"),
            fr.timeout.as_ref(),
            upstream.timeout,
            bounds::UPSTREAM_TIMEOUT,
        );
        let deadline = duration(
            cx,
            &format!("{key}.deadline"),
            fr.deadline.as_ref(),
            upstream.deadline,
            bounds::UPSTREAM_DEADLINE,
        );
        if timeout.is_zero() || deadline.is_zero() {
            cx.spanned(r, format!("{key}: timeout and deadline must be above zero"));
        }
        let strategy = match &fr.strategy {
            None => upstream.strategy,
            Some(s) => match s.get_ref().as_str() {
                "ordered" => Strategy::Ordered,
                "fastest" => Strategy::Fastest,
                other => {
                    cx.spanned(
                        s,
                        format!("{key}.strategy: unknown strategy {other:?}; expected ordered or fastest"),
                    );
                    upstream.strategy
                }
            },
        };
        out.push(ForwardRule {
            name: name.clone(),
            domains,
            servers,
            timeout,
            deadline: deadline.max(timeout),
            strategy,
        });
    }
    out
}

/// A rule name is a metric label value and a word in messages: bounded, plain, not `default`.
fn check_name(cx: &mut Ctx<'_>, name: &str, r: &Spanned<RawForward>) {
    if name == DEFAULT_GROUP {
        cx.spanned(
            r,
            format!("forward.{DEFAULT_GROUP}: the name {DEFAULT_GROUP:?} is reserved (it labels [upstream] in metrics and explain); choose another name"),
        );
    } else if name.is_empty()
        || name.len() > MAX_FORWARD_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        cx.spanned(
            r,
            format!("forward.{name:?}: invalid rule name; expected 1 to {MAX_FORWARD_NAME_LEN} characters of a-z, 0-9, '_' and '-'"),
        );
    }
}

/// `Corp.Example.` → `corp.example`: lower case, no trailing dot; labels of letters, digits,
/// `-` and `_` (`_msdcs`), at most 63 bytes each and 253 in all; never the root.
pub(super) fn normalise_domain(s: &str) -> Result<String, &'static str> {
    let t = s.trim();
    let t = t.strip_suffix('.').unwrap_or(t);
    if t.is_empty() {
        return Err("the root cannot be a forward domain (use [upstream] for everything else)");
    }
    if t.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in t.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-' and '_' are allowed in a label");
        }
    }
    Ok(t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalise_domain;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(normalise_domain("Corp.Example.").unwrap(), "corp.example");
        assert_eq!(
            normalise_domain("_msdcs.corp.example").unwrap(),
            "_msdcs.corp.example"
        );
        assert_eq!(
            normalise_domain("10.in-addr.arpa").unwrap(),
            "10.in-addr.arpa"
        );
        for bad in [".", "", "a..b", "a b.example", &"x".repeat(64), "é.example"] {
            assert!(normalise_domain(bad).is_err(), "{bad:?}");
        }
    }
}
