//! The wire protocol as a raw gRPC client sees it: identity, acks that mean
//! "durable", duplicate batches, and malformed input.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use watchpost_model::api::{Fault, Series};
use watchpost_proto::v1::{
    AgentMessage, Batch, CollectorMessage, Hello, Label, SeriesDefinition, SeriesDefinitions, agent_message,
    collector_message,
};
use watchpost_tests::raw_agent::{RawAgent, agent_message, hello as raw_hello};
use watchpost_tests::*;

fn msg(body: agent_message::Body) -> AgentMessage {
    agent_message(body)
}

fn hello(id: &str) -> AgentMessage {
    raw_hello(id, "test", 1000)
}

async fn open(collector: &watchpost_collector::Collector, first: AgentMessage) -> RawAgent {
    RawAgent::open(&format!("http://{}", collector.grpc_addr()), None, first)
        .await
        .expect("connect")
}

fn batch(sequence: u64, ts: i64, ids: &[u32], values: &[f64]) -> agent_message::Body {
    agent_message::Body::Batch(Batch {
        sequence,
        base_timestamp_ms: ts,
        series_ids: ids.to_vec(),
        values: values.to_vec(),
        timestamp_offsets_ms: Vec::new(),
        late: false,
        clock_offset: None,
        texts: Vec::new(),
    })
}

use watchpost_collector::time::now_ms;

