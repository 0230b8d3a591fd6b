//! `[[remote_write]]` and `/federate` against real servers: an agent's
//! samples reach VictoriaMetrics and Prometheus (its remote-write
//! receiver) with their labels and values, every sample of a 30 s
//! VictoriaMetrics outage arrives once it is back, and a Prometheus
//! scraping `/federate` sees the series. Against a recording receiver: a
//! request refused with a 4xx is dropped and counted, and a collector
//! restart resends nothing before the position it saved.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_collector::remote_write::wire;
use watchpost_collector::rules::RuleSet;
use watchpost_tests::api::SeriesPoints;
use watchpost_tests::tsdb::{Prometheus, VictoriaMetrics, free_tcp_port};
use watchpost_tests::*;

const HOST: &str = "rw-host";

async fn start(data: &Path, toml: &str) -> Collector {
    let set = RuleSet::parse("", "none.toml").expect("no rules");
    Collector::start(collector_config_from(data, toml), set)
        .await
        .expect("collector starts")
}

/// A metric of `/metrics` for one destination.
async fn destination_metric(c: &Collector, name: &str, destination: &str) -> f64 {
    let (_, text) = get_raw(c, "/metrics").await;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{destination=\"{destination}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} for {destination} not in /metrics:\n{text}"))
}

/// The collector's raw samples of `metric` on the test host.
async fn collector_points(c: &Collector, metric: &str) -> Vec<(i64, f64)> {
    let s: Vec<SeriesPoints> = get(
        c,
        &format!("/api/v1/query?metric={metric}&host={HOST}&since=0&step=raw"),
    )
    .await;
    s.into_iter().next().map(|s| s.points).unwrap_or_default()
}

