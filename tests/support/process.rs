//! Real binaries as child processes, for the binary tests, the chaos test
//! and the benchmarks: a child killed when dropped, signals as an operator
//! sends them, and `watchpost-collector` on loopback ports the OS picked.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::small_disk::SmallDisk;

/// A loopback TCP port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct ChildProcess(pub Child);

impl ChildProcess {
    /// Sends `signal` (`"HUP"`, `"TERM"`, `"9"`) with `kill`, as an operator does.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// `kill -9`: no flush, no goodbye.
    pub fn kill_9(self) {
        self.signal("9");
    }

    /// SIGTERM, then waits for the exit at most `limit`; returns how it
    /// ended (panics if it did not).
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(exit) = self.0.try_wait().expect("wait") {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How to start `watchpost-collector`: its binary, its arguments, and the
/// loopback ports it listens on (kept across restarts).
#[derive(Debug, Clone)]
pub struct CollectorProcess {
    /// The binary.
    pub binary: PathBuf,
    /// Arguments before the listen addresses (`--config F`, `--dev`, ...).
    pub args: Vec<String>,
    /// gRPC port.
    pub grpc: u16,
    /// HTTP port.
    pub http: u16,
}

impl CollectorProcess {
    /// `binary` with `args`, on two free ports.
    pub fn new(binary: impl Into<PathBuf>, args: &[&str]) -> CollectorProcess {
        CollectorProcess {
            binary: binary.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            grpc: free_port(),
            http: free_port(),
        }
    }

    /// Starts it, quiet (`RUST_LOG=warn`, standard output discarded).
    pub fn start(&self) -> ChildProcess {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .arg("--grpc-listen")
            .arg(format!("127.0.0.1:{}", self.grpc))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        ChildProcess(child)
    }

    /// The HTTP API's base URL.
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// The gRPC address, `127.0.0.1:PORT`.
    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc)
    }
}

/// `GET {base}{path}` of a collector process as JSON; `None` for no
/// answer, a non-2xx status or a body that is not a `T`.
pub async fn get_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Option<T> {
    let r = reqwest::get(format!("{base}{path}")).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits until `url` answers 2xx, at most `limit`.
pub async fn wait_http_ok(url: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not answer within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `watchpostctl` against one collector, run as a person would: each call
/// a process of its own, off the async runtime's threads.
#[derive(Clone)]
pub struct Ctl {
    binary: PathBuf,
    server: String,
    env: Vec<(String, String)>,
}

impl Ctl {
    /// `binary` (`env!("CARGO_BIN_EXE_watchpostctl")`) talking to `server`.
    pub fn new(binary: impl Into<PathBuf>, server: &str) -> Ctl {
        Ctl {
            binary: binary.into(),
            server: server.to_string(),
            env: Vec::new(),
        }
    }

    /// The same, with extra environment (`WATCHPOST_TOKEN`, a login and password).
    pub fn with_env(&self, env: &[(&str, &str)]) -> Ctl {
        let mut c = self.clone();
        c.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c
    }

    /// Runs it on this thread: (succeeded, stdout, stderr).
    pub fn run_blocking(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.binary)
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .env_remove("WATCHPOST_TOKEN")
            .env_remove("WATCHPOST_LOGIN")
            .envs(self.env.iter().cloned())
            .output()
            .expect("run watchpostctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs it off the async runtime's threads.
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let this = self.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            this.run_blocking(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("join")
    }
}
