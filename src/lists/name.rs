//! Domain-name normalisation for list entries: Unicode (IDN) to punycode, lower case, no trailing
//! dot, and the validity rules every list format shares. Owns nothing else; every parser and the
//! catalogue go through [`normalize`] so one name is spelled one way everywhere in pixelguard.

use std::borrow::Cow;

/// Why a name was rejected. The variants are stable: they become "skipped by reason" counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum NameError {
    /// Nothing left after trimming.
    #[error("empty name")]
    Empty,
    /// More than 253 characters in presentation form.
    #[error("name longer than 253 characters")]
    TooLong,
    /// A label longer than 63 characters, or an empty label (`a..b`, `.a`).
    #[error("empty label or label longer than 63 characters")]
    BadLabel,
    /// A character outside letters, digits, `-` and `_`.
    #[error("invalid character")]
    BadChar,
    /// A label starts or ends with `-`.
    #[error("label starts or ends with a hyphen")]
    Hyphen,
    /// Unicode that IDNA (UTS 46) rejects.
    #[error("invalid internationalised name")]
    Idna,
    /// A bare IP address, which is not a domain name.
    #[error("IP address, not a domain name")]
    IpAddress,
}

/// Normalises a name as written in a list into pixelguard's canonical form: ASCII (punycode for
/// IDNs), lower case, no trailing dot. Borrows when the input is already canonical, which is the
/// common case and keeps loading a million-name list free of per-line allocation.
///
/// ```
/// use pixelguard::lists::name::normalize;
/// assert_eq!(normalize("Connect.Facebook.NET.").unwrap(), "connect.facebook.net");
/// assert_eq!(normalize("bücher.example").unwrap(), "xn--bcher-kva.example");
/// assert!(normalize("a..b").is_err());
/// ```
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, NameError> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let name: Cow<'_, str> = if trimmed.is_ascii() {
        if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(trimmed.to_ascii_lowercase())
        } else {
            Cow::Borrowed(trimmed)
        }
    } else {
        match idna::domain_to_ascii(trimmed) {
            Ok(ascii) => Cow::Owned(ascii),
            Err(_) => return Err(NameError::Idna),
        }
    };
    validate(&name)?;
    Ok(name)
}

/// Checks a name already in canonical form (ASCII, lower case, no trailing dot).
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 253 {
        return Err(NameError::TooLong);
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() || name.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(NameError::IpAddress);
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(NameError::BadLabel);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(NameError::BadChar);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("example.com", Ok("example.com")),
            ("  Example.COM.  ", Ok("example.com")),
            ("_dns.resolver.arpa", Ok("_dns.resolver.arpa")),
            ("münchen.de", Ok("xn--mnchen-3ya.de")),
            ("", Err(NameError::Empty)),
            (".", Err(NameError::Empty)),
            ("a..b", Err(NameError::BadLabel)),
            (".a", Err(NameError::BadLabel)),
            ("-a.com", Err(NameError::Hyphen)),
            ("a b.com", Err(NameError::BadChar)),
            ("a/b.com", Err(NameError::BadChar)),
            ("10.1.2.3", Err(NameError::IpAddress)),
            ("::1", Err(NameError::IpAddress)),
        ];
        for (raw, want) in cases {
            let got = normalize(raw).map(|c| c.into_owned());
            assert_eq!(got, want.map(str::to_owned), "input {raw:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(normalize(&long_label), Err(NameError::BadLabel));
        let long_name = ["abcdefghi"; 26].join(".");
        assert_eq!(normalize(&long_name), Err(NameError::TooLong));
    }
}
