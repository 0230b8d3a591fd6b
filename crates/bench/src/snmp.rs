//! SNMP polling: watchpost-agent beside prometheus-snmp-exporter, both
//! walking the same IF-MIB columns of the same simulated 1,000-interface
//! switch (snmpsim serving `cisco-n5k` from tests/peers/snmprec.py), one
//! after the other in the same run.
//!
//! The simulator (single-threaded Python) dominates wall time for both; the
//! poller's own CPU time per poll and its memory are the comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use watchpost_tests::process::{ChildProcess, free_port, wait_http_ok};

use crate::harness::{sibling_binary, start_collector};
use crate::proc;

const COMMUNITY: &str = "cisco-n5k";

fn peers() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/release/watchpost-bench → target/peers
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .context("bench binary has no target directory")?
        .join("peers");
    let ready = |d: &Path| {
        d.join("venv/bin/snmpsim-command-responder").exists() && d.join("snmprec/cisco-n5k.snmprec").exists()
    };
    if !ready(&dir) {
        // The project's own script installs snmpsim and writes the devices.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/setup.sh");
        let status = Command::new("bash")
            .arg(&script)
            .env("WATCHPOST_PEERS_DIR", &dir)
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() || !ready(&dir) {
            bail!(
                "snmpsim is not installed and {} did not install it ({status})",
                script.display()
            );
        }
    }
    Ok(dir)
}

/// The IF-MIB columns the agent walks, as an snmp_exporter 0.21 module.
fn exporter_config() -> String {
    let ifx = |c: u32| format!("1.3.6.1.2.1.31.1.1.1.{c}");
    let if_ = |c: u32| format!("1.3.6.1.2.1.2.2.1.{c}");
    let columns: Vec<(String, &str, &str)> = vec![
        (if_(2), "ifDescr", "DisplayString"),
        (if_(5), "ifSpeed", "gauge"),
        (if_(7), "ifAdminStatus", "gauge"),
        (if_(8), "ifOperStatus", "gauge"),
        (if_(13), "ifInDiscards", "counter"),
        (if_(14), "ifInErrors", "counter"),
        (if_(19), "ifOutDiscards", "counter"),
        (if_(20), "ifOutErrors", "counter"),
        (ifx(6), "ifHCInOctets", "counter"),
        (ifx(7), "ifHCInUcastPkts", "counter"),
        (ifx(8), "ifHCInMulticastPkts", "counter"),
        (ifx(9), "ifHCInBroadcastPkts", "counter"),
        (ifx(10), "ifHCOutOctets", "counter"),
        (ifx(11), "ifHCOutUcastPkts", "counter"),
        (ifx(12), "ifHCOutMulticastPkts", "counter"),
        (ifx(13), "ifHCOutBroadcastPkts", "counter"),
        (ifx(15), "ifHighSpeed", "gauge"),
        (ifx(19), "ifCounterDiscontinuityTime", "gauge"),
    ];
    let mut y = String::from("if_mib:\n  walk:\n");
    for (oid, _, _) in &columns {
        y += &format!("  - {oid}\n");
    }
    y += &format!(
        "  - {}\n  - {}\n  get:\n  - 1.3.6.1.2.1.1.3.0\n  metrics:\n",
        ifx(1),
        ifx(18)
    );
    y += "  - name: sysUpTime\n    oid: 1.3.6.1.2.1.1.3\n    type: gauge\n";
    for (oid, name, kind) in &columns {
        y += &format!(
            "  - name: {name}\n    oid: {oid}\n    type: {kind}\n    indexes:\n    - labelname: ifIndex\n      type: gauge\n    lookups:\n    - labels: [ifIndex]\n      labelname: ifName\n      oid: {}\n      type: DisplayString\n    - labels: [ifIndex]\n      labelname: ifAlias\n      oid: {}\n      type: DisplayString\n",
            ifx(1),
            ifx(18)
        );
    }
    y += &format!(
        "  version: 2\n  max_repetitions: 25\n  retries: 1\n  timeout: 10s\n  auth:\n    community: {COMMUNITY}\n"
    );
    y
}

