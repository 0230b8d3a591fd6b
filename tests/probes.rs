//! Probes end to end: an agent pings 127.0.0.1, connects to TCP ports and
//! GETs HTTP pages served by the test on loopback; the values reach the
//! collector's API and a dead service opens a fault through a rule.

use std::time::Duration;

use watchpost_agent::sources::probe::{Probe, ProbeKind};
use watchpost_collector::Collector;
use watchpost_tests::api::Series;
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

fn probe(kind: ProbeKind, targets: &[String], expect: Option<&str>) -> Probe {
    Probe {
        kind,
        targets: targets.to_vec(),
        timeout: Duration::from_millis(800),
        count: 2,
        expect: expect.map(str::to_string),
        ca_pem: None,
        tls_verify: true,
        labels: [("system".to_string(), "portal".to_string())].into(),
    }
}

async fn value(c: &Collector, query: &str) -> Option<f64> {
    let s: Vec<Series> = get(c, &format!("/api/v1/series?{query}")).await;
    s.first()?.last_value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_tcp_and_http_probes_report_and_a_dead_service_opens_a_fault() {
    let open_port = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let open = open_port.local_addr().expect("addr").to_string();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        l.local_addr().expect("addr").to_string()
    };
    let page = Receiver::start("service ready").await;
    let broken = Receiver::start("oops").await;
    broken.answer(503, "maintenance");
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(
        data.path(),
        r#"
[[rule]]
name = "service_down"
metric = "probe_up"
match = { probe = "~tcp|http" }
when = "< 1"
severity = "general"
unreachable = true
summary = "{target} ({system}) does not answer"
"#,
    )
    .await;
    let mut config = watchpost_agent::AgentConfig::local(&format!("http://{}", collector.grpc_addr()));
    config.hostname = Some("poller-1".into());
    config.interval = Duration::from_millis(500);
    config.host.enabled = false;
    config.probes = vec![
        probe(ProbeKind::Ping, &["127.0.0.1".into()], None),
        probe(ProbeKind::Tcp, &[open.clone(), closed.clone()], None),
        probe(
            ProbeKind::Http,
            &[page.url("/health"), broken.url("/health")],
            Some("ready"),
        ),
    ];
    let agent = watchpost_agent::start(config);

    let q = |metric: &str, target: &str| format!("metric={metric}&target={target}");
    wait_for("all probe results", 20 * SECOND, || async {
        let ok = value(&collector, &q("probe_up", "127.0.0.1")).await == Some(1.0)
            && value(&collector, &q("probe_up", &open)).await == Some(1.0)
            && value(&collector, &q("probe_up", &closed)).await == Some(0.0)
            && value(&collector, &q("probe_up", &page.url("/health"))).await == Some(1.0)
            && value(&collector, &q("probe_up", &broken.url("/health"))).await == Some(0.0);
        ok.then_some(())
    })
    .await;
    assert_eq!(
        value(&collector, &q("probe_ping_loss_percent", "127.0.0.1")).await,
        Some(0.0)
    );
    let rtt = value(&collector, &q("probe_ping_rtt_avg_ms", "127.0.0.1"))
        .await
        .expect("rtt");
    assert!((0.0..800.0).contains(&rtt), "{rtt}");
    assert!(
        value(&collector, &q("probe_tcp_connect_ms", &open))
            .await
            .is_some()
    );
    assert_eq!(
        value(&collector, &q("probe_http_status_code", &broken.url("/health"))).await,
        Some(503.0)
    );
    assert_eq!(
        value(&collector, &q("probe_http_body_match", &page.url("/health"))).await,
        Some(1.0)
    );
    let labelled: Vec<Series> = get(
        &collector,
        &format!("/api/v1/series?metric=probe_up&probe=tcp&system=portal&target={closed}"),
    )
    .await;
    assert_eq!(
        labelled.len(),
        1,
        "probe labels and the probe kind are on the series"
    );

    let faults = wait_for(
        "faults for the closed port and the broken page",
        15 * SECOND,
        || async {
            let f = faults_of(&collector, "service_down", "poller-1").await;
            (f.len() == 2).then_some(f)
        },
    )
    .await;
    let mut targets: Vec<&str> = faults.iter().map(|f| f.labels["target"].as_str()).collect();
    targets.sort_unstable();
    let broken_url = broken.url("/health");
    let mut want = vec![closed.as_str(), broken_url.as_str()];
    want.sort_unstable();
    assert_eq!(targets, want);
    assert!(
        faults
            .iter()
            .all(|f| f.summary.contains("(portal) does not answer"))
    );

    // The page comes back: its fault resolves.
    broken.answer(200, "service ready");
    let id = faults
        .iter()
        .find(|f| f.labels["target"].starts_with("http"))
        .map(|f| f.id)
        .expect("http fault");
    fault_in_status(&collector, id, api::FaultStatus::Resolved, 15 * SECOND).await;
    agent.stop().await;
}

