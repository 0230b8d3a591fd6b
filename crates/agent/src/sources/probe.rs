//! Probes: ICMP ping, TCP connect and HTTP(S) GET against lists of targets.
//!
//! Probes run on their own thread (a small tokio runtime), every agent
//! interval, all targets at once, each bounded by its timeout: a dead
//! target never delays the others or the host metrics. Each round's
//! results are published (`series::Published`) with the round's start
//! time, like SNMP and Modbus, and sent once.
//!
//! ```toml
//! [[probe]]
//! type = "ping"                       # ping, tcp or http
//! targets = ["10.1.1.1", "10.1.1.2"]  # ping: hosts; tcp: host:port; http: URLs
//! timeout = "2s"                      # per target (default 2s)
//! count = 3                           # ping: echo requests per round (default 3)
//! expect = "OK"                       # http: text the body must contain (optional)
//! ca_file = "ca.pem"                  # http: trust this private CA too (PEM, relative to the config)
//! tls_verify = false                  # http: report a certificate nobody trusts (default true)
//! labels = { system = "税务申报" }     # added to the probe's series
//! ```
//!
//! Series (label `target`, plus the probe's labels):
//! `probe_up{probe="ping"|"tcp"|"http"}` (1 or 0),
//! `probe_ping_rtt_min_ms`, `probe_ping_rtt_avg_ms`, `probe_ping_rtt_max_ms`,
//! `probe_ping_loss_percent`, `probe_tcp_connect_ms`,
//! `probe_http_status_code`, `probe_http_duration_ms`,
//! `probe_http_body_match` (1 or 0, with `expect`),
//! `probe_http_cert_days_left` (HTTPS: days until the server certificate's
//! notAfter; negative once expired).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use watchpost_model::HumanDuration;

use crate::series::{Measured, Published, round2};

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// ICMP echo.
    Ping,
    /// TCP connect.
    Tcp,
    /// HTTP(S) GET.
    Http,
}

impl ProbeKind {
    fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Ping => "ping",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http => "http",
        }
    }
}

/// `[[probe]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    #[serde(rename = "type")]
    kind: ProbeKind,
    targets: Vec<String>,
    timeout: Option<HumanDuration>,
    count: Option<u16>,
    expect: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    tls_verify: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A checked probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// What it does.
    pub kind: ProbeKind,
    /// Targets, as written.
    pub targets: Vec<String>,
    /// Per target.
    pub timeout: Duration,
    /// Ping: echo requests per round.
    pub count: u16,
    /// HTTP: text the body must contain.
    pub expect: Option<String>,
    /// HTTP: PEM certificates trusted besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// HTTP: verify the server certificate (off: still measured).
    pub tls_verify: bool,
    /// Added to its series.
    pub labels: BTreeMap<String, String>,
}

