//! The packages of `deploy/package.sh`, built from this test run's
//! binaries (`--bins`): lintian finds no error in the `.deb`s; they
//! install with `dpkg -i` on this machine (a `watchpost` user, configs in
//! `/etc/watchpost`, units `systemd-analyze verify` passes); the installed
//! collector passes `check` on the installed config and starts with it as
//! that user, an installed agent enrolled through the installed
//! `watchpostctl` streams to it; `dpkg -r` removes the programs and keeps
//! the data and the configs, `--purge` the configs but not the data. The
//! RPMs and the binary tarball are built and listed too.
//!
//! Needs root (dpkg). The binaries are those `cargo test --workspace`
//! builds for the agent's, the collector's and watchpostctl's own tests;
//! run alone, build them first (`cargo build --bins`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use watchpost_tests::tsdb::free_tcp_port;
use watchpost_tests::wait_for;

const MARK: &str = "/var/lib/watchpost/.installed-by-the-package-test";
const PACKAGES: [&str; 3] = ["watchpost-collector", "watchpost-agent", "watchpostctl"];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// The folder holding this run's binaries (target/debug).
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    for b in ["watchpost-collector", "watchpost-agent", "watchpostctl"] {
        assert!(
            dir.join(b).exists(),
            "{} is missing: `cargo test --workspace` builds it (or `cargo build --bins`)",
            dir.join(b).display()
        );
    }
    dir
}

