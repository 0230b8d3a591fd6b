//! Notifications end to end: a real collector and agent on loopback, HTTP
//! receivers standing in for the webhook and the DingTalk, WeCom and Feishu
//! robots, and aiosmtpd (installed by `tests/peers/setup.sh`) for e-mail.
//! Signatures are recomputed here from each service's documented algorithm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use watchpost_collector::Collector;
use watchpost_collector::rules::RuleSet;
use watchpost_tests::api::{self, Fault, FaultStatus, Notification};
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

const QUEUE_RULE: &str = r#"
[[rule]]
name = "queue_deep"
metric = "app_queue_depth"
when = "> 90"
recover = "< 85"
severity = "general"
summary = "queue {queue} holds {value} messages"
"#;

const ROSTER: &str = r#"
[[team]]
name = "ops"
lead = "zhang"
managers = ["chen"]
members = [
  { name = "li", phone = "13800000001", email = "li@example.gov.cn", wecom = "LiWei", feishu = "ou_li" },
  { name = "zhang", phone = "13800000002", email = "zhang@example.gov.cn" },
  { name = "chen", phone = "13800000003", email = "chen@example.gov.cn" },
]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("key");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A collector with `rules` and `config` (collector TOML; the roster is
/// written next to it as `oncall.toml`), and an agent reading `textfiles`.
async fn start(
    data: &Path,
    textfiles: &Path,
    rules: &str,
    config: &str,
) -> (Collector, watchpost_agent::RunningAgent) {
    std::fs::write(data.join("oncall.toml"), ROSTER).expect("roster");
    let config = collector_config_from(data, &format!("[collector]\noncall = \"oncall.toml\"\n{config}"));
    let rules = RuleSet::parse(rules, "rules.toml").expect("rules");
    let collector = Collector::start(config, rules).await.expect("collector starts");
    let agent = start_agent(
        &collector,
        "web-1",
        Some(textfiles),
        false,
        Duration::from_millis(200),
    );
    (collector, agent)
}

fn set_queues(dir: &Path, depths: &[(&str, f64)]) {
    let text: String = depths
        .iter()
        .map(|(q, d)| format!("app_queue_depth{{queue=\"{q}\"}} {d}\n"))
        .collect();
    write_textfile(dir, "app.prom", &text);
}

async fn outbox(c: &Collector, query: &str) -> Vec<Notification> {
    get(c, &format!("/api/v1/notifications?{query}")).await
}

async fn wait_requests(r: &Receiver, n: usize, what: &str) -> Vec<Received> {
    wait_for(what, 20 * SECOND, || async {
        let got = r.requests();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn timeline_has(f: &Fault, kind: &str, text: &str) -> bool {
    f.timeline
        .iter()
        .any(|e| e.kind == kind && e.message.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_robots_get_each_services_format_and_signature() {
    let hook = Receiver::start("{}").await;
    let ding = Receiver::start(r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let wecom = Receiver::start(r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let feishu = Receiver::start(r#"{"code":0,"msg":"success"}"#).await;
    let config = format!(
        r#"
[notify]
link_base = "http://watchpost.test:9811"
group_window = "1s"
[[channel]]
name = "hook"
type = "webhook"
url = "{}"
secret = "hook-secret"
[[channel]]
name = "ding"
type = "dingtalk"
url = "{}"
secret = "SECding"
[[channel]]
name = "wecom"
type = "wecom"
url = "{}"
[[channel]]
name = "feishu"
type = "feishu"
url = "{}"
secret = "fs-secret"
[[route]]
team = "ops"
channels = ["hook", "ding", "wecom", "feishu"]
"#,
        hook.url("/hook"),
        ding.url("/robot/send?access_token=abc"),
        wecom.url("/cgi-bin/webhook/send?key=k1"),
        feishu.url("/open-apis/bot/v2/hook/xyz"),
    );
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set_queues(files.path(), &[("orders", 120.0)]);
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;
    let fault = first_fault(&collector, "queue_deep", "web-1", 15 * SECOND).await;
    let link = format!("http://watchpost.test:9811/faults/{}", fault.id);

    // Webhook: documented JSON, HMAC over "{timestamp}.{body}".
    let req = &wait_requests(&hook, 1, "the webhook").await[0];
    let ts = &req.headers["x-watchpost-timestamp"];
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&req.body);
    let want: String = hmac_sha256(b"hook-secret", &signed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(req.headers["x-watchpost-signature"], format!("sha256={want}"));
    let body = req.json();
    assert_eq!(
        req.headers["x-watchpost-delivery"],
        body["message_id"].as_str().expect("id")
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["recipient"]["name"], "li");
    assert_eq!(body["notifications"][0]["kind"], "opened");
    assert_eq!(body["notifications"][0]["fault"]["id"], fault.id);
    assert_eq!(body["notifications"][0]["fault"]["link"], link.as_str());
    let text = body["text"].as_str().expect("text");
    for part in [
        "主机：web-1",
        "queue orders holds 120 messages",
        "当前值：120",
        "响应时限：",
        "解决时限：",
        "发生时间：",
    ] {
        assert!(text.contains(part), "webhook text lacks {part:?}: {text}");
    }
    assert!(
        body["subject"].as_str().expect("subject").contains("新故障"),
        "{body}"
    );

    // DingTalk: sign = Base64(HMAC-SHA256(secret, "{timestamp}\n{secret}")) in the query.
    let req = &wait_requests(&ding, 1, "the DingTalk robot").await[0];
    assert_eq!(req.query("access_token").as_deref(), Some("abc"));
    let ts = req.query("timestamp").expect("timestamp");
    assert_eq!(
        req.query("sign").expect("sign"),
        b64(&hmac_sha256(b"SECding", format!("{ts}\nSECding").as_bytes()))
    );
    let body = req.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["at"]["atMobiles"], serde_json::json!(["13800000001"]));
    let md = body["markdown"]["text"].as_str().expect("markdown");
    assert!(
        md.contains("queue orders holds 120 messages") && md.contains("@13800000001") && md.contains(&link),
        "{md}"
    );

    // WeCom: text message mentioning the WeCom user id; no signature.
    let body = wait_requests(&wecom, 1, "the WeCom robot").await[0].json();
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["text"]["mentioned_list"], serde_json::json!(["LiWei"]));
    assert!(
        body["text"]["content"]
            .as_str()
            .expect("content")
            .contains("web-1"),
        "{body}"
    );

    // Feishu: sign = Base64(HMAC-SHA256 keyed by "{timestamp}\n{secret}" over nothing).
    let body = wait_requests(&feishu, 1, "the Feishu robot").await[0].json();
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert_eq!(
        body["sign"].as_str().expect("sign"),
        b64(&hmac_sha256(format!("{ts}\nfs-secret").as_bytes(), b""))
    );
    assert_eq!(body["msg_type"], "text");
    assert!(
        body["content"]["text"]
            .as_str()
            .expect("text")
            .contains(r#"<at user_id="ou_li">li</at>"#),
        "{body}"
    );

    // Each delivery is on the timeline; recovery reaches everyone who was told.
    let f: Fault = wait_for("four deliveries on the timeline", 10 * SECOND, || async {
        let f: Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
        (f.timeline.iter().filter(|e| e.kind == "notified").count() == 4).then_some(f)
    })
    .await;
    for ch in ["hook", "ding", "wecom", "feishu"] {
        assert!(
            timeline_has(&f, "notified", &format!("notified li by {ch} (opened")),
            "{:?}",
            f.timeline
        );
    }
    set_queues(files.path(), &[("orders", 10.0)]);
    let recovered = &wait_requests(&hook, 2, "the recovery notice").await[1];
    assert_eq!(recovered.json()["notifications"][0]["kind"], "resolved");
    wait_requests(&ding, 2, "DingTalk's recovery notice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_escalates_until_acknowledged() {
    let smtp = SmtpSink::start(Some(("watchpost", "s3cret")), true);
    let config = format!(
        r#"
[notify]
language = "en"
[[channel]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{}"
tls = "starttls"
username = "watchpost"
password = "s3cret"
from = "Watchpost <watchpost@example.gov.cn>"
ca_file = "{}"
[[route]]
team = "ops"
channels = ["mail"]
escalate = [ {{ after = "0s", to = "on_call" }}, {{ after = "2s", to = "lead" }}, {{ after = "8s", to = "managers" }} ]
"#,
        smtp.port,
        smtp.ca_file.display()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set_queues(files.path(), &[("orders", 120.0)]);
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;
    let fault = first_fault(&collector, "queue_deep", "web-1", 15 * SECOND).await;

    let mails = wait_for(
        "mail to the on-call person and then the lead",
        20 * SECOND,
        || async {
            let m = smtp.mails();
            (m.len() >= 2).then_some(m)
        },
    )
    .await;
    let first = &mails[0];
    assert_eq!(first["rcpt_to"], serde_json::json!(["li@example.gov.cn"]));
    assert_eq!(first["login"], "watchpost");
    assert_eq!(first["tls"], true, "STARTTLS was used");
    let subject = first["subject"].as_str().expect("subject");
    assert!(
        subject.starts_with("[Watchpost] New fault: general web-1"),
        "{subject}"
    );
    let body = first["body"].as_str().expect("body");
    for part in [
        "Host: web-1",
        "Value: 120",
        "Respond by:",
        "Resolve by:",
        "Opened:",
        &format!("/faults/{}", fault.id),
    ] {
        assert!(body.contains(part), "mail body lacks {part:?}: {body}");
    }
    assert!(
        first["message_id"].as_str().expect("id").starts_with("<wp-"),
        "{first}"
    );
    let second = &mails[1];
    assert_eq!(second["rcpt_to"], serde_json::json!(["zhang@example.gov.cn"]));
    assert!(
        second["subject"].as_str().expect("subject").contains("Escalated"),
        "{second}"
    );

    // The lead acknowledges: the managers' step is cancelled, not sent.
    let _: Fault = post(
        &collector,
        &format!("/api/v1/faults/{}/ack", fault.id),
        r#"{"by": "zhang", "comment": "on it"}"#,
    )
    .await;
    let rows = outbox(&collector, &format!("fault={}", fault.id)).await;
    let chen: Vec<&Notification> = rows.iter().filter(|n| n.recipient == "chen").collect();
    assert_eq!(chen.len(), 1, "{rows:?}");
    assert_eq!(chen[0].status, "cancelled", "{rows:?}");
    assert!(
        chen[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("acknowledged by zhang")
    );
    let f: Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
    assert!(
        timeline_has(&f, "notify_cancelled", "escalation stopped"),
        "{:?}",
        f.timeline
    );
    assert!(
        timeline_has(&f, "notified", "notified zhang by mail (escalated"),
        "{:?}",
        f.timeline
    );
    assert_eq!(f.response_met, Some(true));
    assert!(
        smtp.mails()
            .iter()
            .all(|m| m["rcpt_to"][0] != "chen@example.gov.cn")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_grouped_per_recipient_and_rate_limited() {
    let hook = Receiver::start("{}").await;
    let config = format!(
        r#"
[notify]
group_window = "3s"
[[channel]]
name = "hook"
type = "webhook"
url = "{}"
rate_limit = "2/5s"
[[route]]
team = "ops"
channels = ["hook"]
escalate = [ {{ after = "0s", to = "team" }} ]
"#,
        hook.url("/hook")
    );
    let queues: Vec<String> = (0..12).map(|i| format!("q{i:02}")).collect();
    let deep: Vec<(&str, f64)> = queues.iter().map(|q| (q.as_str(), 200.0)).collect();
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set_queues(files.path(), &deep);
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;

    // 12 faults × 3 people = 36 notifications, all delivered.
    wait_for("36 delivered notifications", 40 * SECOND, || async {
        let rows = outbox(&collector, "status=delivered").await;
        (rows.len() == 36).then_some(())
    })
    .await;
    let requests = hook.requests();
    let mut per_person: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &requests {
        let b = r.json();
        let who = b["recipient"]["name"].as_str().expect("name").to_string();
        for n in b["notifications"].as_array().expect("list") {
            per_person
                .entry(who.clone())
                .or_default()
                .push(n["fault"]["id"].as_i64().expect("id"));
        }
    }
    assert_eq!(per_person.len(), 3, "{per_person:?}");
    for (who, ids) in &per_person {
        let unique: BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(
            (ids.len(), unique.len()),
            (12, 12),
            "{who} hears of each fault once: {ids:?}"
        );
    }
    assert!(
        requests.len() <= 6,
        "36 notifications went out in {} messages; a storm should give at most two per person",
        requests.len()
    );
    assert!(
        requests.iter().any(|r| r.json()["held"].is_object()),
        "with 2 messages per 5 s for 3 people, one message was held by the rate limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_behind_an_unreachable_parent_are_suppressed_and_linked() {
    let hook = Receiver::start("{}").await;
    let config = format!(
        r#"
[notify]
parent_wait = "1s"
group_window = "1s"
[parents]
"web-a" = "sw-1"
"web-b" = "sw-1"
[[channel]]
name = "hook"
type = "webhook"
url = "{}"
[[route]]
team = "ops"
channels = ["hook"]
"#,
        hook.url("/hook")
    );
    let rules = r#"
[[rule]]
name = "device_down"
metric = "probe_up"
when = "< 1"
severity = "general"
unreachable = true
summary = "{device} does not answer"
"#;
    let set = |dir: &Path, sw: u8, a: u8, b: u8| {
        write_textfile(
            dir,
            "probe.prom",
            &format!(
                "probe_up{{device=\"web-a\"}} {a}\nprobe_up{{device=\"web-b\"}} {b}\nprobe_up{{device=\"sw-1\"}} {sw}\n"
            ),
        )
    };
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set(files.path(), 0, 0, 0);
    let (collector, _agent) = start(data.path(), files.path(), rules, &config).await;

    let by_device = |faults: &[Fault], d: &str| {
        faults
            .iter()
            .find(|f| f.labels.get("device").map(String::as_str) == Some(d))
            .cloned()
    };
    let (sw, a, b) = wait_for(
        "three device faults, children suppressed",
        15 * SECOND,
        || async {
            let all = faults_of(&collector, "device_down", "web-1").await;
            let (sw, a, b) = (
                by_device(&all, "sw-1")?,
                by_device(&all, "web-a")?,
                by_device(&all, "web-b")?,
            );
            (a.status == FaultStatus::Suppressed && b.status == FaultStatus::Suppressed).then_some((sw, a, b))
        },
    )
    .await;
    assert_eq!(sw.status, FaultStatus::Open);
    assert_eq!((a.parent_fault, b.parent_fault), (Some(sw.id), Some(sw.id)));
    let a_full: Fault = get(&collector, &format!("/api/v1/faults/{}", a.id)).await;
    assert!(
        timeline_has(
            &a_full,
            "suppressed",
            &format!("sw-1 is unreachable (fault #{})", sw.id)
        ),
        "{:?}",
        a_full.timeline
    );

    // Only the parent is notified.
    let first = wait_requests(&hook, 1, "the parent's notification").await;
    assert_eq!(first[0].json()["notifications"][0]["fault"]["id"], sw.id);

    // The switch and web-b come back; web-a still does not answer: it is
    // released and notified; web-b never is.
    set(files.path(), 1, 0, 1);
    let a_open = fault_in_status(&collector, a.id, FaultStatus::Open, 15 * SECOND).await;
    assert!(
        timeline_has(&a_open, "unsuppressed", &format!("fault #{} resolved", sw.id)),
        "{:?}",
        a_open.timeline
    );
    wait_for("web-a's notification", 15 * SECOND, || async {
        hook.requests()
            .iter()
            .any(|r| {
                r.json()["notifications"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|n| n["fault"]["id"] == a.id && n["kind"] == "unsuppressed")
                })
            })
            .then_some(())
    })
    .await;
    fault_in_status(&collector, b.id, FaultStatus::Resolved, 15 * SECOND).await;
    let b_rows = outbox(&collector, &format!("fault={}", b.id)).await;
    assert!(
        b_rows.iter().all(|n| n.status != "delivered"),
        "web-b was never notified: {b_rows:?}"
    );
    let bodies: Vec<Value> = hook.requests().iter().map(Received::json).collect();
    assert!(
        bodies.iter().all(|m| m["notifications"]
            .as_array()
            .is_some_and(|l| l.iter().all(|n| n["fault"]["id"] != b.id))),
        "{bodies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_inside_a_maintenance_window_is_notified_when_the_window_ends() {
    let hook = Receiver::start("{}").await;
    let config = format!(
        "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n[[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\n",
        hook.url("/hook")
    );
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;
    let ends = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let _: api::MaintenanceWindow = post(
        &collector,
        "/api/v1/silences",
        &format!(
            r#"{{"by": "li", "rule": "queue_deep", "ends_at": "{ends}", "reason": "queue migration", "ticket": "CHG-42"}}"#
        ),
    )
    .await;
    set_queues(files.path(), &[("orders", 150.0)]);
    let fault = first_fault(&collector, "queue_deep", "web-1", 15 * SECOND).await;
    assert_eq!(fault.status, FaultStatus::Suppressed);
    let rows = outbox(&collector, &format!("fault={}", fault.id)).await;
    assert!(
        rows.is_empty(),
        "nothing is queued while the window lasts: {rows:?}"
    );

    let open = fault_in_status(&collector, fault.id, FaultStatus::Open, 15 * SECOND).await;
    assert!(
        timeline_has(&open, "unsuppressed", "CHG-42"),
        "{:?}",
        open.timeline
    );
    let req = &wait_requests(&hook, 1, "the notification after the window").await[0];
    assert_eq!(req.json()["notifications"][0]["kind"], "unsuppressed");
    assert!(
        req.json()["subject"]
            .as_str()
            .unwrap_or("")
            .contains("维护结束仍未恢复")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_whose_channel_was_removed_is_recorded_as_failing() {
    let hook = Receiver::start("{}").await;
    hook.answer(503, "down");
    let channel = |name: &str| {
        format!(
            "[notify]\nretry_first = \"200ms\"\nretry_max = \"500ms\"\n[[channel]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"{}\"\n\
             [[route]]\nteam = \"ops\"\nchannels = [\"{name}\"]\n",
            hook.url("/hook")
        )
    };
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set_queues(files.path(), &[("orders", 120.0)]);
    let (collector, agent) = start(data.path(), files.path(), QUEUE_RULE, &channel("old-hook")).await;
    let fault = first_fault(&collector, "queue_deep", "web-1", 15 * SECOND).await;
    wait_for("a failed attempt on the old channel", 15 * SECOND, || async {
        let rows = outbox(&collector, "status=pending").await;
        rows.iter().any(|n| n.attempts >= 1).then_some(())
    })
    .await;
    agent.stop().await;
    collector.shutdown().await;

    // The channel is renamed in the config: the old row is not kept silently.
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &channel("new-hook")).await;
    wait_for("the old row failing with a reason", 15 * SECOND, || async {
        let rows = outbox(&collector, &format!("fault={}", fault.id)).await;
        rows.iter()
            .any(|n| {
                n.channel == "old-hook"
                    && n.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("no longer configured"))
            })
            .then_some(())
    })
    .await;
    let f: Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
    assert!(
        timeline_has(&f, "notify_failed", "\"old-hook\" is no longer configured"),
        "{:?}",
        f.timeline
    );
}

/// A channel that keeps failing opens the built-in
/// `notification_channel_failing` fault once it has failed for
/// `notify.channel_failing_after`, told on the other channels only, and
/// resolved when the channel delivers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_is_a_fault_told_on_the_other_channels() {
    let bad = Receiver::start("{}").await;
    bad.answer(503, "down");
    let good = Receiver::start("{}").await;
    let config = format!(
        "[notify]\ngroup_window = \"1s\"\nretry_first = \"200ms\"\nretry_max = \"500ms\"\nchannel_failing_after = \"2s\"\n\
         [[channel]]\nname = \"bad\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[channel]]\nname = \"good\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[route]]\nteam = \"ops\"\nchannels = [\"bad\", \"good\"]\n",
        bad.url("/hook"),
        good.url("/hook")
    );
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    set_queues(files.path(), &[("orders", 120.0)]);
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;
    first_fault(&collector, "queue_deep", "web-1", 15 * SECOND).await;
    let failing = wait_for("notification_channel_failing to open", 20 * SECOND, || async {
        let f: Vec<Fault> = get(&collector, "/api/v1/faults?rule=notification_channel_failing").await;
        f.into_iter().next()
    })
    .await;
    assert_eq!(failing.labels.get("channel").map(String::as_str), Some("bad"));
    assert!(
        failing
            .summary
            .starts_with("notification channel bad has failed since")
            && failing.summary.contains("503"),
        "{}",
        failing.summary
    );
    wait_for("the good channel to carry it", 15 * SECOND, || async {
        good.requests()
            .iter()
            .any(|r| r.json()["notifications"][0]["fault"]["id"] == failing.id)
            .then_some(())
    })
    .await;
    let rows = outbox(&collector, &format!("fault={}", failing.id)).await;
    assert!(!rows.is_empty(), "notified");
    assert!(
        rows.iter().all(|n| n.channel == "good"),
        "never queued on the failing channel itself: {rows:?}"
    );

    // The channel delivers again: the fault resolves.
    bad.answer(200, "{}");
    fault_in_status(&collector, failing.id, FaultStatus::Resolved, 20 * SECOND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_goes_through_its_route_to_mail_and_webhook_marked_and_reports_how_it_went() {
    let smtp = SmtpSink::start(None, false);
    let hook = Receiver::start("{}").await;
    let other = Receiver::start("{}").await;
    let config = format!(
        r#"
[notify]
group_window = "0s"
[[channel]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{}"
tls = "none"
from = "watchpost@example.gov.cn"
[[channel]]
name = "hook"
type = "webhook"
url = "{}"
[[channel]]
name = "other"
type = "webhook"
url = "{}"
[[route]]
team = "ops"
channels = ["other"]
[[route]]
name = "machine-room"
team = "ops"
severity = ["urgent"]
channels = ["mail", "hook"]
escalate = [ {{ after = "0s", to = "on_call" }}, {{ after = "1s", to = "lead" }} ]
"#,
        smtp.port,
        hook.url("/hook"),
        other.url("/other"),
    );
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let (collector, _agent) = start(data.path(), files.path(), QUEUE_RULE, &config).await;

    // A route that does not exist, or a severity the route does not take, is refused.
    let (status, text) = post_raw(&collector, "/api/v1/drills", r#"{"by": "wang", "route": "nope"}"#).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("machine-room"),
        "names the routes there are: {text}"
    );
    let (status, text) = post_raw(
        &collector,
        "/api/v1/drills",
        r#"{"by": "wang", "route": "machine-room", "severity": "minor"}"#,
    )
    .await;
    assert_eq!(status, 400, "{text}");

    let drill: Fault = post(
        &collector,
        "/api/v1/drills",
        r#"{"by": "wang", "route": "machine-room", "summary": "UPS 断电演练"}"#,
    )
    .await;
    assert_eq!(drill.source, api::FaultSource::Drill);
    assert_eq!(
        drill.severity,
        watchpost_model::Severity::Urgent,
        "the route's first severity"
    );
    let mails = wait_for("the drill by mail", 20 * SECOND, || async {
        let m = smtp.mails();
        (!m.is_empty()).then_some(m)
    })
    .await;
    let subject = mails[0]["subject"].as_str().expect("subject");
    assert!(subject.starts_with("【演练】"), "{subject}");
    assert!(
        mails[0]["body"].as_str().expect("body").contains("【演练】"),
        "{}",
        mails[0]
    );
    let got = wait_requests(&hook, 1, "the drill by webhook").await;
    let text = String::from_utf8_lossy(&got[0].body).into_owned();
    assert!(text.contains("【演练】"), "{text}");
    // The lead's step runs, then zhang acknowledges.
    wait_for("the escalation step", 20 * SECOND, || async {
        let rows = outbox(&collector, &format!("fault={}", drill.id)).await;
        rows.iter()
            .any(|n| n.step == 1 && n.status == "delivered")
            .then_some(())
    })
    .await;
    let _: Fault = post(
        &collector,
        &format!("/api/v1/faults/{}/ack", drill.id),
        r#"{"by": "zhang"}"#,
    )
    .await;
    let report: api::DrillReport = get(&collector, &format!("/api/v1/drills/{}", drill.id)).await;
    assert_eq!(report.started_by, "wang");
    assert_eq!(report.route.as_deref(), Some("machine-room"));
    assert_eq!(report.acknowledged_by.as_deref(), Some("zhang"));
    assert!(report.acknowledged_after_s.expect("acknowledged") >= 0.0);
    assert!(report.first_delivery_after_s.is_some());
    assert_eq!(report.steps_run, vec![0, 1]);
    assert!(report.delivered >= 3, "{report:?}");
    assert_eq!(report.failed, 0);
    let channels: BTreeSet<&str> = report.notifications.iter().map(|n| n.channel.as_str()).collect();
    assert_eq!(
        channels,
        BTreeSet::from(["hook", "mail"]),
        "only the named route's channels"
    );
    assert!(other.requests().is_empty(), "the first route was not used");
    // Listed as a drill, and not as a rule's or a reported fault.
    let drills: Vec<Fault> = get(&collector, "/api/v1/drills").await;
    assert_eq!(drills.iter().map(|f| f.id).collect::<Vec<_>>(), vec![drill.id]);
    let (status, _) = get_raw(&collector, "/api/v1/drills/999").await;
    assert_eq!(status, 404);
}