impl Probe {
    /// Checks a written probe; `i` is its position (for messages), `base`
    /// the directory relative paths start from.
    pub(crate) fn check(raw: RawProbe, i: usize, base: Option<&std::path::Path>) -> Result<Probe, String> {
        let p = format!("probe {} ({})", i + 1, raw.kind.as_str());
        if raw.targets.is_empty() {
            return Err(format!("{p}: `targets` is empty"));
        }
        for t in &raw.targets {
            match raw.kind {
                ProbeKind::Ping => {
                    if t.trim().is_empty() {
                        return Err(format!("{p}: an empty target"));
                    }
                }
                ProbeKind::Tcp => {
                    if t.rsplit_once(':')
                        .and_then(|(_, port)| port.parse::<u16>().ok())
                        .is_none()
                    {
                        return Err(format!("{p}: target {t:?} must be host:port"));
                    }
                }
                ProbeKind::Http => {
                    if !(t.starts_with("http://") || t.starts_with("https://")) {
                        return Err(format!("{p}: target {t:?} must be an http:// or https:// URL"));
                    }
                }
            }
        }
        if raw.expect.is_some() && raw.kind != ProbeKind::Http {
            return Err(format!("{p}: `expect` applies to http probes only"));
        }
        if (raw.ca_file.is_some() || raw.tls_verify.is_some()) && raw.kind != ProbeKind::Http {
            return Err(format!(
                "{p}: `ca_file` and `tls_verify` apply to http probes only"
            ));
        }
        let ca_pem = match &raw.ca_file {
            None => None,
            Some(f) => {
                let path = match base {
                    Some(b) if f.is_relative() => b.join(f),
                    _ => f.clone(),
                };
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("{p}: cannot read ca_file {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| format!("{p}: ca_file {} holds no PEM certificate", path.display()))?;
                Some(pem)
            }
        };
        if raw.count.is_some() && raw.kind != ProbeKind::Ping {
            return Err(format!("{p}: `count` applies to ping probes only"));
        }
        for name in raw.labels.keys() {
            if name == "target" || name == "probe" {
                return Err(format!("{p}: label {name:?} is set by the probe itself"));
            }
        }
        let count = raw.count.unwrap_or(3);
        if count == 0 || count > 100 {
            return Err(format!("{p}: count {count} must be 1..=100"));
        }
        Ok(Probe {
            kind: raw.kind,
            targets: raw.targets,
            timeout: raw.timeout.map_or(Duration::from_secs(2), |d| d.0),
            count,
            expect: raw.expect,
            ca_pem,
            tls_verify: raw.tls_verify.unwrap_or(true),
            labels: raw.labels,
        })
    }
}

/// Runs probes on their own thread; each round's results are published
/// (`series::Published`) with the time the round started.
pub struct ProbeSource {
    rounds: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ProbeSource {
    /// Starts probing every `interval`, publishing into `out`.
    pub fn start(probes: Vec<Probe>, interval: Duration, out: Published) -> ProbeSource {
        let rounds = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (done, stopped) = (rounds.clone(), stop.clone());
        crate::spawn_runtime_thread("watchpost-probe", run(probes, interval, out, done, stopped));
        ProbeSource { rounds, stop }
    }

    /// Whether a first round of results has been published.
    pub fn has_results(&self) -> bool {
        self.rounds.load(Ordering::Relaxed) > 0
    }
}

impl Drop for ProbeSource {
    fn drop(&mut self) {
        // The agent is stopping: the probe thread ends after its round.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn http_client(probe: Option<&Probe>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("watchpost-agent/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
        .tls_info(true);
    if let Some(p) = probe {
        if let Some(pem) = &p.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
                b = b.add_root_certificate(cert);
            }
        }
        b = b.danger_accept_invalid_certs(!p.tls_verify);
    }
    b.build().map_err(|e| e.to_string())
}

async fn run(
    probes: Vec<Probe>,
    interval: Duration,
    out: Published,
    rounds: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    // One shared client, and one of its own for each probe with TLS options.
    let shared = match http_client(None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP probe client");
            return;
        }
    };
    let mut clients = Vec::new();
    for p in &probes {
        let own = p.kind == ProbeKind::Http && (p.ca_pem.is_some() || !p.tls_verify);
        clients.push(if own {
            http_client(Some(p)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build an HTTP probe client with the probe's TLS options");
                shared.clone()
            })
        } else {
            shared.clone()
        });
    }
    let pinger = if probes.iter().any(|p| p.kind == ProbeKind::Ping) {
        match surge_ping::Client::new(&surge_ping::Config::default()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot open an ICMP socket (run as root or allow net.ipv4.ping_group_range): ping probes report down");
                None
            }
        }
    } else {
        None
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let at_ms = crate::time::now_ms();
        let mut set = tokio::task::JoinSet::new();
        for (pi, p) in probes.iter().enumerate() {
            for (ti, target) in p.targets.iter().enumerate() {
                let (p, target, http, pinger) =
                    (p.clone(), target.clone(), clients[pi].clone(), pinger.clone());
                set.spawn(async move {
                    let values = match p.kind {
                        ProbeKind::Ping => ping(pinger.as_ref(), &target, p.count, p.timeout).await,
                        ProbeKind::Tcp => tcp(&target, p.timeout).await,
                        ProbeKind::Http => http_get(&http, &target, p.expect.as_deref(), p.timeout).await,
                    };
                    let mut labels: Vec<(String, String)> = p.labels.clone().into_iter().collect();
                    labels.push(("target".into(), target));
                    ((pi, ti), p.kind, labels, values)
                });
            }
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                results.push(r);
            }
        }
        results.sort_by_key(|r| r.0);
        let mut measured = Vec::new();
        for (_, kind, labels, values) in results {
            for (metric, value) in values {
                let mut labels = labels.clone();
                if metric == "probe_up" {
                    labels.push(("probe".into(), kind.as_str().into()));
                }
                labels.sort();
                measured.push(Measured {
                    metric: Cow::Borrowed(metric),
                    labels: labels.into(),
                    value,
                    at_ms,
                    text: None,
                });
            }
        }
        out.publish(measured);
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

fn ms(d: Duration) -> f64 {
    round2(d.as_secs_f64() * 1000.0)
}

async fn resolve(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    tokio::net::lookup_host((host, 0))
        .await
        .ok()?
        .next()
        .map(|a| a.ip())
}

