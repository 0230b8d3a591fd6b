//! Metrics: `series` (latest values) and `query` (points).

use watchpost_model::api::{Series, SeriesPoints};

use crate::client::Client;
use crate::format::{emit, labels_text, matcher_params, sample_time, utc_time, value_text, when};
use crate::table::Table;

/// `series [--metric M] [MATCHERS]`.
pub async fn series(
    client: &Client,
    json: bool,
    metric: Option<String>,
    matchers: Vec<String>,
) -> anyhow::Result<()> {
    if metric.is_none() && matchers.is_empty() {
        // Nothing selected: what there is to select.
        let names: Vec<watchpost_model::api::MetricName> = client.get("/api/v1/metric-names", &[]).await?;
        return emit(json, &names, || {
            let mut t = Table::new(&["METRIC", "SERIES"]);
            for n in &names {
                t.row(vec![n.metric.clone(), n.series.to_string()]);
            }
            t
        });
    }
    let mut q = matcher_params(&matchers)?;
    if let Some(m) = metric {
        q.push(("metric".into(), m));
    }
    let series: Vec<Series> = client.get("/api/v1/series", &q).await?;
    emit(json, &series, || {
        let mut t = Table::new(&["METRIC", "HOST", "LABELS", "VALUE", "AGE"]);
        let now = jiff::Timestamp::now().as_millisecond();
        for s in &series {
            t.row(vec![
                s.metric.clone(),
                s.labels.get("host").cloned().unwrap_or_default(),
                labels_text(&s.labels, &["host"]),
                value_text(s.last_value),
                s.last_timestamp_ms.map_or("-".into(), |ts| {
                    format!("{:.0}s", (now - ts).max(0) as f64 / 1000.0)
                }),
            ]);
        }
        t
    })
}

/// `query --metric M [--since S] [--until U] [--step STEP] [MATCHERS]`.
#[allow(clippy::print_stdout)]
pub async fn query(
    client: &Client,
    json: bool,
    metric: String,
    (since, until): (String, Option<String>),
    step: String,
    matchers: Vec<String>,
) -> anyhow::Result<()> {
    let mut q = matcher_params(&matchers)?;
    q.push(("metric".into(), metric));
    q.push(("since".into(), since));
    if let Some(u) = until {
        q.push(("until".into(), u));
    }
    q.push(("step".into(), step));
    let series: Vec<SeriesPoints> = client.get("/api/v1/query", &q).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&series)?);
        return Ok(());
    }
    for s in &series {
        let step = if s.step.is_empty() { "raw" } else { s.step.as_str() };
        println!("{}{{{}}}  step {step}", s.metric, labels_text(&s.labels, &[]));
        for m in &s.missing {
            println!(
                "  MISSING {} to {}: {} was damaged and quarantined",
                sample_time(m.from_ms),
                sample_time(m.until_ms),
                m.file
            );
        }
        if step == "raw" {
            let mut t = Table::new(&["  TIME", "VALUE"]);
            for (ts, v) in &s.points {
                t.row(vec![format!("  {}", sample_time(*ts)), value_text(Some(*v))]);
            }
            print!("{}", t.render());
        } else {
            let mut t = Table::new(&["  FROM", "MIN", "MAX", "MEAN", "COUNT"]);
            for p in &s.rollup {
                t.row(vec![
                    format!("  {}", when(&utc_time(p.t))),
                    value_text(Some(p.min)),
                    value_text(Some(p.max)),
                    value_text(Some(p.mean)),
                    p.count.to_string(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}
