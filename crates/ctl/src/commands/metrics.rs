//! Metrics: `series` (latest values) and `query` (points).

use watchpost_model::api::{Series, SeriesPoints};

use crate::client::Client;
use crate::format::{emit, labels_text, matcher_params, sample_time, value_text};
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

/// `query --metric M [--since S] [MATCHERS]`.
#[allow(clippy::print_stdout)]
pub async fn query(
    client: &Client,
    json: bool,
    metric: String,
    since: String,
    matchers: Vec<String>,
) -> anyhow::Result<()> {
    let mut q = matcher_params(&matchers)?;
    q.push(("metric".into(), metric));
    q.push(("since".into(), since));
    let series: Vec<SeriesPoints> = client.get("/api/v1/query", &q).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&series)?);
        return Ok(());
    }
    for s in &series {
        println!("{}{{{}}}", s.metric, labels_text(&s.labels, &[]));
        let mut t = Table::new(&["  TIME (UTC)", "VALUE"]);
        for (ts, v) in &s.points {
            let time = sample_time(*ts);
            t.row(vec![format!("  {time}"), value_text(Some(*v))]);
        }
        print!("{}", t.render());
    }
    Ok(())
}
