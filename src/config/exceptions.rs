//! The typed `[[exceptions]]` entries: a time-boxed allow for some zones, by catalogue vendor
//! and/or by name, with the reason and ticket that justify it. An exception has no open end:
//! `until` is required, and the policy stops applying it at that instant without a reload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before its end an exception counts as "expiring" (`check` warns, the
/// `pixelguard_exceptions{state="expiring"}` gauge counts it).
pub const EXPIRING_WITHIN: Duration = Duration::from_secs(14 * 86_400);

/// One `[[exceptions]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionConfig {
    /// The zones it applies in (each a configured zone).
    pub zones: Vec<String>,
    /// Catalogue vendor ids whose block rules it lifts.
    pub vendors: Vec<String>,
    /// Names (and their subdomains) whose block rules it lifts; lower case, no trailing dot.
    pub names: Vec<String>,
    /// When it stops applying (a date in the config means the end of that day, UTC).
    pub until: SystemTime,
    /// Why it exists.
    pub reason: String,
    /// The change or incident ticket, if given.
    pub ticket: Option<String>,
    /// Its position in the config's `[[exceptions]]`, from 0.
    pub index: usize,
}

/// Where an exception stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionState {
    /// In force, and for more than [`EXPIRING_WITHIN`].
    Active,
    /// In force, ending within [`EXPIRING_WITHIN`].
    Expiring,
    /// Past its `until`: no longer applied.
    Expired,
}

impl ExceptionState {
    /// Every state, in gauge order.
    pub const ALL: [ExceptionState; 3] = [Self::Active, Self::Expiring, Self::Expired];

    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
        }
    }
}

impl ExceptionConfig {
    /// The label that names it in the query log and exports: its `ticket` when given, else
    /// `exceptions[N]`.
    pub fn label(&self) -> String {
        match &self.ticket {
            Some(t) => t.clone(),
            None => format!("exceptions[{}]", self.index),
        }
    }

    /// `until` as whole seconds since the Unix epoch (0 for a time before it).
    pub fn until_unix(&self) -> u64 {
        unix(self.until)
    }

    /// Its state at `now`.
    pub fn state(&self, now: SystemTime) -> ExceptionState {
        state_at(self.until_unix(), unix(now))
    }

    /// Whole days left at `now` (0 on its last day and after it).
    pub fn days_left(&self, now: SystemTime) -> u64 {
        self.until_unix().saturating_sub(unix(now)) / 86_400
    }
}

/// The state of an exception ending at `until` (Unix seconds) at `now` (Unix seconds).
pub fn state_at(until: u64, now: u64) -> ExceptionState {
    if now >= until {
        ExceptionState::Expired
    } else if until - now <= EXPIRING_WITHIN.as_secs() {
        ExceptionState::Expiring
    } else {
        ExceptionState::Active
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Parses `until`: a date (`2027-03-31`, meaning the end of that day, UTC) or an RFC 3339 time
/// (`2027-03-31T17:00:00Z`, `2027-03-31T17:00:00+01:00`).
pub fn parse_until(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let is_date = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_date {
        let start = humantime::parse_rfc3339(&format!("{s}T00:00:00Z")).ok()?;
        return start.checked_add(Duration::from_secs(86_400));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s)
        && (s.ends_with('Z') || s.ends_with('z'))
    {
        return Some(t);
    }
    parse_offset(s)
}

/// An RFC 3339 time with a numeric offset (`+01:00`), which humantime does not take.
fn parse_offset(s: &str) -> Option<SystemTime> {
    let (head, tail) = s.split_at(s.len().checked_sub(6)?);
    let sign = match tail.as_bytes().first()? {
        b'+' => 1i64,
        b'-' => -1i64,
        _ => return None,
    };
    let (h, m) = tail.get(1..)?.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let local = humantime::parse_rfc3339_weak(head).ok()?;
    let offset = sign * (h * 3600 + m * 60);
    if offset >= 0 {
        local.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    } else {
        local.checked_add(Duration::from_secs(offset.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> u64 {
        unix(humantime::parse_rfc3339(s).unwrap())
    }

    #[test]
    fn until_takes_dates_and_rfc3339_times() {
        let d = parse_until("2027-03-31").unwrap();
        assert_eq!(
            unix(d),
            at("2027-04-01T00:00:00Z"),
            "a date is the end of that day"
        );
        let t = parse_until("2027-03-31T17:00:00Z").unwrap();
        assert_eq!(unix(t), at("2027-03-31T17:00:00Z"));
        let o = parse_until("2027-03-31T17:00:00+01:00").unwrap();
        assert_eq!(unix(o), at("2027-03-31T16:00:00Z"));
        let o = parse_until("2027-03-31T17:00:00-02:30").unwrap();
        assert_eq!(unix(o), at("2027-03-31T19:30:00Z"));
        for bad in [
            "",
            "tomorrow",
            "2027-3-31",
            "2027-02-30",
            "2027-03-31T17:00:00",
            "31/03/2027",
        ] {
            assert!(parse_until(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn states_and_labels() {
        let mut e = ExceptionConfig {
            zones: vec!["hr".into()],
            vendors: vec!["linkedin".into()],
            names: Vec::new(),
            until: UNIX_EPOCH + Duration::from_secs(100 * 86_400),
            reason: "campaign".into(),
            ticket: None,
            index: 2,
        };
        assert_eq!(e.label(), "exceptions[2]");
        e.ticket = Some("INC-4411".into());
        assert_eq!(e.label(), "INC-4411");
        let day = |d: u64| UNIX_EPOCH + Duration::from_secs(d * 86_400);
        assert_eq!(e.state(day(10)), ExceptionState::Active);
        assert_eq!(e.state(day(90)), ExceptionState::Expiring);
        assert_eq!(e.days_left(day(90)), 10);
        assert_eq!(e.state(day(100)), ExceptionState::Expired);
        assert_eq!(e.days_left(day(120)), 0);
    }
}