const RULE: &str = r#"
[[rule]]
name = "hot"
metric = "temp_celsius"
when = "> 40"
severity = "general"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_follow_durable_faults_duplicates_are_dropped_and_hosts_cannot_be_spoofed() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), RULE).await;
    let mut a = open(&collector, hello("sensor-1")).await;
    let Some(collector_message::Body::Welcome(w)) = a.next().await else {
        panic!("welcome first")
    };
    assert_eq!(w.last_sequence, 0);

    a.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: vec![
            SeriesDefinition {
                id: 1,
                metric: "temp_celsius".into(),
                labels: vec![
                    Label {
                        name: "host".into(),
                        value: "someone-else".into(),
                    },
                    Label {
                        name: "room".into(),
                        value: "A".into(),
                    },
                ],
            },
            SeriesDefinition {
                id: 2,
                metric: "bad-name".into(),
                labels: vec![],
            },
        ],
    }))
    .await;
    // The bad name is refused with a notice that names it; the stream goes on.
    let Some(collector_message::Body::Error(e)) = a.next().await else {
        panic!("expected a notice for the refused series")
    };
    assert_eq!(e.code, "invalid_series");
    assert!(e.message.contains("bad-name"), "{}", e.message);
    let t0 = now_ms();
    a.send(batch(1, t0, &[1, 2], &[20.0, 1.0])).await;
    assert!(matches!(a.next().await, Some(collector_message::Body::Ack(x)) if x.sequence == 1));
    // The refused series' sample is counted in a notice, not stored.
    let Some(collector_message::Body::Error(e)) = a.next().await else {
        panic!("expected a notice for the refused sample")
    };
    assert_eq!(e.code, "refused_samples");
    assert!(e.message.contains("1 of series never defined"), "{}", e.message);
    let s: Vec<Series> = get(&collector, "/api/v1/series?metric=temp_celsius").await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].labels.get("host").map(String::as_str),
        Some("sensor-1"),
        "host comes from the agent's identity"
    );
    assert_eq!(s[0].labels.get("room").map(String::as_str), Some("A"));

    // The ack of a batch that opens a fault comes after the fault is durable.
    a.send(batch(2, t0 + 1000, &[1], &[45.0])).await;
    assert!(matches!(a.next().await, Some(collector_message::Body::Ack(x)) if x.sequence == 2));
    let faults: Vec<Fault> = get(&collector, "/api/v1/faults?host=sensor-1").await;
    assert_eq!(faults.len(), 1, "fault recorded before the ack");
    assert_eq!(faults[0].value, Some(45.0));

    // A re-sent batch is acknowledged again but not applied twice.
    a.send(batch(2, t0 + 2000, &[1], &[10.0])).await;
    assert!(matches!(a.next().await, Some(collector_message::Body::Ack(x)) if x.sequence == 2));
    let s: Vec<Series> = get(&collector, "/api/v1/series?metric=temp_celsius").await;
    assert_eq!(s[0].last_value, Some(45.0));
    let (_, metrics) = get_raw(&collector, "/metrics").await;
    assert!(
        metrics.contains("watchpost_duplicate_batches_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchpost_series_refused_total 1\n"),
        "{metrics}"
    );

    // A reconnecting agent learns where its sequence stands.
    drop(a);
    let mut b = open(&collector, hello("sensor-1")).await;
    let Some(collector_message::Body::Welcome(w)) = b.next().await else {
        panic!("welcome")
    };
    assert_eq!(w.last_sequence, 2);

    // Columns that do not line up close the stream with a reason.
    b.send(batch(3, t0 + 3000, &[1, 1], &[1.0])).await;
    let Some(collector_message::Body::Error(e)) = b.next().await else {
        panic!("error expected")
    };
    assert_eq!(e.code, "protocol");
    assert!(e.message.contains("do not line up"), "{}", e.message);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_must_start_with_a_valid_hello() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), "").await;
    let mut a = open(&collector, msg(batch(1, 0, &[], &[]))).await;
    let Some(collector_message::Body::Error(e)) = a.next().await else {
        panic!("error expected")
    };
    assert!(e.message.contains("hello"), "{}", e.message);

    let mut old = hello("x");
    if let Some(agent_message::Body::Hello(h)) = old.body.as_mut() {
        h.protocol_version = 99;
    }
    let mut b = open(&collector, old).await;
    let Some(collector_message::Body::Error(e)) = b.next().await else {
        panic!("error expected")
    };
    assert!(e.message.contains("protocol version 99"), "{}", e.message);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_over_a_limit_are_refused_with_a_notice_naming_it_and_the_stream_goes_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = watchpost_collector::CollectorConfig {
        max_series_per_agent: 3,
        max_series_total: 5,
        ..collector_config(data.path())
    };
    let collector = watchpost_collector::Collector::start(
        config,
        watchpost_collector::rules::RuleSet::parse("", "none.toml").expect("rules"),
    )
    .await
    .expect("collector starts");
    let def = |id: u32, metric: &str| SeriesDefinition {
        id,
        metric: metric.into(),
        labels: vec![],
    };
    let mut a = open(&collector, hello("limited-a")).await;
    assert!(matches!(
        a.next().await,
        Some(collector_message::Body::Welcome(_))
    ));
    a.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: (1..=5).map(|i| def(i, &format!("m{i}"))).collect(),
    }))
    .await;
    let Some(collector_message::Body::Error(e)) = a.next().await else {
        panic!("expected a limit notice");
    };
    assert_eq!(e.code, "limit");
    assert!(
        e.message.starts_with("2 series definition(s) refused")
            && e.message.contains("collector.max_series_per_agent"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("m4"),
        "names the first refused series: {}",
        e.message
    );
    // The stream goes on: a batch of the accepted and refused ids is acknowledged.
    a.send(batch(1, now_ms(), &[1, 2, 3, 4], &[1.0, 2.0, 3.0, 4.0]))
        .await;
    assert!(matches!(a.next().await, Some(collector_message::Body::Ack(_))));
    // A second agent meets the collector-wide limit after two series.
    let mut b = open(&collector, hello("limited-b")).await;
    assert!(matches!(
        b.next().await,
        Some(collector_message::Body::Welcome(_))
    ));
    b.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: (1..=3).map(|i| def(i, &format!("n{i}"))).collect(),
    }))
    .await;
    let Some(collector_message::Body::Error(e)) = b.next().await else {
        panic!("expected a limit notice");
    };
    assert!(
        e.message.contains("collector.max_series_total") && e.message.contains("n3"),
        "{}",
        e.message
    );
    let of_a: Vec<Series> = get(&collector, "/api/v1/series?host=limited-a").await;
    let of_b: Vec<Series> = get(&collector, "/api/v1/series?host=limited-b").await;
    assert_eq!((of_a.len(), of_b.len()), (3, 2), "{of_a:?} {of_b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_values_are_stored_and_shown_and_refused_samples_get_one_notice_naming_why() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = watchpost_collector::CollectorConfig {
        max_samples_per_batch: 4,
        ..collector_config(data.path())
    };
    let collector = watchpost_collector::Collector::start(
        config,
        watchpost_collector::rules::RuleSet::parse(RULE, "rules.toml").expect("rules"),
    )
    .await
    .expect("collector starts");
    let mut a = open(&collector, hello("odd")).await;
    assert!(matches!(
        a.next().await,
        Some(collector_message::Body::Welcome(_))
    ));
    a.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: vec![SeriesDefinition {
            id: 1,
            metric: "temp_celsius".into(),
            labels: vec![],
        }],
    }))
    .await;
    let t = now_ms() - 5_000;
    // NaN and ±Inf are stored as they are; the API shows them as strings.
    a.send(agent_message::Body::Batch(Batch {
        sequence: 1,
        base_timestamp_ms: t,
        series_ids: vec![1, 1, 1],
        values: vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
        timestamp_offsets_ms: vec![1, 2, 3],
        late: false,
        clock_offset: None,
        texts: Vec::new(),
    }))
    .await;
    let first = a.next().await;
    assert!(
        matches!(first, Some(collector_message::Body::Ack(ref x)) if x.sequence == 1),
        "{first:?}"
    );
    let (status, text) = get_raw(&collector, "/api/v1/query?metric=temp_celsius&host=odd&since=1h").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(r#""NaN""#) && text.contains(r#""+Inf""#) && text.contains(r#""-Inf""#),
        "{text}"
    );
    let parsed: Vec<watchpost_model::api::SeriesPoints> = serde_json::from_str(&text).expect("points");
    let v: Vec<f64> = parsed[0].points.iter().map(|p| p.1).collect();
    assert!(
        v[0].is_nan() && v[1] == f64::INFINITY && v[2] == f64::NEG_INFINITY,
        "{v:?}"
    );
    // +Inf is above 40: the rule fires on it; NaN changed nothing.
    first_fault(&collector, "hot", "odd", Duration::from_secs(5)).await;
    assert_eq!(faults_of(&collector, "hot", "odd").await.len(), 1);

    // One batch with a sample an hour and a half old, one 20 min ahead, one
    // not newer than the last, one of an undefined series: acknowledged,
    // with one notice that counts each reason.
    a.send(agent_message::Body::Batch(Batch {
        sequence: 2,
        base_timestamp_ms: now_ms(),
        series_ids: vec![1, 1, 1, 9],
        values: vec![1.0, 2.0, 3.0, 4.0],
        timestamp_offsets_ms: vec![-5_400_000, 1_200_000, -60_000, 0],
        late: true,
        clock_offset: None,
        texts: Vec::new(),
    }))
    .await;
    let mut notice = None;
    for _ in 0..3 {
        match a.next().await {
            Some(collector_message::Body::Error(e)) => notice = Some(e),
            Some(collector_message::Body::Ack(x)) => assert_eq!(x.sequence, 2),
            other => panic!("unexpected {other:?}"),
        }
        if notice.is_some() {
            break;
        }
    }
    let e = notice.expect("a notice");
    assert_eq!(e.code, "refused_samples");
    for part in [
        "4 samples refused",
        "1 of series never defined",
        "1 not newer",
        "1 more than 10 min ahead",
        "1 older than the collector's window",
    ] {
        assert!(e.message.contains(part), "{part:?} not in {:?}", e.message);
    }
    // The agent's record says so too: what was refused in the last minute, and why.
    let agents: Vec<api::Agent> = get(&collector, "/api/v1/agents").await;
    let me = agents.iter().find(|x| x.id == "odd").expect("listed");
    assert_eq!(me.refused_last_minute, 4, "{me:?}");
    assert!(
        me.refused_reason
            .as_deref()
            .is_some_and(|r| r.contains("1 more than 10 min ahead")),
        "{me:?}"
    );
    // A batch over the limit: refused whole, acknowledged, the stream goes on.
    a.send(batch(3, now_ms(), &[1, 1, 1, 1, 1], &[1.0; 5])).await;
    let over = a.next().await;
    assert!(
        matches!(over, Some(collector_message::Body::Ack(ref x)) if x.sequence == 3),
        "{over:?}"
    );
    a.send(batch(4, now_ms() + 1, &[1], &[7.0])).await;
    assert!(matches!(a.next().await, Some(collector_message::Body::Ack(x)) if x.sequence == 4));
    latest_value(
        &collector,
        "metric=temp_celsius&host=odd",
        7.0,
        Duration::from_secs(5),
    )
    .await;
    let (_, metrics) = get_raw(&collector, "/metrics").await;
    assert!(metrics.contains("watchpost_samples_refused_total 9"), "{metrics}");
    assert!(
        metrics.contains("watchpost_samples_late_total 0"),
        "late but all refused: {metrics}"
    );
    collector.shutdown().await;
}

