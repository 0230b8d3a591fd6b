//! Fault handling as the users' rules read it, through watchpostctl
//! against a real collector: faults people report (and their reporters
//! told by a real SMTP peer), change requests with approval, flapping.

use std::time::Duration;

use watchpost_tests::process::Ctl;
use watchpost_tests::*;

fn ctl(collector: &watchpost_collector::Collector) -> Ctl {
    Ctl::new(
        env!("CARGO_BIN_EXE_watchpostctl"),
        &format!("http://{}", collector.http_addr()),
    )
}

const ROSTER: &str = r#"
[[team]]
name = "dc"
lead = "zhang"
members = [ { name = "li", email = "li@example.gov.cn" }, { name = "zhang", email = "zhang@example.gov.cn" } ]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

/// A phone call becomes a fault record: entered with watchpostctl, routed
/// to the on-call person, resolved and closed; the reporter gets an e-mail
/// at each (through the real SMTP peer) and their satisfaction is recorded
/// once. Bad reports and feedback are refused, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_fault_reaches_a_closed_record_and_its_reporter_hears_of_it() {
    let smtp = SmtpSink::start(None, false);
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("oncall.toml"), ROSTER).expect("roster");
    let config = collector_config_from(
        data.path(),
        &format!(
            r#"
[collector]
oncall = "oncall.toml"
[notify]
group_window = "0s"
[[channel]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{}"
tls = "none"
from = "watchpost@example.gov.cn"
[[route]]
team = "dc"
channels = ["mail"]
"#,
            smtp.port
        ),
    );
    let collector =
        watchpost_collector::Collector::start(config, watchpost_collector::rules::RuleSet::default())
            .await
            .expect("collector");
    let ctl = ctl(&collector);

    let (ok, out, err) = ctl
        .run(&[
            "--by",
            "li",
            "faults",
            "report",
            "--severity",
            "一般",
            "--host",
            "web-3",
            "--summary",
            "社保查询页面打不开",
            "--reporter",
            "王五（社保中心）, wangwu@example.gov.cn",
            "--labels",
            "system=社保",
            "--opened-at",
            "20m",
        ])
        .await;
    assert!(ok, "{out}{err}");
    let id = out.trim().to_string();
    assert!(id.parse::<i64>().is_ok(), "prints the id: {out:?}");
    assert!(err.contains("respond by"), "{err}");

    // Same deadlines as a rule's fault of that severity, counted from the call.
    let f: api::Fault = get(&collector, &format!("/api/v1/faults/{id}")).await;
    assert_eq!(f.source, api::FaultSource::Reported);
    assert_eq!(f.severity, watchpost_model::Severity::General);
    let report = f.report.clone().expect("a report");
    assert_eq!(report.entered_by, "li");
    assert_eq!(
        report.reporter.as_ref().and_then(|r| r.email.as_deref()),
        Some("wangwu@example.gov.cn")
    );
    let opened: jiff::Timestamp = f.opened_at.parse().expect("time");
    let entered: jiff::Timestamp = report.entered_at.parse().expect("time");
    let early = entered.duration_since(opened).as_secs();
    assert!(
        (1190..=1210).contains(&early),
        "opened 20 min before it was entered: {early}s"
    );
    let d: api::DeadlineAnswer = get(
        &collector,
        &format!("/api/v1/deadline?severity=general&opened_at={}", f.opened_at),
    )
    .await;
    assert_eq!(
        (f.response_due.as_str(), f.resolve_due.as_str()),
        (d.response_due.as_str(), d.resolve_due.as_str())
    );

    // Routed like any fault: the on-call person hears of it.
    let mails = wait_for("mail to on-call li", Duration::from_secs(15), || async {
        let m = smtp.mails();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(mails[0]["rcpt_to"][0], "li@example.gov.cn");
    assert!(
        mails[0]["body"]
            .as_str()
            .unwrap_or("")
            .contains("社保查询页面打不开")
    );

    // Listed by source, and not under the rules'.
    let (ok, out, _) = ctl.run(&["faults", "--source", "reported"]).await;
    assert!(
        ok && out.contains("社保查询页面打不开") && out.contains("reported"),
        "{out}"
    );
    let (ok, out, _) = ctl.run(&["faults", "--source", "rule"]).await;
    assert!(ok && !out.contains("社保查询页面打不开"), "{out}");

    // Feedback before it is closed is refused.
    let (ok, _, err) = ctl
        .run(&["--by", "li", "faults", "feedback", &id, "--satisfaction", "5"])
        .await;
    assert!(
        !ok && err.contains("feedback is recorded once it is closed"),
        "{err}"
    );

    for args in [
        vec!["faults", "ack", &id, "--comment", "called back, looking"],
        vec!["faults", "resolve", &id, "--comment", "restarted the app pool"],
        vec![
            "faults",
            "close",
            &id,
            "--cause",
            "应用池内存耗尽",
            "--handling",
            "重启应用池并调高内存上限",
        ],
    ] {
        let mut full = vec!["--by", "li"];
        full.extend(args);
        let (ok, out, err) = ctl.run(&full).await;
        assert!(ok, "{full:?}: {out}{err}");
    }

    // The reporter hears twice: handled, then closed with cause and handling.
    let to_reporter = wait_for("two mails to the reporter", Duration::from_secs(15), || async {
        let m: Vec<serde_json::Value> = smtp
            .mails()
            .into_iter()
            .filter(|m| m["rcpt_to"][0] == "wangwu@example.gov.cn")
            .collect();
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert!(
        to_reporter[0]["subject"]
            .as_str()
            .unwrap_or("")
            .contains("您报告的故障已处理"),
        "{}",
        to_reporter[0]
    );
    let closing = to_reporter[1]["body"].as_str().unwrap_or("");
    for want in [
        "王五（社保中心）",
        "已办结",
        "原因：应用池内存耗尽",
        "处理：重启应用池并调高内存上限",
    ] {
        assert!(closing.contains(want), "missing {want:?} in {closing}");
    }
    assert!(
        !closing.contains("/api/v1/"),
        "no internal link for a reporter: {closing}"
    );

    // Feedback: out of range refused; recorded once; later feedback is a note.
    let (ok, _, err) = ctl
        .run(&["--by", "li", "faults", "feedback", &id, "--satisfaction", "6"])
        .await;
    assert!(!ok && err.contains("satisfaction 6: expected 1"), "{err}");
    let (ok, _, err) = ctl
        .run(&[
            "--by",
            "li",
            "faults",
            "feedback",
            &id,
            "--satisfaction",
            "4",
            "--comment",
            "处理及时",
        ])
        .await;
    assert!(ok, "{err}");
    let (ok, _, err) = ctl
        .run(&["--by", "li", "faults", "feedback", &id, "--satisfaction", "2"])
        .await;
    assert!(ok, "{err}");
    let (ok, out, err) = ctl.run(&["faults", "show", &id]).await;
    assert!(ok, "{err}");
    for want in [
        "source        reported",
        "reporter      王五（社保中心） (wangwu@example.gov.cn)",
        "entered",
        "satisfaction  4/5 \"处理及时\"",
        "reported by 王五（社保中心） (wangwu@example.gov.cn) at severity general",
        "notifications queued (reporter_resolved): now the reporter",
        "notified 王五（社保中心） by mail (reporter_closed",
        "later feedback, satisfaction 2/5 (the recorded satisfaction stays 4/5)",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }

    // Bad reports change nothing and say what is wrong.
    let before: Vec<api::Fault> = get(&collector, "/api/v1/faults").await;
    for (args, want) in [
        (
            vec!["--severity", "严重", "--host", "h", "--summary", "s"],
            "unknown severity \"严重\"",
        ),
        (
            vec!["--severity", "minor", "--host", "h", "--summary", " "],
            "needs a non-empty \"summary\"",
        ),
        (
            vec![
                "--severity",
                "minor",
                "--host",
                "h",
                "--summary",
                "s",
                "--opened-at",
                "2099-01-01T00:00:00Z",
            ],
            "is in the future",
        ),
        (
            vec![
                "--severity",
                "minor",
                "--host",
                "h",
                "--summary",
                "s",
                "--reporter",
                "王五, 301室",
            ],
            "neither a phone number nor an e-mail address",
        ),
    ] {
        let mut full = vec!["--by", "li", "faults", "report"];
        full.extend(args);
        let (ok, _, err) = ctl.run(&full).await;
        assert!(!ok && err.contains(want), "{full:?}: {err}");
    }
    let after: Vec<api::Fault> = get(&collector, "/api/v1/faults").await;
    assert_eq!(before.len(), after.len(), "nothing was recorded");

    // A time typed as people read clocks: in the calendar's zone.
    let (status, body) = post_raw(
        &collector,
        "/api/v1/faults",
        r#"{"by":"li","severity":"minor","host":"h","summary":"s","opened_at":"2026-01-01 09:00"}"#,
    )
    .await;
    assert_eq!(status, 201, "a civil time in the calendar's zone: {body}");
    let f: api::Fault = serde_json::from_str(&body).expect("fault");
    assert_eq!(f.opened_at, "2026-01-01T01:00:00Z", "09:00 in Asia/Shanghai");
}
