//! `streams`: thousands of agents on one collector, then a reconnect storm.
//!
//! The agents are the real agent's link and spool (`watchpost_agent::link`,
//! an in-memory spool each), many per worker process so one machine can
//! hold ten thousand; only the collection thread is replaced by a task
//! that makes a round of `series` values every `interval`. The collector is
//! the real `watchpost-collector` process.
//!
//! Phases: every agent connects (time, collector memory per agent); idle
//! with heartbeats only (collector CPU); rounds flowing; then the collector
//! is stopped (SIGTERM) for `downtime` while the agents keep spooling, and
//! started again on the same data directory: time until every agent is
//! connected again and its backlog acknowledged, the collector's peak
//! memory, agent-silence faults opened, and a check that nothing was lost
//! or applied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use watchpost_agent::series::Round;
use watchpost_agent::spool::Spool;
use watchpost_proto::v1::{Hello, PROTOCOL_VERSION, SeriesDefinition};
use watchpost_tests::process::{ChildProcess, CollectorProcess, wait_http_ok};

use crate::harness::sibling_binary;
use crate::proc;

/// The bench's arguments.
#[derive(clap::Args, Clone)]
pub struct StreamsArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Series per agent.
    #[arg(long, default_value_t = 20)]
    pub series: usize,
    /// Seconds between an agent's rounds.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Worker processes the agents are spread over.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Seconds the collector is down in the storm.
    #[arg(long, default_value_t = 30)]
    pub downtime: u64,
    /// Seconds of heartbeats only, for the idle CPU figure.
    #[arg(long, default_value_t = 30)]
    pub idle: u64,
}

/// A worker's arguments (started by the bench itself).
#[derive(clap::Args, Clone)]
pub struct WorkerArgs {
    #[arg(long)]
    pub collector: String,
    #[arg(long)]
    pub first: usize,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub series: usize,
    #[arg(long)]
    pub interval: u64,
}

