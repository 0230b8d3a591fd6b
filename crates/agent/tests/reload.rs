//! SIGHUP (`systemctl reload watchpost-agent`): a config that does not
//! load is logged and the agent goes on with the one it has; a valid one
//! replaces the running agent; SIGTERM still stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn write(path: &std::path::Path, interval: &str) {
    std::fs::write(
        path,
        format!("[agent]\ncollector = \"http://127.0.0.1:1\"\ninterval = \"{interval}\"\n\n[host]\nenabled = false\n"),
    )
    .expect("write config");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Waits for a line of the agent's log containing `text`.
fn wait_line(lines: &mpsc::Receiver<String>, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(text) => return l,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("the agent never logged {text:?}");
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_running_on_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.toml");
    write(&path, "1s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchpost-agent"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the agent");
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    wait_line(&lines, "agent started");

    std::fs::write(&path, "[agent]\ninterval = \"soon\"\n").expect("break the config");
    signal(child.id(), "-HUP");
    let l = wait_line(&lines, "SIGHUP: the config is not valid");
    assert!(l.contains("agent.toml"), "{l}");
    assert!(child.try_wait().expect("wait").is_none(), "still running");

    write(&path, "2s");
    signal(child.id(), "-HUP");
    wait_line(&lines, "SIGHUP: restarting with the new config");
    wait_line(&lines, "agent started");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "running on the new config"
    );

    signal(child.id(), "-TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