/// Writes `wp_rw_value` with a new value every 100 ms until `stop`.
fn keep_writing(dir: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            write_textfile(
                &dir,
                "rw.prom",
                &format!("wp_rw_value{{kind=\"test\"}} {}.5\nwp_rw_other 1\n", i),
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_and_prometheus_get_every_sample_across_an_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = VictoriaMetrics::start(&dir.path().join("vm"));
    let prom_port = free_tcp_port();
    let collector = start(
        &dir.path().join("collector"),
        &format!(
            r#"
[[remote_write]]
name = "vm"
url = "{}"
match = ['{{__name__=~"wp_rw_.*"}}']
labels = {{ dc = "north" }}
shards = 2

[[remote_write]]
name = "prom"
url = "http://127.0.0.1:{prom_port}/api/v1/write"
match = ['wp_rw_value']
"#,
            vm.url("/api/v1/write")
        ),
    )
    .await;
    let prom = Prometheus::start(
        prom_port,
        &format!(
            "  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=\"wp_rw_value\"}}']\n    static_configs:\n      - targets: ['{}']\n",
            collector.http_addr()
        ),
    );
    let textfiles = tempfile::tempdir().expect("textfile dir");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_writing(textfiles.path(), stop.clone());
    let agent = start_agent(
        &collector,
        HOST,
        Some(textfiles.path()),
        false,
        Duration::from_millis(250),
    );

    wait_for(
        "VictoriaMetrics to hold samples",
        Duration::from_secs(60),
        || async {
            let e = vm.export(r#"{__name__="wp_rw_value"}"#);
            (e.first().map_or(0, |s| s.1.len()) >= 8).then_some(())
        },
    )
    .await;
    // The outage: 30 s without VictoriaMetrics while the agent goes on.
    vm.stop();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        destination_metric(&collector, "watchpost_remote_write_samples_failed_total", "vm").await > 0.0,
        "sends to the stopped server failed and are retried"
    );
    assert!(destination_metric(&collector, "watchpost_remote_write_samples_pending", "vm").await > 0.0);
    assert!(destination_metric(&collector, "watchpost_remote_write_lag_seconds", "vm").await > 5.0);
    vm.resume();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    agent.stop().await;
    // Everything the collector holds has been sent to both.
    for d in ["vm", "prom"] {
        wait_for(&format!("{d} to catch up"), Duration::from_secs(60), || async {
            let p = destination_metric(&collector, "watchpost_remote_write_samples_pending", d).await;
            (p == 0.0).then_some(())
        })
        .await;
    }
    assert_eq!(
        destination_metric(&collector, "watchpost_remote_write_samples_dropped_total", "vm").await,
        0.0
    );
    let ours = collector_points(&collector, "wp_rw_value").await;
    let ours_other = collector_points(&collector, "wp_rw_other").await;
    assert!(ours.len() > 150, "{} samples over ~40 s", ours.len());

    // VictoriaMetrics: every sample, the gap's included, with its labels.
    let want: BTreeMap<i64, f64> = ours.iter().copied().collect();
    let got = wait_for(
        "VictoriaMetrics to show every sample",
        Duration::from_secs(30),
        || async {
            let e = vm.export(r#"{__name__="wp_rw_value"}"#);
            let (labels, points) = e.into_iter().next()?;
            let got: BTreeMap<i64, f64> = points.into_iter().collect();
            want.keys().all(|t| got.contains_key(t)).then_some((labels, got))
        },
    )
    .await;
    assert_eq!(
        got.1, want,
        "VictoriaMetrics holds exactly the collector's samples, values equal"
    );
    assert_eq!(
        got.0,
        serde_json::json!({"__name__": "wp_rw_value", "host": HOST, "kind": "test", "dc": "north"})
    );
    let other = vm.export(r#"{__name__="wp_rw_other"}"#);
    assert_eq!(other.len(), 1, "the second metric matches the selector too");
    assert_eq!(other[0].1.len(), ours_other.len());

    // Prometheus' receiver: the raw samples of the last 10 minutes.
    let res = prom.query(r#"wp_rw_value{job=""}[10m]"#);
    assert_eq!(res.len(), 1, "{res:?}");
    assert_eq!(res[0]["metric"]["host"], HOST);
    assert_eq!(res[0]["metric"]["kind"], "test");
    assert!(
        res[0]["metric"].get("dc").is_none(),
        "only vm's destination adds dc"
    );
    let values: BTreeMap<i64, f64> = res[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| {
            (
                (p[0].as_f64().expect("time") * 1000.0).round() as i64,
                p[1].as_str().expect("value").parse().expect("number"),
            )
        })
        .collect();
    assert_eq!(values, want, "Prometheus holds exactly the collector's samples");
    assert!(
        prom.query(r#"wp_rw_other{job=""}"#).is_empty(),
        "prom's match takes wp_rw_value only"
    );

    // Prometheus scraping /federate sees the series with its labels.
    let fed = wait_for(
        "Prometheus to scrape /federate",
        Duration::from_secs(30),
        || async {
            let r = prom.query(r#"wp_rw_value{job="federate"}"#);
            (!r.is_empty()).then_some(r)
        },
    )
    .await;
    assert_eq!(fed[0]["metric"]["host"], HOST);
    assert_eq!(fed[0]["metric"]["kind"], "test");
    collector.shutdown().await;
}

#[tokio::test]
async fn federate_answers_the_text_format_and_refuses_bad_selectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start(dir.path(), "").await;
    let textfiles = tempfile::tempdir().expect("textfile dir");
    write_textfile(
        textfiles.path(),
        "f.prom",
        "wp_fed_a{mount=\"/data\"} 1.5\nwp_fed_b 2\nwp_other 3\n",
    );
    let agent = start_agent(
        &collector,
        HOST,
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    latest_value(&collector, "metric=wp_fed_b", 2.0, Duration::from_secs(20)).await;
    let (status, text) = get_raw(
        &collector,
        "/federate?match[]=%7B__name__%3D~%22wp_fed_.*%22%7D&match[]=wp_fed_b",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# TYPE wp_fed_a untyped");
    assert!(
        lines[1].starts_with(&format!("wp_fed_a{{host=\"{HOST}\",mount=\"/data\"}} 1.5 ")),
        "{text}"
    );
    assert_eq!(lines[2], "# TYPE wp_fed_b untyped");
    assert!(
        lines[3].starts_with(&format!("wp_fed_b{{host=\"{HOST}\"}} 2 ")),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "wp_other is not selected, wp_fed_b once: {text}");
    for (q, says) in [
        ("/federate", "give at least one"),
        ("/federate?match[]=%7B%7D", "matches every series"),
        ("/federate?match[]=m%7Ba%3Db%7D", "quoted value"),
    ] {
        let (status, body) = get_raw(&collector, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(says), "{q}: {body}");
    }
    agent.stop().await;
    collector.shutdown().await;
}

/// Every (labels, timestamp) a recording receiver was sent.
fn received(r: &Receiver) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for req in r.requests() {
        assert_eq!(
            req.headers.get("content-encoding").map(String::as_str),
            Some("snappy")
        );
        assert_eq!(
            req.headers
                .get("x-prometheus-remote-write-version")
                .map(String::as_str),
            Some("0.1.0")
        );
        assert_eq!(
            req.headers.get("authorization").map(String::as_str),
            Some("Bearer rw-secret")
        );
        let w = wire::decode(&req.body).expect("a remote_write body");
        for ts in w.timeseries {
            let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "labels sorted");
            let key = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",");
            let times: Vec<i64> = ts.samples.iter().map(|s| s.timestamp).collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "in time order: {times:?}");
            out.extend(times.into_iter().map(|t| (key.clone(), t)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_dropped_and_a_restart_resends_nothing_before_the_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start("").await;
    let toml = format!(
        "[[remote_write]]\nname = \"rec\"\nurl = \"{}\"\nbearer_token = \"rw-secret\"\nmatch = ['wp_rw_value']\n",
        receiver.url("/write")
    );
    let textfiles = tempfile::tempdir().expect("textfile dir");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_writing(textfiles.path(), stop.clone());

    let collector = start(dir.path(), &toml).await;
    let agent = start_agent(
        &collector,
        HOST,
        Some(textfiles.path()),
        false,
        Duration::from_millis(100),
    );
    wait_for("samples to arrive", Duration::from_secs(30), || async {
        (received(&receiver).len() >= 10).then_some(())
    })
    .await;
    // A 400: dropped and counted, not retried for ever.
    receiver.answer(400, "out of bounds");
    wait_for("a request to be dropped", Duration::from_secs(30), || async {
        let d = destination_metric(&collector, "watchpost_remote_write_samples_dropped_total", "rec").await;
        (d > 0.0).then_some(())
    })
    .await;
    receiver.answer(200, "");
    agent.stop().await;
    collector.shutdown().await;
    let before = received(&receiver);

    // Restarted on the same data: it goes on from its position.
    let collector = start(dir.path(), &toml).await;
    let agent = start_agent(
        &collector,
        HOST,
        Some(textfiles.path()),
        false,
        Duration::from_millis(100),
    );
    wait_for("samples after the restart", Duration::from_secs(30), || async {
        (received(&receiver).len() >= before.len() + 10).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    agent.stop().await;
    wait_for("the destination to catch up", Duration::from_secs(30), || async {
        let p = destination_metric(&collector, "watchpost_remote_write_samples_pending", "rec").await;
        (p == 0.0).then_some(())
    })
    .await;
    let all = received(&receiver);
    let mut seen = HashSet::new();
    for s in &all {
        assert!(seen.insert(s.clone()), "sent twice: {s:?}");
    }
    // Everything the collector holds was sent, but what the 400 dropped.
    let dropped = destination_metric(&collector, "watchpost_remote_write_samples_dropped_total", "rec").await;
    assert_eq!(dropped, 0.0, "counters start again with the process");
    let ours = collector_points(&collector, "wp_rw_value").await;
    let sent: HashSet<i64> = all.iter().map(|(_, t)| *t).collect();
    let missing = ours.iter().filter(|(t, _)| !sent.contains(t)).count();
    assert!(missing > 0, "the refused request's samples are not resent");
    assert!(
        missing < ours.len() / 2,
        "only the refused requests' samples are missing: {missing} of {}",
        ours.len()
    );
    collector.shutdown().await;
}
