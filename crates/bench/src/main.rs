//! `watchpost-bench`: figures to compare run to run (never asserted).
//!
//! - `ingest`: a real `watchpost-collector` process with 1,000 rules; simulated
//!   agents over real gRPC fill a 1 h window at a 10 s interval. Prints
//!   samples/s, collector RSS and bytes per series, and detection latency
//!   (a sample crossing a threshold → its fault committed: the collector
//!   acknowledges a batch only after the fault changes it caused are
//!   durable, so send → ack bounds it from above).
//! - `agent`: the real `watchpost-agent` at 10 s and 1 s intervals (RSS,
//!   CPU per collection round) beside `prometheus-node-exporter` per scrape,
//!   measured in the same run when it is installed.
//! - `notify`: fault opened → webhook received, and a storm of faults to a
//!   team: how many messages, how long until all are delivered.
//!
//! - `spool`: an hour of a 1 s interval in an agent's disk spool (disk,
//!   memory), then replayed by the real agent to a real collector.
//!
//! Build everything first: `cargo build --release --workspace`.

#![allow(clippy::print_stdout)]

mod notify;
mod proc;
mod snmp;
mod spool;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use watchpost_proto::v1::{
    AgentMessage, Batch, Hello, Label, PROTOCOL_VERSION, SeriesDefinition, SeriesDefinitions, agent_message,
    collector_message, ingest_client::IngestClient,
};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Clone)]
enum What {
    /// Collector ingest, memory per series, detection latency.
    Ingest(IngestArgs),
    /// Agent footprint beside node_exporter.
    Agent(AgentArgs),
    /// The hot store alone, in this process: where the bytes per series go.
    Store {
        /// Series.
        #[arg(long, default_value_t = 100_000)]
        series: usize,
        /// Samples per series (360 = 1 h at 10 s).
        #[arg(long, default_value_t = 360)]
        samples: usize,
    },
    /// Fault → webhook latency, and a storm's grouping (in process).
    Notify {
        /// Faults opened one at a time for the latency figure.
        #[arg(long, default_value_t = 100)]
        faults: usize,
        /// Faults opened at once for the storm figure.
        #[arg(long, default_value_t = 1_000)]
        storm: usize,
    },
    /// SNMP polling of a 1,000-interface switch beside snmp_exporter.
    Snmp {
        /// Polls measured (after one warm-up poll).
        #[arg(long, default_value_t = 3)]
        polls: u32,
    },
    /// Ingest over plaintext and over TLS, one after the other in the same run.
    Tls {
        /// Simulated agents.
        #[arg(long, default_value_t = 50)]
        agents: usize,
        /// Series per agent.
        #[arg(long, default_value_t = 2_000)]
        series: usize,
        /// Rounds per agent.
        #[arg(long, default_value_t = 360)]
        rounds: usize,
    },
    /// An hour of a 1 s interval spooled to disk, then replayed to a collector.
    Spool {
        /// Series per round.
        #[arg(long, default_value_t = 200)]
        series: usize,
        /// Rounds (3600 = 1 h at 1 s).
        #[arg(long, default_value_t = 3_600)]
        rounds: usize,
    },
    /// Agent, ingest and notify, with defaults.
    All,
}

#[derive(clap::Args, Clone)]
struct IngestArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 50)]
    agents: usize,
    /// Series per agent.
    #[arg(long, default_value_t = 2_000)]
    series: usize,
    /// Rounds per series (360 rounds at 10 s fill a 1 h window).
    #[arg(long, default_value_t = 360)]
    rounds: usize,
    /// Rules loaded.
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Detection probes (fire + resolve pairs).
    #[arg(long, default_value_t = 200)]
    probes: usize,
}

#[derive(clap::Args, Clone)]
struct AgentArgs {
    /// Collection rounds measured at the 1 s interval.
    #[arg(long, default_value_t = 30)]
    rounds_1s: u32,
    /// Collection rounds measured at the 10 s interval.
    #[arg(long, default_value_t = 6)]
    rounds_10s: u32,
}

