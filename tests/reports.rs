//! The monthly service statistics against figures worked out by hand: a
//! collector on a clock the test sets, faults reported, acknowledged,
//! resolved and closed at chosen times through the API, a drill that must
//! not count, a fault in the month before; then the report for 2026-11 as
//! JSON, HTML and CSV, stored in versions, and refused for months it
//! cannot be about.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use watchpost_collector::Collector;
use watchpost_collector::rules::RuleSet;
use watchpost_collector::time::Clock;
use watchpost_model::reports::{Cell, ReportData, StoredReport};
use watchpost_tests::api::Fault;
use watchpost_tests::*;

struct Manual(AtomicI64);
impl Clock for Manual {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `YYYY-MM-DD HH:MM` in Beijing time, as ms.
fn cst(s: &str) -> i64 {
    s.replacen(' ', "T", 1)
        .parse::<jiff::civil::DateTime>()
        .expect("civil time")
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone"))
        .expect("zoned")
        .timestamp()
        .as_millisecond()
}

const ROSTER: &str = r#"
[[team]]
name = "ops"
lead = "zhang"
members = [
  { name = "li", email = "li@example.gov.cn" },
  { name = "zhang", email = "zhang@example.gov.cn" },
]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

struct Desk {
    collector: Collector,
    clock: Arc<Manual>,
}

impl Desk {
    fn at(&self, t: &str) {
        self.clock.0.store(cst(t), Ordering::Relaxed);
    }

    fn at_ms(&self, t: i64) {
        self.clock.0.store(t, Ordering::Relaxed);
    }

    async fn report(&self, at: &str, severity: &str, host: &str, system: &str, opened: &str) -> Fault {
        self.at(at);
        post(
            &self.collector,
            "/api/v1/faults",
            &format!(
                r#"{{"by": "desk", "severity": "{severity}", "host": "{host}", "summary": "{host} 无法访问",
                    "reporter": {{"name": "王五", "email": "wangwu@example.gov.cn"}},
                    "labels": {{"system": "{system}"}}, "opened_at": "{opened}"}}"#
            ),
        )
        .await
    }

    async fn act(&self, at: &str, id: i64, action: &str, body: &str) {
        self.at(at);
        let _: serde_json::Value =
            post(&self.collector, &format!("/api/v1/faults/{id}/{action}"), body).await;
    }
}

