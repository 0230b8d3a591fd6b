//! The `watchpost-collector` binary as a user runs it: `--dev`, `check`,
//! a rule reload on SIGHUP, and `kill -9` while notifications are pending.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use watchpost_tests::process::{ChildProcess, CollectorProcess, free_port};
use watchpost_tests::{Receiver, start_agent_to, wait_for, write_textfile};

use watchpost_model::api::{Fault, Notification, Series};
use watchpost_tests::process::get_json as get;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watchpost-collector"))
}

/// `watchpost-collector check --config FILE`.
fn check(config: &Path) -> std::process::Output {
    collector()
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run watchpost-collector check")
}

fn start(args: &[&str], data: &Path) -> (ChildProcess, String) {
    start_on(args, data, free_port(), free_port())
}

/// Starts the binary on given gRPC and HTTP ports (a restart keeps them).
fn start_on(args: &[&str], data: &Path, g: u16, h: u16) -> (ChildProcess, String) {
    let data = data.to_string_lossy().to_string();
    let mut args = args.to_vec();
    args.extend(["--data-dir", &data]);
    let mut c = CollectorProcess::new(env!("CARGO_BIN_EXE_watchpost-collector"), &args);
    (c.grpc, c.http) = (g, h);
    (c.start(), c.api())
}

