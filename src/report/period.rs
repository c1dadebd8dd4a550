//! The period a report covers: `[from, to)` in UTC, from `--from` / `--to` (a date or an RFC 3339
//! time), the last [`DEFAULT_DAYS`](super::DEFAULT_DAYS) days, or the previous calendar month.
//! Dates are parsed and printed by `humantime` (RFC 3339); only the month arithmetic is ours.

use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_secs(86_400);

/// A half-open interval of time: `from` included, `to` excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First instant in the period.
    pub from: SystemTime,
    /// First instant after the period.
    pub to: SystemTime,
}

impl Period {
    /// The period of `--from` / `--to`; the defaults are "now" and 30 days before `to`.
    pub fn from_args(
        from: Option<&str>,
        to: Option<&str>,
        now: SystemTime,
    ) -> Result<Self, String> {
        let to = match to {
            Some(t) => parse_bound(t, true).map_err(|e| format!("--to {t:?}: {e}"))?,
            None => now,
        };
        let from = match from {
            Some(f) => parse_bound(f, false).map_err(|e| format!("--from {f:?}: {e}"))?,
            None => to
                .checked_sub(DAY * u32::try_from(super::DEFAULT_DAYS).unwrap_or(30))
                .unwrap_or(SystemTime::UNIX_EPOCH),
        };
        if from >= to {
            return Err(format!(
                "the period is empty: --from {} is not before --to {}",
                stamp(from),
                stamp(to)
            ));
        }
        Ok(Self { from, to })
    }

    /// Whether `t` lies in the period.
    pub fn contains(&self, t: SystemTime) -> bool {
        self.from <= t && t < self.to
    }
}

/// A bound given as `YYYY-MM-DD` (midnight UTC; with `end_of_day`, the midnight after, so the
/// day is included) or as an RFC 3339 time (taken as is).
pub fn parse_bound(text: &str, end_of_day: bool) -> Result<SystemTime, String> {
    let t = text.trim();
    let is_date = t.len() == 10 && t.as_bytes().get(4) == Some(&b'-');
    if is_date {
        let day = humantime::parse_rfc3339(&format!("{t}T00:00:00Z"))
            .map_err(|e| format!("expected a date YYYY-MM-DD: {e}"))?;
        return Ok(if end_of_day { day + DAY } else { day });
    }
    humantime::parse_rfc3339_weak(t).map_err(|e| {
        format!("expected a date YYYY-MM-DD or an RFC 3339 time (2026-11-30T12:00:00Z): {e}")
    })
}

/// The RFC 3339 form of a time, to the second.
pub fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The calendar month (UTC) before the one `now` lies in, and its name `YYYY-MM`.
pub fn previous_month(now: SystemTime) -> Result<(Period, String), String> {
    let s = stamp(now);
    let year: i32 = s
        .get(..4)
        .and_then(|y| y.parse().ok())
        .ok_or_else(|| format!("cannot read the year of {s}"))?;
    let month: u32 = s
        .get(5..7)
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the month of {s}"))?;
    let (py, pm) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    let from = parse_bound(&format!("{py:04}-{pm:02}-01"), false)?;
    let to = parse_bound(&format!("{year:04}-{month:02}-01"), false)?;
    Ok((Period { from, to }, format!("{py:04}-{pm:02}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn dates_include_the_whole_day_at_the_end() {
        let p = Period::from_args(
            Some("2026-11-01"),
            Some("2026-11-30"),
            at("2026-12-04T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(p.from, at("2026-11-01T00:00:00Z"));
        assert_eq!(p.to, at("2026-12-01T00:00:00Z"));
        assert!(p.contains(at("2026-11-30T23:59:59Z")));
        assert!(!p.contains(at("2026-12-01T00:00:00Z")));
        let p = Period::from_args(None, Some("2026-11-30T12:00:00Z"), SystemTime::now()).unwrap();
        assert_eq!(p.from, at("2026-10-31T12:00:00Z"));
    }

    #[test]
    fn bad_bounds_are_refused_with_the_expected_form() {
        let e = Period::from_args(Some("30/11/2026"), None, SystemTime::now()).unwrap_err();
        assert!(
            e.contains("--from \"30/11/2026\"") && e.contains("YYYY-MM-DD"),
            "{e}"
        );
        let e = Period::from_args(Some("2026-12-02"), Some("2026-12-01"), SystemTime::now())
            .unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert!(parse_bound("2026-13-01", false).is_err());
    }

    #[test]
    fn previous_month_wraps_the_year() {
        let (p, m) = previous_month(at("2027-01-01T00:05:00Z")).unwrap();
        assert_eq!(m, "2026-12");
        assert_eq!(p.from, at("2026-12-01T00:00:00Z"));
        assert_eq!(p.to, at("2027-01-01T00:00:00Z"));
        let (_, m) = previous_month(at("2026-03-31T23:00:00Z")).unwrap();
        assert_eq!(m, "2026-02");
    }
}