fn n(t: &watchpost_model::reports::ReportTable, key: &str, col: &str) -> Option<f64> {
    t.cell(key, col).and_then(Cell::num)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_figures_match_the_records_worked_out_by_hand() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("oncall.toml"), ROSTER).expect("roster");
    let hook = Receiver::start("{}").await;
    let config = collector_config_from(
        data.path(),
        &format!(
            "[collector]\noncall = \"oncall.toml\"\n[notify]\ngroup_window = \"0s\"\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n[[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\n",
            hook.url("/hook")
        ),
    );
    let clock = Arc::new(Manual(AtomicI64::new(cst("2026-10-15 10:00"))));
    let collector = Collector::start_with_clock(
        config,
        RuleSet::parse("", "rules.toml").expect("rules"),
        clock.clone(),
    )
    .await
    .expect("collector starts");
    let desk = Desk { collector, clock };

    // The month before: one general fault.
    let e = desk
        .report(
            "2026-10-15 10:00",
            "general",
            "db-1",
            "公积金",
            "2026-10-15 10:00",
        )
        .await;
    desk.act("2026-10-15 11:00", e.id, "ack", r#"{"by": "li"}"#).await;
    // A: urgent, called in at 09:00, entered at 09:10; acknowledged 30 min
    // and resolved 70 min after the call: both deadlines (1 h, 4 h) met.
    let a = desk
        .report("2026-11-03 09:10", "urgent", "web-1", "社保", "2026-11-03 09:00")
        .await;
    desk.act("2026-11-03 09:30", a.id, "ack", r#"{"by": "li"}"#).await;
    desk.act(
        "2026-11-03 10:10",
        a.id,
        "resolve",
        r#"{"by": "li", "comment": "重启"}"#,
    )
    .await;
    desk.act(
        "2026-11-03 10:20",
        a.id,
        "close",
        r#"{"by": "li", "cause": "进程挂死", "handling": "重启服务"}"#,
    )
    .await;
    desk.act(
        "2026-11-04 10:00",
        a.id,
        "feedback",
        r#"{"by": "desk", "satisfaction": 4}"#,
    )
    .await;
    // B: general, Tuesday 09:00. Respond within 4 h, so by 13:00;
    // acknowledged 15:00 (360 min, missed); resolved 16:00 (420 min),
    // within one working day (met).
    let b = desk
        .report(
            "2026-11-10 09:00",
            "general",
            "db-1",
            "公积金",
            "2026-11-10 09:00",
        )
        .await;
    assert_eq!(b.response_due, "2026-11-10T05:00:00Z", "13:00 Beijing time");
    desk.act("2026-11-10 15:00", b.id, "ack", r#"{"by": "zhang"}"#)
        .await;
    desk.act(
        "2026-11-10 16:00",
        b.id,
        "resolve",
        r#"{"by": "zhang", "comment": "扩容"}"#,
    )
    .await;
    // C: minor, never acknowledged: both deadlines long past by December.
    let c = desk
        .report("2026-11-20 10:00", "minor", "web-2", "社保", "2026-11-20 10:00")
        .await;
    // A drill in the month: never counted.
    desk.at("2026-11-21 10:00");
    let _: Fault = post(
        &desk.collector,
        "/api/v1/drills",
        r#"{"by": "wang", "summary": "演练"}"#,
    )
    .await;

    desk.at("2026-12-02 09:00");
    let r: ReportData = get(
        &desk.collector,
        "/api/v1/reports/monthly?month=2026-11&format=json",
    )
    .await;
    assert_eq!(r.period, "2026-11");
    let by_sev = r.table("faults_by_severity").expect("table");
    assert_eq!(n(by_sev, "urgent", "reported"), Some(1.0));
    assert_eq!(n(by_sev, "urgent", "rule"), Some(0.0));
    assert_eq!(n(by_sev, "general", "total"), Some(1.0));
    assert_eq!(n(by_sev, "general", "previous_month"), Some(1.0));
    assert_eq!(n(by_sev, "minor", "total"), Some(1.0));
    assert_eq!(n(by_sev, "total", "total"), Some(3.0), "the drill is not counted");
    assert_eq!(n(by_sev, "total", "previous_month"), Some(1.0));
    let by_sys = r.table("faults_by_system").expect("table");
    assert_eq!(n(by_sys, "社保", "total"), Some(2.0));
    assert_eq!(n(by_sys, "社保", "urgent"), Some(1.0));
    assert_eq!(n(by_sys, "公积金", "total"), Some(1.0));
    assert_eq!(n(by_sys, "公积金", "previous_month"), Some(1.0));

    let t = r.table("mtta_mttr_by_severity").expect("table");
    assert_eq!(n(t, "urgent", "mtta_mean_min"), Some(30.0));
    assert_eq!(n(t, "urgent", "mttr_mean_min"), Some(70.0));
    assert_eq!(n(t, "general", "mtta_mean_min"), Some(360.0));
    assert_eq!(n(t, "general", "mttr_mean_min"), Some(420.0));
    assert_eq!(
        t.cell("minor", "mtta_mean_min"),
        Some(&Cell::None),
        "nothing acknowledged"
    );
    assert_eq!(n(t, "total", "acknowledged"), Some(2.0));
    assert_eq!(n(t, "total", "mtta_mean_min"), Some(195.0));
    assert_eq!(n(t, "total", "mtta_p90_min"), Some(360.0));
    assert_eq!(n(t, "total", "mttr_mean_min"), Some(245.0));
    assert_eq!(n(t, "total", "mttr_p90_min"), Some(420.0));
    let t = r.table("mtta_mttr_by_person").expect("table");
    assert_eq!(n(t, "li", "mtta_mean_min"), Some(30.0));
    assert_eq!(n(t, "zhang", "mttr_mean_min"), Some(420.0));
    let t = r.table("mtta_mttr_by_team").expect("table");
    assert_eq!(n(t, "ops", "acknowledged"), Some(2.0));

    let t = r.table("compliance_by_severity").expect("table");
    assert_eq!(n(t, "urgent", "response_met_pct"), Some(100.0));
    assert_eq!(n(t, "general", "response_met_pct"), Some(0.0));
    assert_eq!(n(t, "general", "resolve_met_pct"), Some(100.0));
    assert_eq!(n(t, "minor", "resolve_met"), Some(0.0));
    assert_eq!(n(t, "total", "response_judged"), Some(3.0));
    assert_eq!(n(t, "total", "response_met"), Some(1.0));
    assert_eq!(n(t, "total", "response_met_pct"), Some(33.33));
    assert_eq!(n(t, "total", "resolve_met_pct"), Some(66.67));
    let overdue = r.table("overdue").expect("table");
    let ids: Vec<String> = overdue.rows.iter().map(|r| r[0].text()).collect();
    assert_eq!(ids, vec![b.id.to_string(), c.id.to_string()]);
    let s = r.table("satisfaction").expect("table");
    assert_eq!(n(s, "with_feedback", "value"), Some(1.0));
    assert_eq!(n(s, "mean_satisfaction", "value"), Some(4.0));
    assert!(r.facts.iter().any(|f| f.en.contains("1 drills")), "{:?}", r.facts);

    // HTML in Chinese, with its charts and formulas; CSV one file per table.
    let (status, page) = get_raw(
        &desk.collector,
        "/api/v1/reports/monthly?month=2026-11&format=html",
    )
    .await;
    assert_eq!(status, 200);
    for part in [
        "<html lang=\"zh-CN\">",
        "运维月报 2026-11",
        "平均响应与解决时长（按级别）",
        "每日故障数（按级别）",
        "<svg",
        "计算方法",
        "<span class=\"sev-urgent\">紧急</span>",
    ] {
        assert!(page.contains(part), "the page lacks {part:?}");
    }
    assert!(
        !page.contains("http://") || !page.contains("<script"),
        "nothing is fetched from elsewhere"
    );
    let (status, csv) = get_raw(
        &desk.collector,
        "/api/v1/reports/monthly?month=2026-11&format=csv&table=mtta_mttr_by_severity",
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "severity,acknowledged,mtta_mean_min,mtta_p90_min,resolved,mttr_mean_min,mttr_p90_min"
    );
    assert!(lines.contains(&"total,2,195,360,2,245,420"), "{csv}");

    // Excel: opened and read back (a zip of XML parts): a sheet per table,
    // the Chinese titles among the strings, the figures as numbers.
    let (status, _) = get_raw(
        &desk.collector,
        "/api/v1/reports/monthly?month=2026-11&format=xlsx",
    )
    .await;
    assert_eq!(status, 200);
    let stored: Vec<StoredReport> = get(&desk.collector, "/api/v1/reports?period=2026-11").await;
    let x = stored.iter().find(|s| s.format == "xlsx").expect("the workbook");
    let book = std::fs::read(data.path().join("reports").join(&x.file)).expect("stored workbook");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(book)).expect("an xlsx is a zip");
    let mut part = |name: &str| {
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}")),
            &mut s,
        )
        .expect("utf-8");
        s
    };
    let workbook = part("xl/workbook.xml");
    let sheets: Vec<&str> = workbook
        .split("<sheet name=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap_or(0)])
        .collect();
    assert_eq!(sheets[0], "报告");
    let at = sheets
        .iter()
        .position(|s| *s == "mtta_mttr_by_severity")
        .expect("a sheet per table");
    let strings = part("xl/sharedStrings.xml");
    for title in [
        "运维月报 2026-11",
        "平均响应与解决时长（按级别）",
        "MTTA 平均（分钟）",
        "计算方法",
    ] {
        assert!(
            strings.contains(title),
            "{title:?} not among the workbook's strings"
        );
    }
    let sheet = part(&format!("xl/worksheets/sheet{}.xml", at + 1));
    for figure in ["<v>195</v>", "<v>360</v>", "<v>245</v>", "<v>420</v>"] {
        assert!(sheet.contains(figure), "{figure} not in the MTTA sheet: {sheet}");
    }

    // The PDF: Chinese headings, the figures, the charts' titles.
    let pdf = get_bytes(
        &desk.collector,
        "anyone",
        "/api/v1/reports/monthly?month=2026-11&format=pdf",
    )
    .await;
    if let Ok(dir) = std::env::var("WATCHPOST_KEEP_REPORTS") {
        std::fs::write(std::path::Path::new(&dir).join("monthly-2026-11.pdf"), &pdf).expect("keep");
    }
    let text = pdf_text(&pdf);
    for want in [
        "运维月报 2026-11",
        "平均响应与解决时长（按级别）",
        "计算口径",
        "195",
        "420",
        "db-1",
    ] {
        assert!(text.contains(want), "{want:?} not in the PDF's text:\n{text}");
    }

    // Stored: every generation a new version, each file with its hash.
    let stored: Vec<StoredReport> = get(&desk.collector, "/api/v1/reports?period=2026-11").await;
    assert!(stored.iter().all(|s| s.sha256.len() == 64 && s.bytes > 0));
    let json_versions: Vec<i64> = stored
        .iter()
        .filter(|s| s.format == "json" && s.generated_by != "schedule")
        .map(|s| s.version)
        .collect();
    // Five asked for (the schedule may have made one of its own between them).
    assert_eq!(json_versions.len(), 5, "{json_versions:?}");
    assert!(json_versions.windows(2).all(|w| w[0] > w[1]), "{json_versions:?}");
    let html = stored.iter().find(|s| s.format == "html").expect("the html");
    let (status, again) = get_raw(&desk.collector, &format!("/api/v1/reports/{}", html.id)).await;
    assert_eq!((status, again.len()), (200, page.len()));
    // A stored file changed on disk is refused, never served.
    let path = data.path().join("reports").join(&html.file);
    let mut bytes = std::fs::read(&path).expect("stored file");
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).expect("write");
    let (status, text) = get_raw(&desk.collector, &format!("/api/v1/reports/{}", html.id)).await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("was changed"), "{text}");

    // Months it cannot be about.
    for (q, want) in [
        ("month=2026-13", "expected YYYY-MM"),
        ("month=26-11", "expected YYYY-MM"),
        ("month=2027-01", "in the future"),
        ("month=2020-01", "nothing to report on"),
        (
            "month=2026-11&format=doc",
            "expected json, html, pdf, csv or xlsx",
        ),
        ("month=2026-11&format=csv&table=nope", "has tables"),
    ] {
        let (status, text) = get_raw(&desk.collector, &format!("/api/v1/reports/monthly?{q}")).await;
        assert_eq!(status, 400, "{q}: {text}");
        assert!(text.contains(want), "{q}: {text}");
    }
}