fn agent_id(n: usize) -> String {
    format!("storm-{n:05}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Paused,
    Producing,
    Stopped,
}

/// One worker process: `count` agents; commands on standard input
/// (`produce`, `stop`, `quit`), answers on standard output.
pub async fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    watchpost_collector::listen::raise_fd_limit();
    let (phase_tx, phase_rx) = watch::channel(Phase::Paused);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let produced: Arc<Vec<AtomicU64>> = Arc::new((0..a.count).map(|_| AtomicU64::new(0)).collect());
    let mut links = Vec::new();
    let mut producers = Vec::new();
    let mut senders = Vec::new();
    for k in 0..a.count {
        let id = agent_id(a.first + k);
        let hello = Hello {
            agent_id: id.clone(),
            hostname: id.clone(),
            version: "bench".into(),
            labels: Default::default(),
            auth_token: String::new(),
            enroll_token: String::new(),
            protocol_version: PROTOCOL_VERSION,
            heartbeat_interval_ms: 3_000,
            sent_at_ms: 0,
        };
        let config = watchpost_agent::link::LinkConfig {
            collector: a.collector.clone(),
            hello,
            heartbeat: Duration::from_secs(3),
            inventory: Arc::default(),
            tls: Default::default(),
            credential_file: None,
        };
        let (round_tx, round_rx) = mpsc::channel::<Round>(16);
        // A link whose rounds channel closes stops, as the agent does when
        // its collection ends: the worker holds one sender until it quits.
        senders.push(round_tx.clone());
        links.push(tokio::spawn(watchpost_agent::link::run(
            config,
            Spool::memory(256),
            round_rx,
            shutdown_rx.clone(),
        )));
        let mut phase = phase_rx.clone();
        let produced = produced.clone();
        let (series, interval) = (a.series, Duration::from_secs(a.interval));
        // Agents' rounds are spread over the interval, as real clocks are.
        let offset = interval.mul_f64(k as f64 / a.count as f64);
        producers.push(tokio::spawn(async move {
            let defs: Vec<SeriesDefinition> = (1..=series as u32)
                .map(|s| SeriesDefinition {
                    id: s,
                    metric: format!("storm_metric_{}", s - 1),
                    labels: Vec::new(),
                })
                .collect();
            let mut rounds = 0u64;
            loop {
                if phase.wait_for(|p| *p != Phase::Paused).await.is_err() || *phase.borrow() == Phase::Stopped
                {
                    return;
                }
                tokio::time::sleep(offset).await;
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = phase.changed() => {}
                    }
                    match *phase.borrow() {
                        Phase::Producing => {}
                        Phase::Paused => break,
                        Phase::Stopped => return,
                    }
                    let round = Round {
                        timestamp_ms: watchpost_agent::time::now_ms(),
                        definitions: if rounds == 0 { defs.clone() } else { Vec::new() },
                        samples: (1..=series as u32)
                            .map(|s| (s, ((rounds * 7 + u64::from(s) * 13) % 10_000) as f64 / 100.0))
                            .collect(),
                        offsets_ms: Vec::new(),
                        texts: Vec::new(),
                    };
                    if round_tx.send(round).await.is_err() {
                        return;
                    }
                    rounds += 1;
                    produced[k].store(rounds, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut out = tokio::io::stdout();
    out.write_all(b"ready\n").await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "produce" => {
                phase_tx.send_replace(Phase::Producing);
            }
            "stop" => {
                phase_tx.send_replace(Phase::Stopped);
                for p in producers.drain(..) {
                    let _ = p.await;
                }
                let mut text = String::new();
                for (k, n) in produced.iter().enumerate() {
                    text.push_str(&format!(
                        "produced {} {}\n",
                        agent_id(a.first + k),
                        n.load(Ordering::Relaxed)
                    ));
                }
                text.push_str("stopped\n");
                out.write_all(text.as_bytes()).await?;
                out.flush().await?;
            }
            "quit" => break,
            _ => {}
        }
    }
    shutdown_tx.send_replace(true);
    drop(senders);
    for l in links {
        let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
    }
    Ok(())
}

struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    async fn say(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    /// Lines until `last`, which is not returned.
    async fn read_until(&mut self, last: &str) -> anyhow::Result<Vec<String>> {
        let mut got = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
                .await
                .context("worker silent for 2 min")??
                .context("worker ended")?;
            if line == last {
                return Ok(got);
            }
            got.push(line);
        }
    }
}

/// A number from the collector's `/metrics` (0 when absent).
pub async fn metric(http: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{http}/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or(0.0))
}

fn vm_hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Polls until `agents` are connected.
async fn wait_connected(http: &str, agents: usize, limit: Duration) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let connected = metric(http, "watchpost_agents_connected ").await.unwrap_or(0.0) as usize;
        if connected >= agents {
            return Ok(());
        }
        if t0.elapsed() > limit {
            bail!("only {connected} of {agents} agents connected after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(a: StreamsArgs) -> anyhow::Result<()> {
    println!(
        "== streams: {} agents (real link and spool, {} worker processes), {} series each every {} s; then the collector restarted under them ({} s down)",
        a.agents, a.workers, a.series, a.interval, a.downtime
    );
    watchpost_collector::listen::raise_fd_limit();
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("rules"))?;
    std::fs::write(
        dir.path().join("rules/agents.toml"),
        "[[rule]]\nname = \"agent_silent\"\nkind = \"agent_silent\"\nfor = \"1m\"\nseverity = \"general\"\n",
    )?;
    std::fs::write(
        dir.path().join("collector.toml"),
        format!(
            "[collector]\ndata_dir = \"data\"\nrules = [\"rules/*.toml\"]\nwindow = \"2h\"\n# Every simulated agent comes from 127.0.0.1.\nmax_connections_per_address = {}\nmax_connections = {}\n\n[security]\nagents = \"open\"\napi = \"open\"\n",
            a.agents + 100,
            a.agents + 1_000
        ),
    )?;
    let config = dir.path().join("collector.toml").to_string_lossy().to_string();
    let c = CollectorProcess::new(sibling_binary("watchpost-collector")?, &["--config", &config]);
    let http = c.api();
    let grpc = format!("http://{}", c.grpc_addr());
    let collector: ChildProcess = c.start();
    wait_http_ok(&format!("{http}/healthz"), Duration::from_secs(20))
        .await
        .map_err(anyhow::Error::msg)?;
    let pid = collector.0.id();
    let rss_empty = proc::rss_bytes(pid);

    let exe = std::env::current_exe()?;
    let per = a.agents.div_ceil(a.workers);
    let mut workers = Vec::new();
    let started = Instant::now();
    for w in 0..a.workers {
        let first = w * per;
        let count = per.min(a.agents.saturating_sub(first));
        if count == 0 {
            break;
        }
        let mut child = tokio::process::Command::new(&exe)
            .args(["streams-worker", "--collector", &grpc])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args([
                "--series",
                &a.series.to_string(),
                "--interval",
                &a.interval.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut worker = Worker {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        worker.read_until("ready").await?;
        workers.push(worker);
    }
    wait_connected(&http, a.agents, Duration::from_secs(600)).await?;
    let connect = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_connected = proc::rss_bytes(pid);
    println!(
        "connect       {} agents connected {:.1} s after the first worker started; collector RSS {} -> {} = {:.1} KiB per connected agent",
        a.agents,
        connect.as_secs_f64(),
        proc::mib(rss_empty),
        proc::mib(rss_connected),
        (rss_connected.saturating_sub(rss_empty)) as f64 / 1024.0 / a.agents as f64
    );
    let worker_rss: u64 = workers
        .iter()
        .filter_map(|w| w.child.id())
        .map(proc::rss_bytes)
        .sum();
    println!(
        "              the simulated agents: {} in {} processes ({:.1} KiB per agent's link and spool)",
        proc::mib(worker_rss),
        workers.len(),
        worker_rss as f64 / 1024.0 / a.agents as f64
    );

    let cpu0 = proc::cpu_ns(pid);
    tokio::time::sleep(Duration::from_secs(a.idle)).await;
    let idle_cpu = (proc::cpu_ns(pid) - cpu0) as f64 / 1e9 / a.idle as f64;
    println!(
        "idle          heartbeats only (3 s each way): collector CPU {:.1} % of one core = {:.1} µs per agent per second",
        idle_cpu * 100.0,
        idle_cpu * 1e6 / a.agents as f64
    );

    for w in workers.iter_mut() {
        w.say("produce").await?;
    }
    let load_for = 2 * a.interval + 2;
    tokio::time::sleep(Duration::from_secs(a.interval + 2)).await;
    let cpu0 = proc::cpu_ns(pid);
    tokio::time::sleep(Duration::from_secs(load_for)).await;
    let load_cpu = (proc::cpu_ns(pid) - cpu0) as f64 / 1e9 / load_for as f64;
    let rss_loaded = proc::rss_bytes(pid);
    println!(
        "rounds        {} samples/s: collector CPU {:.1} % of one core, RSS {}",
        a.agents * a.series / a.interval as usize,
        load_cpu * 100.0,
        proc::mib(rss_loaded)
    );

    // The storm.
    let stopped_at = Instant::now();
    let status = collector.terminate(Duration::from_secs(60));
    let stop_took = stopped_at.elapsed();
    tokio::time::sleep(Duration::from_secs(a.downtime).saturating_sub(stop_took)).await;
    let collector = c.start();
    let restarted = Instant::now();
    let pid = collector.0.id();
    // The backlog is what the agents made until now: no new rounds.
    let mut produced: HashMap<String, u64> = HashMap::new();
    for w in workers.iter_mut() {
        w.say("stop").await?;
    }
    for w in workers.iter_mut() {
        for line in w.read_until("stopped").await? {
            let mut parts = line.split_whitespace().skip(1);
            if let (Some(id), Some(n)) = (parts.next(), parts.next().and_then(|n| n.parse().ok())) {
                produced.insert(id.to_string(), n);
            }
        }
    }
    let backlog_rounds = (a.downtime / a.interval).max(1);
    println!(
        "storm         collector stopped ({status}, {:.1} s) and started again after {} s down: every agent holds about {} rounds in its spool",
        stop_took.as_secs_f64(),
        a.downtime,
        backlog_rounds
    );
    wait_http_ok(&format!("{http}/healthz"), Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    let mut peak = 0;
    let mut all_connected = None;
    let limit = Duration::from_secs(600);
    let drained = loop {
        peak = peak.max(proc::rss_bytes(pid));
        if all_connected.is_none()
            && metric(&http, "watchpost_agents_connected ").await.unwrap_or(0.0) as usize >= a.agents
        {
            all_connected = Some(restarted.elapsed());
        }
        let list: Vec<watchpost_model::api::Agent> = reqwest::get(format!("{http}/api/v1/agents"))
            .await?
            .json()
            .await?;
        let behind = list
            .iter()
            .filter(|ag| produced.get(&ag.id).is_some_and(|&n| ag.last_sequence < n))
            .count()
            + produced
                .keys()
                .filter(|id| !list.iter().any(|ag| &ag.id == *id))
                .count();
        if behind == 0 && all_connected.is_some() {
            break restarted.elapsed();
        }
        if restarted.elapsed() > limit {
            bail!("after {limit:?}: {behind} agents' backlogs not acknowledged");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    peak = peak.max(vm_hwm(pid));
    println!(
        "              every agent connected again {:.1} s after the restart; every backlog acknowledged {:.1} s after it",
        all_connected.unwrap_or(drained).as_secs_f64(),
        drained.as_secs_f64()
    );
    println!(
        "              collector peak RSS {} (before the restart, loaded: {})",
        proc::mib(peak),
        proc::mib(rss_loaded)
    );
    let faults: Vec<watchpost_model::api::Fault> =
        reqwest::get(format!("{http}/api/v1/faults?rule=agent_silent&limit=10000"))
            .await?
            .json()
            .await?;
    println!(
        "              agent_silent faults opened (rule: silent for 1m): {}",
        faults.len()
    );

    // Nothing lost, nothing applied twice: a sample of agents' series hold
    // exactly the rounds their agents made, and nothing was refused.
    let refused = metric(&http, "watchpost_samples_refused_total ").await?;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for n in (0..a.agents).step_by((a.agents / 25).max(1)) {
        let id = agent_id(n);
        let want = produced.get(&id).copied().unwrap_or(0) as usize;
        let points: Vec<watchpost_model::api::SeriesPoints> = reqwest::get(format!(
            "{http}/api/v1/query?metric=storm_metric_0&host={id}&since=3h&step=raw"
        ))
        .await?
        .json()
        .await?;
        let got = points.first().map_or(0, |p| p.points.len());
        checked += 1;
        if got != want {
            wrong.push(format!("{id}: {got} samples, {want} made"));
        }
    }
    println!(
        "              {checked} agents' series checked: {} ({} samples refused after the restart, 0 expected)",
        if wrong.is_empty() {
            "each holds exactly the rounds its agent made".to_string()
        } else {
            format!("MISMATCH {}", wrong.join("; "))
        },
        refused
    );
    for w in workers.iter_mut() {
        let _ = w.say("quit").await;
    }
    for w in workers.iter_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(10), w.child.wait()).await;
    }
    collector.terminate(Duration::from_secs(30));
    if !wrong.is_empty() {
        bail!("samples lost or applied twice");
    }
    Ok(())
}
