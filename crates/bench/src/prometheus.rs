//! `ingest --vs-prometheus`: Debian's `prometheus` on the same series and
//! the same rules, in the same run as our ingest figures.
//!
//! A generated target (in this process) serves each simulated agent's
//! series as one scrape target; Prometheus scrapes every 1 s and evaluates
//! the same 1,000 rules every 1 s (`--prometheus-eval`), for as many scrapes as our fill has
//! rounds, so each series ends with the same number of samples (at 10 s
//! that would take an hour). A 1-minute average at 10 s covers 6 samples;
//! Prometheus's `avg_over_time` gets the same 6 (`[6s]` at 1 s).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use watchpost_tests::process::{ChildProcess, free_port};

use crate::{IngestArgs, METRICS, proc};

/// What our collector measured, to print beside Prometheus.
pub struct Ours {
    pub cpu_ns_per_sample: f64,
    pub bytes_per_series: f64,
}

/// The same rules as `ingest`'s, in PromQL.
fn rules_yaml(n: usize, interval: &str) -> String {
    let mut s = format!("groups:\n- name: bench\n  interval: {interval}\n  rules:\n");
    for i in 0..n {
        let metric = i % METRICS;
        let selector = format!("bench_metric_{metric}{{dev=~\"d[0-9]+\"}}");
        let expr = if i % 10 == 0 {
            format!("avg_over_time({selector}[6s])")
        } else {
            selector
        };
        s.push_str(&format!(
            "  - alert: bench_{i}\n    expr: '{expr} > {}'\n",
            1_000_000 + i
        ));
    }
    s
}

/// One agent's series in the text format, values walking as in `ingest`.
fn exposition(agent: usize, series: usize, round: u64) -> String {
    let mut out = String::with_capacity(series * 48);
    for s in 0..series {
        let v = if s % 3 == 0 {
            (s % 97) as f64
        } else {
            let x = (round.wrapping_mul(2_654_435_761) ^ (s as u64 * 40_503) ^ agent as u64) % 10_000;
            x as f64 / 100.0
        };
        out.push_str(&format!(
            "bench_metric_{}{{dev=\"d{}\",host=\"sim-{agent:04}\"}} {v}\n",
            s % METRICS,
            s / METRICS
        ));
    }
    out
}

fn prometheus_yaml(agents: usize, target: u16, rules: &Path) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
        rules.display()
    );
    for i in 0..agents {
        s.push_str(&format!(
            "  - job_name: sim-{i:04}\n    metrics_path: /agent/{i}/metrics\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ));
    }
    s
}

async fn prom_metric(port: u16, name: &str) -> f64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

pub async fn side_by_side(a: &IngestArgs, ours: Ours) -> anyhow::Result<()> {
    let bin = Path::new("/usr/bin/prometheus");
    if !bin.exists() {
        bail!("/usr/bin/prometheus is missing: run tests/peers/setup.sh (Debian package prometheus)");
    }
    let version = Command::new(bin).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    println!(
        "== beside it: {version}, scraping the same {} series from a generated target every 1 s for {} scrapes (each series ends with {} samples, as ours), the same {} rules every {}",
        a.agents * a.series,
        a.rounds,
        a.rounds,
        a.rules,
        a.prometheus_eval
    );
    // The generated target.
    let scrapes = Arc::new(AtomicU64::new(0));
    let (agents, series) = (a.agents, a.series);
    let app = axum::Router::new().route(
        "/agent/{n}/metrics",
        axum::routing::get({
            let scrapes = scrapes.clone();
            move |axum::extract::Path(n): axum::extract::Path<usize>| {
                let scrapes = scrapes.clone();
                async move {
                    let round = scrapes.fetch_add(1, Ordering::Relaxed) / agents as u64;
                    tokio::task::spawn_blocking(move || exposition(n, series, round))
                        .await
                        .unwrap_or_default()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, rules_yaml(a.rules, &a.prometheus_eval))?;
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, prometheus_yaml(a.agents, target, &rules))?;
    let port = free_port();
    let child = ChildProcess(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start prometheus")?,
    );
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("prometheus not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: started, nothing scraped yet worth counting.
    let rss_idle = proc::rss_bytes(pid);
    let cpu0 = proc::cpu_ns(pid);
    let scraped0 = scrapes.load(Ordering::Relaxed);
    let began = Instant::now();
    let want = scraped0 + (a.rounds * a.agents) as u64;
    let limit = Duration::from_secs(a.rounds as u64 * 3 + 60);
    while scrapes.load(Ordering::Relaxed) < want {
        if began.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the last scrapes and one rule evaluation finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = began.elapsed();
    let cpu = proc::cpu_ns(pid) - cpu0;
    let rss = proc::rss_bytes(pid);
    let appended = prom_metric(port, "prometheus_tsdb_head_samples_appended_total").await;
    let head_series = prom_metric(port, "prometheus_tsdb_head_series ").await;
    let missed = prom_metric(port, "prometheus_rule_group_iterations_missed_total").await;
    let iterations = prom_metric(port, "prometheus_rule_group_iterations_total").await;
    let last_eval = prom_metric(port, "prometheus_rule_group_last_duration_seconds").await;
    drop(child);
    server.abort();
    let scraped = (scrapes.load(Ordering::Relaxed) - scraped0) * a.series as u64;
    let per_sample = cpu as f64 / scraped.max(1) as f64;
    let total_series = (a.agents * a.series) as f64;
    let bytes = rss.saturating_sub(rss_idle) as f64 / total_series;
    println!(
        "prometheus              {scraped} samples scraped in {:.1} s ({appended:.0} appended to its head, {head_series:.0} series), CPU {:.1} s = {:.2} cores",
        elapsed.as_secs_f64(),
        cpu as f64 / 1e9,
        cpu as f64 / 1e9 / elapsed.as_secs_f64()
    );
    println!(
        "prometheus rules        {iterations:.0} evaluations of the group, {missed:.0} missed; the last took {:.0} ms (its interval: {})",
        last_eval * 1000.0,
        a.prometheus_eval
    );
    println!(
        "CPU per sample          ours {:.2} µs, prometheus {:.2} µs: ours is {:.2} x (scrape, parse, append and rules, all in)",
        ours.cpu_ns_per_sample / 1000.0,
        per_sample / 1000.0,
        ours.cpu_ns_per_sample / per_sample
    );
    println!(
        "memory per series       ours {:.0} bytes, prometheus {:.0} bytes (RSS {} -> {}): ours is {:.2} x",
        ours.bytes_per_series,
        bytes,
        proc::mib(rss_idle),
        proc::mib(rss),
        ours.bytes_per_series / bytes
    );
    Ok(())
}
