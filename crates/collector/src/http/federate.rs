//! `GET /federate?match[]=...` (viewer): the latest value of every series
//! a selector matches, in the Prometheus text format with timestamps, so
//! an existing Prometheus can scrape the collector. Series whose latest
//! sample is older than five minutes (Prometheus' lookback) are left out.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;
use crate::Core;
use crate::matchers::{MatchOp, Selector};
use crate::store::SeriesId;

const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// `GET /federate`.
pub(super) async fn federate(
    State(core): State<Arc<Core>>,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let mut selectors = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "match[]" {
            selectors.push(Selector::parse(&v).map_err(|e| ApiError::bad_request(format!("match[]: {e}")))?);
        }
    }
    if selectors.is_empty() {
        return Err(ApiError::bad_request(
            "match[]: give at least one series selector, e.g. match[]={__name__=~\"host_.*\"}",
        ));
    }
    let horizon = core.clock.now_ms() - LOOKBACK_MS;
    let mut ids: Vec<SeriesId> = Vec::new();
    for s in &selectors {
        ids.extend(select(&core, s));
    }
    ids.sort_by_key(|id| id.0);
    ids.dedup();
    // metric → its series' lines, so each family is written once.
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in ids {
        let (Some(l), Some((ts, v))) = (core.store.labels(id), core.store.last(id)) else {
            continue;
        };
        if ts < horizon {
            continue;
        }
        let mut line = l.metric.clone();
        if !l.labels.is_empty() {
            line.push('{');
            for (i, (k, val)) in l.labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{k}=\"{}\"", escape(val));
            }
            line.push('}');
        }
        let _ = write!(line, " {} {ts}", value(v));
        families.entry(l.metric).or_default().push(line);
    }
    let mut text = String::new();
    for (metric, lines) in families {
        let _ = writeln!(text, "# TYPE {metric} untyped");
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    ))
}

/// The series one selector picks from the store.
fn select(core: &Core, s: &Selector) -> Vec<SeriesId> {
    let mut metric = None;
    let mut labels = Vec::new();
    let mut name_tests = Vec::new();
    for m in &s.matchers {
        match (&m.op, m.name.as_str()) {
            (MatchOp::Eq(v), "__name__") if metric.is_none() => metric = Some(v.as_str()),
            (_, "__name__") => name_tests.push(m),
            _ => labels.push(m.clone()),
        }
    }
    let ids = core.store.select(metric, &labels);
    if name_tests.is_empty() {
        return ids;
    }
    ids.into_iter()
        .filter(|id| {
            core.store
                .labels(*id)
                .is_some_and(|l| name_tests.iter().all(|m| m.matches(Some(&l.metric))))
        })
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A value as the text format writes it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
