//! Probes end to end: an agent pings 127.0.0.1, connects to TCP ports and
//! GETs HTTP pages served by the test on loopback; the values reach the
//! collector's API and a dead service opens a fault through a rule.

use std::time::Duration;

use watchpost_agent::probe::{Probe, ProbeKind};
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
