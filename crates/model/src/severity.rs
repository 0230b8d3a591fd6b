//! Fault severity as the users' O&M rules class it: 紧急 / 一般 / 轻微.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How serious a fault is. Ordered: `Minor < General < Urgent`, so a fault's
/// severity can only be raised by taking the max. Read in English or in
/// Chinese (`紧急`, `一般`, `轻微`); written in English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 轻微: respond within a working day, resolve within three.
    #[serde(alias = "轻微")]
    Minor,
    /// 一般: respond within 4 h, resolve within a working day.
    #[serde(alias = "一般")]
    General,
    /// 紧急: respond within 1 h, resolve within 4 h, around the clock.
    #[serde(alias = "紧急")]
    Urgent,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 3] = [Severity::Minor, Severity::General, Severity::Urgent];

    /// The lowercase name used in configs, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::General => "general",
            Severity::Urgent => "urgent",
        }
    }

    /// The Chinese name: 紧急, 一般, 轻微.
    pub fn chinese(self) -> &'static str {
        match self {
            Severity::Minor => "轻微",
            Severity::General => "一般",
            Severity::Urgent => "紧急",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is none of `urgent`, `general`, `minor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected \"urgent\", \"general\" or \"minor\" (紧急, 一般, 轻微)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "minor" | "轻微" => Ok(Severity::Minor),
            "general" | "一般" => Ok(Severity::General),
            "urgent" | "紧急" => Ok(Severity::Urgent),
            other => Err(UnknownSeverity(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_are_read_too() {
        assert_eq!("紧急".parse::<Severity>(), Ok(Severity::Urgent));
        assert_eq!("一般".parse::<Severity>(), Ok(Severity::General));
        assert_eq!("轻微".parse::<Severity>(), Ok(Severity::Minor));
        let s: Severity = serde_json::from_str("\"紧急\"").expect("alias");
        assert_eq!(s, Severity::Urgent);
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"urgent\"");
    }

    #[test]
    fn ordered_and_round_trips() {
        assert!(Severity::Minor < Severity::General && Severity::General < Severity::Urgent);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert!("critical".parse::<Severity>().is_err());
    }
}
