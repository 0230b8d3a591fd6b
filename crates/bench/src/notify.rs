//! `notify`: how fast a fault reaches a webhook, and what a storm becomes.
//!
//! In this process: a collector (library) with one webhook channel pointing
//! at a loopback receiver, and an agent (library) reading a textfile at a
//! 100 ms interval.
//!
//! - latency: faults opened one at a time; for each, the time from the
//!   fault's opening (the sample's timestamp) to the webhook receiving it:
//!   ingest, rule, commit with its outbox rows, dispatch, HTTP.
//! - storm: N faults in one round to a team of three: time until every
//!   notification is delivered, how many messages that took, and the
//!   largest message.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::Value;
use watchpost_collector::rules::RuleSet;
use watchpost_collector::{Collector, CollectorConfig};

const ROSTER: &str = r#"
[[team]]
name = "ops"
lead = "zhang"
members = [ { name = "li" }, { name = "zhang" }, { name = "wang" } ]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

const RULES: &str = r#"
[[rule]]
name = "bench_down"
metric = "bench_up"
when = "< 1"
severity = "general"
summary = "{target} does not answer"
"#;

type Seen = Arc<Mutex<Vec<(i64, Value)>>>;

use watchpost_collector::time::now_ms;

async fn receiver() -> anyhow::Result<(String, Seen)> {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let s = s.clone();
        async move {
            let at = now_ms();
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                s.lock().unwrap_or_else(|p| p.into_inner()).push((at, v));
            }
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, seen))
}

struct Setup {
    collector: Collector,
    agent: watchpost_agent::RunningAgent,
    seen: Seen,
    textfiles: tempfile::TempDir,
    _data: tempfile::TempDir,
}

async fn setup(notify: &str, to: &str) -> anyhow::Result<Setup> {
    let (url, seen) = receiver().await?;
    let data = tempfile::tempdir()?;
    let textfiles = tempfile::tempdir()?;
    std::fs::write(data.path().join("oncall.toml"), ROSTER)?;
    let text = format!(
        "[collector]\noncall = \"oncall.toml\"\n[notify]\n{notify}\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\nrate_limit = \"100000/min\"\n\
         [[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\nescalate = [ {{ after = \"0s\", to = \"{to}\" }} ]\n"
    );
    let parsed = CollectorConfig::parse(&text, data.path()).map_err(anyhow::Error::msg)?;
    let config = CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse()?,
        http_listen: "127.0.0.1:0".parse()?,
        data_dir: data.path().to_path_buf(),
        security: watchpost_collector::config::SecurityConfig::open(),
        ..parsed
    };
    let rules = RuleSet::parse(RULES, "bench.toml").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let collector = Collector::start(config, rules).await?;
    let mut ac = watchpost_agent::AgentConfig::local(&format!("http://{}", collector.grpc_addr()));
    ac.hostname = Some("bench-poller".into());
    ac.interval = Duration::from_millis(100);
    ac.host.enabled = false;
    ac.textfile_dir = Some(textfiles.path().to_path_buf());
    let agent = watchpost_agent::start(ac);
    Ok(Setup {
        collector,
        agent,
        seen,
        textfiles,
        _data: data,
    })
}

fn write(
    dir: &Path,
    down: impl Iterator<Item = String>,
    up: impl Iterator<Item = String>,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for t in down {
        text.push_str(&format!("bench_up{{target=\"{t}\"}} 0\n"));
    }
    for t in up {
        text.push_str(&format!("bench_up{{target=\"{t}\"}} 1\n"));
    }
    let tmp = dir.join(".bench.prom.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join("bench.prom"))?;
    Ok(())
}

fn opened_ms(n: &Value) -> Option<i64> {
    n["fault"]["opened_at"]
        .as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Runs both measurements and prints them.
pub async fn run(faults: usize, storm: usize) -> anyhow::Result<()> {
    // Latency: one fault at a time, no grouping.
    let s = setup("group_window = \"0s\"", "on_call").await?;
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..faults {
        let target = format!("t{i}");
        write(
            s.textfiles.path(),
            std::iter::once(target.clone()),
            (0..i).map(|j| format!("t{j}")),
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let latency = loop {
            let found = s
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .find_map(|(at, body)| {
                    body["notifications"].as_array()?.iter().find_map(|n| {
                        (n["kind"] == "opened" && n["fault"]["labels"]["target"] == target.as_str())
                            .then(|| opened_ms(n).map(|o| at - o))
                            .flatten()
                    })
                });
            if let Some(l) = found {
                break l;
            }
            if Instant::now() > deadline {
                bail!("fault {target} never reached the webhook");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        h.record(latency.max(0) as u64)?;
    }
    println!(
        "notify latency (fault opened → webhook received), {} faults: p50 {} ms, p99 {} ms, max {} ms",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    s.agent.stop().await;
    s.collector.shutdown().await;

    // Storm: `storm` faults in one round, to a team of three.
    let s = setup("group_window = \"2s\"", "team").await?;
    let started = now_ms();
    write(
        s.textfiles.path(),
        (0..storm).map(|i| format!("s{i}")),
        std::iter::empty(),
    )?;
    let want = storm * 3;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (messages, delivered, largest, last_at) = loop {
        let seen = s.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let sizes: Vec<usize> = seen
            .iter()
            .map(|(_, b)| b["notifications"].as_array().map_or(0, Vec::len))
            .collect();
        let delivered: usize = sizes.iter().sum();
        if delivered >= want {
            let last = seen.iter().map(|(at, _)| *at).max().unwrap_or(started);
            break (seen.len(), delivered, sizes.into_iter().max().unwrap_or(0), last);
        }
        if Instant::now() > deadline {
            bail!("storm: only {delivered} of {want} notifications arrived in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first_opened = s
        .collector
        .core()
        .db
        .faults(watchpost_collector::db::FaultFilter {
            limit: storm,
            ..Default::default()
        })
        .await
        .context("faults")?
        .iter()
        .filter_map(|f| f.opened_at.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .min()
        .unwrap_or(started);
    println!(
        "notify storm: {storm} faults × 3 people = {delivered} notifications in {messages} webhook messages \
         (largest {largest} faults; 2 s group window); all delivered {:.2} s after the first fault opened",
        (last_at - first_opened) as f64 / 1000.0
    );
    s.agent.stop().await;
    s.collector.shutdown().await;
    Ok(())
}
