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
    let handled = to_reporter[0]["body"].as_str().unwrap_or("");
    assert!(
        handled.contains("已处理") && !handled.contains("原因"),
        "no cause before it is closed: {handled}"
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
    // watchpostctl shows times as people read clocks there; --utc and --json for scripts.
    let id = f.id.to_string();
    let (ok, out, err) = ctl.run(&["faults", "show", &id]).await;
    assert!(
        ok && out.contains("opened        2026-01-01 09:00 +08:00"),
        "{out}{err}"
    );
    let (ok, out, err) = ctl.run(&["--utc", "faults", "show", &id]).await;
    assert!(
        ok && out.contains("opened        2026-01-01T01:00:00Z"),
        "{out}{err}"
    );
    let (ok, out, _) = ctl.run(&["faults", "--source", "reported"]).await;
    assert!(ok && out.contains("2026-01-01 09:00 +08:00"), "{out}");
    let (ok, out, _) = ctl.run(&["--json", "faults", "show", &id]).await;
    assert!(
        ok && out.contains("\"opened_at\": \"2026-01-01T01:00:00Z\""),
        "{out}"
    );
}

/// A collector config routing every fault to team dc's on-call by the
/// webhook `hook`, with more `[collector]` keys and more sections.
fn routed_to_hook(hook: &Receiver, collector_keys: &str, sections: &str) -> String {
    format!(
        "[collector]\noncall = \"oncall.toml\"\n{collector_keys}{sections}\
         [notify]\ngroup_window = \"0s\"\n\
         [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[route]]\nteam = \"dc\"\nchannels = [\"hook\"]\n",
        hook.url("/hook")
    )
}

/// The newest fault of `host` once it is in `status` (through watchpostctl).
async fn fault_of(ctl: &Ctl, host: &str, status: api::FaultStatus) -> api::Fault {
    wait_for(
        &format!("a fault of {host} {}", status.as_str()),
        Duration::from_secs(15),
        || async {
            let (ok, out, _) = ctl.run(&["--json", "faults", "--host", host]).await;
            let faults: Vec<api::Fault> = if ok {
                serde_json::from_str(&out).unwrap_or_default()
            } else {
                Vec::new()
            };
            faults.into_iter().next().filter(|f| f.status == status)
        },
    )
    .await
}

/// A user with `role` and a token for them.
async fn token_of(collector: &watchpost_collector::Collector, name: &str, role: api::Role) -> String {
    let access = &collector.core().access;
    access.add_user(name, role, None, 1).await.expect("user");
    access
        .create_token(name, "test", None, 1)
        .await
        .expect("token")
        .token
}

