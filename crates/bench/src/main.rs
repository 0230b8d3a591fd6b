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
//! - `remote-write`: a 10-minute backlog drained into VictoriaMetrics:
//!   samples/s, collector CPU per sample sent, drain time.
//!
//! - `console`: the web console's pages with 5,000 hosts and 1,000 open
//!   faults: time to the last byte and bytes with gzip.
//!
//! - `store`, `snmp`, `tls`, `history`: see their modules.
//!
//! One module per benchmark; `harness` starts what they share.
//! Build everything first: `cargo build --release --workspace`.

#![allow(clippy::print_stdout)]

mod agent;
mod console;
mod harness;
mod history;
mod ingest;
mod notify;
mod perf;
mod proc;
mod prometheus;
mod remote_write;
mod snmp;
mod spool;
mod store;
mod streams;
mod tls;

use clap::{Parser, Subcommand};

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
    /// Agent footprint with one of each database source (real servers on
    /// loopback) and with process, log and RAID checks, beside host only.
    AgentSources {
        /// Collection interval, seconds.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Rounds measured for each configuration.
        #[arg(long, default_value_t = 6)]
        rounds: u32,
    },
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
    /// SNMP polling of a 1,000-interface switch beside snmp_exporter, then
    /// one agent polling a fleet of access switches.
    Snmp {
        /// Polls measured (after one warm-up poll).
        #[arg(long, default_value_t = 3)]
        polls: u32,
        /// Switches in the fleet (0: no fleet).
        #[arg(long, default_value_t = 200)]
        devices: usize,
        /// Interfaces per switch in the fleet.
        #[arg(long, default_value_t = 48)]
        ports: u32,
        /// snmpsim processes serving the fleet.
        #[arg(long, default_value_t = 4)]
        simulators: usize,
        /// Seconds between a device's polls.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Intervals measured.
        #[arg(long, default_value_t = 3)]
        rounds: u64,
        /// Only the fleet.
        #[arg(long)]
        fleet_only: bool,
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
    /// Rollups: bytes on disk per series-day, reading 30 days at 1 h.
    History {
        /// Series for the bytes-per-series-day figure.
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Days for the read figure.
        #[arg(long, default_value_t = 30)]
        days: usize,
        /// Series for the read figure.
        #[arg(long, default_value_t = 1_000)]
        read_series: usize,
    },
    /// remote_write to VictoriaMetrics: a backlog drained, CPU per sample sent.
    RemoteWrite {
        /// Simulated agents.
        #[arg(long, default_value_t = 10)]
        agents: usize,
        /// Series per agent.
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Minutes of backlog.
        #[arg(long, default_value_t = 10)]
        minutes: usize,
        /// Seconds between samples of a series.
        #[arg(long, default_value_t = 10)]
        interval: usize,
    },
    /// The web console's pages with many hosts and open faults.
    Console {
        /// Hosts the collector knows.
        #[arg(long, default_value_t = 5_000)]
        hosts: usize,
        /// Open faults.
        #[arg(long, default_value_t = 1_000)]
        faults: usize,
        /// Fetches of each page.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// Ten thousand agent streams on one collector, then the collector
    /// restarted under them (a reconnect storm with backlogs).
    Streams(streams::StreamsArgs),
    /// One process of the `streams` bench's simulated agents.
    #[command(hide = true)]
    StreamsWorker(streams::WorkerArgs),
    /// Agent, ingest and notify, with defaults.
    All,
}

#[derive(clap::Args, Clone)]
pub struct IngestArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Series per agent.
    #[arg(long, default_value_t = 2_000)]
    pub series: usize,
    /// Rounds per series (360 rounds at 10 s fill a 1 h window).
    #[arg(long, default_value_t = 360)]
    pub rounds: usize,
    /// Rules loaded.
    #[arg(long, default_value_t = 1_000)]
    pub rules: usize,
    /// Detection probes (fire + resolve pairs).
    #[arg(long, default_value_t = 200)]
    pub probes: usize,
    /// How often the history rolls the window up (`history.flush`): the
    /// fill covers an hour in well under a minute, so every 15 s puts
    /// passes inside it and inside the half-load phase.
    #[arg(long, default_value = "15s")]
    pub history_flush: String,
    /// Sample the collector with `perf` during the fill and print where its
    /// CPU goes per stage.
    #[arg(long)]
    pub perf: bool,
    /// Then run Debian's `prometheus` on the same series and rules, in the
    /// same run, and print its figures beside ours.
    #[arg(long)]
    pub vs_prometheus: bool,
    /// Prometheus's rule evaluation interval beside it: 1s evaluates every
    /// rule as often as each series gets a sample (as ours does); 10s is
    /// one evaluation per ten samples.
    #[arg(long, default_value = "1s")]
    pub prometheus_eval: String,
}

#[derive(clap::Args, Clone)]
pub struct AgentArgs {
    /// Collection rounds measured at the 1 s interval.
    #[arg(long, default_value_t = 30)]
    pub rounds_1s: u32,
    /// Collection rounds measured at the 10 s interval.
    #[arg(long, default_value_t = 6)]
    pub rounds_10s: u32,
}

/// Metrics the simulated agents' series are spread over.
const METRICS: usize = 100;
/// Batches a simulated agent sends ahead of its acks.
const BATCHES_IN_FLIGHT: u64 = 8;

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
        What::Ingest(a) => ingest::run(a).await,
        What::Agent(a) => agent::run(a).await,
        What::AgentSources { interval, rounds } => {
            agent::sources(std::time::Duration::from_secs(interval.max(1)), rounds).await
        }
        What::Store { series, samples } => {
            store::run(series, samples);
            Ok(())
        }
        What::Notify { faults, storm } => notify::run(faults, storm).await,
        What::Snmp {
            polls,
            devices,
            ports,
            simulators,
            interval,
            rounds,
            fleet_only,
        } => {
            if !fleet_only {
                snmp::run(polls).await?;
            }
            if devices > 0 {
                snmp::fleet(devices, ports, simulators.max(1), interval.max(1), rounds.max(1)).await?;
            }
            Ok(())
        }
        What::Spool { series, rounds } => spool::run(series, rounds).await,
        What::History {
            series,
            days,
            read_series,
        } => history::run(series, days, read_series),
        What::Tls {
            agents,
            series,
            rounds,
        } => tls::run(agents, series, rounds).await,
        What::RemoteWrite {
            agents,
            series,
            minutes,
            interval,
        } => remote_write::run(agents, series, minutes, interval).await,
        What::Console {
            hosts,
            faults,
            rounds,
        } => console::run(hosts, faults, rounds).await,
        What::Streams(a) => streams::run(a).await,
        What::StreamsWorker(a) => streams::worker(a).await,
        What::All => {
            agent::run(AgentArgs {
                rounds_1s: 30,
                rounds_10s: 6,
            })
            .await?;
            ingest::run(IngestArgs {
                agents: 50,
                series: 2_000,
                rounds: 360,
                rules: 1_000,
                probes: 200,
                perf: false,
                vs_prometheus: false,
                history_flush: "15s".into(),
                prometheus_eval: "1s".into(),
            })
            .await?;
            notify::run(100, 1_000).await
        }
    }
}
