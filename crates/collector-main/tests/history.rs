//! Rollups across `kill -9`: a raw agent streams 50 minutes of samples
//! (timestamps inside the collector's window, sent as fast as they are
//! acknowledged) to a real `watchpost-collector` with `history.flush =
//! "1s"`, which is killed twice, once after a pass had written rollups and
//! once right after acknowledgements no pass had rolled up yet. Every
//! minute the history answers must hold exactly the samples sent for it:
//! none lost, none counted twice.

use std::collections::BTreeMap;
use std::time::Duration;

use watchpost_collector::time::now_ms;
use watchpost_model::api::SeriesPoints;
use watchpost_proto::v1::{
    Batch, Label, SeriesDefinition, SeriesDefinitions, agent_message, collector_message,
};
use watchpost_tests::process::get_json as get;
use watchpost_tests::process::{ChildProcess, CollectorProcess, wait_http_ok};
use watchpost_tests::raw_agent::{RawAgent, hello};
use watchpost_tests::wait_for;

/// Connects as agent `probe`, defines series 1 and returns the stream.
async fn connect(grpc: &str) -> RawAgent {
    let mut a = wait_for(
        "the collector's gRPC listener",
        Duration::from_secs(20),
        || async {
            RawAgent::open(&format!("http://{grpc}"), None, hello("probe", "test", 1000))
                .await
                .ok()
        },
    )
    .await;
    assert!(matches!(
        a.next().await,
        Some(collector_message::Body::Welcome(_))
    ));
    a.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: vec![SeriesDefinition {
            id: 1,
            metric: "room_temp_celsius".into(),
            labels: vec![Label {
                name: "room".into(),
                value: "A".into(),
            }],
        }],
    }))
    .await;
    a
}

