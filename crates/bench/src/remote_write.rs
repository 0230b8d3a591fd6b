//! `remote-write`: a real `watchpost-collector` process with one
//! `[[remote_write]]` destination, Debian's VictoriaMetrics on loopback.
//! Simulated agents send ten minutes of samples while VictoriaMetrics is
//! down (the backlog waits in the journal); then it starts, and the bench
//! reads how long the backlog takes to drain, the samples per second, and
//! the collector's CPU per sample sent (ingest has stopped by then, so the
//! CPU is the destination's: reading the journal, encoding, sending).

use std::time::{Duration, Instant};

use watchpost_collector::time::now_ms;
use watchpost_tests::tsdb::VictoriaMetrics;

use crate::harness::start_collector_with;
use crate::ingest::{Load, spawn_agents};
use crate::{IngestArgs, proc};

/// A destination's figure in the collector's `/metrics`.
async fn metric(http: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{http}/metrics")).await?.text().await?;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{destination=\"vm\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{name} not in /metrics"))
}

pub async fn run(agents: usize, series: usize, minutes: usize, interval_s: usize) -> anyhow::Result<()> {
    let rounds = minutes * 60 / interval_s;
    let backlog = agents * series * rounds;
    println!(
        "== remote-write: {agents} agents x {series} series at {interval_s} s for {minutes} min = {backlog} samples of backlog, to VictoriaMetrics on loopback"
    );
    let vm_dir = tempfile::tempdir()?;
    let mut vm = VictoriaMetrics::start(vm_dir.path());
    let write_url = vm.url("/api/v1/write");
    vm.stop();
    let c = start_collector_with(
        "",
        &format!("[[remote_write]]\nname = \"vm\"\nurl = \"{write_url}\"\n"),
    )
    .await?;
    let pid = c.proc.0.id();
    let a = IngestArgs {
        agents,
        series,
        rounds,
        rules: 0,
        probes: 0,
        perf: false,
        vs_prometheus: false,
        history_flush: "15s".into(),
        prometheus_eval: "1s".into(),
    };
    let fill = Load {
        rounds,
        first_sequence: 1,
        start_ts: now_ms() - (minutes * 60_000) as i64,
        step_ms: (interval_s * 1000) as i64,
        pace: None,
    };
    let filled = Instant::now();
    let mut samples = 0u64;
    for t in spawn_agents(&c.grpc, &a, fill) {
        samples += t.await??;
    }
    println!(
        "backlog sent by the agents in {:.1} s ({samples} samples acknowledged)",
        filled.elapsed().as_secs_f64()
    );
    let pending = metric(&c.http, "watchpost_remote_write_samples_pending").await?;
    println!("pending while VictoriaMetrics is down: {pending}");

    let cpu0 = proc::cpu_ns(pid);
    let sent0 = metric(&c.http, "watchpost_remote_write_samples_sent_total").await?;
    let t0 = Instant::now();
    vm.resume();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if metric(&c.http, "watchpost_remote_write_samples_pending").await? == 0.0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the backlog did not drain in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = t0.elapsed();
    let cpu = proc::cpu_ns(pid) - cpu0;
    let sent = metric(&c.http, "watchpost_remote_write_samples_sent_total").await? - sent0;
    let requests = metric(&c.http, "watchpost_remote_write_requests_total").await?;
    println!(
        "drained {sent} samples in {:.2} s (VictoriaMetrics start included): {:.0} samples/s",
        drain.as_secs_f64(),
        sent / drain.as_secs_f64()
    );
    println!(
        "collector CPU while draining: {:.2} s, {:.3} µs per sample sent, {requests} requests",
        cpu as f64 / 1e9,
        cpu as f64 / 1e3 / sent.max(1.0)
    );
    println!(
        "samples failed (attempts while VictoriaMetrics was down): {}, dropped: {}",
        metric(&c.http, "watchpost_remote_write_samples_failed_total").await?,
        metric(&c.http, "watchpost_remote_write_samples_dropped_total").await?
    );
    // VictoriaMetrics flushes what it received before counting it.
    let _ = reqwest::get(vm.url("/internal/force_flush")).await;
    let count = reqwest::get(vm.url("/api/v1/series/count")).await?.text().await?;
    println!("VictoriaMetrics series count: {}", count.trim());
    Ok(())
}
