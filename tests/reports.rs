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

    // Stored: every generation a new version, each file with its hash.
    let stored: Vec<StoredReport> = get(&desk.collector, "/api/v1/reports?period=2026-11").await;
    assert!(stored.iter().all(|s| s.sha256.len() == 64 && s.bytes > 0));
    let json_versions: Vec<i64> = stored
        .iter()
        .filter(|s| s.format == "json")
        .map(|s| s.version)
        .collect();
    assert_eq!(json_versions, vec![4, 3, 2, 1]);
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
        ("month=2026-11&format=doc", "expected json, html, csv or xlsx"),
        ("month=2026-11&format=csv&table=nope", "has tables"),
    ] {
        let (status, text) = get_raw(&desk.collector, &format!("/api/v1/reports/monthly?{q}")).await;
        assert_eq!(status, 400, "{q}: {text}");
        assert!(text.contains(want), "{q}: {text}");
    }
}