const METRICS: usize = 100;
const BATCHES_IN_FLIGHT: u64 = 8;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("bench binary has no directory")?.join(name);
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --release --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_http(url: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct CollectorProc {
    proc: Proc,
    grpc: String,
    http: String,
    _dir: tempfile::TempDir,
}

async fn start_collector(rules_toml: &str) -> anyhow::Result<CollectorProc> {
    start_collector_with(rules_toml, "").await
}

/// The CA simulated agents trust when the collector's URL is `https://`.
static BENCH_CA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// A collector with `extra` TOML appended to its config (e.g. `[tls]`);
/// with `[tls]` its gRPC URL is `https://`.
async fn start_collector_with(rules_toml: &str, extra: &str) -> anyhow::Result<CollectorProc> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("rules"))?;
    std::fs::write(dir.path().join("rules/bench.toml"), rules_toml)?;
    let (g, h) = (free_port()?, free_port()?);
    std::fs::write(
        dir.path().join("collector.toml"),
        format!(
            "[collector]\ngrpc_listen = \"127.0.0.1:{g}\"\nhttp_listen = \"127.0.0.1:{h}\"\ndata_dir = \"data\"\nrules = [\"rules/*.toml\"]\nwindow = \"2h\"\nmax_series_per_agent = 1000000\n\n# Simulated agents and the bench's own reads: no enrolment, no users.\n[security]\nagents = \"open\"\napi = \"open\"\n\n{extra}"
        ),
    )?;
    let child = Command::new(sibling_binary("watchpost-collector")?)
        .arg("--config")
        .arg(dir.path().join("collector.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting watchpost-collector")?;
    let proc = Proc(child);
    let http = format!("http://127.0.0.1:{h}");
    wait_http(&format!("{http}/healthz"), Duration::from_secs(20)).await?;
    let scheme = if extra.contains("[tls]") { "https" } else { "http" };
    Ok(CollectorProc {
        proc,
        grpc: format!("{scheme}://127.0.0.1:{g}"),
        http,
        _dir: dir,
    })
}

/// A minimal agent over the real protocol.
struct SimAgent {
    tx: mpsc::Sender<AgentMessage>,
    acked: watch::Receiver<u64>,
    /// The collector's last applied sequence for this agent id, from the welcome.
    last_sequence: u64,
}

fn msg(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

impl SimAgent {
    async fn connect(grpc: &str, id: &str, defs: Vec<SeriesDefinition>) -> anyhow::Result<SimAgent> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(grpc.to_string())?;
        if grpc.starts_with("https://") {
            let ca = BENCH_CA.get().context("no CA for an https collector")?;
            endpoint = endpoint.tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            )?;
        }
        let mut client = IngestClient::new(endpoint.connect().await?);
        let (tx, rx) = mpsc::channel(64);
        tx.send(msg(agent_message::Body::Hello(Hello {
            agent_id: id.into(),
            hostname: id.into(),
            version: "bench".into(),
            labels: Default::default(),
            auth_token: String::new(),
            protocol_version: PROTOCOL_VERSION,
            heartbeat_interval_ms: 3000,
            enroll_token: String::new(),
        })))
        .await?;
        let mut inbound = client.stream(ReceiverStream::new(rx)).await?.into_inner();
        let first = inbound.message().await?.and_then(|m| m.body);
        let Some(collector_message::Body::Welcome(welcome)) = first else {
            bail!("no welcome: {first:?}");
        };
        let (ack_tx, acked) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                match m.body {
                    Some(collector_message::Body::Ack(a)) => {
                        ack_tx.send_replace(a.sequence);
                    }
                    Some(collector_message::Body::Error(e)) => {
                        eprintln!("collector error: {} ({})", e.message, e.code);
                        return;
                    }
                    _ => {}
                }
            }
        });
        for chunk in defs.chunks(2000) {
            tx.send(msg(agent_message::Body::Definitions(SeriesDefinitions {
                series: chunk.to_vec(),
            })))
            .await?;
        }
        Ok(SimAgent {
            tx,
            acked,
            last_sequence: welcome.last_sequence,
        })
    }

    async fn send(&mut self, batch: Batch) -> anyhow::Result<()> {
        self.tx
            .send(msg(agent_message::Body::Batch(batch)))
            .await
            .context("stream closed")
    }

    async fn wait_acked(&mut self, seq: u64) -> anyhow::Result<()> {
        self.acked
            .wait_for(|a| *a >= seq)
            .await
            .context("stream closed before ack")?;
        Ok(())
    }
}

