//! watchpostctl against a real collector with a real agent.

use std::process::Command;
use std::time::Duration;

use watchpost_tests::process::Ctl;
use watchpost_tests::*;

fn ctl(server: &str, args: &[&str]) -> (bool, String, String) {
    Ctl::new(env!("CARGO_BIN_EXE_watchpostctl"), server).run_blocking(args)
}

/// `ctl` off the async runtime's threads.
async fn run(server: &str, args: &[&str]) -> (bool, String, String) {
    Ctl::new(env!("CARGO_BIN_EXE_watchpostctl"), server)
        .run(args)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_show_agents_series_and_faults() {
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    write_textfile(
        textfiles.path(),
        "t.prom",
        "room_temperature_celsius{room=\"A\"} 41.5\n",
    );
    let rules = watchpost_collector::rules::RuleSet::parse(
        "[[rule]]\nname = \"room_hot\"\nmetric = \"room_temperature_celsius\"\nwhen = \"> 35\"\nseverity = \"general\"\nsummary = \"room {room} is {value} C\"\n",
        "cli-rules.toml",
    )
    .expect("rules");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let config = watchpost_collector::CollectorConfig {
        notify: std::sync::Arc::new(watchpost_collector::notify::NotifyConfig {
            roster: watchpost_collector::oncall::Roster::load(
                &examples.join("oncall.toml"),
                &jiff::tz::TimeZone::UTC,
            )
            .expect("roster"),
            ..Default::default()
        }),
        ..collector_config(data.path())
    };
    let collector = watchpost_collector::Collector::start(config, rules)
        .await
        .expect("collector");
    let agent = start_agent(
        &collector,
        "poller-1",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    let fault = wait_for("the fault", Duration::from_secs(10), || async {
        faults_of(&collector, "room_hot", "poller-1")
            .await
            .into_iter()
            .next()
    })
    .await;
    let server = format!("http://{}", collector.http_addr());

    let (ok, out, err) = run(&server, &["agents"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("ID") && out.contains("HOSTNAME") && out.contains("LAST SEEN"),
        "{out}"
    );
    assert!(out.contains("poller-1") && out.contains("connected"), "{out}");

    let (ok, out, err) = run(&server, &["series", "-m", "room_temperature_celsius", "room=A"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("poller-1") && out.contains("41.50"), "{out}");
    // With nothing selected: the metric names and how many series each has.
    let (ok, out, err) = run(&server, &["series"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("METRIC") && out.contains("SERIES"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("room_temperature_celsius") && l.trim_end().ends_with(" 1")),
        "{out}"
    );

    let (ok, out, err) = run(
        &server,
        &["query", "-m", "room_temperature_celsius", "--since", "5m"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("room_temperature_celsius{host=poller-1,room=A}") && out.contains("41.50"),
        "{out}"
    );

    let (ok, out, err) = run(&server, &["faults", "--status", "open", "--severity", "general"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("room_hot") && out.contains("room A is 41.50 C") && out.contains("RESPOND BY"),
        "{out}"
    );

    let (ok, out, err) = run(&server, &["--json", "faults", "--host", "poller-1"]).await;
    assert!(ok, "{err}");
    let parsed: Vec<api::Fault> = serde_json::from_str(&out).expect("json");
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].id, fault.id);

    let (ok, out, err) = run(&server, &["faults", "--host", "nobody"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("(none)"), "{out}");

    let (ok, out, err) = run(&server, &["faults", "show", &fault.id.to_string()]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("respond by") && out.contains("Timeline:") && out.contains("opened at severity general"),
        "{out}"
    );

    // Deadlines as the collector computes them (default calendar: Mon–Fri,
    // 09:00–12:00 and 13:30–17:30 Shanghai): a minor fault on Friday 16:00
    // gets one workday → Monday 16:00.
    let (ok, out, err) = run(
        &server,
        &[
            "deadline",
            "--severity",
            "minor",
            "--opened-at",
            "2026-11-20T16:00:00+08:00",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("respond by   2026-11-23 16:00 +08:00 (Monday)   [1 workday]"),
        "{out}"
    );
    let (ok, _, err) = run(
        &server,
        &["deadline", "--severity", "minor", "--opened-at", "friday"],
    )
    .await;
    assert!(!ok && err.contains("opened_at"), "{err}");

    // Who is on duty: National Day duty overrides the weekly rotation.
    let (ok, out, err) = run(&server, &["oncall", "--at", "2026-10-03T12:00:00+08:00"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("platform") && out.contains("zhao, zhang") && out.contains("国庆节保障"),
        "{out}"
    );
    assert!(out.contains("network"), "{out}");

    let (ok, out, err) = run(
        &server,
        &[
            "--by",
            "li",
            "maintenance",
            "add",
            "--host",
            "db-9",
            "--end",
            "2099-01-01T00:00:00Z",
            "--reason",
            "firmware",
            "--ticket",
            "CHG-9",
            "fstype=!tmpfs",
        ],
    )
    .await;
    assert!(ok && out.contains("CHG-9"), "{out}{err}");
    let (ok, out, err) = run(&server, &["maintenance", "list"]).await;
    assert!(
        ok && out.contains("db-9") && out.contains("fstype=!tmpfs") && out.contains("yes"),
        "{out}{err}"
    );

    // The fault's life from the command line.
    let id = fault.id.to_string();
    let (ok, out, err) = run(
        &server,
        &["--by", "li", "faults", "ack", &id, "--comment", "looking"],
    )
    .await;
    assert!(ok && out.contains("acknowledged"), "{out}{err}");
    let (ok, _, err) = run(&server, &["--by", "li", "faults", "ack", &id]).await;
    assert!(
        !ok && err.contains("409") && err.contains("already acknowledged by li"),
        "{err}"
    );
    let (ok, _, err) = run(
        &server,
        &[
            "--by",
            "li",
            "faults",
            "close",
            &id,
            "--cause",
            "x",
            "--handling",
            "y",
        ],
    )
    .await;
    assert!(!ok && err.contains("resolve it before closing"), "{err}");
    let (ok, _, err) = run(
        &server,
        &["--by", "li", "faults", "note", &id, "opened the rack door"],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &server,
        &[
            "--by",
            "li",
            "faults",
            "resolve",
            &id,
            "--comment",
            "fixed the fan",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &server,
        &[
            "--by",
            "li",
            "faults",
            "close",
            &id,
            "--cause",
            "fan failure",
            "--handling",
            "replaced the fan",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(&server, &["faults", "show", &id]).await;
    assert!(ok, "{err}");
    for want in [
        "[general]  closed",
        "response      met",
        "by li",
        "cause         fan failure",
        "opened the rack door",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }

    let (ok, _, err) = run(&server, &["faults", "--severity", "critical"]).await;
    assert!(!ok);
    assert!(err.contains("400") && err.contains("critical"), "{err}");
    let (ok, _, err) = run(&server, &["faults", "show", "999999"]).await;
    assert!(!ok && err.contains("no fault 999999"), "{err}");

    agent.stop().await;
    collector.shutdown().await;
    let (ok, _, err) = run(&server, &["agents"]).await;
    assert!(!ok && err.contains("cannot reach the collector"), "{err}");
}

/// The issue's "done": a fault opened by a rule reaches the on-call person
/// by e-mail (aiosmtpd) and webhook, escalates to the lead when nobody
/// acknowledges, is acknowledged, resolved and closed with watchpostctl, and
/// its record shows every step and whether each deadline was met.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_is_notified_escalated_and_closed_from_the_command_line() {
    let smtp = SmtpSink::start(None, false);
    let hook = Receiver::start("{}").await;
    let data = tempfile::tempdir().expect("tempdir");
    let textfiles = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        data.path().join("oncall.toml"),
        r#"
[[team]]
name = "dc"
lead = "zhang"
members = [ { name = "li", email = "li@example.gov.cn" }, { name = "zhang", email = "zhang@example.gov.cn" } ]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#,
    )
    .expect("roster");
    let config = collector_config_from(
        data.path(),
        &format!(
            r#"
[collector]
oncall = "oncall.toml"
[notify]
group_window = "1s"
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
[[route]]
team = "dc"
channels = ["mail", "hook"]
escalate = [ {{ after = "0s", to = "on_call" }}, {{ after = "2s", to = "lead" }} ]
"#,
            smtp.port,
            hook.url("/hook")
        ),
    );
    write_textfile(
        textfiles.path(),
        "t.prom",
        "room_temperature_celsius{room=\"B\"} 42\n",
    );
    let rules = watchpost_collector::rules::RuleSet::parse(
        "[[rule]]\nname = \"room_hot\"\nmetric = \"room_temperature_celsius\"\nwhen = \"> 35\"\nseverity = \"general\"\nsummary = \"room {room} is {value} C\"\n",
        "rules.toml",
    )
    .expect("rules");
    let collector = watchpost_collector::Collector::start(config, rules)
        .await
        .expect("collector");
    let _agent = start_agent(
        &collector,
        "poller-2",
        Some(textfiles.path()),
        false,
        Duration::from_millis(200),
    );
    let fault = first_fault(&collector, "room_hot", "poller-2", Duration::from_secs(15)).await;
    let server = format!("http://{}", collector.http_addr());

    // On-call li by mail and webhook, then lead zhang when nobody acknowledged.
    let mails = wait_for("mail to li, then to zhang", Duration::from_secs(20), || async {
        let m = smtp.mails();
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert_eq!(mails[0]["rcpt_to"][0], "li@example.gov.cn");
    assert!(
        mails[0]["body"].as_str().unwrap_or("").contains("room B is 42 C"),
        "{}",
        mails[0]
    );
    assert_eq!(mails[1]["rcpt_to"][0], "zhang@example.gov.cn");
    let hooks = wait_for("webhooks to li and zhang", Duration::from_secs(10), || async {
        let r = hook.requests();
        (r.len() >= 2).then_some(r)
    })
    .await;
    let to: Vec<String> = hooks
        .iter()
        .map(|r| r.json()["recipient"]["name"].to_string())
        .collect();
    assert_eq!(to, ["\"li\"", "\"zhang\""]);

    let id = fault.id.to_string();
    let (ok, out, err) = run(
        &server,
        &[
            "--by",
            "zhang",
            "faults",
            "ack",
            &id,
            "--comment",
            "checking the CRAC",
        ],
    )
    .await;
    assert!(ok && out.contains("acknowledged"), "{out}{err}");
    let (ok, _, err) = run(
        &server,
        &[
            "--by",
            "zhang",
            "faults",
            "resolve",
            &id,
            "--comment",
            "CRAC restarted",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &server,
        &[
            "--by",
            "zhang",
            "faults",
            "close",
            &id,
            "--cause",
            "CRAC unit tripped",
            "--handling",
            "restarted the CRAC, temperature back to 24 C",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(&server, &["faults", "show", &id]).await;
    assert!(ok, "{err}");
    for want in [
        "[general]  closed",
        "response      met",
        "resolution    met",
        "cause         CRAC unit tripped",
        "notified li by mail (opened",
        "notified li by hook (opened",
        "notified zhang by mail (escalated",
        "acknowledged: checking the CRAC",
        "resolved by hand: CRAC restarted",
        "notifications queued (resolved)",
        "closed. Cause: CRAC unit tripped",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    let (ok, out, err) = run(&server, &["notifications", "--fault", &id]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("MESSAGE") && out.contains("delivered") && out.contains("escalated"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchpostctl_talks_to_a_tls_collector_when_given_its_ca() {
    let certs = tempfile::tempdir().expect("tempdir");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/make-certs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(certs.path())
        .arg("127.0.0.1")
        .output()
        .expect("run deploy/make-certs.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        certs.path().join("collector.pem").display(),
        certs.path().join("collector.key").display()
    );
    let collector = watchpost_collector::Collector::start(
        collector_config_from(data.path(), &toml),
        watchpost_collector::rules::RuleSet::parse("", "none.toml").expect("rules"),
    )
    .await
    .expect("collector starts");
    let server = format!("https://127.0.0.1:{}", collector.http_addr().port());
    let ca = certs.path().join("ca.pem").display().to_string();
    let (ok, stdout, stderr) = run(&server, &["--ca-file", &ca, "--json", "agents"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "[]");
    // Without the CA the collector's certificate is not trusted.
    let (ok, _, stderr) = run(&server, &["agents"]).await;
    assert!(!ok);
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    let (ok, _, stderr) = run(&server, &["--ca-file", "/nonexistent.pem", "agents"]).await;
    assert!(!ok && stderr.contains("--ca-file /nonexistent.pem"), "{stderr}");
}

/// `ctl` with extra environment (a token, a password).
async fn run_env(server: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    Ctl::new(env!("CARGO_BIN_EXE_watchpostctl"), server)
        .with_env(env)
        .run(args)
        .await
}

/// The first word after `label` in `text`.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_tokens_enrolment_and_the_audit_log_from_the_command_line() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = watchpost_collector::CollectorConfig {
        security: watchpost_collector::config::SecurityConfig {
            agents_enrolled: true,
            api_users: true,
        },
        ..collector_config(data.path())
    };
    let collector = watchpost_collector::Collector::start(
        config,
        watchpost_collector::rules::RuleSet::parse("", "none").expect("rules"),
    )
    .await
    .expect("collector");
    let server = format!("http://{}", collector.http_addr());
    // The bootstrap: `watchpost-collector reset-admin` does this on the data directory.
    let admin = collector
        .core()
        .access
        .create_token(
            &collector
                .core()
                .access
                .reset_admin("admin", 1)
                .await
                .expect("admin")
                .name,
            "cli",
            None,
            1,
        )
        .await
        .expect("token")
        .token;

    let (ok, _, err) = run_env(&server, &[], &["faults"]).await;
    assert!(!ok);
    assert!(err.contains("401") && err.contains("WATCHPOST_TOKEN"), "{err}");

    let (ok, out, err) = run_env(
        &server,
        &[("WATCHPOST_TOKEN", &admin)],
        &["users", "add", "li", "--role", "operator"],
    )
    .await;
    assert!(ok, "{err}");
    let password = after(&out, "password (shown once):").to_string();
    let (ok, out, err) = run_env(
        &server,
        &[("WATCHPOST_LOGIN", "li"), ("WATCHPOST_PASSWORD", &password)],
        &["tokens", "create", "--name", "laptop", "--expires-in", "90d"],
    )
    .await;
    assert!(ok, "{err}");
    let li_token = out
        .lines()
        .find(|l| l.starts_with("wpt_"))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_string();
    let (ok, out, _) = run_env(&server, &[("WATCHPOST_TOKEN", &li_token)], &["whoami"]).await;
    assert!(ok && out.contains("li") && out.contains("operator"), "{out}");
    let (ok, _, err) = run_env(
        &server,
        &[("WATCHPOST_TOKEN", &li_token)],
        &["agents", "enroll", "web-1"],
    )
    .await;
    assert!(!ok && err.contains("403") && err.contains("admin"), "{err}");

    let (ok, out, err) = run_env(
        &server,
        &[("WATCHPOST_TOKEN", &admin)],
        &["agents", "enroll", "web-1"],
    )
    .await;
    assert!(ok, "{err}");
    let enroll = out
        .lines()
        .find(|l| l.starts_with("wpe_"))
        .unwrap_or_else(|| panic!("no enrolment token in {out}"))
        .to_string();
    let state = tempfile::tempdir().expect("tempdir");
    let mut a = watchpost_agent::AgentConfig::local(&format!("http://{}", collector.grpc_addr()));
    a.id = Some("web-1".into());
    a.hostname = Some("web-1".into());
    a.interval = Duration::from_millis(300);
    a.host.enabled = false;
    a.spool.dir = Some(state.path().join("spool"));
    a.credential_file = Some(state.path().join("spool/credential"));
    a.enroll_token = enroll;
    let agent = watchpost_agent::start(a);
    wait_for("web-1 enrolled", Duration::from_secs(15), || async {
        let (ok, out, _) = run_env(
            &server,
            &[("WATCHPOST_TOKEN", &admin)],
            &["agents", "credentials"],
        )
        .await;
        (ok && out.contains("web-1")).then_some(())
    })
    .await;
    let (ok, _, err) = run_env(
        &server,
        &[("WATCHPOST_TOKEN", &admin)],
        &["agents", "revoke", "web-1"],
    )
    .await;
    assert!(ok, "{err}");

    let (ok, out, err) = run_env(&server, &[("WATCHPOST_TOKEN", &admin)], &["audit", "--json"]).await;
    assert!(ok, "{err}");
    let log: Vec<api::AuditEntry> = serde_json::from_str(&out).expect("audit json");
    let seen = |actor: &str, path: &str, status: u16| {
        log.iter()
            .any(|e| e.actor == actor && e.path == path && e.status == status)
    };
    assert!(seen("admin", "/api/v1/users", 201), "{log:#?}");
    assert!(seen("li", "/api/v1/tokens", 201), "{log:#?}");
    assert!(seen("li", "/api/v1/agents/web-1/enroll", 403), "{log:#?}");
    assert!(seen("admin", "/api/v1/agents/web-1/enroll", 201), "{log:#?}");
    assert!(seen("admin", "/api/v1/agents/web-1/revoke", 204), "{log:#?}");
    assert!(!out.contains(&password), "the password reached the audit log");
    let (ok, _, err) = run_env(&server, &[("WATCHPOST_TOKEN", &li_token)], &["audit"]).await;
    assert!(!ok && err.contains("403"), "{err}");
    agent.stop().await;
    collector.shutdown().await;
}

/// `deadline --config FILE` checks a site's own policy offline: its
/// calendar (relative to the file) and its `[severity.*]` caps, severities
/// given in Chinese too.
#[test]
fn deadline_reads_a_sites_policy_from_its_collector_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cal.toml"),
        "working_hours = [\"08:30-12:00\", \"14:00-17:30\"]\n[[holiday]]\nname = \"元旦\"\nfrom = \"2027-01-01\"\n",
    )
    .expect("calendar");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        "[collector]\ncalendar = \"cal.toml\"\nwindow = \"1h\"\n\
         [severity.general]\nrespond = \"4h\"\nresolve = \"1 workday\"\nrespond_off_hours = \"3h\"\n\
         [[channel]]\nname = \"x\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .expect("config");
    let config = config.to_string_lossy().to_string();
    // New Year's Day 2027 (a Friday, a holiday) 10:00: general capped at 3 h.
    let (ok, out, err) = ctl(
        "http://127.0.0.1:1",
        &[
            "deadline",
            "--severity",
            "一般",
            "--opened-at",
            "2027-01-01T10:00:00+08:00",
            "--config",
            &config,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("respond by   2027-01-01 13:00 +08:00 (Friday)   [3h (capped: opened on a non-working day; 4h otherwise)]"),
        "{out}"
    );
    assert!(out.contains("cal.toml (policy of"), "{out}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[severity.urgent]\nrespond = \"5h\"\nresolve = \"4h\"\n").expect("bad");
    let (ok, _, err) = ctl(
        "http://127.0.0.1:1",
        &[
            "deadline",
            "--severity",
            "urgent",
            "--config",
            &bad.to_string_lossy(),
        ],
    );
    assert!(
        !ok && err.contains("bad.toml") && err.contains("severity.urgent"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_and_the_inspection_checklist_from_the_command_line() {
    let data = tempfile::tempdir().expect("tempdir");
    let offsite = tempfile::tempdir().expect("tempdir");
    let config = watchpost_collector::CollectorConfig {
        backup: watchpost_collector::backup::BackupConfig {
            every: None,
            dir: Some(offsite.path().to_path_buf()),
            keep: 7,
        },
        checklist: watchpost_collector::reports::checklist::Checklist::parse(
            "[[item]]\nid = \"ups-panel\"\nname = \"UPS 面板无告警\"\nroom = \"A-201\"\n",
        )
        .expect("checklist"),
        ..collector_config(data.path())
    };
    let c = watchpost_collector::Collector::start(config, Default::default())
        .await
        .expect("collector starts");
    let server = format!("http://{}", c.http_addr());

    let (ok, out, err) = run(&server, &["backup", "create"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("backup taken: "), "{out}");
    let path = out
        .trim_start_matches("backup taken: ")
        .split(" (")
        .next()
        .expect("path")
        .to_string();
    let (ok, out, err) = run(&server, &["backup", "list"]).await;
    assert!(ok && out.contains(&path), "{out}{err}");
    let (ok, out, err) = run(&server, &["backup", "verify", &path]).await;
    assert!(
        ok && out.contains("good") && out.contains("2 databases pass"),
        "{out}{err}"
    );
    let db = std::path::Path::new(&path).join("data/access.db");
    let mut bytes = std::fs::read(&db).expect("db");
    bytes[200] ^= 0x10;
    std::fs::write(&db, bytes).expect("write");
    let (ok, _, err) = run(&server, &["backup", "verify", &path]).await;
    assert!(
        !ok && err.contains("data/access.db") && err.contains("SHA-256"),
        "{err}"
    );

    let (ok, _, err) = run(&server, &["inspections", "check", "ups-panel", "--result", "ok"]).await;
    assert!(!ok && err.contains("expected normal or abnormal"), "{err}");
    let (ok, out, err) = run(
        &server,
        &[
            "--by",
            "li",
            "inspections",
            "check",
            "ups-panel",
            "--result",
            "normal",
            "--remark",
            "无告警",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("1 due, 1 recorded, 0 abnormal") && out.contains("ups-panel"),
        "{out}"
    );
    let (ok, out, err) = run(&server, &["inspections", "today"]).await;
    assert!(
        ok && out.contains("无告警") && out.contains("not signed yet"),
        "{out}{err}"
    );
    c.shutdown().await;
}
