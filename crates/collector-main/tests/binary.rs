//! The `watchpost-collector` binary as a user runs it: `--dev`, `check`,
//! and a rule reload on SIGHUP.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use watchpost_tests::wait_for;

use watchpost_model::api::{Fault, Series};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watchpost-collector"))
}

async fn get<T: serde::de::DeserializeOwned>(http: &str, path: &str) -> Option<T> {
    let r = reqwest::get(format!("{http}{path}")).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
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

/// Sends SIGHUP, as an operator's `kill -HUP` does.
fn hup(c: &Running) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(c.0.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn start(args: &[&str], data: &Path) -> (Running, String) {
    let (g, h) = (free_port(), free_port());
    let child = collector()
        .args(args)
        .arg("--grpc-listen")
        .arg(format!("127.0.0.1:{g}"))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{h}"))
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start watchpost-collector");
    (Running(child), format!("http://127.0.0.1:{h}"))
}

#[tokio::test]
async fn dev_mode_shows_live_host_metrics_and_a_fault() {
    let data = tempfile::tempdir().expect("tempdir");
    let (_c, http) = start(&["--dev"], data.path());
    let cpu: Vec<Series> = wait_for("local host metrics", Duration::from_secs(15), || async {
        let s: Vec<Series> = get(&http, "/api/v1/series?metric=host_cpu_usage_percent&cpu=total").await?;
        s.first()?.last_value.is_some().then_some(s)
    })
    .await;
    assert_eq!(cpu.len(), 1);
    let fault: Fault = wait_for("the demo fault", Duration::from_secs(60), || async {
        let f: Vec<Fault> = get(&http, "/api/v1/faults?status=open").await?;
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
        "[collector]\nrules = [\"rules/*.toml\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("rules/a.toml"),
        "[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\n",
    )
    .expect("write");
    let ok = check(&dir.path().join("collector.toml"));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("config OK; 2 rules from 1 file(s)"));

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
    std::fs::write(&config, "[collector]\nrules = [\"rules/*.toml\"]\n").expect("write");
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
    assert_eq!(n, "2", "one rule plus the built-in agent silence");

    std::fs::write(dir.path().join("rules/b.toml"), rule("b")).expect("write");
    hup(&c);
    wait_for("the reload", Duration::from_secs(15), || async {
        (count(http.clone()).await? == "3").then_some(())
    })
    .await;

    std::fs::write(dir.path().join("rules/c.toml"), "[[rule]]\nname = 1\n").expect("write");
    hup(&c);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(http.clone()).await.as_deref(),
        Some("3"),
        "a bad reload keeps the rules in force"
    );
}
