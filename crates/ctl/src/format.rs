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

/// The zone times are shown in (the collector's calendar zone); unset
/// with `--utc`, `--json` or when the collector does not say.
static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();

/// Shows times in `zone` from now on.
pub fn show_times_in(zone: jiff::tz::TimeZone) {
    let _ = ZONE.set(zone);
}

fn shown(t: &str, format: &str) -> String {
    match (ZONE.get(), t.parse::<jiff::Timestamp>()) {
        (Some(zone), Ok(ts)) => ts.to_zoned(zone.clone()).strftime(format).to_string(),
        _ => t.to_string(),
    }
}

/// An RFC 3339 time as people read clocks: `2026-12-02 09:30 +08:00` in
/// the calendar's zone (as given with `--utc`).
pub fn when(t: &str) -> String {
    shown(t, "%Y-%m-%d %H:%M %:z")
}

/// [`when`] with seconds, for timelines and last-seen times.
pub fn when_exact(t: &str) -> String {
    shown(t, "%Y-%m-%d %H:%M:%S %:z")
}

/// [`when`] of an optional time, `none` when absent.
pub fn when_or(t: Option<&String>, none: &str) -> String {
    t.map_or_else(|| none.to_string(), |t| when(t))
}

/// A timeline as a table: when, who, what, the message.
pub fn timeline_table(events: &[watchpost_model::api::FaultEvent]) -> Table {
    let mut t = Table::new(&["  AT", "ACTOR", "EVENT", "MESSAGE"]);
    for e in events {
        t.row(vec![
            format!("  {}", when_exact(&e.at)),
            e.actor.clone(),
            e.kind.clone(),
            e.message.clone(),
        ]);
    }
    t
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn utc_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// A sample's time: in the calendar's zone with milliseconds, or [`utc_time`].
pub fn sample_time(ms: i64) -> String {
    shown(&utc_time(ms), "%Y-%m-%d %H:%M:%S%.3f %:z")
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
