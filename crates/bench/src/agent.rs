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
    // WATCHPOST_BENCH_AGENT measures another build of the agent (a profile).
    let bin = match std::env::var_os("WATCHPOST_BENCH_AGENT") {
        Some(p) => PathBuf::from(p),
        None => sibling_binary("watchpost-agent")?,
    };
    let child = Command::new(bin)
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

/// collectd 5 with the plugin set collectd users run for host metrics
/// (cpu, memory, df, disk, interface, load, processes), sending to a
/// network socket nobody reads, at `interval`; (RSS, anonymous, CPU ns per
/// interval), or `None` when it is not installed.
async fn collectd(interval: Duration, rounds: u32) -> anyhow::Result<Option<(u64, u64, f64)>> {
    let bin = PathBuf::from("/usr/sbin/collectd");
    if !bin.exists() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            "Interval {}\nBaseDir \"{}\"\nPIDFile \"{}/collectd.pid\"\nPluginDir \"/usr/lib/collectd\"\n\
             LoadPlugin cpu\nLoadPlugin memory\nLoadPlugin df\nLoadPlugin disk\nLoadPlugin interface\n\
             LoadPlugin load\nLoadPlugin processes\nLoadPlugin network\n\
             <Plugin network>\n  Server \"127.0.0.1\" \"{}\"\n</Plugin>\n",
            interval.as_secs_f64(),
            dir.path().display(),
            dir.path().display(),
            free_port()
        ),
    )?;
    let child = Command::new(&bin)
        .arg("-f")
        .arg("-C")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let p = ChildProcess(child);
    let pid = p.0.id();
    tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
    let cpu0 = proc::cpu_ns(pid);
    tokio::time::sleep(interval * rounds).await;
    let cpu = proc::cpu_ns(pid) - cpu0;
    Ok(Some((
        proc::rss_bytes(pid),
        proc::anon_bytes(pid),
        cpu as f64 / f64::from(rounds),
    )))
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
    if tables.is_empty() && interval == Duration::from_secs(1) {
        let parts: Vec<String> = proc::rss_breakdown(pid)
            .into_iter()
            .filter(|(_, b)| *b > 0)
            .map(|(what, b)| format!("{what} {}", proc::mib(b)))
            .collect();
        println!("watchpost-agent   1s    RSS by mapping: {}", parts.join(", "));
    }
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

/// Installs collectd, node_exporter and snmp_exporter with
/// `tests/peers/bench.sh` when one is missing.
pub(crate) fn install_anchors() {
    if [
        "/usr/sbin/collectd",
        "/usr/bin/prometheus-node-exporter",
        "/usr/bin/prometheus-snmp-exporter",
    ]
    .iter()
    .all(|p| std::path::Path::new(p).exists())
    {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/bench.sh");
    match Command::new("bash").arg(&script).status() {
        Ok(s) if s.success() => {}
        other => println!(
            "(installing the anchors with {} failed: {other:?})",
            script.display()
        ),
    }
}

pub async fn run(a: AgentArgs) -> anyhow::Result<()> {
    println!("== agent footprint (this host's metrics, sent to a real collector)");
    install_anchors();
    let c = start_collector("").await?;
    let mut at_1s = (0, 0.0);
    for (interval, rounds) in [
        (Duration::from_secs(10), a.rounds_10s),
        (Duration::from_secs(1), a.rounds_1s),
    ] {
        let (rss, anon, cpu) = measure_agent(&c.grpc, interval, rounds).await?;
        at_1s = (rss, cpu);
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
    match collectd(Duration::from_secs(1), a.rounds_1s).await? {
        Some((rss, anon, cpu)) => {
            println!(
                "collectd            1s    RSS {} (anonymous {})  CPU {:.3} ms per interval (cpu, memory, df, disk, interface, load, processes → network)",
                proc::mib(rss),
                proc::mib(anon),
                cpu / 1e6
            );
            println!(
                "agent / collectd    1s    RSS {:.2} x, CPU {:.2} x (same run)",
                at_1s.0 as f64 / rss.max(1) as f64,
                at_1s.1 / cpu.max(1.0)
            );
        }
        None => println!(
            "collectd                  not installed here (apt-get install collectd-core), not measured"
        ),
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