/// `openssl s_server -www` with a certificate for 127.0.0.1 signed by the
/// test CA and valid for `days`; killed when dropped.
struct TlsServer {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start(days: u32) -> TlsServer {
        let tls = peers_dir().join("tls");
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "k.pem",
            "-out",
            "c.csr",
        ]);
        std::fs::write(dir.path().join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        let ca = tls.join("ca.pem");
        let ca_key = tls.join("ca.key");
        let days = days.to_string();
        run(&[
            "x509",
            "-req",
            "-in",
            "c.csr",
            "-CA",
            ca.to_str().expect("utf-8"),
            "-CAkey",
            ca_key.to_str().expect("utf-8"),
            "-set_serial",
            "7",
            "-days",
            &days,
            "-extfile",
            "ext.cnf",
            "-out",
            "c.pem",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "c.pem",
                "-key",
                "k.pem",
                "-www",
                "-quiet",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_probes_report_days_until_the_certificate_expires() {
    let month = TlsServer::start(20);
    let week = TlsServer::start(5);
    let data = tempfile::tempdir().expect("tempdir");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("examples/rules/probes.toml")).expect("rules");
    let collector = start_collector(data.path(), &rules).await;
    let text = format!(
        r#"
[agent]
collector = "http://{grpc}"
hostname = "poller-1"
interval = "500ms"

[host]
enabled = false

[[probe]]
type = "http"
targets = ["https://127.0.0.1:{month}/"]
ca_file = "{ca}"
labels = {{ system = "portal" }}

[[probe]]
type = "http"
targets = ["https://127.0.0.1:{week}/"]
tls_verify = false
"#,
        grpc = collector.grpc_addr(),
        month = month.port,
        week = week.port,
        ca = peers_dir().join("tls/ca.pem").display(),
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let _agent = watchpost_agent::start(config);
    let days = |port: u16| {
        let c = &collector;
        async move {
            wait_for("a certificate figure", 20 * SECOND, || async move {
                value(
                    c,
                    &format!("metric=probe_http_cert_days_left&target=https://127.0.0.1:{port}/"),
                )
                .await
            })
            .await
        }
    };
    let d = days(month.port).await;
    assert!((19.9..=20.0).contains(&d), "{d}");
    let d = days(week.port).await;
    assert!((4.9..=5.0).contains(&d), "{d}");
    // Trusted through ca_file: the probe is up and the page answered 200.
    latest_value(
        &collector,
        &format!("metric=probe_up&target=https://127.0.0.1:{}/", month.port),
        1.0,
        10 * SECOND,
    )
    .await;
    let faults = wait_for("two certificate faults", 10 * SECOND, || async {
        let f = faults_of(&collector, "certificate_expiring", "poller-1").await;
        (f.len() == 2).then_some(f)
    })
    .await;
    for f in faults {
        let target = f.labels.get("target").cloned().unwrap_or_default();
        let expected = if target.contains(&month.port.to_string()) {
            watchpost_model::Severity::Minor
        } else {
            watchpost_model::Severity::General
        };
        assert_eq!(f.severity, expected, "{target}");
    }
}
