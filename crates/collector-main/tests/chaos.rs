//! Chaos: agents at a 1 s interval with disk spools stream through a TCP
//! proxy to a `watchpost-collector` process that is killed with `kill -9`
//! several times, and the proxy cuts the stream for 40 s (with one more
//! crash inside the cut). Then, through the API: every round every agent
//! made is present exactly once (`agent_rounds_total` runs 1, 2, 3, … with
//! no gap and no repeat, and every other series of the round has the same
//! timestamps), and each fault is recorded once: the always-firing rule one
//! open record per agent, agent silence one record per agent for the cut,
//! and a condition that held and cleared inside the cut one resolved record
//! with the times it really held.
//!
//! A SIGTERM along the way must end the collector cleanly within 15 s.
//!
//! `tests/chaos.sh` runs it longer: `WATCHPOST_CHAOS_KILLS` crashes before
//! the cut (default 3) and `WATCHPOST_CHAOS_CUT_SECS` (default 40).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use watchpost_agent::AgentConfig;
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultStatus, SeriesPoints};
use watchpost_tests::process::{ChildProcess, CollectorProcess, SmallDisk};
use watchpost_tests::{Receiver, wait_for, write_textfile};

const AGENTS: [&str; 2] = ["chaos-a", "chaos-b"];

const RULES: &str = r#"
[[rule]]
name = "always"
metric = "agent_rounds_total"
when = "> 0"
severity = "minor"

[[rule]]
name = "flag_raised"
metric = "chaos_flag"
when = "> 0"
severity = "general"

[[rule]]
name = "agent_gone"
kind = "agent_silent"
for = "15s"
severity = "general"
"#;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

use watchpost_collector::time::now_ms;
use watchpost_tests::process::get_json as get;

/// SIGTERM: the collector finishes the batches in hand, acknowledges them,
/// syncs its journal and exits 0, promptly.
fn terminate(p: ChildProcess) {
    let exit = p.terminate(Duration::from_secs(15));
    assert!(exit.success(), "the collector exited with {exit} after SIGTERM");
}

/// A TCP proxy that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    cut: Arc<Mutex<bool>>,
    live: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(Mutex::new(false));
        let live: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, l) = (cut.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *c.lock().expect("lock") {
                    continue; // dropped: the agent sees the connection fail
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().expect("lock").push(task.abort_handle());
            }
        });
        Proxy { port, cut, live }
    }

    fn set_cut(&self, cut: bool) {
        *self.cut.lock().expect("lock") = cut;
        if cut {
            for t in self.live.lock().expect("lock").drain(..) {
                t.abort();
            }
        }
    }
}

/// The points of one series up to `until_ms`.
async fn points(api: &str, metric: &str, host: &str, until_ms: i64) -> Option<Vec<(i64, f64)>> {
    let s: Vec<SeriesPoints> = get(
        api,
        &format!("/api/v1/query?metric={metric}&host={host}&since=0&until={until_ms}&step=raw"),
    )
    .await?;
    s.into_iter().next().map(|s| s.points)
}

async fn faults(api: &str, rule: &str, host: &str) -> Vec<Fault> {
    let all: Vec<Fault> = get(api, &format!("/api/v1/faults?rule={rule}&limit=1000"))
        .await
        .unwrap_or_default();
    all.into_iter().filter(|f| f.host == host).collect()
}

fn ts(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339 time")
        .as_millisecond()
}

/// The collector has every round up to one made at or after `until_ms`.
/// A `watchpost-collector` with the chaos rules and `data_dir`, its config
/// in `dir`; `collector` adds keys to its `[collector]` table and `more`
/// tables after it.
fn chaos_collector(
    dir: &std::path::Path,
    data_dir: &std::path::Path,
    collector: &str,
    more: &str,
) -> CollectorProcess {
    std::fs::write(dir.join("rules.toml"), RULES).expect("rules");
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nrules = [\"rules.toml\"]\ndata_dir = {:?}\n{min_free}{collector}\n[security]\nagents = \"open\"\napi = \"open\"\n{more}",
            data_dir.to_string_lossy(),
            // A nearly full shared disk must not open the collector's own
            // disk fault in tests about other things.
            min_free = if collector.contains("min_free") { "" } else { "min_free = \"64MiB\"\n" },
        ),
    )
    .expect("config");
    let config = config.to_string_lossy().to_string();
    CollectorProcess::new(env!("CARGO_BIN_EXE_watchpost-collector"), &["--config", &config])
}

