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
    let id = format!("bench-agent-{}", interval.as_millis());
    let (rss, anon, cpu, _) = measure_agent_with(grpc, &id, interval, rounds, "").await?;
    Ok((rss, anon, cpu))
}

/// Runs `watchpost-agent` with `tables` added to its config; returns (RSS,
/// anonymous RSS, CPU ns per round, threads).
async fn measure_agent_with(
    grpc: &str,
    id: &str,
    interval: Duration,
    rounds: u32,
    tables: &str,
) -> anyhow::Result<(u64, u64, f64, usize)> {
    let dir = tempfile::tempdir()?;
    let p = spawn_agent(
        dir.path(),
        &format!(
            "[agent]\ncollector = \"{grpc}\"\ninterval = \"{}ms\"\nid = \"{id}\"\n\n{tables}",
            interval.as_millis(),
        ),
    )?;
    let pid = p.0.id();
    // Warm up: connect, define series, two rounds for the rates.
    tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
    let cpu0 = proc::cpu_ns(pid);
    tokio::time::sleep(interval * rounds).await;
    let cpu = proc::cpu_ns(pid) - cpu0;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    Ok((
        proc::rss_bytes(pid),
        proc::anon_bytes(pid),
        cpu as f64 / f64::from(rounds),
        threads,
    ))
}

/// `agent-sources`: host metrics alone, then with one of each database
/// source (real MariaDB, PostgreSQL, Redis and nginx on loopback), then
/// with processes, a log and RAID, at one interval, in the same run.
pub async fn sources(interval: Duration, rounds: u32) -> anyhow::Result<()> {
    use watchpost_tests::databases::{MariaDb, Nginx, Postgres, Redis};
    println!(
        "== agent with database and system sources, {}s interval, {rounds} rounds each",
        interval.as_secs()
    );
    let c = start_collector("").await?;
    let (db, pg, redis, nginx) = tokio::task::spawn_blocking(|| {
        (
            MariaDb::start(),
            Postgres::start(),
            Redis::start(None),
            Nginx::start(),
        )
    })
    .await?;
    let databases = format!(
        "[[mysql]]\naddress = \"127.0.0.1:{}\"\nuser = \"watchpost\"\npassword = \"wp-secret\"\n\n\
         [[postgres]]\naddress = \"127.0.0.1:{}\"\nuser = \"watchpost\"\npassword = \"wp-secret\"\n\n\
         [[redis]]\naddress = \"127.0.0.1:{}\"\npassword = \"wp-secret\"\n\n\
         [[nginx]]\nurl = \"http://127.0.0.1:{}/nginx_status\"\n",
        db.port, pg.port, redis.port, nginx.port
    );
    let logs = tempfile::tempdir()?;
    let log = logs.path().join("app.log");
    std::fs::write(&log, "started\n")?;
    let system = format!(
        "[[process]]\nname = \"mariadb\"\nexe = \"mariadbd\"\n\n[[process]]\nname = \"postgres\"\nexe = \"postgres\"\n\n\
         [[log]]\nname = \"app\"\npath = \"{}\"\npatterns = {{ error = \"ERROR\", ora = 'ORA-\\d+' }}\n\n\
         [storage]\nsmart = false\n",
        log.display()
    );
    let mut host_only = None;
    for (what, tables) in [
        ("host only", String::new()),
        ("host + mysql, postgres, redis, nginx", databases.clone()),
        ("host + 2 processes, 1 log, RAID", system),
    ] {
        let id = format!("bench-sources-{}", what.len());
        let (rss, anon, cpu, threads) = measure_agent_with(&c.grpc, &id, interval, rounds, &tables).await?;
        let more = match host_only {
            None => {
                host_only = Some((rss, cpu));
                String::new()
            }
            Some((r, c)) => format!(
                "  (+{} RSS, {:+.3} ms CPU beside host only)",
                proc::mib(rss.saturating_sub(r)),
                (cpu - c) / 1e6
            ),
        };
        println!(
            "{what:<38} RSS {} (anonymous {})  CPU {:.3} ms per round  {threads} threads{more}",
            proc::mib(rss),
            proc::mib(anon),
            cpu / 1e6
        );
    }
    drop((db, pg, redis, nginx));
    Ok(())
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
