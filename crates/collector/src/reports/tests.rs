use super::monthly::*;
use crate::maintenance::Window;
use watchpost_calendar::Calendar;
use watchpost_model::api::Fault;
use watchpost_model::reports::Cell;

fn fault(id: i64, rule: &str, host: &str, opened: &str, resolved: Option<&str>) -> Fault {
    serde_json::from_value(serde_json::json!({
        "id": id, "rule": rule, "severity": "urgent", "status": if resolved.is_some() { "resolved" } else { "open" },
        "host": host, "metric": "", "labels": {}, "summary": "", "value": null, "count": 1,
        "opened_at": opened, "last_seen_at": opened, "resolved_at": resolved,
        "response_due": opened, "resolve_due": opened, "timeline": [],
    }))
    .expect("a fault")
}

#[test]
fn availability_counts_unreachability_outside_windows_in_service_hours() {
    let calendar = Calendar::default();
    // November 2026 in Beijing time.
    let from = 1_793_462_400_000; // 2026-11-01T00:00+08:00
    let until = from + 30 * 86_400_000;
    let faults = vec![
        // db-1 silent 2 h, of which 1 h inside a maintenance window.
        fault(
            1,
            "agent_silent",
            "db-1",
            "2026-11-02T02:00:00Z",
            Some("2026-11-02T04:00:00Z"),
        ),
        // Overlapping with the next: counted once.
        fault(
            2,
            "agent_silent",
            "web-1",
            "2026-11-03T01:00:00Z",
            Some("2026-11-03T02:00:00Z"),
        ),
        fault(
            3,
            "ping_down",
            "web-1",
            "2026-11-03T01:30:00Z",
            Some("2026-11-03T02:30:00Z"),
        ),
        // Not an unreachability rule.
        fault(
            4,
            "cpu_high",
            "web-1",
            "2026-11-04T01:00:00Z",
            Some("2026-11-04T09:00:00Z"),
        ),
        // Opened in October, still open: counts from the month's start to its end.
        fault(5, "agent_silent", "old-1", "2026-10-20T00:00:00Z", None),
    ];
    // 03:00–04:00Z on 2 November: the second hour of db-1's outage.
    let windows = vec![
        Window::new(crate::maintenance::WindowSpec {
            id: 1,
            host: Some("db-1".into()),
            starts_at_ms: from + 35 * 3_600_000,
            ends_at_ms: from + 36 * 3_600_000,
            reason: "patching".into(),
            ticket: "CHG-1".into(),
            created_by: "wang".into(),
            created_at_ms: from,
            ..Default::default()
        })
        .expect("a window"),
    ];
    let team = |_: &Fault| "ops".to_string();
    let input = |service| MonthInput {
        period: "2026-11".into(),
        span: (from, until),
        previous_from: from - 31 * 86_400_000,
        now_ms: until + 86_400_000,
        faults: &faults,
        notifications: &[],
        changes: &[],
        windows: &windows,
        hosts: ["db-1", "web-1", "idle-1"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        unreachable_rules: ["agent_silent", "ping_down"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        team_of: &team,
        service,
        calendar: &calendar,
        target_pct: 99.9,
        group_labels: &[],
        generated_at: String::new(),
        inspections: &[],
    };
    let r = monthly(&input(ServiceHours::Always));
    let t = r.table("availability").expect("table");
    let month_min = 30.0 * 1440.0;
    // db-1: the window (1 h) leaves service time and unavailable time alike.
    assert_eq!(t.cell("db-1", "unavailable_min").and_then(Cell::num), Some(60.0));
    assert_eq!(
        t.cell("db-1", "service_min").and_then(Cell::num),
        Some(month_min - 60.0)
    );
    let want = (1.0 - 60.0 / (month_min - 60.0)) * 100.0;
    let got = t
        .cell("db-1", "availability_pct")
        .and_then(Cell::num)
        .expect("a figure");
    assert!((got - want).abs() < 0.001, "{got} vs {want}");
    assert_eq!(t.cell("web-1", "unavailable_min").and_then(Cell::num), Some(90.0));
    assert_eq!(
        t.cell("idle-1", "availability_pct").and_then(Cell::num),
        Some(100.0)
    );
    assert_eq!(t.cell("old-1", "availability_pct").and_then(Cell::num), Some(0.0));
    assert_eq!(t.cell("old-1", "met"), Some(&Cell::Text("no".into())));
    // Working hours only: web-1's outage was 09:00–10:30 Beijing time on a Tuesday.
    let r = monthly(&input(ServiceHours::Calendar));
    let t = r.table("availability").expect("table");
    assert_eq!(t.cell("web-1", "unavailable_min").and_then(Cell::num), Some(90.0));
    // 21 working days of 7 h in November 2026.
    assert_eq!(
        t.cell("web-1", "service_min").and_then(Cell::num),
        Some(21.0 * 7.0 * 60.0)
    );
}

#[test]
fn percentiles_and_intervals() {
    assert_eq!(p90(&[]), None);
    assert_eq!(p90(&[5.0]), Some(5.0));
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(p90(&v), Some(9.0));
    let v: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(p90(&v), Some(18.0));
    assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
    assert_eq!(
        merge(vec![(5, 9), (1, 3), (2, 4), (9, 10)]),
        vec![(1, 4), (5, 10)]
    );
    assert_eq!(
        subtract(&[(0, 100)], &[(10, 20), (90, 120)]),
        vec![(0, 10), (20, 90)]
    );
    assert_eq!(subtract(&[(0, 10), (20, 30)], &[(5, 25)]), vec![(0, 5), (25, 30)]);
}
