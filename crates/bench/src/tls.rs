//! `tls`: ingest throughput and collector CPU with TLS off and on, in one
//! run, with certificates from `deploy/make-certs.sh`.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use watchpost_collector::time::now_ms;

use crate::harness::{BENCH_CA, start_collector_with};
use crate::ingest::{Load, spawn_agents};
use crate::{IngestArgs, proc};

/// Ingest throughput and collector CPU with TLS off and on.
pub async fn run(agents: usize, series: usize, rounds: usize) -> anyhow::Result<()> {
    println!(
        "== ingest with TLS off and on: {agents} agents x {series} series, {rounds} rounds, as fast as acknowledged"
    );
    let exe = std::env::current_exe()?;
    let script = exe
        .ancestors()
        .nth(3)
        .context("bench binary is not under target/release")?
        .join("deploy/make-certs.sh");
    let certs = tempfile::tempdir()?;
    let out = Command::new("bash")
        .arg(&script)
        .arg(certs.path())
        .arg("127.0.0.1")
        .output()?;
    if !out.status.success() {
        bail!("{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let _ = BENCH_CA.set(std::fs::read(certs.path().join("ca.pem"))?);
    let tls_toml = format!(
        "\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n# The bench reads the API in plaintext; gRPC is what is measured.\nhttp = false\n",
        certs.path().join("collector.pem").display(),
        certs.path().join("collector.key").display()
    );
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
    for (name, extra) in [("plaintext", String::new()), ("TLS", tls_toml)] {
        let c = start_collector_with("", &extra).await?;
        let pid = c.proc.0.id();
        let cpu0 = proc::cpu_ns(pid);
        let started = Instant::now();
        let load = Load {
            rounds,
            first_sequence: 1,
            start_ts: now_ms() - rounds as i64 * 10_000,
            step_ms: 10_000,
            pace: None,
        };
        let mut samples = 0;
        for t in spawn_agents(&c.grpc, &a, load) {
            samples += t.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = proc::cpu_ns(pid) - cpu0;
        println!(
            "{name:<10} {:>10.0} samples/s   collector {:.2} µs CPU per sample   ({samples} samples in {elapsed:.1} s)",
            samples as f64 / elapsed,
            cpu as f64 / 1e3 / samples as f64
        );
    }
    Ok(())
}
