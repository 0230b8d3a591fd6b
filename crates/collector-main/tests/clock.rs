//! Agents whose clock is wrong, run under `faketime` (Debian package
//! `faketime`, installed by `tests/peers/setup.sh`) against a real
//! `watchpost-collector`: 2 h ahead, 2 h behind and 3 min ahead. Each is
//! measured, its samples land at the collector's time, the two far off get
//! the built-in `agent_clock_skew` fault (the third is within
//! `max_clock_offset = "5m"` here, but beyond the tolerance, so corrected),
//! a spooled backlog replayed after a 30 s outage keeps its corrected times
//! with no gap and no duplicate, and the faults resolve when the agents are
//! restarted with the right time.
//!
//! The agent binary is the one `cargo test --workspace` builds beside the
//! collector's (`target/<profile>/watchpost-agent`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use watchpost_collector::time::now_ms;
use watchpost_model::api::{Agent, Fault, FaultStatus, SeriesPoints};
use watchpost_tests::process::get_json as get;
use watchpost_tests::process::{ChildProcess, CollectorProcess};
use watchpost_tests::wait_for;

fn agent_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_watchpost-collector")).with_file_name("watchpost-agent");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p watchpost-agent` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// libfaketime's library for threaded programs. The `faketime` command
/// forks its program, so a signal to it would not reach the agent: the
/// library is preloaded into the agent itself instead.
fn libfaketime() -> PathBuf {
    let out = Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .expect("dpkg -L libfaketime");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with("/libfaketimeMT.so.1"))
        .map(PathBuf::from)
        .expect("libfaketimeMT.so.1 (Debian package libfaketime; tests/peers/setup.sh installs it)")
}

/// `watchpost-agent` named `name` at 1 s with a spool, its wall clock
/// off by `fake` (libfaketime's syntax, e.g. `"+2h"`) when given.
fn spawn_agent(dir: &Path, name: &str, grpc: &str, fake: Option<&str>) -> ChildProcess {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[agent]\ncollector = \"http://{grpc}\"\nhostname = \"{name}\"\ninterval = \"1s\"\nheartbeat = \"300ms\"\nspool_dir = {:?}\n[host]\nenabled = false\n",
            dir.join(format!("{name}-spool")).to_string_lossy()
        ),
    )
    .expect("agent config");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    let mut cmd = Command::new(agent_binary());
    if let Some(offset) = fake {
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset)
            // Only the wall clock is wrong on such a host.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    cmd.arg("--config").arg(&config).stdout(Stdio::null()).stderr(log);
    ChildProcess(cmd.spawn().expect("start the agent"))
}

async fn agent(api: &str, id: &str) -> Option<Agent> {
    let all: Vec<Agent> = get(api, "/api/v1/agents").await?;
    all.into_iter().find(|a| a.id == id)
}

async fn rounds(api: &str, host: &str) -> Vec<(i64, f64)> {
    let s: Vec<SeriesPoints> = get(
        api,
        &format!(
            "/api/v1/query?metric=agent_rounds_total&host={host}&since=0&until={}&step=raw",
            i64::MAX
        ),
    )
    .await
    .unwrap_or_default();
    s.into_iter().next().map(|s| s.points).unwrap_or_default()
}

async fn skew_faults(api: &str) -> Vec<Fault> {
    get(api, "/api/v1/faults?rule=agent_clock_skew&limit=100")
        .await
        .unwrap_or_default()
}