/// `GET` with an API token.
async fn get_as<T: serde::de::DeserializeOwned>(http: &str, path: &str, token: &str) -> Option<T> {
    let r = reqwest::Client::new()
        .get(format!("{http}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Reads the child's standard output until the line holding `label`, and
/// returns the word after it (bounded: gives up after `limit`).
fn printed_after(child: &mut Child, label: &str, limit: Duration) -> String {
    use std::io::BufRead;
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = label.to_string();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            // Keep draining after the line, so the collector never writes to a closed pipe.
            if let Some(rest) = line.trim().strip_prefix(&wanted) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the collector printed no {label:?} line"))
}

#[tokio::test]
async fn dev_mode_shows_live_host_metrics_and_a_fault() {
    let data = tempfile::tempdir().expect("tempdir");
    let (g, h) = (free_port(), free_port());
    let mut child = collector()
        .args([
            "--dev",
            "--grpc-listen",
            &format!("127.0.0.1:{g}"),
            "--http-listen",
            &format!("127.0.0.1:{h}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watchpost-collector");
    // The one-time admin credential is printed; the API answers nobody else.
    let token = printed_after(&mut child, "API token", Duration::from_secs(30));
    let _c = ChildProcess(child);
    let http = format!("http://127.0.0.1:{h}");
    assert!(token.starts_with("wpt_"), "{token}");
    let anonymous = reqwest::get(format!("{http}/api/v1/faults"))
        .await
        .expect("request");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let cpu: Vec<Series> = wait_for("local host metrics", Duration::from_secs(15), || async {
        let s: Vec<Series> = get_as(
            &http,
            "/api/v1/series?metric=host_cpu_usage_percent&cpu=total",
            &token,
        )
        .await?;
        s.first()?.last_value.is_some().then_some(s)
    })
    .await;
    assert_eq!(cpu.len(), 1);
    let fault: Fault = wait_for("the demo fault", Duration::from_secs(60), || async {
        let f: Vec<Fault> = get_as(&http, "/api/v1/faults?status=open", &token).await?;
        f.into_iter().find(|f| f.rule == "dev_demo_processes")
    })
    .await;
    assert!(fault.summary.starts_with("demo: "), "{}", fault.summary);
    assert!(data.path().join("watchpost.db").exists());
}

#[test]
fn check_reports_rule_errors_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    std::fs::write(
        dir.path().join("collector.toml"),
        "[collector]\nmin_free = \"64MiB\"\nrules = [\"rules/*.toml\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("rules/a.toml"),
        "[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\n",
    )
    .expect("write");
    let ok = check(&dir.path().join("collector.toml"));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("config OK; 1 rules from 1 file(s), and 6 built-in: agent_silent, collector_disk_low, collector_writes_failing, notification_channel_failing, agent_clock_skew, collector_backup_failing"));

    std::fs::write(
        dir.path().join("rules/b.toml"),
        "\n[[rule]]\nname = \"b\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"severe\"\n",
    )
    .expect("write");
    let bad = check(&dir.path().join("collector.toml"));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("b.toml") && err.contains("line 6") && err.contains("severe"),
        "{err}"
    );
}

#[tokio::test]
async fn sighup_reloads_rules_and_a_bad_reload_keeps_the_old_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        "[collector]\nmin_free = \"64MiB\"\nrules = [\"rules/*.toml\"]\n[security]\nagents = \"open\"\napi = \"open\"\n",
    )
    .expect("write");
    let rule = |name: &str| {
        format!("[[rule]]\nname = \"{name}\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\n")
    };
    std::fs::write(dir.path().join("rules/a.toml"), rule("a")).expect("write");
    let config_arg = config.to_string_lossy().to_string();
    let (c, http) = start(&["--config", &config_arg], &dir.path().join("data"));
    let rules_metric = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("watchpost_rules "))
            .map(str::to_string)
    };
    let count = |http: String| async move {
        let text = reqwest::get(format!("{http}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        rules_metric(&text)
    };
    let n = wait_for("the collector", Duration::from_secs(15), || count(http.clone())).await;
    assert_eq!(
        n, "7",
        "one rule plus the built-in agent silence and five collector rules"
    );

    std::fs::write(dir.path().join("rules/b.toml"), rule("b")).expect("write");
    c.signal("HUP");
    wait_for("the reload", Duration::from_secs(15), || async {
        (count(http.clone()).await? == "8").then_some(())
    })
    .await;

    std::fs::write(dir.path().join("rules/c.toml"), "[[rule]]\nname = 1\n").expect("write");
    c.signal("HUP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(http.clone()).await.as_deref(),
        Some("8"),
        "a bad reload keeps the rules in force"
    );
}

/// Outbox rows with `status`.
async fn outbox(http: &str, status: &str) -> Option<Vec<Notification>> {
    get(http, &format!("/api/v1/notifications?status={status}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notifications_are_delivered_exactly_once_after_kill_9() {
    let hook = Receiver::start("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    std::fs::write(
        dir.path().join("rules/queue.toml"),
        "[[rule]]\nname = \"queue_deep\"\nmetric = \"app_queue_depth\"\nwhen = \"> 90\"\nseverity = \"general\"\n",
    )
    .expect("rules");
    std::fs::write(
        dir.path().join("oncall.toml"),
        "[[team]]\nname = \"ops\"\nmembers = [ { name = \"li\" } ]\n\
         rotation = { every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"li\"] }\n",
    )
    .expect("roster");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nmin_free = \"64MiB\"\nrules = [\"rules/*.toml\"]\noncall = \"oncall.toml\"\n\
             [security]\nagents = \"open\"\napi = \"open\"\n\
             [notify]\ngroup_window = \"1s\"\nretry_first = \"500ms\"\nretry_max = \"1s\"\n\
             [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\
             [[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\nescalate = [ {{ after = \"0s\", to = \"on_call\" }} ]\n",
            hook.url("/hook")
        ),
    )
    .expect("config");
    let queues = |names: &[&str]| {
        let text: String = names
            .iter()
            .map(|q| format!("app_queue_depth{{queue=\"{q}\"}} 120\n"))
            .collect();
        write_textfile(files.path(), "app.prom", &text);
    };
    let limit = Duration::from_secs(30);
    let args = ["--config", config.to_str().expect("utf-8 path")];
    let data = dir.path().join("data");
    let (g, h) = (free_port(), free_port());
    let (mut collector, http) = start_on(&args, &data, g, h);
    queues(&["a"]);
    let _agent = start_agent_to(
        &format!("http://127.0.0.1:{g}"),
        "web-1",
        Some(files.path()),
        false,
        Duration::from_millis(200),
    );
    wait_for("the first notification delivered", limit, || async {
        (outbox(&http, "delivered").await?.len() == 1).then_some(())
    })
    .await;

    // The receiver fails: two more notifications wait in the outbox, retried.
    hook.answer(503, "down for maintenance");
    queues(&["a", "b", "c"]);
    wait_for(
        "two notifications pending after failed attempts",
        limit,
        || async {
            let p = outbox(&http, "pending").await?;
            (p.len() == 2 && p.iter().all(|n| n.attempts >= 1)).then_some(())
        },
    )
    .await;
    collector.0.kill().expect("kill -9");
    collector.0.wait().expect("reap");

    hook.answer(200, "{}");
    (collector, _) = start_on(&args, &data, g, h);
    let delivered = wait_for("all three delivered after the restart", limit, || async {
        let d = outbox(&http, "delivered").await?;
        let p = outbox(&http, "pending").await?;
        (d.len() == 3 && p.is_empty()).then_some(d)
    })
    .await;
    let mut sent: Vec<i64> = hook
        .requests()
        .iter()
        .flat_map(|r| {
            r.json()["notifications"]
                .as_array()
                .map(|l| l.iter().filter_map(|n| n["id"].as_i64()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    sent.sort_unstable();
    let mut want: Vec<i64> = delivered.iter().map(|n| n.id).collect();
    want.sort_unstable();
    assert_eq!(sent, want, "each notification reached the receiver exactly once");
    let f: Vec<Fault> = get(&http, "/api/v1/faults?status=open").await.expect("faults");
    assert_eq!(f.len(), 3, "the faults themselves are kept across the kill");
    drop(collector);
}

/// Runs the collector on `data` until it exits by itself or `limit` passes
/// (then it is stopped: true) and returns that and its standard error.
fn run_until_exit(data: &Path, limit: Duration) -> (bool, String) {
    let mut child = collector()
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watchpost-collector");
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return (out.status.success(), String::from_utf8_lossy(&out.stderr).into());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            return (true, String::from_utf8_lossy(&out.stderr).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unreadable_databases_are_named_and_a_damaged_journal_segment_is_quarantined() {
    // A fault database that is not SQLite: the collector refuses to start
    // and says which file and why.
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("watchpost.db"), vec![0x5a; 8192]).expect("write");
    let (ok, err) = run_until_exit(data.path(), Duration::from_secs(20));
    assert!(!ok, "started on a broken database");
    assert!(
        err.contains("watchpost.db") && err.contains("not a database"),
        "{err}"
    );

    // The same for the access database.
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("access.db"), vec![0x5a; 8192]).expect("write");
    let (ok, err) = run_until_exit(data.path(), Duration::from_secs(20));
    assert!(!ok, "started on a broken access database");
    assert!(
        err.contains("access.db") && err.contains("not a database"),
        "{err}"
    );

    // A journal segment damaged in the middle: quarantined, named in the
    // log, and the collector runs.
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(data.path().join("journal")).expect("mkdir");
    std::fs::write(
        data.path().join("journal/0000000000000001.wal"),
        b"this is not a journal segment",
    )
    .expect("write");
    std::fs::write(data.path().join("journal/0000000000000002.wal"), b"").expect("write");
    let (still_running, err) = run_until_exit(data.path(), Duration::from_secs(4));
    assert!(still_running, "the collector stopped: {err}");
    assert!(
        err.contains("0000000000000001.wal") && err.contains("quarantined"),
        "{err}"
    );
    assert!(data.path().join("journal/0000000000000001.corrupt").exists());
}