/// An agent message whose series definitions carry raw bytes where the
/// protocol has strings, to send what a broken or hostile agent might.
#[derive(Clone, PartialEq, prost::Message)]
struct RawAgentMessage {
    #[prost(oneof = "RawBody", tags = "1, 2")]
    body: Option<RawBody>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum RawBody {
    #[prost(message, tag = "1")]
    Hello(Hello),
    #[prost(message, tag = "2")]
    Definitions(RawDefinitions),
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawDefinitions {
    #[prost(message, repeated, tag = "1")]
    series: Vec<RawDefinition>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawDefinition {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(bytes = "vec", tag = "2")]
    metric: Vec<u8>,
}

async fn next_raw(
    rx: &mut tonic::Streaming<CollectorMessage>,
) -> Result<Option<CollectorMessage>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), rx.message())
        .await
        .expect("collector answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_utf_8_gets_an_error_frame_and_other_agents_go_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = watchpost_collector::Collector::start(
        collector_config(data.path()),
        watchpost_collector::rules::RuleSet::parse("", "none.toml").expect("rules"),
    )
    .await
    .expect("collector starts");
    let mut good = open(&collector, hello("good")).await;
    assert!(matches!(
        good.next().await,
        Some(collector_message::Body::Welcome(_))
    ));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", collector.grpc_addr()))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let (tx, rx) = mpsc::channel(4);
    let AgentMessage {
        body: Some(agent_message::Body::Hello(h)),
    } = hello("broken")
    else {
        unreachable!("hello() makes a hello")
    };
    tx.send(RawAgentMessage {
        body: Some(RawBody::Hello(h)),
    })
    .await
    .expect("send");
    let codec = tonic_prost::ProstCodec::<RawAgentMessage, CollectorMessage>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/watchpost.v1.Ingest/Stream");
    let mut rx = grpc
        .streaming(tonic::Request::new(ReceiverStream::new(rx)), path, codec)
        .await
        .expect("stream")
        .into_inner();
    assert!(matches!(
        next_raw(&mut rx).await.expect("ok").and_then(|m| m.body),
        Some(collector_message::Body::Welcome(_))
    ));
    tx.send(RawAgentMessage {
        body: Some(RawBody::Definitions(RawDefinitions {
            series: vec![RawDefinition {
                id: 1,
                metric: vec![b'm', 0xff, 0xfe],
            }],
        })),
    })
    .await
    .expect("send");
    let e = loop {
        match next_raw(&mut rx).await.expect("ok").and_then(|m| m.body) {
            Some(collector_message::Body::Heartbeat(_)) => continue,
            Some(collector_message::Body::Error(e)) => break e,
            other => panic!("expected an error frame, got {other:?}"),
        }
    };
    assert_eq!(e.code, "protocol");
    assert!(
        e.message.contains("UTF-8") || e.message.contains("utf-8") || e.message.contains("utf8"),
        "{}",
        e.message
    );

    // The other agent is unaffected.
    good.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: vec![SeriesDefinition {
            id: 1,
            metric: "ok_total".into(),
            labels: vec![],
        }],
    }))
    .await;
    good.send(batch(1, now_ms(), &[1], &[1.0])).await;
    assert!(matches!(good.next().await, Some(collector_message::Body::Ack(x)) if x.sequence == 1));
    collector.shutdown().await;
}