fn bench_rules(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let metric = i % METRICS;
        // One rule in ten looks at a 1-minute average (decodes the window).
        let agg = if i % 10 == 0 {
            "aggregate = \"avg\"\nover = \"1m\"\n"
        } else {
            ""
        };
        s.push_str(&format!(
            "[[rule]]\nname = \"bench_{i}\"\nmetric = \"bench_metric_{metric}\"\nmatch = {{ dev = \"~d[0-9]+\" }}\n{agg}when = \"> {}\"\nseverity = \"minor\"\n\n",
            1_000_000 + i
        ));
    }
    s.push_str("[[rule]]\nname = \"bench_probe\"\nmetric = \"bench_probe\"\nwhen = \"> 100\"\nrecover = \"< 50\"\nseverity = \"urgent\"\n");
    s
}

/// How one simulated agent sends.
#[derive(Clone, Copy)]
struct Load {
    rounds: usize,
    first_sequence: u64,
    start_ts: i64,
    step_ms: i64,
    /// Time between rounds; `None`: as fast as acknowledgements allow.
    pace: Option<Duration>,
}

async fn fill_agent(
    grpc: String,
    idx: usize,
    agents: usize,
    series: usize,
    load: Load,
) -> anyhow::Result<u64> {
    let Load {
        rounds,
        first_sequence,
        start_ts,
        step_ms,
        pace,
    } = load;
    let defs: Vec<SeriesDefinition> = (0..series)
        .map(|s| SeriesDefinition {
            id: s as u32 + 1,
            metric: format!("bench_metric_{}", s % METRICS),
            labels: vec![Label {
                name: "dev".into(),
                value: format!("d{}", s / METRICS),
            }],
        })
        .collect();
    let mut agent = SimAgent::connect(&grpc, &format!("sim-{idx:04}"), defs).await?;
    let mut values: Vec<f64> = (0..series).map(|s| (s % 97) as f64).collect();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ idx as u64;
    let ids: Vec<u32> = (1..=series as u32).collect();
    // Paced agents start spread over one period, as real agents' clocks are.
    let began = Instant::now()
        + load
            .pace
            .map_or(Duration::ZERO, |p| p.mul_f64(idx as f64 / agents as f64));
    for r in 0..rounds {
        if let Some(p) = pace {
            let due = began + p * r as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        for (s, v) in values.iter_mut().enumerate() {
            // A third constant, the rest random walks with two decimals.
            if s % 3 != 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let step = (rng % 101) as f64 / 100.0 - 0.5;
                *v = (((*v + step).clamp(0.0, 100.0)) * 100.0).round() / 100.0;
            }
        }
        let seq = first_sequence + r as u64;
        agent
            .send(Batch {
                sequence: seq,
                base_timestamp_ms: start_ts + r as i64 * step_ms,
                series_ids: ids.clone(),
                values: values.clone(),
                timestamp_offsets_ms: Vec::new(),
                late: false,
            })
            .await?;
        if seq >= first_sequence + BATCHES_IN_FLIGHT {
            agent.wait_acked(seq - BATCHES_IN_FLIGHT).await?;
        }
    }
    agent.wait_acked(first_sequence + rounds as u64 - 1).await?;
    Ok((series * rounds) as u64)
}

/// Starts every simulated agent with the same load.
fn spawn_agents(grpc: &str, a: &IngestArgs, load: Load) -> Vec<tokio::task::JoinHandle<anyhow::Result<u64>>> {
    (0..a.agents)
        .map(|i| tokio::spawn(fill_agent(grpc.to_string(), i, a.agents, a.series, load)))
        .collect()
}

