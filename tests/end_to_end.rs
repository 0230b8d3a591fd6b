//! End to end: a real collector and real agents on loopback, real SQLite
//! files in temporary directories, the HTTP API as users and watchpostctl
//! meet it.

use std::time::Duration;

use watchpost_model::Severity;
use watchpost_model::api::{Agent, Fault, FaultStatus, Series, SeriesPoints};
use watchpost_tests::*;

const QUEUE_RULE: &str = r#"
[[rule]]
name = "queue_deep"
metric = "app_queue_depth"
match = { queue = "orders" }
when = "> 90"
for = "1s"
recover = "< 85"
severity = "urgent"
summary = "{host}: queue {queue} holds {value} messages"

[[rule]]
name = "agent_gone"
kind = "agent_silent"
for = "2s"
severity = "general"
"#;

const SECOND: Duration = Duration::from_secs(1);

/// A collector with [`QUEUE_RULE`] and an agent for `host` whose textfile
/// reports the orders queue at `depth`.
struct QueueHost {
    data: tempfile::TempDir,
    textfiles: tempfile::TempDir,
    collector: watchpost_collector::Collector,
    agent: watchpost_agent::RunningAgent,
}

async fn queue_host(host: &str, depth: f64) -> QueueHost {
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    set_orders_depth(textfiles.path(), depth);
    let collector = start_collector(data.path(), QUEUE_RULE).await;
    let agent = start_agent(
        &collector,
        host,
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    QueueHost {
        data,
        textfiles,
        collector,
        agent,
    }
}

/// Sets the depth of the orders queue that the test agent reads from its textfile.
fn set_orders_depth(dir: &std::path::Path, depth: f64) {
    write_textfile(
        dir,
        "app.prom",
        &format!("app_queue_depth{{queue=\"orders\"}} {depth}\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_metrics_reach_the_api_and_the_agent_is_listed() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), "").await;
    let agent = start_agent(&collector, "web-01", None, true, Duration::from_millis(500));

    let series: Vec<Series> = wait_for("host CPU series", 15 * SECOND, || async {
        let s: Vec<Series> = get(
            &collector,
            "/api/v1/series?metric=host_cpu_usage_percent&cpu=total",
        )
        .await;
        s.first().is_some_and(|s| s.last_value.is_some()).then_some(s)
    })
    .await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels.get("host").map(String::as_str), Some("web-01"));
    let busy = series[0].last_value.expect("value");
    assert!((0.0..=100.0).contains(&busy), "{busy}");

    for metric in [
        "host_load1",
        "host_memory_total_bytes",
        "host_memory_available_bytes",
        "host_memory_used_percent",
        "host_swap_used_percent",
        "host_filesystem_used_percent",
        "host_filesystem_size_bytes",
        "host_filesystem_inodes_used_percent",
        "host_processes",
        "host_uptime_seconds",
        "host_cpu_mode_percent",
    ] {
        let s: Vec<Series> = get(&collector, &format!("/api/v1/series?metric={metric}&host=web-01")).await;
        assert!(!s.is_empty(), "no {metric}");
    }
    let root: Vec<Series> = get(
        &collector,
        "/api/v1/series?metric=host_filesystem_used_percent&mountpoint=/",
    )
    .await;
    assert_eq!(root.len(), 1, "the root filesystem is reported once");
    assert!(root[0].labels.contains_key("fstype") && root[0].labels.contains_key("device"));

    // Rates need two rounds; then the network series carry values.
    let points: Vec<SeriesPoints> = wait_for("several CPU points", 15 * SECOND, || async {
        let p: Vec<SeriesPoints> = get(
            &collector,
            "/api/v1/query?metric=host_cpu_usage_percent&cpu=total&since=1m",
        )
        .await;
        p.first().is_some_and(|s| s.points.len() >= 3).then_some(p)
    })
    .await;
    let ts: Vec<i64> = points[0].points.iter().map(|p| p.0).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "points in time order: {ts:?}");

    let agents: Vec<Agent> = get(&collector, "/api/v1/agents").await;
    assert_eq!(agents.len(), 1);
    let a = &agents[0];
    assert_eq!((a.id.as_str(), a.hostname.as_str()), ("web-01", "web-01"));
    assert!(a.connected && a.connected_since.is_some());
    assert_eq!(a.version, watchpost_agent::VERSION);
    assert!(a.address.starts_with("127.0.0.1:"), "{}", a.address);
    assert!(a.series > 20, "{} series", a.series);

    let (status, metrics) = get_raw(&collector, "/metrics").await;
    assert_eq!(status, 200);
    let ingested: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("watchpost_samples_ingested_total "))
        .and_then(|v| v.parse().ok())
        .expect("samples counter");
    assert!(ingested > 50, "{ingested}");
    assert!(metrics.contains("watchpost_agents_connected 1\n"), "{metrics}");

    agent.stop().await;
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_holds_through_hysteresis_and_resolves() {
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), QUEUE_RULE).await;
    write_textfile(
        textfiles.path(),
        "app.prom",
        "app_queue_depth{queue=\"orders\"} 10\napp_queue_depth{queue=\"audit\"} 500\n",
    );
    let agent = start_agent(
        &collector,
        "app-01",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );

    latest_value(
        &collector,
        "metric=app_queue_depth&queue=orders",
        10.0,
        10 * SECOND,
    )
    .await;
    assert!(
        faults_of(&collector, "queue_deep", "app-01").await.is_empty(),
        "audit queue is not selected"
    );

    set_orders_depth(textfiles.path(), 95.0);
    let fault = first_fault(&collector, "queue_deep", "app-01", 10 * SECOND).await;
    assert_eq!(fault.severity, Severity::Urgent);
    assert_eq!(fault.status, FaultStatus::Open);
    assert_eq!(fault.value, Some(95.0));
    assert_eq!(fault.summary, "app-01: queue orders holds 95 messages");
    assert_eq!(fault.labels.get("queue").map(String::as_str), Some("orders"));
    let opened: jiff::Timestamp = fault.opened_at.parse().expect("rfc3339");
    let respond: jiff::Timestamp = fault.response_due.parse().expect("rfc3339");
    let resolve: jiff::Timestamp = fault.resolve_due.parse().expect("rfc3339");
    assert_eq!(
        respond.as_millisecond() - opened.as_millisecond(),
        3_600_000,
        "urgent: respond in 1 h"
    );
    assert_eq!(
        resolve.as_millisecond() - opened.as_millisecond(),
        4 * 3_600_000,
        "urgent: resolve in 4 h"
    );

    // Between recover (< 85) and when (> 90): the fault stays open.
    set_orders_depth(textfiles.path(), 88.0);
    latest_value(
        &collector,
        "metric=app_queue_depth&queue=orders",
        88.0,
        10 * SECOND,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let still: Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
    assert_eq!(still.status, FaultStatus::Open, "hysteresis: 88 does not resolve");

    set_orders_depth(textfiles.path(), 80.0);
    let resolved: Fault = fault_in_status(&collector, fault.id, FaultStatus::Resolved, 10 * SECOND).await;
    assert!(resolved.resolved_at.is_some());
    let kinds: Vec<&str> = resolved.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "resolved"]);
    assert!(resolved.timeline.iter().all(|e| e.actor == "system"));
    assert!(
        resolved.timeline[1].message.contains("recover"),
        "{}",
        resolved.timeline[1].message
    );

    // Firing again soon after resolving reopens the same record.
    set_orders_depth(textfiles.path(), 99.0);
    let reopened: Fault = fault_in_status(&collector, fault.id, FaultStatus::Open, 10 * SECOND).await;
    assert_eq!(reopened.count, 2);
    assert_eq!(
        reopened.timeline.last().map(|e| e.kind.as_str()),
        Some("reopened")
    );
    assert_eq!(faults_of(&collector, "queue_deep", "app-01").await.len(), 1);

    // Closed after the condition clears; firing again then opens a new record.
    set_orders_depth(textfiles.path(), 1.0);
    fault_in_status(&collector, fault.id, FaultStatus::Resolved, 10 * SECOND).await;
    let body = r#"{"by":"zhang","cause":"consumer stalled","handling":"restarted the consumer"}"#;
    let closed: Fault = post(&collector, &format!("/api/v1/faults/{}/close", fault.id), body).await;
    assert_eq!(closed.status, FaultStatus::Closed);
    assert_eq!(
        closed.response_met,
        Some(true),
        "resolved within the response time"
    );
    set_orders_depth(textfiles.path(), 99.0);
    let all = wait_for("a second fault", 10 * SECOND, || async {
        let f = faults_of(&collector, "queue_deep", "app-01").await;
        (f.len() == 2).then_some(f)
    })
    .await;
    assert_eq!(all[0].status, FaultStatus::Open);
    assert_eq!(all[1].id, fault.id);
    let open: Vec<Fault> = get(
        &collector,
        "/api/v1/faults?status=open&severity=urgent&host=app-01",
    )
    .await;
    assert_eq!(open.len(), 1);

    agent.stop().await;
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_raises_silence_and_faults_survive_a_restart() {
    let QueueHost {
        data,
        textfiles,
        collector,
        agent,
    } = queue_host("db-07", 95.0).await;
    let queue_fault = first_fault(&collector, "queue_deep", "db-07", 10 * SECOND).await;

    agent.kill();
    let silence = first_fault(&collector, "agent_gone", "db-07", 15 * SECOND).await;
    assert_eq!(silence.severity, Severity::General);
    assert_eq!(silence.status, FaultStatus::Open);
    assert!(silence.summary.contains("db-07"), "{}", silence.summary);
    let agents: Vec<Agent> = get(&collector, "/api/v1/agents").await;
    assert!(!agents[0].connected);

    // Restart the collector on the same data directory.
    collector.shutdown().await;
    let collector = start_collector(data.path(), QUEUE_RULE).await;
    let q: Fault = get(&collector, &format!("/api/v1/faults/{}", queue_fault.id)).await;
    assert_eq!(
        (q.status, q.rule.as_str(), q.summary.as_str()),
        (FaultStatus::Open, "queue_deep", queue_fault.summary.as_str())
    );
    assert_eq!(q.timeline.len(), queue_fault.timeline.len().max(1));
    let s: Fault = get(&collector, &format!("/api/v1/faults/{}", silence.id)).await;
    assert_eq!(s.status, FaultStatus::Open);
    let agents: Vec<Agent> = get(&collector, "/api/v1/agents").await;
    assert_eq!(agents.len(), 1, "the agent is remembered across the restart");
    assert_eq!(agents[0].hostname, "db-07");

    // The agent returns with the condition cleared: both faults resolve, and
    // the queue fault is the same record, not a new one.
    set_orders_depth(textfiles.path(), 5.0);
    let agent = start_agent(
        &collector,
        "db-07",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    wait_for("both faults to resolve", 15 * SECOND, || async {
        let q: Fault = get(&collector, &format!("/api/v1/faults/{}", queue_fault.id)).await;
        let s: Fault = get(&collector, &format!("/api/v1/faults/{}", silence.id)).await;
        (q.status == FaultStatus::Resolved && s.status == FaultStatus::Resolved).then_some(())
    })
    .await;
    assert_eq!(faults_of(&collector, "queue_deep", "db-07").await.len(), 1);
    let s: Fault = get(&collector, &format!("/api/v1/faults/{}", silence.id)).await;
    assert!(
        s.timeline
            .last()
            .is_some_and(|e| e.message.contains("connected again")),
        "{:?}",
        s.timeline
    );

    agent.stop().await;
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bad_requests_with_json_errors() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), "").await;
    for (path, status, needle) in [
        (
            "/api/v1/faults?severity=critical",
            400,
            "severity=\\\"critical\\\"",
        ),
        ("/api/v1/faults?status=gone", 400, "status"),
        ("/api/v1/faults?colour=red", 400, "colour"),
        ("/api/v1/faults?limit=0", 400, "limit"),
        ("/api/v1/faults/12345", 404, "no fault 12345"),
        ("/api/v1/faults/abc", 400, "not a number"),
        ("/api/v1/series", 400, "metric"),
        ("/api/v1/series?metric=9bad", 400, "metric name"),
        ("/api/v1/query?metric=m&since=yesterday", 400, "since"),
        ("/api/v1/query?metric=m&fstype=~(", 400, "regex"),
        ("/api/v1/nothing", 404, "no such endpoint"),
    ] {
        let (got, body) = get_raw(&collector, path).await;
        assert_eq!(got, status, "{path}: {body}");
        let e: api::ErrorBody = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(
            e.error.message.contains(needle.trim_matches('\\')) || body.contains(needle),
            "{path}: {body}"
        );
    }
    for (path, body, status, needle) in [
        ("/api/v1/faults/1/ack", "{}", 400, "by"),
        ("/api/v1/faults/1/ack", "not json", 400, "request body"),
        (
            "/api/v1/faults/1/ack",
            r#"{"by":"li","colour":"red"}"#,
            400,
            "colour",
        ),
        ("/api/v1/faults/1/resolve", r#"{"by":"li"}"#, 400, "comment"),
        (
            "/api/v1/faults/1/close",
            r#"{"by":"li","cause":"x"}"#,
            400,
            "handling",
        ),
        ("/api/v1/faults/1/explode", r#"{"by":"li"}"#, 404, "no action"),
        ("/api/v1/faults/77/ack", r#"{"by":"li"}"#, 404, "no fault 77"),
    ] {
        let (got, text) = post_raw(&collector, path, body).await;
        assert_eq!(got, status, "{path} {body}: {text}");
        assert!(text.contains(needle), "{path} {body}: {text}");
    }
    for (body, needle) in [
        (
            r#"{"by":"li","host":"h","ends_at":"2099-01-01T00:00:00Z","reason":"r"}"#,
            "ticket",
        ),
        (
            r#"{"by":"li","ends_at":"2099-01-01T00:00:00Z","reason":"r","ticket":"T"}"#,
            "silence everything",
        ),
        (
            r#"{"by":"li","host":"h","ends_at":"2000-01-01T00:00:00Z","reason":"r","ticket":"T"}"#,
            "past",
        ),
        (
            r#"{"by":"li","host":"h","ends_at":"tomorrow","reason":"r","ticket":"T"}"#,
            "ends_at",
        ),
    ] {
        let (got, text) = post_raw(&collector, "/api/v1/silences", body).await;
        assert_eq!(got, 400, "{body}: {text}");
        assert!(text.contains(needle), "{body}: {text}");
    }
    let (status, body) = get_raw(&collector, "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""));
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_reload_keeps_firing_faults_and_resolves_removed_rules() {
    let QueueHost {
        // Kept: the directories live as long as the test.
        data: _data,
        textfiles: _textfiles,
        collector,
        agent,
    } = queue_host("app-02", 95.0).await;
    let fault = first_fault(&collector, "queue_deep", "app-02", 10 * SECOND).await;

    // Same rule name, new threshold still exceeded: the same record stays open.
    let tightened =
        watchpost_collector::rules::RuleSet::parse(&QUEUE_RULE.replace("> 90", "> 92"), "reload.toml")
            .expect("valid");
    collector.reload_rules(tightened).await.expect("reload");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = faults_of(&collector, "queue_deep", "app-02").await;
    assert_eq!(all.len(), 1, "no second record after a reload");
    assert_eq!(all[0].status, FaultStatus::Open);

    // The rule removed: its fault resolves, saying why.
    let without = watchpost_collector::rules::RuleSet::parse("", "reload.toml").expect("valid");
    collector.reload_rules(without).await.expect("reload");
    let f: Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
    assert_eq!(f.status, FaultStatus::Resolved);
    assert!(
        f.timeline
            .last()
            .is_some_and(|e| e.message.contains("no longer selects")),
        "{:?}",
        f.timeline
    );

    agent.stop().await;
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_suppresses_and_its_end_unsuppresses() {
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), QUEUE_RULE).await;
    let ends = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let body = format!(
        r#"{{"by":"li","host":"app-03","rule":"queue_deep","ends_at":"{ends}","reason":"queue migration","ticket":"CHG-2026-118"}}"#
    );
    let w: api::MaintenanceWindow = post(&collector, "/api/v1/silences", &body).await;
    assert!(w.active);
    set_orders_depth(textfiles.path(), 95.0);
    let agent = start_agent(
        &collector,
        "app-03",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    let fault = first_fault(&collector, "queue_deep", "app-03", 10 * SECOND).await;
    assert_eq!(fault.status, FaultStatus::Suppressed);
    // The window ends while the queue is still deep: the fault is open now.
    let f: Fault = fault_in_status(&collector, fault.id, FaultStatus::Open, 20 * SECOND).await;
    assert!(
        f.timeline
            .iter()
            .any(|e| e.kind == "suppressed" && e.message.contains("CHG-2026-118")),
        "{:?}",
        f.timeline
    );
    assert_eq!(f.timeline.last().map(|e| e.kind.as_str()), Some("unsuppressed"));
    let listed: Vec<api::MaintenanceWindow> = get(&collector, "/api/v1/silences").await;
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].active);
    agent.stop().await;
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_collector_on_a_data_directory_in_use_is_refused_naming_the_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let first = start_collector(data.path(), "").await;
    let second = watchpost_collector::Collector::start(
        collector_config(data.path()),
        watchpost_collector::rules::RuleSet::default(),
    )
    .await;
    let e = second.err().expect("refused").to_string();
    assert!(
        e.contains(&data.path().display().to_string()) && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    assert!(e.contains("in use by another watchpost-collector"), "{e}");
    // Stopped, it lets the next one in.
    first.shutdown().await;
    let again = start_collector(data.path(), "").await;
    again.shutdown().await;
}

/// The users' "on non-working days, respond within 3 hours" as the
/// collector reads it: a cap that never loosens a deadline, on
/// non-working days by default, through `GET /api/v1/deadline`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_off_hours_response_is_a_cap_on_non_working_days() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = collector_config_from(
        data.path(),
        "[severity.urgent]\nrespond = \"1h\"\nresolve = \"4h\"\nrespond_off_hours = \"3h\"\n\
         [severity.general]\nrespond = \"4h\"\nresolve = \"1 workday\"\nrespond_off_hours = \"3h\"\n\
         [severity.minor]\nrespond = \"0.5 workday\"\nresolve = \"3 workdays\"\nrespond_off_hours = \"3h\"\noff_hours = \"outside_working_hours\"\n",
    );
    let collector =
        watchpost_collector::Collector::start(config, watchpost_collector::rules::RuleSet::default())
            .await
            .expect("collector starts");
    let ask = |severity: &'static str, at: &'static str| {
        let c = &collector;
        async move {
            let a: api::DeadlineAnswer =
                get(c, &format!("/api/v1/deadline?severity={severity}&opened_at={at}")).await;
            (a.response_due, a.respond)
        }
    };
    // Saturday 2026-11-21 10:00 +08:00, a non-working day.
    let (due, why) = ask("urgent", "2026-11-21T10:00:00%2B08:00").await;
    assert_eq!(due, "2026-11-21T03:00:00Z", "urgent keeps its 1 h: {why}");
    let (due, why) = ask("general", "2026-11-21T10:00:00%2B08:00").await;
    assert_eq!(due, "2026-11-21T05:00:00Z", "general capped at 3 h: {why}");
    assert!(
        why.starts_with("3h (capped: opened on a non-working day"),
        "{why}"
    );
    // Tuesday 2026-11-17 20:00 +08:00: a working day's evening keeps 4 h.
    let (due, why) = ask("general", "2026-11-17T20:00:00%2B08:00").await;
    assert_eq!(due, "2026-11-17T16:00:00Z", "{why}");
    // Minor's cap is scoped to outside working hours: that evening, 3 h
    // instead of half a working day (Wednesday 12:30).
    let (due, why) = ask("minor", "2026-11-17T20:00:00%2B08:00").await;
    assert_eq!(due, "2026-11-17T15:00:00Z", "{why}");
    collector.shutdown().await;
}