/// An snmpsim process serving the recordings in `data` on a free port.
fn simulator(
    peers: &std::path::Path,
    data: &std::path::Path,
    cache: &std::path::Path,
) -> anyhow::Result<(ChildProcess, u16)> {
    let port = free_port();
    let child = ChildProcess(
        Command::new(peers.join("venv/bin/snmpsim-command-responder"))
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            .arg(format!("--cache-dir={}", cache.display()))
            .args([
                "--logging-method=null",
                "--process-user=root",
                "--process-group=root",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting snmpsim")?,
    );
    Ok((child, port))
}

async fn wait_snmp(port: u16, community: &str) -> anyhow::Result<()> {
    use watchpost_agent::sources::snmp::session::{AsyncSnmp, Credentials, Oid, Session, SessionConfig};
    let config = SessionConfig {
        address: format!("127.0.0.1:{port}"),
        credentials: Credentials::V2c {
            community: community.into(),
        },
        timeout: Duration::from_millis(300),
        retries: 0,
        max_repetitions: 25,
    };
    let s = AsyncSnmp::open(&config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if s.get(&[Oid::parse("1.3.6.1.2.1.1.3.0").map_err(anyhow::Error::msg)?])
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("snmpsim did not answer within 60 s")
}

pub async fn run(polls: u32) -> anyhow::Result<()> {
    println!("== SNMP polling: one switch with 1,000 interfaces (snmpsim), IF-MIB, max-repetitions 25");
    let peers = peers()?;
    let (sim, sim_port) = simulator(&peers, &peers.join("snmprec"), &peers.join("snmpsim-cache"))?;
    wait_snmp(sim_port, COMMUNITY).await?;

    // watchpost-agent: SNMP only, one poll every 20 s, values to a real collector.
    let c = start_collector("").await?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\ncollector = \"{}\"\nid = \"bench-snmp\"\ninterval = \"10s\"\n\n[host]\nenabled = false\n\n[[snmp.device]]\nname = \"dc-core-1\"\naddress = \"127.0.0.1:{sim_port}\"\nversion = \"v2c\"\ncommunity = \"{COMMUNITY}\"\ninterval = \"20s\"\ntimeout = \"10s\"\n",
            c.grpc
        ),
    )?;
    let agent = ChildProcess(
        Command::new(sibling_binary("watchpost-agent")?)
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .envs(
                std::env::var("BENCH_AGENT_ARENAS")
                    .ok()
                    .map(|v| ("MALLOC_ARENA_MAX".to_string(), v)),
            )
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = agent.0.id();
    let durations = |http: String| async move {
        let url = format!("{http}/api/v1/query?metric=snmp_poll_duration_ms&device=dc-core-1&since=1h");
        let v: serde_json::Value = reqwest::get(&url).await?.json().await?;
        let points: Vec<f64> = v
            .get(0)
            .and_then(|s| s.get("points"))
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get(1).and_then(serde_json::Value::as_f64))
                    .collect()
            })
            .unwrap_or_default();
        Ok::<_, anyhow::Error>(points)
    };
    // The first poll (sessions, allocation) is not counted.
    let deadline = Instant::now() + Duration::from_secs(120);
    while durations(c.http.clone()).await?.is_empty() {
        if Instant::now() > deadline {
            bail!("the agent did not finish a poll within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu0 = proc::cpu_ns(pid);
    let ours;
    loop {
        let d = durations(c.http.clone()).await?;
        if d.len() > polls as usize {
            let cpu = proc::cpu_ns(pid) - cpu0;
            let walks: Vec<f64> = d[1..].to_vec();
            let mean = walks.iter().sum::<f64>() / walks.len() as f64;
            let series: serde_json::Value = reqwest::get(format!("{}/api/v1/agents", c.http))
                .await?
                .json()
                .await?;
            let n = series
                .as_array()
                .and_then(|a| a.first())
                .and_then(|a| a.get("series"))
                .cloned()
                .unwrap_or_default();
            ours = (cpu as f64 / 1e6 / f64::from(polls), proc::rss_bytes(pid));
            println!(
                "watchpost-agent      poll {mean:>7.0} ms   CPU {:>6.1} ms per poll   RSS {} (anonymous {})   ({n} series, {} polls)",
                ours.0,
                proc::mib(proc::rss_bytes(pid)),
                proc::mib(proc::anon_bytes(pid)),
                walks.len()
            );
            break;
        }
        if Instant::now() > deadline + Duration::from_secs(30 * u64::from(polls)) {
            bail!("the agent did not finish {polls} polls");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(agent);

    // snmp_exporter, scraped `polls` times after one warm-up scrape.
    crate::agent::install_anchors();
    let bin = PathBuf::from("/usr/bin/prometheus-snmp-exporter");
    if !bin.exists() {
        println!(
            "snmp_exporter        not installed (tests/peers/bench.sh could not install prometheus-snmp-exporter), not measured"
        );
        drop(sim);
        return Ok(());
    }
    let yml = dir.path().join("snmp.yml");
    std::fs::write(&yml, exporter_config())?;
    let port = free_port();
    let exporter = ChildProcess(
        Command::new(&bin)
            .arg(format!("--config.file={}", yml.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting snmp_exporter")?,
    );
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(10),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let url = format!("http://127.0.0.1:{port}/snmp?target=127.0.0.1:{sim_port}&module=if_mib");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let body = client.get(&url).send().await?.text().await?;
    if !body.contains("ifHCInOctets") {
        bail!(
            "snmp_exporter's scrape has no ifHCInOctets: {}",
            body.lines().take(5).collect::<Vec<_>>().join(" | ")
        );
    }
    let epid = exporter.0.id();
    let cpu0 = proc::cpu_ns(epid);
    let mut total = Duration::ZERO;
    let mut series = 0;
    for _ in 0..polls {
        let t = Instant::now();
        let body = client.get(&url).send().await?.text().await?;
        total += t.elapsed();
        series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.starts_with("snmp_scrape"))
            .count();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = proc::cpu_ns(epid) - cpu0;
    let theirs = (cpu as f64 / 1e6 / f64::from(polls), proc::rss_bytes(epid));
    println!(
        "snmp_exporter 0.21   poll {:>7.0} ms   CPU {:>6.1} ms per poll   RSS {} (anonymous {})   ({series} series, {polls} scrapes)",
        total.as_secs_f64() * 1000.0 / f64::from(polls),
        theirs.0,
        proc::mib(theirs.1),
        proc::mib(proc::anon_bytes(epid))
    );
    println!(
        "ratio                agent / snmp_exporter: CPU per poll {:.2} (target: 100 ms, {:.2} of the exporter's 584 ms in DESIGN.md), RSS {:.2} (target 20 MiB)",
        ours.0 / theirs.0,
        100.0 / 584.0,
        ours.1 as f64 / theirs.1 as f64
    );
    println!(
        "(poll = walking the same 20 IF-MIB columns; the exporter sends raw counters, the agent sends rates, statuses and utilisation and also keeps counter state)"
    );
    drop(exporter);
    drop(sim);
    Ok(())
}

/// A 48-port access switch: the 1,000-interface recording cut to its first
/// 48 interfaces.
fn access_switch(n5k: &str, ports: u32) -> String {
    let tables = ["1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1."];
    n5k.lines()
        .filter_map(|line| {
            let oid = line.split('|').next().unwrap_or("");
            if oid == "1.3.6.1.2.1.2.1.0" {
                return Some(format!("{oid}|2|{ports}"));
            }
            let in_table = tables.iter().any(|t| oid.starts_with(t));
            let index: u32 = oid.rsplit('.').next().and_then(|i| i.parse().ok()).unwrap_or(0);
            (!in_table || index <= ports).then(|| line.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `devices` switches of `ports` interfaces each, served by `simulators`
/// snmpsim processes, polled by one agent every `interval`: does every
/// device get its poll in every interval, and at what CPU and memory.
pub async fn fleet(
    devices: usize,
    ports: u32,
    simulators: usize,
    interval_s: u64,
    rounds: u64,
) -> anyhow::Result<()> {
    println!(
        "== SNMP fleet: one agent polling {devices} switches x {ports} interfaces (IF-MIB, 20 columns) every {interval_s} s; {simulators} snmpsim processes"
    );
    let peers = peers()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("snmprec");
    std::fs::create_dir_all(&data)?;
    let recording = access_switch(
        &std::fs::read_to_string(peers.join("snmprec/cisco-n5k.snmprec"))?,
        ports,
    );
    let per_sim = devices.div_ceil(simulators);
    for k in 0..per_sim {
        std::fs::write(data.join(format!("access-{k:03}.snmprec")), &recording)?;
    }
    let mut sims = Vec::new();
    for s in 0..simulators {
        let cache = dir.path().join(format!("cache-{s}"));
        std::fs::create_dir_all(&cache)?;
        sims.push(simulator(&peers, &data, &cache)?);
    }
    for (_, port) in &sims {
        wait_snmp(*port, "access-000").await?;
    }
    let c = start_collector("").await?;
    let mut cfg = format!(
        "[agent]\ncollector = \"{}\"\nid = \"bench-fleet\"\ninterval = \"10s\"\n\n[host]\nenabled = false\n\n[snmp]\nconcurrency = 32\n",
        c.grpc
    );
    for d in 0..devices {
        let (_, port) = sims[d % simulators];
        cfg.push_str(&format!(
            "\n[[snmp.device]]\nname = \"access-{d:03}\"\naddress = \"127.0.0.1:{port}\"\nversion = \"v2c\"\ncommunity = \"access-{:03}\"\ninterval = \"{interval_s}s\"\ntimeout = \"10s\"\n",
            d / simulators
        ));
    }
    let cfg_path = dir.path().join("agent.toml");
    std::fs::write(&cfg_path, cfg)?;
    let agent = ChildProcess(
        Command::new(sibling_binary("watchpost-agent")?)
            .arg("--config")
            .arg(&cfg_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = agent.0.id();
    let polls_since = |since: i64| {
        let http = c.http.clone();
        async move {
            let url = format!("{http}/api/v1/query?metric=snmp_poll_duration_ms&since={since}&step=raw");
            let v: Vec<watchpost_model::api::SeriesPoints> = reqwest::get(&url).await?.json().await?;
            Ok::<_, anyhow::Error>(v)
        }
    };
    // Every device polled once (sessions opened, counters primed).
    let t_start = watchpost_collector::time::now_ms();
    let deadline = Instant::now() + Duration::from_secs(interval_s * 4 + 60);
    loop {
        let got = polls_since(t_start).await?;
        if got.len() >= devices {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {} of {devices} devices polled once", got.len());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let t0 = watchpost_collector::time::now_ms();
    let cpu0 = proc::cpu_ns(pid);
    let sim_cpu0: u64 = sims.iter().map(|(s, _)| proc::cpu_ns(s.0.id())).sum();
    tokio::time::sleep(Duration::from_secs(interval_s * rounds)).await;
    let cpu = proc::cpu_ns(pid) - cpu0;
    let sim_cpu: u64 = sims.iter().map(|(s, _)| proc::cpu_ns(s.0.id())).sum::<u64>() - sim_cpu0;
    let got = polls_since(t0).await?;
    let counts: Vec<usize> = got.iter().map(|s| s.points.len()).collect();
    let mut durations: Vec<f64> = got.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
    durations.sort_by(f64::total_cmp);
    let polls: usize = counts.iter().sum();
    let every = counts.iter().filter(|&&n| n as u64 >= rounds).count();
    let q = |f: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * f) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "watchpost-agent      {every} of {devices} devices polled in each of {rounds} intervals ({polls} polls, {} to {} per device); poll p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    println!(
        "                     CPU {:.0} ms per interval = {:.2} ms per device poll ({} interfaces), RSS {} (anonymous {})",
        cpu as f64 / 1e6 / rounds as f64,
        cpu as f64 / 1e6 / polls.max(1) as f64,
        ports,
        proc::mib(proc::rss_bytes(pid)),
        proc::mib(proc::anon_bytes(pid))
    );
    println!(
        "simulators           {simulators} snmpsim processes used {:.2} cores over the window (the 2 cores are shared with the agent and the collector)",
        sim_cpu as f64 / 1e9 / (interval_s * rounds) as f64
    );
    drop(agent);
    drop(sims);
    Ok(())
}
