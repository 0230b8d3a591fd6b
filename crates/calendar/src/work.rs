//! Durations in wall-clock or working time: `"4h"`, `"1 workday"`,
//! `"3 workdays"`, `"4 workhours"`.

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
    /// Whole working days: each is one day's working hours of working time.
    WorkDays(u32),
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected e.g. \"4h\", \"30m\", \"1 workday\", \"3 workdays\" or \"4 workhours\""
)]
pub struct WorkDurationError(pub String);

impl WorkDuration {
    /// Parses a duration as written in a policy.
    pub fn parse(s: &str) -> Result<WorkDuration, WorkDurationError> {
        let t = s.trim();
        let err = || WorkDurationError(s.to_string());
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let unit = t[digits..].trim();
        let work = match unit {
            "workday" | "workdays" => Some(true),
            "workhour" | "workhours" => Some(false),
            _ => None,
        };
        match work {
            Some(days) => {
                let n: u32 = t[..digits].parse().map_err(|_| err())?;
                if n == 0 {
                    return Err(err());
                }
                if days {
                    Ok(WorkDuration::WorkDays(n))
                } else {
                    n.checked_mul(60).map(WorkDuration::WorkMinutes).ok_or_else(err)
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
            WorkDuration::WorkMinutes(m) => write!(f, "{m} working minutes"),
            WorkDuration::WorkDays(n) => write!(f, "{n} workday{}", if *n == 1 { "" } else { "s" }),
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
        assert_eq!(WorkDuration::parse("1 workday"), Ok(WorkDuration::WorkDays(1)));
        assert_eq!(WorkDuration::parse("3 workdays"), Ok(WorkDuration::WorkDays(3)));
        assert_eq!(
            WorkDuration::parse("4 workhours"),
            Ok(WorkDuration::WorkMinutes(240))
        );
        assert!(WorkDuration::parse("0 workdays").is_err());
        assert!(WorkDuration::parse("two workdays").is_err());
        assert!(WorkDuration::parse("3 weeks").is_err());
        assert_eq!(WorkDuration::WorkDays(3).to_string(), "3 workdays");
        assert_eq!(WorkDuration::WorkMinutes(240).to_string(), "4 workhours");
    }
}
