//! The time-series engines users already run, as real peers on loopback
//! (Debian's `victoria-metrics` and `prometheus`, installed by
//! `tests/peers/setup.sh`): started in a temporary folder on a free port,
//! waited for until they answer, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound, then released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free TCP port")
        .port()
}

pub(crate) fn need(binary: &str) -> PathBuf {
    let _ = super::peers_dir();
    let path = PathBuf::from(binary);
    assert!(
        path.exists(),
        "{binary} is missing: tests/peers/setup.sh installs it (Debian package {})",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
    );
    path
}

/// Waits until `GET url` answers 200, or the child exits, for up to 60 s.
fn wait_ready(url: &str, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        let ok = std::net::TcpStream::connect_timeout(
            &url.trim_start_matches("http://")
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("host:port"),
            Duration::from_millis(200),
        )
        .is_ok()
            && blocking_get(url).is_some_and(|(s, _)| s == 200);
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer {url} within 60 s");
}

/// A plain HTTP/1.0 GET on loopback (the peers' readiness and query
/// APIs); returns the status and body.
pub fn blocking_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {} HTTP/1.0\r\nHost: {addr}\r\n\r\n",
        if path.is_empty() { "/" } else { path }
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Some((status, body))
}

/// Debian's `victoria-metrics`, single node.
pub struct VictoriaMetrics {
    /// Its HTTP port.
    pub port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl VictoriaMetrics {
    /// Starts one storing in `data`.
    pub fn start(data: &Path) -> VictoriaMetrics {
        let mut vm = VictoriaMetrics {
            port: free_tcp_port(),
            data: data.to_path_buf(),
            child: None,
        };
        vm.resume();
        vm
    }

    /// Starts it again on the same port and data after [`stop`](Self::stop).
    pub fn resume(&mut self) {
        let mut child = Command::new(need("/usr/bin/victoria-metrics"))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.data.display()))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        wait_ready(&self.url("/health"), &mut child, "victoria-metrics");
        self.child = Some(child);
    }

    /// Stops it (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
    }

    /// A URL on it.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every raw sample of the series `selector` matches
    /// (`/api/v1/export`): each series' labels with its (ms, value) pairs.
    pub fn export(&self, selector: &str) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
        let q: String = selector
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let Some((200, body)) = blocking_get(&self.url(&format!("/api/v1/export?match[]={q}"))) else {
            return Vec::new();
        };
        body.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let ts = v["timestamps"].as_array().cloned().unwrap_or_default();
                let vals = v["values"].as_array().cloned().unwrap_or_default();
                let points = ts
                    .iter()
                    .zip(vals.iter())
                    .filter_map(|(t, x)| Some((t.as_i64()?, x.as_f64()?)))
                    .collect();
                (v["metric"].clone(), points)
            })
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop(c: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Debian's `prometheus` with the remote-write receiver on, and a scrape
/// config given by the test.
pub struct Prometheus {
    /// Its HTTP port.
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Prometheus {
    /// Starts it on `port` with `scrape_configs` (YAML, the list's items
    /// indented by two spaces; empty for none).
    pub fn start(port: u16, scrape_configs: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("prometheus dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}\n"),
        )
        .expect("write prometheus.yml");
        let mut child = Command::new(need("/usr/bin/prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        wait_ready(
            &format!("http://127.0.0.1:{port}/-/ready"),
            &mut child,
            "prometheus",
        );
        Prometheus {
            port,
            _dir: dir,
            child,
        }
    }

    /// An instant query's `data.result` (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let q: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let url = format!("http://127.0.0.1:{}/api/v1/query?query={q}", self.port);
        let Some((200, body)) = blocking_get(&url) else {
            return Vec::new();
        };
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