/// A change goes through approval as the users' rules demand: requested by
/// an operator, refused approval by that same operator and by a viewer
/// (403), approved by an approver, which creates its window; a rule's
/// fault inside it is recorded, suppressed and linked to the change; the
/// change is finished as rolled back, which ends the window, and the fault
/// still firing is released and notified; the change lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_approved_by_someone_else_suppresses_its_faults_and_is_rolled_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start("{}").await;
    std::fs::write(data.path().join("oncall.toml"), ROSTER).expect("roster");
    let config = collector_config_from(
        data.path(),
        &routed_to_hook(
            &hook,
            "",
            "[security]\nagents = \"open\"\napi = \"users\"\n[changes]\nmax_window = \"2d\"\n",
        ),
    );
    write_textfile(textfiles.path(), "t.prom", "app_errors{app=\"pay\"} 9\n");
    let rules = watchpost_collector::rules::RuleSet::parse(
        "[[rule]]\nname = \"app_errors\"\nmetric = \"app_errors\"\nwhen = \"> 5\"\nseverity = \"general\"\nsummary = \"{app} errors {value}\"\n",
        "rules.toml",
    )
    .expect("rules");
    let collector = watchpost_collector::Collector::start(config, rules)
        .await
        .expect("collector");
    let base = ctl(&collector);
    let li = base.with_env(&[(
        "WATCHPOST_TOKEN",
        &token_of(&collector, "li", api::Role::Operator).await,
    )]);
    let chen = base.with_env(&[(
        "WATCHPOST_TOKEN",
        &token_of(&collector, "chen", api::Role::Approver).await,
    )]);
    let zhao = base.with_env(&[(
        "WATCHPOST_TOKEN",
        &token_of(&collector, "zhao", api::Role::Viewer).await,
    )]);

    let now = jiff::Timestamp::now();
    let start = now.to_string();
    let end = (now + jiff::SignedDuration::from_hours(2)).to_string();
    let request = |title: &'static str, start: String, end: String| {
        vec![
            "changes".to_string(),
            "request".into(),
            "--title".into(),
            title.into(),
            "--content".into(),
            "升级支付应用到 2.4".into(),
            "--reason".into(),
            "修复对账错误".into(),
            "--impact".into(),
            "支付服务中断约 10 分钟".into(),
            "--test-plan".into(),
            "预发环境回归通过".into(),
            "--rollback-plan".into(),
            "回退到 2.3 镜像".into(),
            "--start".into(),
            start,
            "--end".into(),
            end,
            "--host".into(),
            "app-1".into(),
            "--rule".into(),
            "app_errors".into(),
        ]
    };
    let args = request("升级支付应用", start.clone(), end.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // A viewer may not request; bad windows are refused and change nothing.
    let (ok, _, err) = zhao.run(&args).await;
    assert!(!ok && err.contains("403") && err.contains("operator"), "{err}");
    let backwards = request("backwards", end.clone(), start.clone());
    let (ok, _, err) = li
        .run(&backwards.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert!(!ok && err.contains("is not after starts_at"), "{err}");
    let long = request(
        "long",
        start.clone(),
        (now + jiff::SignedDuration::from_hours(72)).to_string(),
    );
    let (ok, _, err) = li.run(&long.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(
        !ok && err.contains("longer than changes.max_window (2d)"),
        "{err}"
    );
    let changes: Vec<watchpost_model::changes::Change> = {
        let (ok, out, err) = li.run(&["--json", "changes", "list"]).await;
        assert!(ok, "{err}");
        serde_json::from_str(&out).expect("json")
    };
    assert!(changes.is_empty(), "nothing recorded: {changes:?}");

    let (ok, out, err) = li.run(&args).await;
    assert!(ok, "{err}");
    let id = out.trim().to_string();
    let (ok, _, err) = li.run(&["changes", "approve", &id]).await;
    assert!(
        !ok && err.contains("403") && err.contains("approver"),
        "an operator cannot approve: {err}"
    );
    let (ok, _, err) = zhao.run(&["changes", "approve", &id]).await;
    assert!(!ok && err.contains("403"), "{err}");
    let (ok, _, err) = li.run(&["changes", "start", &id]).await;
    assert!(!ok && err.contains("starts only once it is approved"), "{err}");

    // An approver who requested it may not approve it either.
    let own = request("chen's own", start.clone(), end.clone());
    let (ok, out, err) = chen
        .run(&own.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert!(ok, "{err}");
    let own_id = out.trim().to_string();
    let (ok, _, err) = chen.run(&["changes", "approve", &own_id]).await;
    assert!(
        !ok && err.contains("403") && err.contains("someone else must approve it"),
        "{err}"
    );
    let (ok, _, err) = li.run(&["changes", "cancel", &own_id]).await;
    assert!(ok, "{err}");

    let (ok, out, err) = chen
        .run(&["changes", "approve", &id, "--comment", "同意，注意回退"])
        .await;
    assert!(ok && out.contains("approved"), "{out}{err}");
    let (ok, _, err) = chen.run(&["changes", "approve", &id]).await;
    assert!(
        !ok && err.contains("only a requested change can be approved"),
        "{err}"
    );
    let windows: Vec<api::MaintenanceWindow> = {
        let (ok, out, err) = li.run(&["--json", "maintenance", "list"]).await;
        assert!(ok, "{err}");
        serde_json::from_str(&out).expect("json")
    };
    assert_eq!(windows.len(), 1, "the cancelled change made none: {windows:?}");
    assert_eq!(windows[0].change.map(|c| c.to_string()), Some(id.clone()));
    let (ok, _, err) = li.run(&["changes", "start", &id]).await;
    assert!(ok, "{err}");

    // The rule's fault inside the window: recorded, suppressed, linked, not notified.
    let _agent = start_agent(
        &collector,
        "app-1",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    let fault = fault_of(&li, "app-1", api::FaultStatus::Suppressed).await;
    assert_eq!(fault.change.map(|c| c.to_string()), Some(id.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(hook.requests().is_empty(), "nothing notified inside the window");

    // Rolled back: the window ends now, the fault still firing is released and notified.
    let (ok, _, err) = li
        .run(&["changes", "finish", &id, "--result", "rolled_back"])
        .await;
    assert!(!ok && err.contains("needs a non-empty \"reason\""), "{err}");
    let (ok, out, err) = li
        .run(&[
            "changes",
            "finish",
            &id,
            "--result",
            "rolled_back",
            "--reason",
            "对账仍然出错",
        ])
        .await;
    assert!(ok && out.contains("rolled_back"), "{out}{err}");
    fault_of(&li, "app-1", api::FaultStatus::Open).await;
    let sent = wait_for("the released fault notified", Duration::from_secs(10), || async {
        let r = hook.requests();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(sent[0].json()["notifications"][0]["kind"], "unsuppressed");

    let (ok, out, err) = li.run(&["changes", "show", &id]).await;
    assert!(ok, "{err}");
    for want in [
        "[rolled_back]  升级支付应用",
        "rollback plan 回退到 2.3 镜像",
        "covers        host=app-1 rule=app_errors",
        "decided by    chen",
        "Faults in its window:",
        "app_errors",
        "approved; maintenance window #",
        "同意，注意回退",
        "rolled back: 对账仍然出错",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    let (ok, out, err) = li.run(&["faults", "show", &fault.id.to_string()]).await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("(change #{id})")), "{out}");

    // Every write is in the audit log, refusals too.
    let audit: Vec<serde_json::Value> = {
        let admin = base.with_env(&[(
            "WATCHPOST_TOKEN",
            &token_of(&collector, "root", api::Role::Admin).await,
        )]);
        let (ok, out, err) = admin.run(&["--json", "audit", "--limit", "100"]).await;
        assert!(ok, "{err}");
        serde_json::from_str(&out).expect("json")
    };
    let approvals: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|a| a["path"].as_str().is_some_and(|p| p.ends_with("/approve")))
        .collect();
    assert!(approvals.len() >= 5, "{approvals:?}");
    assert!(
        approvals.iter().any(|a| a["status"] == 403 && a["actor"] == "li"),
        "{approvals:?}"
    );
}

/// A condition that goes on and off is notified once as flapping, its
/// further changes recorded but not notified, and once more when it has
/// been stable for the window, in its real state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_fault_is_notified_once_as_flapping_and_once_when_stable() {
    let err = watchpost_collector::CollectorConfig::parse(
        "[collector]\nflap_threshold = 1\n",
        std::path::Path::new("."),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("collector.flap_threshold: 1 is below 2"),
        "{err}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start("{}").await;
    std::fs::write(data.path().join("oncall.toml"), ROSTER).expect("roster");
    let config = collector_config_from(
        data.path(),
        &routed_to_hook(&hook, "flap_threshold = 2\nflap_window = \"3s\"\n", ""),
    );
    let rules = watchpost_collector::rules::RuleSet::parse(
        "[[rule]]\nname = \"link_errors\"\nmetric = \"link_errors\"\nwhen = \"> 5\"\nseverity = \"general\"\nsummary = \"errors {value}\"\n",
        "rules.toml",
    )
    .expect("rules");
    let collector = watchpost_collector::Collector::start(config, rules)
        .await
        .expect("collector");
    let ctl = ctl(&collector);
    write_textfile(textfiles.path(), "t.prom", "link_errors 9\n");
    let _agent = start_agent(
        &collector,
        "sw-1",
        Some(textfiles.path()),
        false,
        Duration::from_millis(100),
    );
    let fault = first_fault(&collector, "link_errors", "sw-1", Duration::from_secs(15)).await;
    // Off and on again, five more changes, each seen by the rule.
    for (i, value) in [1, 9, 1, 9, 1].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write_textfile(textfiles.path(), "t.prom", &format!("link_errors {value}\n"));
        let want = if value > 5 {
            api::FaultStatus::Open
        } else {
            api::FaultStatus::Resolved
        };
        let f = fault_in_status(&collector, fault.id, want, Duration::from_secs(10)).await;
        if i == 1 {
            assert!(f.flapping, "the third change makes it flap: {f:?}");
            let (_, metrics) = get_raw(&collector, "/metrics").await;
            assert!(metrics.contains("watchpost_faults_flapping 1"), "{metrics}");
        }
    }
    let (ok, out, err) = ctl.run(&["faults"]).await;
    assert!(ok && out.contains("resolved (flapping)"), "{out}{err}");
    // Stable for the window: notified once more, as it is (resolved).
    let f = wait_for("stable again", Duration::from_secs(15), || async {
        let f: api::Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
        (!f.flapping).then_some(f)
    })
    .await;
    let kinds = wait_for("the stable notice", Duration::from_secs(10), || async {
        let kinds: Vec<String> = hook
            .requests()
            .iter()
            .flat_map(|r| {
                r.json()["notifications"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| n["kind"].as_str().unwrap_or("").to_string())
            })
            .collect();
        kinds.iter().any(|k| k == "stable").then_some(kinds)
    })
    .await;
    assert_eq!(kinds, ["opened", "resolved", "flapping", "stable"], "{kinds:?}");
    let events: Vec<&str> = f.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        events.iter().filter(|k| **k == "reopened").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|k| **k == "resolved").count(),
        3,
        "{events:?}"
    );
    assert!(
        events.contains(&"flapping") && events.contains(&"stable"),
        "{events:?}"
    );
    let stable = f.timeline.iter().find(|e| e.kind == "stable").expect("stable");
    assert!(stable.message.contains("it is resolved"), "{}", stable.message);
}