/// Waits until `host`'s newest round is at most `within_ms` before now,
/// on the collector's (and this test's) clock.
async fn arriving_now(api: &str, host: &str, within_ms: i64) -> i64 {
    wait_for(
        &format!("{host}'s rounds at the collector's time"),
        Duration::from_secs(30),
        || async {
            let last = rounds(api, host).await.last()?.0;
            ((now_ms() - last).abs() <= within_ms).then_some(last)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_wrong_clocks_are_measured_corrected_and_told() {
    watchpost_tests::peers_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nmin_free = \"64MiB\"\ndata_dir = {:?}\nheartbeat = \"1s\"\nmax_clock_offset = \"5m\"\n[security]\nagents = \"open\"\napi = \"open\"\n",
            dir.path().join("data").to_string_lossy()
        ),
    )
    .expect("config");
    let collector = CollectorProcess::new(
        env!("CARGO_BIN_EXE_watchpost-collector"),
        &["--config", &config.to_string_lossy()],
    );
    let api = collector.api();
    let grpc = collector.grpc_addr();
    let mut process = collector.start();
    let offsets = [
        ("ahead", "+2h", 7_200.0),
        ("behind", "-2h", -7_200.0),
        ("near", "+3m", 180.0),
    ];
    let mut agents: Vec<Option<ChildProcess>> = offsets
        .iter()
        .map(|(name, fake, _)| Some(spawn_agent(dir.path(), name, &grpc, Some(fake))))
        .collect();

    // Measured, shown, and corrected: samples at the collector's time.
    for (name, _, want) in offsets {
        let a = wait_for(
            &format!("{name}'s clock measured"),
            Duration::from_secs(30),
            || async {
                let a = agent(&api, name).await?;
                (a.clock_offset.is_some_and(|o| (o - want).abs() < 1.0) && a.clock_rtt.is_some()).then_some(a)
            },
        )
        .await;
        eprintln!(
            "{name}: measured offset {:+.3} s (round trip {:.3} s)",
            a.clock_offset.unwrap_or_default(),
            a.clock_rtt.unwrap_or_default()
        );
        arriving_now(&api, name, 3_500).await;
    }
    let text = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = text
        .lines()
        .find(|l| l.starts_with("watchpost_agent_clock_offset_seconds{agent=\"behind\"}"))
        .expect("the offset in /metrics");
    let shown: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!((shown + 7_200.0).abs() < 1.0, "{line}");

    // The two far off are faults about their hosts; the near one is not.
    let open = wait_for(
        "agent_clock_skew for ahead and behind",
        Duration::from_secs(20),
        || async {
            let f = skew_faults(&api).await;
            (f.len() >= 2).then_some(f)
        },
    )
    .await;
    let mut hosts: Vec<&str> = open.iter().map(|f| f.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["ahead", "behind"], "{open:?}");
    let ahead = open.iter().find(|f| f.host == "ahead").expect("ahead");
    let off: Option<f64> = ahead
        .summary
        .strip_prefix("clock of ahead on ahead is off by ")
        .and_then(|o| o.strip_suffix('s'))
        .and_then(|o| o.parse().ok());
    assert!(
        off.is_some_and(|o| (o - 7_200.0).abs() < 1.0),
        "{}",
        ahead.summary
    );
    for (name, _, _) in offsets {
        let a = agent(&api, name).await.expect("listed");
        assert_eq!(
            a.refused_last_minute, 0,
            "{name}: nothing refused: {:?}",
            a.refused_reason
        );
    }

    // A 30 s outage: the agents spool; the backlog replays at its times.
    let before = now_ms();
    process.kill_9();
    tokio::time::sleep(Duration::from_secs(30)).await;
    process = collector.start();
    let back = arriving_now(&api, "ahead", 3_500).await;
    for (name, _, _) in offsets {
        arriving_now(&api, name, 3_500).await;
        let points = rounds(&api, name).await;
        let across: Vec<&(i64, f64)> = points
            .iter()
            .filter(|p| p.0 >= before - 5_000 && p.0 <= back)
            .collect();
        let steps: Vec<(i64, f64)> = across
            .windows(2)
            .map(|w| (w[1].0 - w[0].0, w[1].1 - w[0].1))
            .collect();
        assert!(
            across.len() >= 30,
            "{name}: the outage's rounds are there: {}",
            across.len()
        );
        assert!(
            steps
                .iter()
                .all(|(dt, dv)| (500..=1_600).contains(dt) && *dv == 1.0),
            "{name}: one round a second through the outage, no gap, no repeat: {steps:?}"
        );
    }

    // Restarted with the right time: the faults resolve.
    for (i, (name, _, _)) in offsets.iter().enumerate().take(2) {
        if let Some(old) = agents[i].take() {
            let exit = old.terminate(Duration::from_secs(15));
            assert!(exit.success(), "{name} stopped with {exit}");
        }
        agents[i] = Some(spawn_agent(dir.path(), name, &grpc, None));
    }
    wait_for("the clock faults to resolve", Duration::from_secs(30), || async {
        let f = skew_faults(&api).await;
        (f.len() == 2 && f.iter().all(|f| f.status == FaultStatus::Resolved)).then_some(())
    })
    .await;
    for name in ["ahead", "behind"] {
        let a = agent(&api, name).await.expect("listed");
        assert!(a.clock_offset.is_some_and(|o| o.abs() < 1.0), "{name}: {a:?}");
        arriving_now(&api, name, 3_500).await;
        // Its spool's old offset followed the clock's step at the restart:
        // the rounds made before the new measurement are not shifted.
        let a = agent(&api, name).await.expect("listed");
        assert_eq!(
            a.refused_last_minute, 0,
            "{name}: nothing refused after the restart: {:?}",
            a.refused_reason
        );
    }
    for a in agents.into_iter().flatten() {
        a.terminate(Duration::from_secs(15));
    }
    let exit = process.terminate(Duration::from_secs(15));
    assert!(exit.success(), "the collector exited with {exit}");
}