fn as_watchpost(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "watchpost", "--", program])
        .env("RUST_BACKTRACE", "0");
    c
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn purge_ours() {
    run(Command::new("dpkg").arg("--purge").args(PACKAGES));
    let _ = std::fs::remove_dir_all("/var/lib/watchpost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debs_pass_lintian_install_run_and_remove_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the package test installs with dpkg and needs root"
        );
        eprintln!("skipped: the package test installs with dpkg and needs root");
        return;
    }
    let _ = watchpost_tests::peers_dir(); // lintian, rpmbuild
    if PACKAGES.iter().any(|p| installed(p)) {
        assert!(
            Path::new(MARK).exists(),
            "Watchpost packages are installed on this machine and not by this test: not touching them"
        );
        purge_ours();
    }
    let out = tempfile::tempdir().expect("tempdir");
    let bins = binaries();
    let built = run(Command::new("bash")
        .arg(root.join("deploy/package.sh"))
        .arg("deb")
        .arg("--bins")
        .arg(&bins)
        .env("WATCHPOST_PACKAGE_OUT", out.path()));
    let debs: Vec<PathBuf> = PACKAGES
        .iter()
        .map(|p| out.path().join(format!("{p}_0.1.0_amd64.deb")))
        .collect();
    for d in &debs {
        assert!(d.exists(), "{} not built:\n{built}", d.display());
    }

    // lintian: warnings are shown, errors fail.
    let lint = run(Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .args(&debs));
    assert!(!lint.lines().any(|l| l.starts_with("E: ")), "{lint}");
    eprintln!("lintian:\n{lint}");

    run(Command::new("dpkg").arg("-i").args(&debs));
    std::fs::write(MARK, "").expect("mark");
    for f in [
        "/usr/bin/watchpost-collector",
        "/usr/bin/watchpost-agent",
        "/usr/bin/watchpostctl",
        "/etc/watchpost/collector.toml",
        "/etc/watchpost/agent.toml",
        "/usr/share/watchpost/rules/host.toml",
        "/usr/share/watchpost/snmp-profiles/huawei-vrp.toml",
        "/lib/systemd/system/watchpost-collector.service",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    run(Command::new("getent").args(["passwd", "watchpost"]));
    let verify = run(Command::new("systemd-analyze").args([
        "verify",
        "/lib/systemd/system/watchpost-collector.service",
        "/lib/systemd/system/watchpost-agent.service",
    ]));
    assert!(
        !verify.contains("watchpost"),
        "systemd-analyze verify has something to say about our units:\n{verify}"
    );
    let check = run(as_watchpost("/usr/bin/watchpost-collector").args([
        "check",
        "--config",
        "/etc/watchpost/collector.toml",
    ]));
    assert!(check.contains("config OK"), "{check}");
    run(as_watchpost("/usr/bin/watchpost-agent").args(["--config", "/etc/watchpost/agent.toml", "--check"]));

    // The installed collector on the installed config (ports of our own).
    let (grpc, http) = (free_tcp_port(), free_tcp_port());
    let collector = Running(
        as_watchpost("/usr/bin/watchpost-collector")
            .args(["--config", "/etc/watchpost/collector.toml"])
            .arg(format!("--grpc-listen=127.0.0.1:{grpc}"))
            .arg(format!("--http-listen=127.0.0.1:{http}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the installed collector"),
    );
    let server = format!("http://127.0.0.1:{http}");
    wait_for("the installed collector", Duration::from_secs(30), || async {
        reqwest::get(format!("{server}/healthz"))
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    let admin = run(as_watchpost("/usr/bin/watchpost-collector").args([
        "--config",
        "/etc/watchpost/collector.toml",
        "reset-admin",
    ]));
    let token = admin
        .split_whitespace()
        .find(|w| w.starts_with("wpt_"))
        .unwrap_or_else(|| panic!("no token in:\n{admin}"))
        .to_string();
    let enrol = run(Command::new("/usr/bin/watchpostctl").args([
        "--server",
        &server,
        "--token",
        &token,
        "agents",
        "enroll",
        "pkg-agent",
    ]));
    let enroll_token = enrol
        .split_whitespace()
        .find(|w| w.starts_with("wpe_"))
        .unwrap_or_else(|| panic!("no enrolment token in:\n{enrol}"))
        .to_string();
    // An agent config beside the installed one, readable by the service user.
    let agent_config = Path::new("/var/lib/watchpost/agent/test-agent.toml");
    std::fs::write(
        agent_config,
        std::fs::read_to_string("/etc/watchpost/agent.toml")
            .expect("installed agent.toml")
            .replace(
                "collector = \"http://127.0.0.1:9810\"",
                &format!("collector = \"http://127.0.0.1:{grpc}\"\nid = \"pkg-agent\"\nenroll_token = \"{enroll_token}\""),
            )
            .replace("interval = \"10s\"", "interval = \"1s\""),
    )
    .expect("write the agent config");
    run(Command::new("chown").args(["watchpost:watchpost", &agent_config.display().to_string()]));
    let agent = Running(
        as_watchpost("/usr/bin/watchpost-agent")
            .arg("--config")
            .arg(agent_config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the installed agent"),
    );
    let series = wait_for(
        "the installed agent's samples",
        Duration::from_secs(60),
        || async {
            let out = Command::new("/usr/bin/watchpostctl")
                .args([
                    "--server",
                    &server,
                    "--token",
                    &token,
                    "series",
                    "-m",
                    "host_cpu_usage_percent",
                ])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("host_cpu_usage_percent").then_some(text)
        },
    )
    .await;
    eprintln!("{series}");
    drop(agent);
    drop(collector);
    assert!(Path::new("/var/lib/watchpost/collector/watchpost.db").exists());
    assert!(
        Path::new("/var/lib/watchpost/agent/spool/credential").exists(),
        "the agent kept its credential"
    );

    // Removal keeps data and configs; purge the configs, not the data.
    run(Command::new("dpkg").arg("-r").args(PACKAGES));
    assert!(!Path::new("/usr/bin/watchpost-collector").exists());
    assert!(
        Path::new("/etc/watchpost/collector.toml").exists(),
        "conffiles stay until purge"
    );
    assert!(
        Path::new("/var/lib/watchpost/collector/watchpost.db").exists(),
        "data kept"
    );
    let purge = run(Command::new("dpkg").arg("--purge").args(PACKAGES));
    assert!(!Path::new("/etc/watchpost/collector.toml").exists(), "{purge}");
    assert!(
        Path::new("/var/lib/watchpost/collector/watchpost.db").exists(),
        "data kept on purge too"
    );
    assert!(purge.contains("/var/lib/watchpost/collector is kept"), "{purge}");
    let _ = std::fs::remove_dir_all("/var/lib/watchpost");

    // The RPMs and the tarball from the same binaries.
    let rpm = run(Command::new("bash")
        .arg(root.join("deploy/package.sh"))
        .args(["rpm", "--bins"])
        .arg(&bins)
        .env("WATCHPOST_PACKAGE_OUT", out.path()));
    let collector_rpm = out.path().join("x86_64/watchpost-collector-0.1.0-1.x86_64.rpm");
    assert!(collector_rpm.exists(), "{rpm}");
    let list = run(Command::new("rpm")
        .args(["-qlp", "--nosignature"])
        .arg(&collector_rpm));
    for f in [
        "/usr/bin/watchpost-collector",
        "/etc/watchpost/collector.toml",
        "/usr/lib/systemd/system/watchpost-collector.service",
        "/usr/share/watchpost/rules/host.toml",
    ] {
        assert!(list.lines().any(|l| l == f), "{f} not in the RPM:\n{list}");
    }
    let configs = run(Command::new("rpm")
        .args(["-qcp", "--nosignature"])
        .arg(&collector_rpm));
    assert!(configs.contains("/etc/watchpost/collector.toml"), "{configs}");
    let tar = run(Command::new("bash")
        .arg(root.join("deploy/package.sh"))
        .args(["binaries", "--bins"])
        .arg(&bins)
        .env("WATCHPOST_PACKAGE_OUT", out.path()));
    let listing = run(Command::new("tar")
        .arg("-tzf")
        .arg(out.path().join("watchpost-0.1.0-x86_64-linux-gnu.tar.gz")));
    for f in [
        "watchpost-0.1.0-x86_64-linux-gnu/bin/watchpost-agent",
        "watchpost-0.1.0-x86_64-linux-gnu/systemd/watchpost-collector.service",
        "watchpost-0.1.0-x86_64-linux-gnu/INSTALL.md",
    ] {
        assert!(
            listing.lines().any(|l| l == f),
            "{f} not in the tarball ({tar}):\n{listing}"
        );
    }
}