/// Fires and resolves the probe rule `n` times; returns send→ack latencies (µs) of the fires.
async fn probe(grpc: &str, n: usize, pause: Duration) -> anyhow::Result<Histogram<u64>> {
    let defs = vec![SeriesDefinition {
        id: 1,
        metric: "bench_probe".into(),
        labels: vec![],
    }];
    let mut agent = SimAgent::connect(grpc, "probe", defs).await?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut seq = agent.last_sequence;
    for _ in 0..n {
        for value in [200.0, 0.0] {
            seq += 1;
            let sent = Instant::now();
            agent
                .send(Batch {
                    sequence: seq,
                    base_timestamp_ms: now_ms(),
                    series_ids: vec![1],
                    values: vec![value],
                    timestamp_offsets_ms: vec![],
                    late: false,
                })
                .await?;
            agent.wait_acked(seq).await?;
            if value > 100.0 {
                hist.record(sent.elapsed().as_micros() as u64)?;
            }
            tokio::time::sleep(pause).await;
        }
    }
    Ok(hist)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    let total_series = a.agents * a.series;
    println!(
        "== ingest: {} agents x {} series = {total_series} series, {} rounds at 10 s (window 1 h), {} rules",
        a.agents,
        a.series,
        a.rounds,
        a.rules + 1
    );
    let c = start_collector(&bench_rules(a.rules)).await?;
    let pid = c.proc.0.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = proc::rss_bytes(pid);
    let cpu_before = proc::cpu_ns(pid);
    let start_ts = now_ms() - a.rounds as i64 * 10_000;
    let started = Instant::now();
    let fill = Load {
        rounds: a.rounds,
        first_sequence: 1,
        start_ts,
        step_ms: 10_000,
        pace: None,
    };
    let tasks = spawn_agents(&c.grpc, &a, fill);
    // Detection latency while the agents fill the window as fast as they can.
    let saturated = tokio::spawn({
        let grpc = c.grpc.clone();
        let n = a.probes / 2;
        async move { probe(&grpc, n, Duration::from_millis(20)).await }
    });
    let mut samples = 0;
    for t in tasks {
        samples += t.await??;
    }
    let elapsed = started.elapsed();
    let cpu_used = proc::cpu_ns(pid) - cpu_before;
    let saturated = saturated.await??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_full = proc::rss_bytes(pid);
    let rate = samples as f64 / elapsed.as_secs_f64();
    println!(
        "samples ingested        {samples} in {:.1} s = {:.0} samples/s (acknowledged, i.e. applied and rules evaluated)",
        elapsed.as_secs_f64(),
        rate
    );
    println!(
        "collector CPU           {:.1} s over the fill = {:.2} cores, {:.2} µs CPU per sample",
        cpu_used as f64 / 1e9,
        cpu_used as f64 / 1e9 / elapsed.as_secs_f64(),
        cpu_used as f64 / 1e3 / samples as f64
    );
    println!(
        "collector RSS           idle {}, window full {}",
        proc::mib(rss_idle),
        proc::mib(rss_full)
    );
    println!(
        "memory per series       {:.0} bytes (RSS growth / series, {} samples each)",
        (rss_full.saturating_sub(rss_idle)) as f64 / total_series as f64,
        a.rounds
    );

    // Half the measured ceiling, paced, 1 s apart in sample time: a busy but not saturated collector.
    let per_agent_rounds_per_s = rate * 0.5 / total_series as f64;
    let paced_rounds = (per_agent_rounds_per_s * 20.0).ceil().max(2.0) as usize;
    let paced = Load {
        rounds: paced_rounds,
        first_sequence: a.rounds as u64 + 1,
        start_ts: start_ts + a.rounds as i64 * 10_000,
        step_ms: 1_000,
        pace: Some(Duration::from_secs_f64(1.0 / per_agent_rounds_per_s)),
    };
    let tasks = spawn_agents(&c.grpc, &a, paced);
    let half_load = probe(&c.grpc, a.probes / 2, Duration::from_millis(50)).await?;
    for t in tasks {
        t.await??;
    }
    let idle = probe(&c.grpc, a.probes, Duration::from_millis(5)).await?;
    for (name, h) in [
        ("saturated (fill above)", &saturated),
        (&*format!("at {:.0} samples/s", rate * 0.5), &half_load),
        ("idle", &idle),
    ] {
        println!(
            "detection latency       {name}: p50 {}  p99 {}  max {}  ({} faults; sample sent → fault committed → ack)",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            h.len()
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", c.http)).await?.text().await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("watchpost_detection_latency_seconds_") && !l.contains("bucket"))
    {
        println!("collector's own         {line}");
    }
    println!(
        "anchor (DESIGN.md)      Prometheus 2.42: ~0.97 M samples/s without rules; ~2.1 kB per series; Prometheus+Alertmanager 1.2 s median detection"
    );
    Ok(())
}

fn store(series: usize, samples: usize) {
    use watchpost_collector::store::HotStore;
    println!(
        "== hot store: {series} series x {samples} samples at 10 s (random walks with two decimals, a third constant)"
    );
    let pid = std::process::id();
    let rss0 = proc::rss_bytes(pid);
    let store = HotStore::new(3_600_000);
    let dev: Vec<String> = (0..series / METRICS + 1).map(|d| format!("d{d}")).collect();
    let metrics: Vec<String> = (0..METRICS).map(|m| format!("bench_metric_{m}")).collect();
    let ids: Vec<_> = (0..series)
        .map(|s| {
            store
                .resolve(
                    &metrics[s % METRICS],
                    &[("dev", &dev[s / METRICS]), ("host", "sim-0001")],
                )
                .0
        })
        .collect();
    let rss_index = proc::rss_bytes(pid);
    let mut values: Vec<f64> = (0..series).map(|s| (s % 97) as f64).collect();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let started = Instant::now();
    for r in 0..samples {
        for (s, v) in values.iter_mut().enumerate() {
            if s % 3 != 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *v = (((*v + (rng % 101) as f64 / 100.0 - 0.5).clamp(0.0, 100.0)) * 100.0).round() / 100.0;
            }
            let _ = store.append(ids[s], r as i64 * 10_000, *v);
        }
    }
    let elapsed = started.elapsed();
    let rss1 = proc::rss_bytes(pid);
    let n = series as f64;
    println!(
        "appends                 {:.0} samples/s on one thread",
        (series * samples) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "compressed samples      {:.0} bytes per series ({:.2} bytes per sample)",
        store.sample_heap_bytes() as f64 / n,
        store.sample_heap_bytes() as f64 / (n * samples as f64)
    );
    println!(
        "identity and index      {:.0} bytes per series (RSS growth creating the series)",
        rss_index.saturating_sub(rss0) as f64 / n
    );
    println!(
        "total                   {:.0} bytes per series (RSS growth)",
        rss1.saturating_sub(rss0) as f64 / n
    );
}

/// Starts the real `watchpost-agent` with `config` (TOML) written into `dir`.
fn spawn_agent(dir: &std::path::Path, config: &str) -> anyhow::Result<Proc> {
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, config)?;
    let child = Command::new(sibling_binary("watchpost-agent")?)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Proc(child))
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
    let port = free_port()?;
    let child = Command::new(&bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let p = Proc(child);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_http(&url, Duration::from_secs(10)).await?;
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

async fn agent(a: AgentArgs) -> anyhow::Result<()> {
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

/// Ingest throughput and collector CPU with TLS off and on.
async fn tls(agents: usize, series: usize, rounds: usize) -> anyhow::Result<()> {
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

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {} cores, {host}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    match args.what {
        What::Ingest(a) => ingest(a).await,
        What::Agent(a) => agent(a).await,
        What::Store { series, samples } => {
            store(series, samples);
            Ok(())
        }
        What::Notify { faults, storm } => notify::run(faults, storm).await,
        What::Snmp { polls } => snmp::run(polls).await,
        What::Spool { series, rounds } => spool::run(series, rounds).await,
        What::Tls {
            agents,
            series,
            rounds,
        } => tls(agents, series, rounds).await,
        What::All => {
            agent(AgentArgs {
                rounds_1s: 30,
                rounds_10s: 6,
            })
            .await?;
            ingest(IngestArgs {
                agents: 50,
                series: 2_000,
                rounds: 360,
                rules: 1_000,
                probes: 200,
            })
            .await?;
            notify::run(100, 1_000).await
        }
    }
}