/// Sends samples `from..to` of `all` in batches of 20 and waits for each ack.
async fn send(a: &mut RawAgent, all: &[(i64, f64)], from: usize, to: usize, seq: &mut u64) {
    for chunk in all[from..to].chunks(20) {
        *seq += 1;
        let base = chunk[0].0;
        a.send(agent_message::Body::Batch(Batch {
            sequence: *seq,
            base_timestamp_ms: base,
            series_ids: vec![1; chunk.len()],
            values: chunk.iter().map(|s| s.1).collect(),
            timestamp_offsets_ms: chunk.iter().map(|s| (s.0 - base) as i32).collect(),
            late: true,
            clock_offset: None,
            texts: Vec::new(),
        }))
        .await;
        loop {
            match a.next().await {
                Some(collector_message::Body::Ack(x)) if x.sequence >= *seq => break,
                Some(collector_message::Body::Ack(_)) => continue,
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }
}

async fn minutes(api: &str, since: i64) -> Option<Vec<(i64, u64, f64, f64, f64)>> {
    let s: Vec<SeriesPoints> = get(
        api,
        &format!("/api/v1/query?metric=room_temp_celsius&room=A&since={since}&step=1m"),
    )
    .await?;
    let s = s.into_iter().next()?;
    assert_eq!(s.step, "1m");
    assert!(s.missing.is_empty(), "{:?}", s.missing);
    Some(
        s.rollup
            .iter()
            .map(|p| (p.t, p.count, p.min, p.max, p.mean))
            .collect(),
    )
}

async fn passes(api: &str) -> u64 {
    let text = reqwest::get(format!("{api}/metrics")).await.ok();
    let Some(text) = text else { return 0 };
    let body = text.text().await.unwrap_or_default();
    body.lines()
        .find_map(|l| l.strip_prefix("watchpost_history_passes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_minute_is_lost_or_counted_twice_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nmin_free = \"64MiB\"\ndata_dir = {:?}\n[history]\nflush = \"1s\"\n[security]\nagents = \"open\"\napi = \"open\"\n",
            dir.path().join("data").to_string_lossy()
        ),
    )
    .expect("config");
    let collector = CollectorProcess::new(
        env!("CARGO_BIN_EXE_watchpost-collector"),
        &["--config", &config.to_string_lossy()],
    );
    let api = collector.api();
    let grpc = collector.grpc_addr();
    // 50 minutes at 10 s ending two minutes ago; decimals like a sensor's.
    let start = (now_ms() / 60_000 - 52) * 60_000;
    let all: Vec<(i64, f64)> = (0..300)
        .map(|i| (start + i * 10_000 + 1_234, 20.0 + ((i * 37) % 50) as f64 / 10.0))
        .collect();
    let mut seq = 0;

    let process: ChildProcess = collector.start();
    wait_http_ok(&format!("{api}/healthz"), Duration::from_secs(20))
        .await
        .expect("up");
    let mut a = connect(&grpc).await;
    send(&mut a, &all, 0, 100, &mut seq).await;
    wait_for("a history pass", Duration::from_secs(20), || async {
        (passes(&api).await >= 2).then_some(())
    })
    .await;
    send(&mut a, &all, 100, 150, &mut seq).await;
    wait_for("a history pass", Duration::from_secs(20), || async {
        (passes(&api).await >= 3).then_some(())
    })
    .await;
    drop(a);
    process.kill_9();

    // Acknowledged, then killed before any pass could roll them up.
    let process = collector.start();
    wait_http_ok(&format!("{api}/healthz"), Duration::from_secs(20))
        .await
        .expect("up");
    let mut a = connect(&grpc).await;
    send(&mut a, &all, 150, 230, &mut seq).await;
    drop(a);
    process.kill_9();

    let process = collector.start();
    wait_http_ok(&format!("{api}/healthz"), Duration::from_secs(20))
        .await
        .expect("up");
    let mut a = connect(&grpc).await;
    send(&mut a, &all, 230, 300, &mut seq).await;

    let mut want: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (t, v) in &all {
        want.entry(t / 60_000 * 60_000).or_default().push(*v);
    }
    let want: Vec<(i64, u64, f64, f64, f64)> = want
        .into_iter()
        .map(|(m, vs)| {
            let min = vs.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (
                m,
                vs.len() as u64,
                min,
                max,
                vs.iter().sum::<f64>() / vs.len() as f64,
            )
        })
        .collect();
    // Answered from the rollups once a pass after the last batch ran, so
    // the whole span comes from the files and not the store.
    let p = passes(&api).await;
    wait_for("a pass after the last batch", Duration::from_secs(20), || async {
        (passes(&api).await > p + 1).then_some(())
    })
    .await;
    let got = minutes(&api, start - 60_000).await.expect("an answer");
    assert_eq!(got.len(), want.len(), "minutes: got {got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.0, g.1, g.2, g.3), (w.0, w.1, w.2, w.3), "minute {}", w.0);
        assert!((g.4 - w.4).abs() < 1e-9, "mean at {}: {} vs {}", w.0, g.4, w.4);
    }
    // The raw points the rollups summarise are the ones sent.
    let raw: Vec<SeriesPoints> = get(
        &api,
        &format!(
            "/api/v1/query?metric=room_temp_celsius&since={}&step=raw",
            start - 1
        ),
    )
    .await
    .expect("raw");
    assert_eq!(raw[0].points, all);
    // An hour step over the same span adds the minutes up.
    let hours: Vec<SeriesPoints> = get(
        &api,
        &format!(
            "/api/v1/query?metric=room_temp_celsius&since={}&step=1h",
            start - 1
        ),
    )
    .await
    .expect("hours");
    let counted: u64 = hours[0].rollup.iter().map(|p| p.count).sum();
    assert_eq!(counted, 300);
    let files: Vec<String> = std::fs::read_dir(dir.path().join("data/history"))
        .expect("history dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("pass-") && f.ends_with(".wph")),
        "{files:?}"
    );
    assert!(files.iter().all(|f| !f.ends_with(".part")), "{files:?}");
    drop(a);
    process.terminate(Duration::from_secs(10));
}
