//! `watchpost-agent --once`, and ping to a host that does not answer: the
//! agent binary runs in a network namespace of its own (`unshare -n`) whose
//! loopback ignores echo requests, the one way to have a silent target
//! without leaving loopback.

use std::process::Command;

fn config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!("[agent]\ncollector = \"http://127.0.0.1:1\"\n\n[host]\nenabled = false\n\n{body}"),
    )
    .expect("write config");
    path
}

fn value(out: &str, series: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn once_prints_every_source_and_exits_without_a_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr");
    let path = config(
        dir.path(),
        &format!("[[probe]]\ntype = \"tcp\"\ntargets = [\"{open}\"]\nlabels = {{ system = \"db\" }}\n"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost-agent"))
        .args(["--once", "--config"])
        .arg(&path)
        .output()
        .expect("run the agent");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        value(
            &text,
            &format!("probe_up{{probe=\"tcp\",system=\"db\",target=\"{open}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn ping_to_a_host_that_does_not_answer_is_down_with_full_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(
        dir.path(),
        "[[probe]]\ntype = \"ping\"\ntargets = [\"127.0.0.1\"]\ncount = 3\ntimeout = \"300ms\"\n",
    );
    let script = format!(
        "ip link set lo up && sysctl -qw net.ipv4.icmp_echo_ignore_all=1 && exec {} --once --config {}",
        env!("CARGO_BIN_EXE_watchpost-agent"),
        path.display()
    );
    let out = Command::new("unshare").args(["-n", "sh", "-c", &script]).output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            // A network namespace needs root (CAP_SYS_ADMIN) and util-linux/iproute2.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot make a network namespace for the silent ping target: {why}"
            );
            eprintln!("skipped outside CI: cannot make a network namespace ({why})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        value(&text, "probe_up{probe=\"ping\",target=\"127.0.0.1\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "probe_ping_loss_percent{target=\"127.0.0.1\"}"),
        Some(100.0),
        "{text}"
    );
    assert!(
        !text.contains("probe_ping_rtt"),
        "no round trip without an answer: {text}"
    );
}

/// Logs written to a pipe or a file carry no colour codes.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchpost-agent"))
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the agent");
    // It cannot reach the collector (port 1): it says so within a second.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("cannot reach the collector"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
}
