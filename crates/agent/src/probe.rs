//! Probes: ICMP ping, TCP connect and HTTP(S) GET against lists of targets.
//!
//! Probes run on their own thread (a small tokio runtime), every agent
//! interval, all targets at once, each bounded by its timeout: a dead
//! target never delays the others or the host metrics. The collection
//! thread takes the latest finished results each round.
//!
//! ```toml
//! [[probe]]
//! type = "ping"                       # ping, tcp or http
//! targets = ["10.1.1.1", "10.1.1.2"]  # ping: hosts; tcp: host:port; http: URLs
//! timeout = "2s"                      # per target (default 2s)
//! count = 3                           # ping: echo requests per round (default 3)
//! expect = "OK"                       # http: text the body must contain (optional)
//! labels = { system = "税务申报" }     # added to the probe's series
//! ```
//!
//! Series (label `target`, plus the probe's labels):
//! `probe_up{probe="ping"|"tcp"|"http"}` (1 or 0),
//! `probe_ping_rtt_min_ms`, `probe_ping_rtt_avg_ms`, `probe_ping_rtt_max_ms`,
//! `probe_ping_loss_percent`, `probe_tcp_connect_ms`,
//! `probe_http_status_code`, `probe_http_duration_ms`,
//! `probe_http_body_match` (1 or 0, with `expect`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use watchpost_model::HumanDuration;

use crate::series::{Round, SeriesRegistry, round2};

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
    /// Added to its series.
    pub labels: BTreeMap<String, String>,
}

impl Probe {
    /// Checks a written probe; `i` is its position (for messages).
    pub(crate) fn check(raw: RawProbe, i: usize) -> Result<Probe, String> {
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
            labels: raw.labels,
        })
    }
}

/// One value measured by a probe.
#[derive(Debug, Clone, PartialEq)]
struct Measured {
    metric: &'static str,
    labels: Vec<(String, String)>,
    value: f64,
}

type Latest = Arc<Mutex<Vec<Measured>>>;

/// A series of a probe: metric and sorted labels.
type SeriesKey = (&'static str, Vec<(String, String)>);

/// Runs probes on their own thread and hands their latest results to rounds.
pub struct ProbeSource {
    latest: Latest,
    stop: Arc<std::sync::atomic::AtomicBool>,
    ids: HashMap<SeriesKey, u32>,
}

impl ProbeSource {
    /// Starts probing every `interval`.
    pub fn start(probes: Vec<Probe>, interval: Duration) -> ProbeSource {
        let latest: Latest = Arc::default();
        let out = latest.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("watchpost-probe".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the probe runtime");
                        return;
                    }
                };
                rt.block_on(run(probes, interval, out, stopped));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the probe thread");
        }
        ProbeSource {
            latest,
            stop,
            ids: HashMap::new(),
        }
    }

    /// Adds the latest results to `round`.
    pub fn collect(&mut self, registry: &mut SeriesRegistry, round: &mut Round) {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for m in latest {
            let id = *self.ids.entry((m.metric, m.labels.clone())).or_insert_with(|| {
                let labels: Vec<(&str, &str)> =
                    m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                registry.define(m.metric, &labels)
            });
            round.samples.push((id, m.value));
        }
    }
}

impl Drop for ProbeSource {
    fn drop(&mut self) {
        // The agent is stopping: the probe thread ends after its round.
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn run(probes: Vec<Probe>, interval: Duration, out: Latest, stop: Arc<std::sync::atomic::AtomicBool>) {
    let http = reqwest::Client::builder()
        .user_agent(concat!("watchpost-agent/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build();
    let http = match http {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP probe client");
            return;
        }
    };
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
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut set = tokio::task::JoinSet::new();
        for (pi, p) in probes.iter().enumerate() {
            for (ti, target) in p.targets.iter().enumerate() {
                let (p, target, http, pinger) = (p.clone(), target.clone(), http.clone(), pinger.clone());
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
                    metric,
                    labels,
                    value,
                });
            }
        }
        *out.lock().unwrap_or_else(|p| p.into_inner()) = measured;
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
        let body = resp.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    match result {
        Ok((status, body)) => {
            let mut out = vec![
                ("probe_http_status_code", f64::from(status.as_u16())),
                ("probe_http_duration_ms", ms(started.elapsed())),
            ];
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
            .map_or(Err("none".into()), |p| Probe::check(p, 0))
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
