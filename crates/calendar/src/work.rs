//! Durations in wall-clock or working time: `"4h"`, `"1 workday"`,
//! `"3 workdays"`, `"0.5 workday"`, `"4 workhours"`, `"1.5 workhours"`.

use std::fmt;
use std::time::Duration;

use watchpost_model::{format_duration, parse_duration};

/// How long until a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkDuration {
    /// Around the clock.
    Wall(Duration),
    /// Working hours only (minutes of working time).
    WorkMinutes(u32),
    /// Working days, in thousandths: a working day is the sum of one
    /// working day's hours on the calendar it is counted on.
    WorkDayThousandths(u32),
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected e.g. \"4h\", \"30m\", \"1 workday\", \"0.5 workday\", \"3 workdays\" or \"1.5 workhours\""
)]
pub struct WorkDurationError(pub String);

/// `"1.5"` in thousandths (1500); at most three decimals.
fn thousandths(number: &str) -> Option<u64> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    whole.checked_mul(1000)?.checked_add(frac)
}

impl WorkDuration {
    /// `n` whole working days.
    pub fn work_days(n: u32) -> WorkDuration {
        WorkDuration::WorkDayThousandths(n.saturating_mul(1000))
    }

    /// Parses a duration as written in a policy.
    pub fn parse(s: &str) -> Result<WorkDuration, WorkDurationError> {
        let t = s.trim();
        let err = || WorkDurationError(s.to_string());
        let number = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let unit = t[number..].trim();
        let work = match unit {
            "workday" | "workdays" => Some(true),
            "workhour" | "workhours" => Some(false),
            _ => None,
        };
        match work {
            Some(days) => {
                let n = thousandths(&t[..number]).filter(|n| *n > 0).ok_or_else(err)?;
                if days {
                    u32::try_from(n)
                        .map(WorkDuration::WorkDayThousandths)
                        .map_err(|_| err())
                } else {
                    // Thousandths of an hour to whole minutes: 1.5 h is 90 min.
                    let minutes = n.checked_mul(60).ok_or_else(err)?;
                    if minutes % 1000 != 0 {
                        return Err(err());
                    }
                    u32::try_from(minutes / 1000)
                        .map(WorkDuration::WorkMinutes)
                        .map_err(|_| err())
                }
            }
            None => parse_duration(t).map(WorkDuration::Wall).map_err(|_| err()),
        }
    }
}

impl fmt::Display for WorkDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkDuration::Wall(d) => f.write_str(&format_duration(*d)),
            WorkDuration::WorkMinutes(m) if m % 60 == 0 => {
                write!(f, "{} workhour{}", m / 60, if *m == 60 { "" } else { "s" })
            }
            WorkDuration::WorkMinutes(m) if m % 6 == 0 => write!(f, "{} workhours", f64::from(*m) / 60.0),
            WorkDuration::WorkMinutes(m) => write!(f, "{m} working minutes"),
            WorkDuration::WorkDayThousandths(1000) => f.write_str("1 workday"),
            WorkDuration::WorkDayThousandths(t) => write!(f, "{} workdays", f64::from(*t) / 1000.0),
        }
    }
}

impl<'de> serde::Deserialize<'de> for WorkDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WorkDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            WorkDuration::parse("4h"),
            Ok(WorkDuration::Wall(Duration::from_secs(4 * 3600)))
        );
        assert_eq!(WorkDuration::parse("1 workday"), Ok(WorkDuration::work_days(1)));
        assert_eq!(WorkDuration::parse("3 workdays"), Ok(WorkDuration::work_days(3)));
        assert_eq!(
            WorkDuration::parse("0.5 workday"),
            Ok(WorkDuration::WorkDayThousandths(500))
        );
        assert_eq!(
            WorkDuration::parse("1.5 workhours"),
            Ok(WorkDuration::WorkMinutes(90))
        );
        assert_eq!(
            WorkDuration::parse(".25 workhour"),
            Ok(WorkDuration::WorkMinutes(15))
        );
        assert!(
            WorkDuration::parse("0.0001 workday").is_err(),
            "at most three decimals"
        );
        assert!(
            WorkDuration::parse("1.01 workhours").is_err(),
            "not a whole minute"
        );
        assert!(WorkDuration::parse("0.0 workdays").is_err());
        assert!(WorkDuration::parse("1..5 workdays").is_err());
        assert_eq!(WorkDuration::WorkDayThousandths(500).to_string(), "0.5 workdays");
        assert_eq!(WorkDuration::WorkMinutes(90).to_string(), "1.5 workhours");
        assert_eq!(
            WorkDuration::parse("4 workhours"),
            Ok(WorkDuration::WorkMinutes(240))
        );
        assert!(WorkDuration::parse("0 workdays").is_err());
        assert!(WorkDuration::parse("two workdays").is_err());
        assert!(WorkDuration::parse("3 weeks").is_err());
        assert_eq!(WorkDuration::work_days(3).to_string(), "3 workdays");
        assert_eq!(WorkDuration::WorkMinutes(240).to_string(), "4 workhours");
    }
}