const CHECKLIST: &str = r#"
[[item]]
id = "ups-panel"
name = "UPS 面板无告警"
room = "A-201"

[[item]]
id = "fire"
name = "灭火器压力正常"
room = "A-201"
days = "month:1"

[[item]]
id = "labels"
name = "线缆标签完好"
group = "system=社保"
days = "mon"
"#;

const DAY_RULES: &str = r#"
[[rule]]
name = "cpu_busy"
metric = "host_cpu_usage_percent"
when = "> 90"
for = "5m"
severity = "general"

[[rule]]
name = "filesystem_full"
metric = "host_filesystem_used_percent"
when = "> 90"
severity = "general"

[[rule]]
name = "room_temperature_high"
metric = "room_temperature_celsius"
tiers = [ { when = "> 27", severity = "minor", for = "5m" }, { when = "> 32", severity = "general", for = "2m" } ]

[[rule]]
name = "room_temperature_low"
metric = "room_temperature_celsius"
when = "< 15"
for = "10m"
severity = "minor"
"#;

/// A request as a user with a password.
async fn call_as(c: &Collector, user: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let url = format!("http://{}{}", c.http_addr(), path);
    let client = reqwest::Client::new();
    let mut r = if method == "GET" {
        client.get(&url)
    } else {
        client.post(&url)
    };
    r = r.basic_auth(user, Some("correct horse battery"));
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Text of a PDF, as `pdftotext -layout` reads it (poppler-utils, installed
/// by tests/peers/setup.sh).
fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, bytes).expect("write pdf");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; tests/peers/setup.sh installs it)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

