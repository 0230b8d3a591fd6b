//! The agent's spool: an hour of a 1 s interval written to a disk spool
//! (disk bytes, memory held), then replayed by the real `watchpost-agent`
//! to a real collector (how fast the backlog drains, the agent's RSS).

use std::time::{Duration, Instant};

use watchpost_agent::series::Round;
use watchpost_agent::spool::{Spool, SpoolConfig};
use watchpost_proto::v1::{Label, SeriesDefinition};

use watchpost_collector::time::now_ms;

use crate::agent::spawn_agent;
use crate::harness::start_collector;
use crate::proc;

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A counter from the collector's `/metrics`.
async fn counter(http: &str, name: &str) -> anyhow::Result<u64> {
    Ok(crate::streams::metric(http, name).await? as u64)
}

/// The real agent (host metrics at 1 s) with no collector to talk to:
/// what it holds in memory and writes to disk per round while it spools.
async fn spooling_agent(seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spool_dir = dir.path().join("spool");
    // Port 1 on loopback: nothing listens, every connect is refused.
    let agent = spawn_agent(
        dir.path(),
        &format!(
            "[agent]\ncollector = \"http://127.0.0.1:1\"\ninterval = \"1s\"\nid = \"bench-offline\"\nspool_dir = \"{}\"\n",
            spool_dir.display()
        ),
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let disk0 = dir_bytes(&spool_dir);
    let (rss0, anon0) = (proc::rss_bytes(agent.0.id()), proc::anon_bytes(agent.0.id()));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let disk = dir_bytes(&spool_dir) - disk0;
    let (rss, anon) = (proc::rss_bytes(agent.0.id()), proc::anon_bytes(agent.0.id()));
    let per_round = disk as f64 / seconds as f64;
    println!(
        "offline   the real agent (host metrics, 1 s) spooling with no collector: RSS {} -> {} (anonymous {} -> {}) over {seconds} s; disk {:.1} KiB per round, so {} per hour",
        proc::mib(rss0),
        proc::mib(rss),
        proc::mib(anon0),
        proc::mib(anon),
        per_round / 1024.0,
        proc::mib((per_round * 3600.0) as u64)
    );
    Ok(())
}

pub async fn run(series: usize, rounds: usize) -> anyhow::Result<()> {
    println!(
        "== agent spool: the real agent spooling offline; then {rounds} rounds x {series} series (1 s interval) spooled to disk and replayed to a real collector"
    );
    spooling_agent(30).await?;
    let dir = tempfile::tempdir()?;
    let spool_dir = dir.path().join("spool");
    let me = std::process::id();
    let anon0 = proc::anon_bytes(me);
    let started = Instant::now();
    let start_ms = now_ms() - rounds as i64 * 1_000 - 5_000;
    {
        let mut spool = Spool::open(&SpoolConfig {
            dir: Some(spool_dir.clone()),
            max_bytes: 256 << 20,
            memory_batches: 1024,
        })?;
        let defs: Vec<SeriesDefinition> = (1..=series)
            .map(|i| SeriesDefinition {
                id: i as u32,
                metric: format!("bench_spool_metric_{}", i % 25),
                labels: vec![Label {
                    name: "idx".into(),
                    value: i.to_string(),
                }],
            })
            .collect();
        for r in 0..rounds {
            spool.push(Round {
                timestamp_ms: start_ms + r as i64 * 1_000,
                definitions: if r == 0 { defs.clone() } else { Vec::new() },
                // Values as a host gives them: percentages and rates to two places.
                samples: (1..=series)
                    .map(|i| (i as u32, ((r * 7 + i * 13) % 10_000) as f64 / 100.0))
                    .collect(),
                offsets_ms: Vec::new(),
                texts: Vec::new(),
            });
        }
        spool.save_state(true);
        let held = proc::anon_bytes(me).saturating_sub(anon0);
        println!(
            "spooling  {rounds} batches, {} samples written in {:.2} s; on disk {}; memory the spool holds {} (a 64-batch tail and the definitions)",
            rounds * series,
            started.elapsed().as_secs_f64(),
            proc::mib(dir_bytes(&spool_dir)),
            proc::mib(held)
        );
    }

    let c = start_collector("").await?;
    let total = (rounds * series) as u64;
    let late0 = counter(&c.http, "watchpost_samples_late_total ").await?;
    let t0 = Instant::now();
    let agent = spawn_agent(
        dir.path(),
        &format!(
            "[agent]\ncollector = \"{}\"\ninterval = \"1s\"\nid = \"bench-spool\"\nspool_dir = \"{}\"\n[host]\nenabled = false\n",
            c.grpc,
            spool_dir.display()
        ),
    )?;
    let mut peak_rss = 0;
    let mut peak_anon = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let drained = loop {
        peak_rss = peak_rss.max(proc::rss_bytes(agent.0.id()));
        peak_anon = peak_anon.max(proc::anon_bytes(agent.0.id()));
        let late = counter(&c.http, "watchpost_samples_late_total ").await? - late0;
        if late >= total {
            break Some(t0.elapsed());
        }
        if Instant::now() > deadline {
            println!("replay    not drained in 10 min: {late} of {total} samples");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(d) = drained {
        println!(
            "replay    {rounds} batches, {total} samples acknowledged in {:.2} s (agent start to last ack): {:.0} samples/s, {:.0} batches/s",
            d.as_secs_f64(),
            total as f64 / d.as_secs_f64(),
            rounds as f64 / d.as_secs_f64()
        );
        println!(
            "agent     peak RSS {} (anonymous {}) while replaying",
            proc::mib(peak_rss),
            proc::mib(peak_anon)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "spool     {} on disk after the acknowledgements",
            proc::mib(dir_bytes(&spool_dir))
        );
    }
    Ok(())
}
