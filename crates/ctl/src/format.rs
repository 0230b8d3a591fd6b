//! How answers are shown: tables for people (`table`), pretty JSON with
//! `--json`, and the small text forms of labels, values and times.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::table::Table;

/// Who acts with an open API: --by, WATCHPOST_USER, or the login name
/// (a collector with users records the signed-in user instead).
pub fn actor(by: Option<String>) -> anyhow::Result<String> {
    Ok(by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_default())
}

/// `label=value` command-line matchers as query parameters.
pub fn matcher_params(matchers: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    matchers
        .iter()
        .map(|m| match m.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("matcher {m:?}: expected label=value (value may start with !, ~ or !~)"),
        })
        .collect()
}

/// `k=v,k=v` as labels.
pub fn parse_labels(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => bail!("label {p:?}: expected k=v"),
        })
        .collect()
}

/// `k=v,k=v`, leaving out the labels in `skip`.
pub fn labels_text(labels: &BTreeMap<String, String>, skip: &[&str]) -> String {
    labels
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A sample value: whole numbers without decimals, others with two; `-` for none.
pub fn value_text(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

/// Prints `value` as JSON with `--json`, else the table `table` builds.
#[allow(clippy::print_stdout)]
pub fn emit<T: serde::Serialize>(json: bool, value: &T, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", table().render());
    }
    Ok(())
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn utc_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn matchers() {
        assert_eq!(
            matcher_params(&["a=!b".into()]).expect("ok"),
            vec![("a".to_string(), "!b".to_string())]
        );
        assert!(matcher_params(&["ab".into()]).is_err());
    }
}