async fn get_bytes(c: &Collector, user: &str, path: &str) -> Vec<u8> {
    let url = format!("http://{}{}", c.http_addr(), path);
    let resp = reqwest::Client::new()
        .get(&url)
        .basic_auth(user, Some("correct horse battery"))
        .send()
        .await
        .expect("GET");
    let status = resp.status();
    let body = resp.bytes().await.expect("body").to_vec();
    assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_record_is_computed_from_the_rollups_and_signed_and_reviewed() {
    use watchpost_proto::v1::{
        Batch, Label, SeriesDefinition, SeriesDefinitions, agent_message, collector_message,
    };
    use watchpost_tests::raw_agent::{RawAgent, hello};

    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("checklist.toml"), CHECKLIST).expect("checklist");
    let config = collector_config_from(
        data.path(),
        "[collector]\ninspections = \"checklist.toml\"\n[security]\nagents = \"open\"\napi = \"users\"\n",
    );
    let clock = Arc::new(Manual(AtomicI64::new(cst("2026-12-01 10:00"))));
    let collector = Collector::start_with_clock(
        config,
        RuleSet::parse(DAY_RULES, "rules.toml").expect("rules"),
        clock.clone(),
    )
    .await
    .expect("collector starts");
    let desk = Desk { collector, clock };
    let c = &desk.collector;
    let access = &c.core().access;
    for (name, role) in [
        ("li", watchpost_model::api::Role::Operator),
        ("zhang", watchpost_model::api::Role::Approver),
        ("wang", watchpost_model::api::Role::Viewer),
    ] {
        access
            .add_user(
                name,
                role,
                Some("correct horse battery".into()),
                cst("2026-12-01 09:00"),
            )
            .await
            .expect("user");
    }

    // One agent's day: ten minutes of samples with known peaks.
    let mut a = RawAgent::open(
        &format!("http://{}", c.grpc_addr()),
        None,
        hello("web-1", "test", 1000),
    )
    .await
    .expect("stream");
    assert!(matches!(
        a.next().await,
        Some(collector_message::Body::Welcome(_))
    ));
    let labels = |pairs: &[(&str, &str)]| -> Vec<Label> {
        pairs
            .iter()
            .map(|(k, v)| Label {
                name: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    };
    let defs = [
        (1, "host_cpu_usage_percent", labels(&[("cpu", "total")])),
        (2, "host_memory_used_percent", vec![]),
        // As the agent names them: the block device and the mount point.
        (
            3,
            "host_filesystem_used_percent",
            labels(&[("device", "/dev/vda1"), ("mountpoint", "/")]),
        ),
        (
            4,
            "host_filesystem_used_percent",
            labels(&[("device", "/dev/vdb1"), ("mountpoint", "/data")]),
        ),
        (
            5,
            "room_temperature_celsius",
            labels(&[("room", "A-201"), ("device", "th-1")]),
        ),
        (
            6,
            "room_humidity_percent",
            labels(&[("room", "A-201"), ("device", "th-1")]),
        ),
        (7, "snmp_up", labels(&[("device", "sw1")])),
        (
            8,
            "snmp_if_in_errors_per_second",
            labels(&[("device", "sw1"), ("ifName", "ge0/1")]),
        ),
        (
            9,
            "snmp_ups_on_battery",
            labels(&[("device", "ups1"), ("room", "A-201")]),
        ),
    ];
    a.send(agent_message::Body::Definitions(SeriesDefinitions {
        series: defs
            .iter()
            .map(|(id, m, l)| SeriesDefinition {
                id: *id,
                metric: m.to_string(),
                labels: l.clone(),
            })
            .collect(),
    }))
    .await;
    let start = cst("2026-12-01 10:00");
    let mut seq = 0;
    for k in 0..60i64 {
        let t = start + k * 10_000;
        let minute = k / 6;
        let values = [
            if minute == 3 { 95.0 } else { 20.0 },
            if minute == 5 { 60.0 } else { 40.0 },
            50.0,
            if minute >= 8 { 88.0 } else { 85.0 },
            match k {
                42 => 28.5,
                6 => 21.0,
                _ => 22.0,
            },
            45.0,
            if minute == 4 { 0.0 } else { 1.0 },
            if minute == 2 { 0.5 } else { 0.0 },
            if minute == 6 || minute == 8 { 1.0 } else { 0.0 },
        ];
        seq += 1;
        a.send(agent_message::Body::Batch(Batch {
            sequence: seq,
            base_timestamp_ms: t,
            series_ids: (1..=9).collect(),
            values: values.to_vec(),
            timestamp_offsets_ms: vec![0; 9],
            late: false,
            clock_offset: None,
            texts: Vec::new(),
        }))
        .await;
        desk.at_ms(t + 1_000);
        loop {
            match a.next().await {
                Some(collector_message::Body::Ack(x)) if x.sequence >= seq => break,
                Some(collector_message::Body::Ack(_) | collector_message::Body::Heartbeat(_)) => continue,
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }
    // A call at 11:00 nobody acknowledges: general, response due in 4 h.
    desk.at("2026-12-01 11:00");
    let (s, text) = call_as(
        c,
        "li",
        "POST",
        "/api/v1/faults",
        Some(r#"{"severity": "general", "host": "web-1", "summary": "web-1 访问慢"}"#),
    )
    .await;
    assert_eq!(s, 201, "{text}");

    // The checklist of 2026-12-01 (a Tuesday, the 1st): ups-panel and fire are due.
    desk.at("2026-12-01 16:00");
    let check = |body: &'static str| async move {
        call_as(c, "li", "POST", "/api/v1/inspections/checks", Some(body)).await
    };
    for (body, status, want) in [
        (
            r#"{"item": "nope", "result": "normal"}"#,
            400,
            "not declared in the checklist: the items are ups-panel, fire, labels",
        ),
        (
            r#"{"item": "ups-panel", "result": "ok"}"#,
            400,
            "expected normal or abnormal",
        ),
        (
            r#"{"item": "labels", "result": "normal"}"#,
            400,
            "not due on 2026-12-01",
        ),
        (r#"{"item": "fire", "result": "abnormal"}"#, 400, "needs a remark"),
        (
            r#"{"item": "ups-panel", "result": "normal", "date": "2026-12-02"}"#,
            400,
            "in the future",
        ),
        (
            r#"{"item": "ups-panel", "result": "normal", "open_fault": "urgent"}"#,
            400,
            "abnormal result only",
        ),
    ] {
        let (s, text) = check(body).await;
        assert_eq!(s, status, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let (s, text) = call_as(
        c,
        "wang",
        "POST",
        "/api/v1/inspections/checks",
        Some(r#"{"item": "ups-panel", "result": "normal"}"#),
    )
    .await;
    assert_eq!(s, 403, "a viewer records nothing: {text}");
    let (s, text) = check(r#"{"item": "ups-panel", "result": "normal", "remark": "无告警"}"#).await;
    assert_eq!(s, 201, "{text}");
    let (s, text) = call_as(c, "li", "POST", "/api/v1/inspections/2026-12-01/sign", Some("{}")).await;
    assert_eq!(s, 409, "{text}");
    assert!(text.contains("not recorded yet: fire"), "{text}");
    let (s, text) = check(
        r#"{"item": "fire", "result": "abnormal", "remark": "压力表指针在红区", "open_fault": "general"}"#,
    )
    .await;
    assert_eq!(s, 201, "{text}");
    let day: watchpost_model::inspections::InspectionDay = serde_json::from_str(&text).expect("day");
    let fire = day
        .items
        .iter()
        .find(|i| i.item.id == "fire")
        .and_then(|i| i.entry.clone())
        .expect("fire recorded");
    let (s, text) = call_as(
        c,
        "wang",
        "GET",
        &format!("/api/v1/faults/{}", fire.fault_id.expect("a fault was opened")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let fire_fault: Fault = serde_json::from_str(&text).expect("fault");
    assert_eq!(fire_fault.host, "A-201");
    assert_eq!(fire_fault.labels.get("room").map(String::as_str), Some("A-201"));
    assert!(
        fire_fault.summary.contains("压力表指针在红区"),
        "{}",
        fire_fault.summary
    );

    desk.at("2026-12-01 18:00");
    let (s, text) = call_as(
        c,
        "li",
        "POST",
        "/api/v1/inspections/2026-12-01/sign",
        Some(r#"{"remark": "巡检完毕"}"#),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let (s, text) = call_as(c, "li", "POST", "/api/v1/inspections/2026-12-01/sign", Some("{}")).await;
    assert_eq!(s, 409, "{text}");
    assert!(text.contains("cannot be signed twice"), "{text}");
    // Signed: a correction is an amendment with a reason.
    let (s, text) = check(r#"{"item": "ups-panel", "result": "abnormal", "remark": "告警灯闪烁"}"#).await;
    assert_eq!(s, 409, "{text}");
    assert!(text.contains("needs why"), "{text}");
    desk.at("2026-12-01 19:00");
    let (s, text) = check(r#"{"item": "ups-panel", "result": "abnormal", "remark": "告警灯闪烁", "date": "2026-12-01", "why": "补录：交班时发现"}"#).await;
    assert_eq!(s, 201, "{text}");
    // Reviewing: approvers only, once.
    let (s, text) = call_as(
        c,
        "li",
        "POST",
        "/api/v1/inspections/2026-12-01/review",
        Some("{}"),
    )
    .await;
    assert_eq!(s, 403, "an operator does not review: {text}");
    desk.at("2026-12-02 08:10");
    let (s, text) = call_as(
        c,
        "zhang",
        "POST",
        "/api/v1/inspections/2026-12-01/review",
        Some(r#"{"remark": "已阅"}"#),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let (s, text) = call_as(
        c,
        "zhang",
        "POST",
        "/api/v1/inspections/2026-12-01/review",
        Some("{}"),
    )
    .await;
    assert_eq!(s, 409, "{text}");
    assert!(text.contains("already reviewed by zhang"), "{text}");
    // The inspector never reviews their own day (2026-11-30, a Monday).
    for item in ["ups-panel", "labels"] {
        let body = format!(r#"{{"item": "{item}", "result": "normal", "date": "2026-11-30"}}"#);
        let (s, text) = call_as(c, "zhang", "POST", "/api/v1/inspections/checks", Some(&body)).await;
        assert_eq!(s, 201, "{text}");
    }
    let (s, text) = call_as(
        c,
        "zhang",
        "POST",
        "/api/v1/inspections/2026-11-30/sign",
        Some("{}"),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let (s, text) = call_as(
        c,
        "zhang",
        "POST",
        "/api/v1/inspections/2026-11-30/review",
        Some("{}"),
    )
    .await;
    assert_eq!(s, 403, "{text}");
    assert!(text.contains("someone else must review it"), "{text}");

    // The record, as a viewer reads it the next morning.
    desk.at("2026-12-02 08:40");
    let (s, text) = call_as(c, "wang", "GET", "/api/v1/reports/daily?date=2026-12-01", None).await;
    assert_eq!(s, 200, "{text}");
    let r: ReportData = serde_json::from_str(&text).expect("report");
    assert_eq!((r.kind.as_str(), r.period.as_str()), ("daily", "2026-12-01"));
    let hosts = r.table("hosts").expect("hosts");
    let cell = |t: &watchpost_model::reports::ReportTable, k: &str, col: &str| t.cell(k, col).cloned();
    assert_eq!(n(hosts, "web-1", "cpu_peak_pct"), Some(95.0));
    assert_eq!(n(hosts, "web-1", "memory_peak_pct"), Some(60.0));
    assert_eq!(n(hosts, "web-1", "fs_headroom_min_pct"), Some(12.0));
    assert_eq!(
        cell(hosts, "web-1", "fs_lowest"),
        Some(Cell::Text("/data".into()))
    );
    assert_eq!(n(hosts, "web-1", "reachable_pct"), Some(100.0));
    for (col, want) in [
        ("faults_opened", 1.0),
        ("faults_resolved", 0.0),
        ("faults_open", 1.0),
        ("faults_overdue", 1.0),
    ] {
        assert_eq!(n(hosts, "web-1", col), Some(want), "{col}");
    }
    assert_eq!(
        cell(hosts, "web-1", "status"),
        Some(Cell::Text("abnormal".into()))
    );
    let findings = cell(hosts, "web-1", "findings")
        .map(|c| c.text())
        .unwrap_or_default();
    assert!(
        findings.contains("CPU 95 > 90") && findings.contains("超时 1"),
        "{findings}"
    );
    let devices = r.table("devices").expect("devices");
    assert_eq!(n(devices, "sw1", "reachable_pct"), Some(90.0));
    assert_eq!(n(devices, "sw1", "if_errors"), Some(30.0));
    assert_eq!(
        cell(devices, "sw1", "status"),
        Some(Cell::Text("abnormal".into()))
    );
    let rooms = r.table("rooms").expect("rooms");
    for (col, want) in [
        ("temperature_min", 21.0),
        ("temperature_max", 28.5),
        ("humidity_min", 45.0),
        ("humidity_max", 45.0),
        ("on_battery_events", 2.0),
        ("on_battery_min", 2.0),
        ("checklist_abnormal", 2.0),
        ("faults_opened", 1.0),
    ] {
        assert_eq!(n(rooms, "A-201", col), Some(want), "{col}");
    }
    assert_eq!(
        cell(rooms, "A-201", "temperature_range"),
        Some(Cell::Text("15–27".into()))
    );
    let room_findings = cell(rooms, "A-201", "findings")
        .map(|c| c.text())
        .unwrap_or_default();
    assert!(room_findings.contains("温度 28.5 > 27"), "{room_findings}");
    let checklist = r.table("checklist").expect("checklist");
    assert_eq!(
        checklist.cell("ups-panel", "result"),
        Some(&Cell::Text("abnormal".into()))
    );
    assert_eq!(
        checklist.cell("fire", "remark"),
        Some(&Cell::Text("压力表指针在红区".into()))
    );
    let amendments = r.table("amendments").expect("amendments");
    assert_eq!(amendments.rows.len(), 1);
    assert_eq!(
        amendments.cell("ups-panel", "why"),
        Some(&Cell::Text("补录：交班时发现".into()))
    );
    let signatures = r.table("signatures").expect("signatures");
    assert_eq!(signatures.cell("inspector", "by"), Some(&Cell::Text("li".into())));
    assert_eq!(
        signatures.cell("reviewer", "by"),
        Some(&Cell::Text("zhang".into()))
    );

    // The PDF holds the Chinese headings and the figures.
    let pdf = get_bytes(c, "wang", "/api/v1/reports/daily?date=2026-12-01&format=pdf").await;
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    if let Ok(dir) = std::env::var("WATCHPOST_KEEP_REPORTS") {
        std::fs::write(std::path::Path::new(&dir).join("daily-2026-12-01.pdf"), &pdf).expect("keep");
    }
    let text = pdf_text(&pdf);
    for want in [
        "日常巡检记录 2026-12-01",
        "机房环境",
        "人工巡检项",
        "签字后的更正",
        "A-201",
        "28.5",
        "压力表指针在红区",
        "zhang",
        "异常",
    ] {
        assert!(text.contains(want), "{want:?} not in the PDF's text:\n{text}");
    }
    // Signing stored the record as it was signed; every generation is kept.
    let (s, text) = call_as(
        c,
        "wang",
        "GET",
        "/api/v1/reports?kind=daily&period=2026-12-01",
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let stored: Vec<StoredReport> = serde_json::from_str(&text).expect("stored");
    assert!(stored.iter().any(|s| s.format == "pdf"));
    assert!(
        stored.iter().filter(|s| s.format == "html").count() >= 2,
        "{stored:?}"
    );

    // The month's statistics count the inspections: 2026-12-01 (2 due),
    // 2026-12-02 so far (ups-panel due, not recorded yet).
    let (s, text) = call_as(c, "wang", "GET", "/api/v1/reports/monthly?month=2026-12", None).await;
    assert_eq!(s, 200, "{text}");
    let m: ReportData = serde_json::from_str(&text).expect("monthly");
    let t = m.table("inspections").expect("inspections table");
    for (key, due, done, abnormal) in [
        ("2026-12-01", 2.0, 2.0, 2.0),
        ("2026-12-02", 1.0, 0.0, 0.0),
        ("total", 3.0, 2.0, 2.0),
    ] {
        assert_eq!(
            (n(t, key, "due"), n(t, key, "done"), n(t, key, "abnormal")),
            (Some(due), Some(done), Some(abnormal)),
            "{key}"
        );
    }
    assert_eq!(
        t.cell("2026-12-01", "reviewed_by"),
        Some(&Cell::Text("zhang".into()))
    );
    assert_eq!(m.table("inspection_findings").map(|t| t.rows.len()), Some(2));

    // Days it cannot be about.
    for (q, want) in [
        ("date=2026-12-32", "expected YYYY-MM-DD"),
        ("date=2026-12-03", "in the future"),
        ("date=2020-01-01", "nothing to record"),
    ] {
        let (s, text) = call_as(c, "wang", "GET", &format!("/api/v1/reports/daily?{q}"), None).await;
        assert_eq!(s, 400, "{q}: {text}");
        assert!(text.contains(want), "{q}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_record_is_sent_at_daily_at_with_its_pdf_once() {
    let smtp = SmtpSink::start(None, false);
    let hook = Receiver::start("{}").await;
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("oncall.toml"), ROSTER).expect("roster");
    let config = collector_config_from(
        data.path(),
        &format!(
            r#"[collector]
oncall = "oncall.toml"
[reports]
daily_at = "08:30"
send_to = ["ops"]
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
[[route]]
team = "ops"
channels = ["mail", "hook"]
severity = ["urgent"]
"#,
            smtp.port,
            hook.url("/hook")
        ),
    );
    let clock = Arc::new(Manual(AtomicI64::new(cst("2026-12-01 10:00"))));
    let collector = Collector::start_with_clock(
        config,
        RuleSet::parse("", "rules.toml").expect("rules"),
        clock.clone(),
    )
    .await
    .expect("collector starts");
    let desk = Desk { collector, clock };
    // Something to record on 2026-12-01 (a minor fault: routed to nobody).
    desk.report("2026-12-01 10:00", "minor", "web-1", "社保", "2026-12-01 10:00")
        .await;
    let scheduled = || async {
        let all: Vec<StoredReport> =
            get(&desk.collector, "/api/v1/reports?kind=daily&period=2026-12-01").await;
        all.into_iter()
            .filter(|r| r.generated_by == "schedule")
            .collect::<Vec<_>>()
    };
    // Before daily_at: nothing made, nothing sent.
    desk.at("2026-12-02 08:29");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(scheduled().await.is_empty());
    assert!(smtp.mails().is_empty());

    desk.at("2026-12-02 08:31");
    let mails = wait_for(
        "the record mailed to both members of ops",
        std::time::Duration::from_secs(30),
        || async {
            let m = smtp.mails();
            (m.len() >= 2).then_some(m)
        },
    )
    .await;
    let mut to: Vec<String> = mails
        .iter()
        .map(|m| m["to"].as_str().unwrap_or_default().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["li <li@example.gov.cn>", "zhang <zhang@example.gov.cn>"]);
    for m in &mails {
        assert!(
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("日常巡检记录 2026-12-01"),
            "{m}"
        );
        assert!(
            m["body"]
                .as_str()
                .unwrap_or_default()
                .contains("/api/v1/reports/"),
            "{m}"
        );
        let a = &m["attachments"][0];
        assert_eq!(a["content_type"], "application/pdf", "{m}");
        assert!(
            a["filename"].as_str().unwrap_or_default().ends_with(".pdf"),
            "{m}"
        );
        let pdf = std::fs::read(a["file"].as_str().expect("attachment file")).expect("attachment");
        let text = pdf_text(&pdf);
        assert!(
            text.contains("日常巡检记录 2026-12-01") && text.contains("web-1"),
            "{text}"
        );
    }
    let hooks = wait_for(
        "the robot summary",
        std::time::Duration::from_secs(10),
        || async {
            let r = hook.requests();
            (!r.is_empty()).then_some(r)
        },
    )
    .await;
    let body = hooks[0].json();
    assert!(
        body["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("日常巡检记录 2026-12-01"),
        "{body}"
    );
    let text = body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("巡检项") && text.contains("/api/v1/reports/"),
        "{body}"
    );
    let stored = scheduled().await;
    assert!(
        stored.iter().any(|r| r.format == "pdf") && stored.iter().any(|r| r.format == "html"),
        "{stored:?}"
    );
    // Once: later ticks send nothing more.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert_eq!(smtp.mails().len(), 2);
    assert_eq!(hook.requests().len(), 1);
}
