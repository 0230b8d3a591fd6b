//! Metric and label names: what is allowed, checked the same way by the
//! agent (at config load) and the collector (on every series definition).

/// The label the collector sets from the agent's identity. Agents may not
/// send it: no agent speaks for another host.
pub const HOST_LABEL: &str = "host";

/// Longest metric name, label name or label value accepted.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest label value accepted.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Most labels one series may carry.
pub const MAX_LABELS: usize = 32;

/// Longest text a series carries (a log's last matching line), in characters.
pub const MAX_SERIES_TEXT_CHARS: usize = 240;

/// A series' text as it is sent and shown: trimmed, control characters
/// replaced by spaces, at most [`MAX_SERIES_TEXT_CHARS`] characters.
pub fn series_text(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SERIES_TEXT_CHARS)
        .collect()
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not `[a-zA-Z_:][a-zA-Z0-9_:]*` (metrics) or `[a-zA-Z_][a-zA-Z0-9_]*` (labels).
    #[error("invalid {what} {name:?}: use letters, digits and '_' and do not start with a digit")]
    Invalid {
        /// "metric name" or "label name".
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// Longer than the limit.
    #[error("{what} is {len} bytes long, more than the limit of {limit}")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

fn check(name: &str, what: &'static str, colon_ok: bool) -> Result<(), NameError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong {
            what,
            len: name.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':');
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| !c.is_ascii_digit() && ok_char(c))
        && name.chars().all(ok_char);
    if valid {
        Ok(())
    } else {
        Err(NameError::Invalid {
            what,
            name: name.to_string(),
        })
    }
}

/// Checks a metric name (`host_cpu_usage_percent`).
pub fn check_metric_name(name: &str) -> Result<(), NameError> {
    check(name, "metric name", true)
}

/// Checks a label name (`mountpoint`).
pub fn check_label_name(name: &str) -> Result<(), NameError> {
    check(name, "label name", false)
}

/// Checks a label value's length.
pub fn check_label_value(value: &str) -> Result<(), NameError> {
    if value.len() > MAX_LABEL_VALUE_BYTES {
        return Err(NameError::TooLong {
            what: "label value",
            len: value.len(),
            limit: MAX_LABEL_VALUE_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_metric_name("host_load1").is_ok());
        assert!(check_metric_name("ns:rate_5m").is_ok());
        assert!(check_metric_name("1abc").is_err());
        assert!(check_metric_name("").is_err());
        assert!(check_metric_name("a-b").is_err());
        assert!(check_label_name("a:b").is_err());
        assert!(check_label_name("_x9").is_ok());
        assert!(check_label_value(&"x".repeat(2000)).is_err());
    }
}
