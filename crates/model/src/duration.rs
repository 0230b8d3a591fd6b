//! Human durations in configs and on the command line: `"500ms"`, `"10s"`,
//! `"5m"`, `"1h30m"`, `"2d"`. Wall-clock units only; working-time units
//! belong to the working calendar.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration: expected e.g. \"10s\", \"5m\", \"1h30m\"")]
    Empty,
    /// A number without a unit, or text that is not a number.
    #[error("invalid duration {0:?}: expected numbers with units ms, s, m, h, d (e.g. \"1h30m\")")]
    Invalid(String),
    /// A unit we do not know.
    #[error("invalid duration {input:?}: unknown unit {unit:?} (use ms, s, m, h or d)")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// Larger than we can represent.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a duration such as `"10s"` or `"1h30m"`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Invalid(input.to_string()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(input.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = rest[unit_len..].trim_start();
        let factor_ms = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(DurationError::Invalid(input.to_string())),
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        total_ms = number
            .checked_mul(factor_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow(input.to_string()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A clock offset in milliseconds as logs, tables and summaries show it,
/// signed, in seconds to the millisecond: `+7200.004s`, `-0.250s`.
pub fn format_offset(offset_ms: i64) -> String {
    format!("{:+.3}s", offset_ms as f64 / 1000.0)
}

/// Formats a duration the way [`parse_duration`] reads it (`"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 1m 5s "), Ok(Duration::from_secs(65)));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("10"), Err(DurationError::Invalid("10".into())));
        assert_eq!(parse_duration("s"), Err(DurationError::Invalid("s".into())));
        assert!(matches!(
            parse_duration("5 weeks"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_back() {
        for s in ["1h30m", "10s", "500ms", "2d", "1m5s"] {
            assert_eq!(format_duration(parse_duration(s).expect("valid")), s);
        }
    }
}

/// A duration read from a config file as a human string (`"10s"`). Its
/// `Deserialize` refuses bad strings with a serde error, so the TOML parser
/// reports the file position of the bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}
