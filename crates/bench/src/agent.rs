//! `agent`: the real `watchpost-agent` at 10 s and 1 s intervals (RSS,
//! CPU per collection round) beside `prometheus-node-exporter` per scrape,
//! measured in the same run when it is installed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use watchpost_tests::process::{ChildProcess, free_port, wait_http_ok};

use crate::AgentArgs;
use crate::harness::{sibling_binary, start_collector};
use crate::proc;

/// Starts the real `watchpost-agent` with `config` (TOML) written into `dir`.
pub fn spawn_agent(dir: &std::path::Path, config: &str) -> anyhow::Result<ChildProcess> {
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, config)?;
    let child = Command::new(sibling_binary("watchpost-agent")?)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(ChildProcess(child))
}

/// Runs `watchpost-agent` at `interval` for `rounds` rounds; returns (RSS, anonymous RSS, CPU ns per round).
async fn measure_agent(grpc: &str, interval: Duration, rounds: u32) -> anyhow::Result<(u64, u64, f64)> {
    let dir = tempfile::tempdir()?;
    let p = spawn_agent(
        dir.path(),
        &format!(
            "[agent]\ncollector = \"{grpc}\"\ninterval = \"{}ms\"\nid = \"bench-agent-{}\"\n",
            interval.as_millis(),
            interval.as_millis()
        ),
    )?;
    let pid = p.0.id();
    // Warm up: connect, define series, two rounds for the rates.
    tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
    let cpu0 = proc::cpu_ns(pid);
    tokio::time::sleep(interval * rounds).await;
    let cpu = proc::cpu_ns(pid) - cpu0;
    Ok((
        proc::rss_bytes(pid),
        proc::anon_bytes(pid),
        cpu as f64 / f64::from(rounds),
    ))
}

async fn node_exporter(scrapes: u32) -> anyhow::Result<Option<(u64, u64, f64, usize)>> {
    let bin = ["/usr/bin/prometheus-node-exporter", "/usr/bin/node_exporter"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(bin) = bin else { return Ok(None) };
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let p = ChildProcess(child);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_http_ok(&url, Duration::from_secs(10))
        .await
        .map_err(anyhow::Error::msg)?;
    let mut series = 0;
    for _ in 0..2 {
        let _ = reqwest::get(&url).await?.text().await?;
    }
    let cpu0 = proc::cpu_ns(p.0.id());
    for _ in 0..scrapes {
        let body = reqwest::get(&url).await?.text().await?;
        series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = proc::cpu_ns(p.0.id()) - cpu0;
    Ok(Some((
        proc::rss_bytes(p.0.id()),
        proc::anon_bytes(p.0.id()),
        cpu as f64 / f64::from(scrapes),
        series,
    )))
}

pub async fn run(a: AgentArgs) -> anyhow::Result<()> {
    println!("== agent footprint (this host's metrics, sent to a real collector)");
    let c = start_collector("").await?;
    for (interval, rounds) in [
        (Duration::from_secs(10), a.rounds_10s),
        (Duration::from_secs(1), a.rounds_1s),
    ] {
        let (rss, anon, cpu) = measure_agent(&c.grpc, interval, rounds).await?;
        println!(
            "watchpost-agent {:>3}s    RSS {} (anonymous {})  CPU {:.3} ms per collection round ({rounds} rounds)",
            interval.as_secs(),
            proc::mib(rss),
            proc::mib(anon),
            cpu / 1e6
        );
    }
    let series: serde_json::Value = reqwest::get(format!("{}/api/v1/agents", c.http))
        .await?
        .json()
        .await?;
    if let Some(n) = series
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a.get("series"))
    {
        println!("watchpost-agent series  {n} per round");
    }
    match node_exporter(a.rounds_1s).await? {
        Some((rss, anon, cpu, n)) => println!(
            "node_exporter           RSS {} (anonymous {})  CPU {:.3} ms per scrape ({n} series)",
            proc::mib(rss),
            proc::mib(anon),
            cpu / 1e6
        ),
        None => println!(
            "node_exporter           not installed here (apt-get install prometheus-node-exporter), not measured"
        ),
    }
    Ok(())
}