/// Agent `name` at 1 s with a disk spool in `dir`, streaming to `url`; its
/// textfile directory (holding `chaos_flag 0`) comes back with it.
fn chaos_agent(
    dir: &std::path::Path,
    name: &str,
    url: &str,
) -> (watchpost_agent::RunningAgent, std::path::PathBuf) {
    let files = dir.join(format!("{name}-textfiles"));
    std::fs::create_dir_all(&files).expect("mkdir");
    write_textfile(&files, "chaos.prom", "chaos_flag 0\n");
    let mut c = AgentConfig::local(url);
    c.hostname = Some(name.to_string());
    c.interval = Duration::from_secs(1);
    c.heartbeat = Duration::from_millis(300);
    c.host.enabled = false;
    c.textfile_dir = Some(files.clone());
    c.spool.dir = Some(dir.join(format!("{name}-spool")));
    let spool = watchpost_agent::spool::Spool::open(&c.spool).expect("spool opens");
    (watchpost_agent::start_with(c, spool), files)
}

async fn caught_up(api: &str, until_ms: i64) {
    wait_for(
        "the agents' backlog to arrive",
        Duration::from_secs(90),
        || async {
            for host in AGENTS {
                let p = points(api, "agent_rounds_total", host, i64::MAX).await?;
                let last = p.last()?;
                if last.0 < until_ms {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_arrives_once_through_crashes_and_a_cut() {
    let kills = env_number("WATCHPOST_CHAOS_KILLS", 3);
    let cut_secs = env_number("WATCHPOST_CHAOS_CUT_SECS", 40).max(30);
    let dir = tempfile::tempdir().expect("tempdir");
    // One replay at a time: the agents' backlogs after the cut wait their
    // turn, unread, and still every sample arrives once.
    let collector = chaos_collector(
        dir.path(),
        &dir.path().join("data"),
        "max_concurrent_replays = 1\n",
        "",
    );
    let api = collector.api();
    let mut process = collector.start();
    let proxy = Proxy::start(collector.grpc).await;

    let mut agents = Vec::new();
    for name in AGENTS {
        agents.push(chaos_agent(
            dir.path(),
            name,
            &format!("http://127.0.0.1:{}", proxy.port),
        ));
    }
    caught_up(&api, now_ms() - 1_000).await;

    // Crashes with the stream up: the collector dies mid-batch, mid-commit.
    for i in 0..kills {
        tokio::time::sleep(Duration::from_millis(2_500 + 700 * i)).await;
        process.kill_9();
        tokio::time::sleep(Duration::from_millis(500 + 1_000 * (i % 3))).await;
        process = collector.start();
    }
    caught_up(&api, now_ms() - 1_000).await;

    // The cut: agents spool; a condition holds and clears meanwhile, and the
    // collector crashes once more while nobody can reach it.
    let cut_at = now_ms();
    proxy.set_cut(true);
    tokio::time::sleep(Duration::from_secs(cut_secs / 4)).await;
    let raised = now_ms();
    for (_, files) in &agents {
        write_textfile(files, "chaos.prom", "chaos_flag 1\n");
    }
    tokio::time::sleep(Duration::from_secs(cut_secs / 4)).await;
    let cleared = now_ms();
    for (_, files) in &agents {
        write_textfile(files, "chaos.prom", "chaos_flag 0\n");
    }
    process.kill_9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    process = collector.start();
    tokio::time::sleep(Duration::from_secs(cut_secs - 2 * (cut_secs / 4) - 2)).await;
    proxy.set_cut(false);
    let healed = now_ms();
    caught_up(&api, healed + 2_000).await;

    // A graceful stop, then one more crash once everything is in: the
    // journal brings it all back.
    terminate(process);
    process = collector.start();
    caught_up(&api, now_ms()).await;
    process.kill_9();
    let _process = collector.start();
    // The agents keep running through the checks (a stopped agent falls
    // silent and its silence fault would reopen), so every series is read
    // up to one instant that has fully arrived: batches are whole and in order.
    let until = now_ms();
    caught_up(&api, until).await;

    every_round_once(&api, until).await;
    for host in AGENTS {
        let rounds = points(&api, "agent_rounds_total", host, until)
            .await
            .expect("rounds");
        let values: Vec<u64> = rounds.iter().map(|p| p.1 as u64).collect();
        let span_s = (rounds.last().expect("rounds").0 - rounds[0].0) / 1_000;
        assert!(
            values.len() as i64 >= span_s,
            "{host}: {} rounds over {span_s} s",
            values.len()
        );
        // Every series of a round arrived with it.
        let round_times: Vec<i64> = rounds.iter().map(|p| p.0).collect();
        for metric in ["agent_spool_pending_batches", "chaos_flag"] {
            let p = points(&api, metric, host, until).await.expect(metric);
            let times: Vec<i64> = p.iter().map(|p| p.0).collect();
            assert_eq!(
                times, round_times,
                "{host}: {metric} has other timestamps than the rounds"
            );
        }
        // The spool really held the cut's rounds.
        let pending = points(&api, "agent_spool_pending_batches", host, until)
            .await
            .expect("pending");
        let most = pending.iter().map(|p| p.1).fold(0.0, f64::max);
        assert!(
            most >= (cut_secs / 2) as f64,
            "{host}: at most {most} batches pending during a {cut_secs} s cut"
        );
        let dropped = points(&api, "agent_spool_dropped_batches_total", host, until)
            .await
            .expect("dropped");
        assert!(
            dropped.iter().all(|p| p.1 == 0.0),
            "{host}: the spool dropped batches"
        );

        // Faults: each recorded once.
        let always = faults(&api, "always", host).await;
        assert_eq!(always.len(), 1, "{host}: {always:?}");
        assert_eq!(always[0].status, FaultStatus::Open);
        // The silence resolves on the collector's next one-second tick
        // after the agent is back: a restart just before the checks may
        // not have had that tick yet.
        let gone = wait_for(
            "the cut's silence fault to resolve",
            Duration::from_secs(30),
            || async {
                let gone = faults(&api, "agent_gone", host).await;
                gone.iter()
                    .all(|f| f.status == FaultStatus::Resolved)
                    .then_some(gone)
            },
        )
        .await;
        assert_eq!(gone.len(), 1, "{host}: one silence fault for the cut: {gone:?}");
        let opened = ts(&gone[0].opened_at);
        assert!(
            opened > cut_at && opened < healed,
            "{host}: silence opened outside the cut"
        );
        let flag = faults(&api, "flag_raised", host).await;
        assert_eq!(flag.len(), 1, "{host}: {flag:?}");
        let f = &flag[0];
        assert_eq!(f.status, FaultStatus::Resolved);
        // Recorded in the past, at the times the condition really held.
        let opened = ts(&f.opened_at);
        let resolved = ts(f.resolved_at.as_deref().expect("resolved_at"));
        assert!(
            (raised..raised + 2_500).contains(&opened),
            "{host}: opened at {opened}, raised at {raised}"
        );
        assert!(
            (cleared..cleared + 2_500).contains(&resolved),
            "{host}: resolved at {resolved}, cleared at {cleared}"
        );
    }
    // Stopped only now: a stopped agent falls silent, and its silence
    // fault would reopen while the checks above run.
    for (agent, _) in agents {
        agent.stop().await;
    }
    drop(dir);
}

/// The checks of `agent_rounds_total` for every agent: rounds 1, 2, 3, …
/// with no gap and no repeat, up to `until`.
async fn every_round_once(api: &str, until: i64) {
    for host in AGENTS {
        let rounds = points(api, "agent_rounds_total", host, until)
            .await
            .expect("rounds");
        let values: Vec<u64> = rounds.iter().map(|p| p.1 as u64).collect();
        let expected: Vec<u64> = (1..=values.len() as u64).collect();
        let gaps: Vec<(u64, u64)> = values
            .windows(2)
            .filter(|w| w[1] != w[0] + 1)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            values == expected,
            "{host}: rounds are not 1..={} exactly once; first {:?}, breaks {gaps:?}",
            values.len(),
            values.first()
        );
    }
}

async fn metric_value(api: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{api}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// The on-call roster the full-disk test notifies.
const ROSTER: &str = r#"
[[team]]
name = "ops"
lead = "li"
members = [ { name = "li", phone = "13800000001" } ]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

/// The collector's own faults named `rule`.
async fn own_faults(api: &str, rule: &str) -> Vec<Fault> {
    get(api, &format!("/api/v1/faults?rule={rule}&limit=100"))
        .await
        .unwrap_or_default()
}

/// Webhook messages that carry a notification of a fault of `rule`.
fn messages_of(hook: &Receiver, rule: &str) -> Vec<serde_json::Value> {
    hook.requests()
        .iter()
        .map(|r| r.json())
        .filter(|m| {
            m["notifications"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["fault"]["rule"] == rule))
        })
        .collect()
}

/// The collector's data directory on a disk that fills while two agents
/// stream. First the disk runs low (below `collector.min_free`): the
/// `collector_disk_low` fault opens while writes still succeed. Then it
/// fills: writes fail, nothing is acknowledged that is not durable,
/// `collector_writes_failing` opens (and is told on the webhook even though
/// the outbox may not be writable), the disk fault becomes urgent, and a
/// third agent that stopped falls silent for longer than `agent_gone`'s
/// `for`. Space returns: the collector recovers without a restart, the
/// silence is on the record, both disk faults resolve. Then `kill -9` and a
/// restart: every round of every agent is there exactly once, each fault
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_round_arrives_once_through_a_full_data_disk_and_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(dir.path(), "6m") else {
        return;
    };
    let hook = Receiver::start("{}").await;
    std::fs::write(dir.path().join("oncall.toml"), ROSTER).expect("roster");
    let collector = chaos_collector(
        dir.path(),
        &disk.path.join("data"),
        "min_free = \"3MiB\"\noncall = \"oncall.toml\"",
        &format!(
            "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = {:?}\n[[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\nmatch = {{ rule = \"~collector_.*\" }}\n",
            hook.url("/hook")
        ),
    );
    let api = collector.api();
    let mut process = collector.start();
    let grpc = format!("http://{}", collector.grpc_addr());
    let mut agents = Vec::new();
    for name in AGENTS {
        agents.push(chaos_agent(dir.path(), name, &grpc).0);
    }
    let (quiet, _) = chaos_agent(dir.path(), "chaos-quiet", &grpc);
    caught_up(&api, now_ms() - 1_000).await;
    assert!(
        own_faults(&api, "collector_disk_low").await.is_empty(),
        "6 MiB free at first"
    );

    // The disk runs low: the fault opens while writes still succeed.
    let low = disk.fill_leaving("low", 1 << 20);
    let disk_low = wait_for("collector_disk_low to open", Duration::from_secs(30), || async {
        own_faults(&api, "collector_disk_low").await.into_iter().next()
    })
    .await;
    assert_eq!(disk_low.severity, Severity::General, "{disk_low:?}");
    assert!(disk_low.summary.contains("below 3.0 MiB"), "{}", disk_low.summary);
    assert_eq!(
        metric_value(&api, "watchpost_writes_failing{store=\"journal\"}").await,
        Some(0.0),
        "the disk is low, not full"
    );

    // The disk fills: journal writes fail, batches are not acknowledged.
    let full_at = now_ms();
    let filler = disk.fill();
    quiet.stop().await;
    let quiet_stopped = now_ms();
    wait_for("journal writes to fail", Duration::from_secs(60), || async {
        (metric_value(&api, "watchpost_writes_failing{store=\"journal\"}").await? > 0.0).then_some(())
    })
    .await;
    let told = wait_for(
        "the webhook to be told the collector cannot write",
        Duration::from_secs(30),
        || async { messages_of(&hook, "collector_writes_failing").into_iter().next() },
    )
    .await;
    let direct = told["message_id"]
        .as_str()
        .is_some_and(|m| m.starts_with("wp-direct-"));
    eprintln!(
        "collector_writes_failing told {} the outbox: {}",
        if direct { "without" } else { "through" },
        told["subject"]
    );
    // Full for longer than agent_gone's `for` (15 s) after the quiet agent stopped.
    let due = quiet_stopped + 18_000;
    tokio::time::sleep(Duration::from_millis((due - now_ms()).max(0) as u64)).await;

    // Space returns: the collector recovers by itself and the agents catch up.
    let freed_at = now_ms();
    std::fs::remove_file(&filler).expect("free the disk");
    std::fs::remove_file(&low).expect("free the disk");
    caught_up(&api, now_ms() - 1_000).await;
    every_round_once(&api, now_ms() - 1_000).await;

    // What fell due while the disk was full is on the record.
    let silent = wait_for(
        "the quiet agent's silence on record",
        Duration::from_secs(30),
        || async { faults(&api, "agent_gone", "chaos-quiet").await.into_iter().next() },
    )
    .await;
    let opened = ts(&silent.opened_at);
    assert!(
        opened >= quiet_stopped + 15_000 && opened < freed_at,
        "agent_gone of chaos-quiet opened at {} (stopped {}, freed {})",
        silent.opened_at,
        quiet_stopped,
        freed_at
    );
    // The disk faults: low before writes failed, urgent while they did, both resolved.
    let resolved = |rule: &'static str| {
        let api = api.clone();
        async move {
            wait_for(&format!("{rule} to resolve"), Duration::from_secs(30), || async {
                let f = own_faults(&api, rule).await;
                (f.len() == 1 && f[0].status == FaultStatus::Resolved).then(|| f[0].clone())
            })
            .await
        }
    };
    let low_fault = resolved("collector_disk_low").await;
    let writes_fault = resolved("collector_writes_failing").await;
    assert!(ts(&low_fault.opened_at) < full_at, "{low_fault:?}");
    assert_eq!(low_fault.severity, Severity::Urgent, "raised while writes failed");
    let failed_at = ts(&writes_fault.opened_at);
    assert!(
        failed_at >= full_at && failed_at < freed_at,
        "collector_writes_failing opened at {} (full {full_at}, freed {freed_at})",
        writes_fault.opened_at
    );
    let detail: Fault = get(&api, &format!("/api/v1/faults/{}", writes_fault.id))
        .await
        .expect("fault");
    if direct {
        assert!(
            detail
                .timeline
                .iter()
                .any(|e| e.kind == "notified" && e.message.contains("directly")),
            "the direct notice is on the timeline: {:?}",
            detail.timeline
        );
    }

    // A crash after the recovery loses nothing that was acknowledged.
    process.kill_9();
    process = collector.start();
    let until = now_ms();
    caught_up(&api, until).await;
    every_round_once(&api, until).await;
    for host in AGENTS {
        let always = faults(&api, "always", host).await;
        assert_eq!(always.len(), 1, "{host}: one fault, recorded once: {always:?}");
    }
    assert_eq!(
        faults(&api, "agent_gone", "chaos-quiet").await.len(),
        1,
        "the silence recorded once"
    );
    for a in agents {
        a.stop().await;
    }
    terminate(process);
}