async fn ping(
    client: Option<&surge_ping::Client>,
    target: &str,
    count: u16,
    timeout: Duration,
) -> Vec<(&'static str, f64)> {
    let down = vec![("probe_up", 0.0), ("probe_ping_loss_percent", 100.0)];
    let (Some(client), Some(ip)) = (client, resolve(target).await) else {
        return down;
    };
    let mut pinger = client.pinger(ip, surge_ping::PingIdentifier(rand_id())).await;
    pinger.timeout(timeout);
    let mut rtts = Vec::new();
    for seq in 0..count {
        if let Ok((_, rtt)) = pinger.ping(surge_ping::PingSequence(seq), &[0u8; 56]).await {
            rtts.push(rtt);
        }
    }
    let loss = round2(100.0 * f64::from(count - rtts.len() as u16) / f64::from(count));
    if rtts.is_empty() {
        return down;
    }
    let min = rtts.iter().min().copied().unwrap_or_default();
    let max = rtts.iter().max().copied().unwrap_or_default();
    let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
    vec![
        ("probe_up", 1.0),
        ("probe_ping_loss_percent", loss),
        ("probe_ping_rtt_min_ms", ms(min)),
        ("probe_ping_rtt_avg_ms", ms(avg)),
        ("probe_ping_rtt_max_ms", ms(max)),
    ]
}

fn rand_id() -> u16 {
    // Distinct per process and call; ICMP ids only need to tell our pingers apart.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    (std::process::id() as u16).wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

async fn tcp(target: &str, timeout: Duration) -> Vec<(&'static str, f64)> {
    let started = Instant::now();
    let connect = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await.ok()?.collect();
        for a in addrs {
            if tokio::net::TcpStream::connect(a).await.is_ok() {
                return Some(());
            }
        }
        None
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Some(())) => vec![("probe_up", 1.0), ("probe_tcp_connect_ms", ms(started.elapsed()))],
        _ => vec![("probe_up", 0.0)],
    }
}

async fn http_get(
    client: &reqwest::Client,
    url: &str,
    expect: Option<&str>,
    timeout: Duration,
) -> Vec<(&'static str, f64)> {
    let started = Instant::now();
    let result = async {
        let resp = client.get(url).timeout(timeout).send().await?;
        let status = resp.status();
        let not_after = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .and_then(super::x509::not_after);
        let body = resp.text().await?;
        Ok::<_, reqwest::Error>((status, body, not_after))
    }
    .await;
    match result {
        Ok((status, body, not_after)) => {
            let mut out = vec![
                ("probe_http_status_code", f64::from(status.as_u16())),
                ("probe_http_duration_ms", ms(started.elapsed())),
            ];
            if let Some(t) = not_after {
                let now = crate::time::now_ms() / 1000;
                out.push(("probe_http_cert_days_left", round2((t - now) as f64 / 86_400.0)));
            }
            let matched = expect.is_none_or(|e| body.contains(e));
            if expect.is_some() {
                out.push(("probe_http_body_match", if matched { 1.0 } else { 0.0 }));
            }
            let up = status.is_success() && matched;
            out.push(("probe_up", if up { 1.0 } else { 0.0 }));
            out
        }
        Err(_) => vec![("probe_up", 0.0)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<Probe, String> {
        #[derive(Deserialize)]
        struct F {
            probe: Vec<RawProbe>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        f.probe
            .into_iter()
            .next()
            .map_or(Err("none".into()), |p| Probe::check(p, 0, None))
    }

    #[test]
    fn checks_targets_and_options() {
        assert!(raw("[[probe]]\ntype = \"tcp\"\ntargets = [\"db:5432\"]\n").is_ok());
        let e = |t: &str| raw(t).expect_err("invalid");
        assert!(e("[[probe]]\ntype = \"tcp\"\ntargets = [\"db\"]\n").contains("host:port"));
        assert!(e("[[probe]]\ntype = \"http\"\ntargets = [\"example.gov.cn\"]\n").contains("http://"));
        assert!(e("[[probe]]\ntype = \"ping\"\ntargets = []\n").contains("empty"));
        assert!(
            e("[[probe]]\ntype = \"ping\"\ntargets = [\"a\"]\nexpect = \"x\"\n").contains("http probes only")
        );
        assert!(
            e("[[probe]]\ntype = \"ping\"\ntargets = [\"a\"]\nlabels = { target = \"x\" }\n")
                .contains("set by the probe")
        );
        assert!(e("[[probe]]\ntype = \"smtp\"\ntargets = [\"a\"]\n").contains("smtp"));
    }
}
