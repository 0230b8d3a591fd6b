//! Monthly service statistics (运维月报), computed from the fault records
//! alone (what `GET /api/v1/faults` answers), so a reader can recompute
//! every figure; the formulas are the report's notes. Drills never count.
//!
//! No I/O: the caller reads the records and hands them in.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use watchpost_calendar::Calendar;
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultSource, FaultStatus};
use watchpost_model::changes::{Change, ChangeStatus};
use watchpost_model::reports::{Cell, Chart, Column, ReportData, Text};

use watchpost_model::inspections::InspectionDay;

use super::cells::{col, ms, num, opt, table, text};
use crate::db::NotificationRow;
use crate::maintenance::Window;

const MINUTE: f64 = 60_000.0;

pub use crate::config::ServiceHours;

/// What the month's statistics are computed from.
pub struct MonthInput<'a> {
    /// `2026-11`.
    pub period: String,
    /// First millisecond of the month (calendar zone) and of the next.
    pub span: (i64, i64),
    /// First millisecond of the month before.
    pub previous_from: i64,
    /// Now: deadlines not yet due are not judged, time after it is not service time.
    pub now_ms: i64,
    /// Faults opened in the month before and in this one, and earlier ones
    /// that may still have been unresolved in it (for availability).
    pub faults: &'a [Fault],
    /// Notifications created in the month.
    pub notifications: &'a [NotificationRow],
    /// Change requests.
    pub changes: &'a [Change],
    /// Maintenance windows.
    pub windows: &'a [Window],
    /// Hosts and devices availability is given for.
    pub hosts: BTreeSet<String>,
    /// Rules whose faults mean "cannot be reached" (agent silence and `unreachable = true`).
    pub unreachable_rules: BTreeSet<String>,
    /// The team a fault was routed to.
    pub team_of: &'a dyn Fn(&Fault) -> String,
    /// Service hours and the calendar they are read on.
    pub service: ServiceHours,
    /// The calendar.
    pub calendar: &'a Calendar,
    /// Availability target (%).
    pub target_pct: f64,
    /// Labels faults are grouped by (business system, host group).
    pub group_labels: &'a [String],
    /// When generated (RFC 3339).
    pub generated_at: String,
    /// The inspection record of each day of the month up to today.
    pub inspections: &'a [InspectionDay],
}

/// Mean of `v`.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The 90th percentile by nearest rank: the smallest value with at least
/// 90 % of the values at or below it.
pub fn p90(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (0.9 * s.len() as f64).ceil() as usize;
    Some(s[rank.max(1) - 1])
}

fn severity_name(s: Severity) -> &'static str {
    s.as_str()
}

const SEVERITIES: [Severity; 3] = [Severity::Urgent, Severity::General, Severity::Minor];

/// Whether a fault counts: not a drill, not suppressed by a window.
fn counts(f: &Fault) -> bool {
    f.source != FaultSource::Drill && f.status != FaultStatus::Suppressed
}

/// Minutes to acknowledge and to resolve.
fn times(f: &Fault) -> (Option<f64>, Option<f64>) {
    let opened = ms(&f.opened_at);
    let since = |t: Option<&String>| Some((ms(t?)? - opened?) as f64 / MINUTE);
    (since(f.acknowledged_at.as_ref()), since(f.resolved_at.as_ref()))
}

/// Whether the response (resp. resolve) deadline is judged, and met.
fn judged(met: Option<bool>, due: &str, now: i64) -> Option<bool> {
    match met {
        Some(m) => Some(m),
        None if ms(due).is_some_and(|d| d < now) => Some(false),
        None => None,
    }
}

struct Sums {
    ack: Vec<f64>,
    res: Vec<f64>,
    resp_due: u64,
    resp_met: u64,
    resv_due: u64,
    resv_met: u64,
}

impl Sums {
    fn new() -> Sums {
        Sums {
            ack: Vec::new(),
            res: Vec::new(),
            resp_due: 0,
            resp_met: 0,
            resv_due: 0,
            resv_met: 0,
        }
    }

    fn add(&mut self, f: &Fault, now: i64) {
        let (a, r) = times(f);
        self.ack.extend(a);
        self.res.extend(r);
        if let Some(m) = judged(f.response_met, &f.response_due, now) {
            self.resp_due += 1;
            self.resp_met += u64::from(m);
        }
        if let Some(m) = judged(f.resolve_met, &f.resolve_due, now) {
            self.resv_due += 1;
            self.resv_met += u64::from(m);
        }
    }

    fn times_row(&self, key: &str) -> Vec<Cell> {
        vec![
            text(key),
            num(self.ack.len() as f64),
            opt(mean(&self.ack)),
            opt(p90(&self.ack)),
            num(self.res.len() as f64),
            opt(mean(&self.res)),
            opt(p90(&self.res)),
        ]
    }

    fn compliance_row(&self, key: &str) -> Vec<Cell> {
        let pct = |met: u64, due: u64| (due > 0).then(|| met as f64 * 100.0 / due as f64);
        vec![
            text(key),
            num(self.resp_due as f64),
            num(self.resp_met as f64),
            opt(pct(self.resp_met, self.resp_due)),
            num(self.resv_due as f64),
            num(self.resv_met as f64),
            opt(pct(self.resv_met, self.resv_due)),
        ]
    }
}

fn times_columns(first: Column) -> Vec<Column> {
    vec![
        first,
        col("acknowledged", "已响应数", "acknowledged"),
        col("mtta_mean_min", "MTTA 平均（分钟）", "MTTA mean (min)"),
        col("mtta_p90_min", "MTTA P90（分钟）", "MTTA p90 (min)"),
        col("resolved", "已解决数", "resolved"),
        col("mttr_mean_min", "MTTR 平均（分钟）", "MTTR mean (min)"),
        col("mttr_p90_min", "MTTR P90（分钟）", "MTTR p90 (min)"),
    ]
}

fn compliance_columns(first: Column) -> Vec<Column> {
    vec![
        first,
        col("response_judged", "响应应达数", "response judged"),
        col("response_met", "响应达标数", "response met"),
        col("response_met_pct", "响应达标率 %", "response met %"),
        col("resolve_judged", "解决应达数", "resolve judged"),
        col("resolve_met", "解决达标数", "resolve met"),
        col("resolve_met_pct", "解决达标率 %", "resolve met %"),
    ]
}

/// Merges intervals in place (sorted, overlapping ones joined).
pub(super) fn merge(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.retain(|(a, b)| b > a);
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` minus every interval of `b` (both merged).
pub(super) fn subtract(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(mut s, e) in a {
        for &(bs, be) in b {
            if be <= s || bs >= e {
                continue;
            }
            if bs > s {
                out.push((s, bs));
            }
            s = s.max(be);
            if s >= e {
                break;
            }
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// Service milliseconds in `[from, until)`.
fn service_ms(from: i64, until: i64, service: ServiceHours, calendar: &Calendar) -> i64 {
    if until <= from {
        return 0;
    }
    match service {
        ServiceHours::Always => until - from,
        ServiceHours::Calendar => {
            // Minute by minute: working hours start and end on whole minutes.
            let mut total = 0;
            let mut t = from;
            while t < until {
                let next = ((t.div_euclid(60_000)) + 1) * 60_000;
                let end = next.min(until);
                let working = Timestamp::from_millisecond(t).is_ok_and(|ts| calendar.is_working_time(ts));
                if working {
                    total += end - t;
                }
                t = end;
            }
            total
        }
    }
}

/// Computes the month's statistics.
pub fn monthly(m: &MonthInput<'_>) -> ReportData {
    let (from, until) = m.span;
    let now = m.now_ms;
    let in_month = |f: &&Fault| ms(&f.opened_at).is_some_and(|t| t >= from && t < until);
    let in_previous = |f: &&Fault| ms(&f.opened_at).is_some_and(|t| t >= m.previous_from && t < from);
    let month: Vec<&Fault> = m.faults.iter().filter(in_month).filter(|f| counts(f)).collect();
    let previous: Vec<&Fault> = m
        .faults
        .iter()
        .filter(in_previous)
        .filter(|f| counts(f))
        .collect();
    let drills = m
        .faults
        .iter()
        .filter(in_month)
        .filter(|f| f.source == FaultSource::Drill)
        .count();
    let suppressed = m
        .faults
        .iter()
        .filter(in_month)
        .filter(|f| f.status == FaultStatus::Suppressed)
        .count();
    let mut tables = Vec::new();

    // 1. By severity and source, with the month before.
    let mut t = table(
        "faults_by_severity",
        "故障数（按级别、来源）",
        "Faults by severity and source",
        vec![
            col("severity", "级别", "severity"),
            col("rule", "监控发现", "from rules"),
            col("reported", "用户报障", "reported"),
            col("total", "合计", "total"),
            col("previous_month", "上月合计", "month before"),
        ],
    );
    for s in SEVERITIES.into_iter().map(Some).chain([None]) {
        let of = |v: &[&Fault], src: Option<FaultSource>| {
            v.iter()
                .filter(|f| s.is_none_or(|s| f.severity == s) && src.is_none_or(|x| f.source == x))
                .count() as f64
        };
        t.rows.push(vec![
            text(s.map_or("total", severity_name)),
            num(of(&month, Some(FaultSource::Rule))),
            num(of(&month, Some(FaultSource::Reported))),
            num(of(&month, None)),
            num(of(&previous, None)),
        ]);
    }
    tables.push(t);

    // 2. By business-system / host-group label.
    for label in m.group_labels {
        let mut t = table(
            &format!("faults_by_{label}"),
            &format!("故障数（按 {label}）"),
            &format!("Faults by {label}"),
            vec![
                col(label, label, label),
                col("urgent", "紧急", "urgent"),
                col("general", "一般", "general"),
                col("minor", "轻微", "minor"),
                col("total", "合计", "total"),
                col("previous_month", "上月合计", "month before"),
            ],
        );
        let key = |f: &Fault| f.labels.get(label).cloned().unwrap_or_else(|| "(none)".into());
        let keys: BTreeSet<String> = month.iter().chain(previous.iter()).map(|f| key(f)).collect();
        for k in keys {
            let here: Vec<&&Fault> = month.iter().filter(|f| key(f) == k).collect();
            let sev = |s: Severity| num(here.iter().filter(|f| f.severity == s).count() as f64);
            t.rows.push(vec![
                text(k.clone()),
                sev(Severity::Urgent),
                sev(Severity::General),
                sev(Severity::Minor),
                num(here.len() as f64),
                num(previous.iter().filter(|f| key(f) == k).count() as f64),
            ]);
        }
        tables.push(t);
    }

    // 3. MTTA / MTTR and deadline compliance, per severity, team and person.
    type KeyFn<'k> = Box<dyn Fn(&Fault) -> String + 'k>;
    let groups: [(&str, &str, &str, KeyFn<'_>); 3] = [
        (
            "severity",
            "级别",
            "severity",
            Box::new(|f: &Fault| f.severity.as_str().to_string()),
        ),
        ("team", "团队", "team", Box::new(|f: &Fault| (m.team_of)(f))),
        (
            "person",
            "响应人",
            "acknowledged by",
            Box::new(|f: &Fault| f.acknowledged_by.clone().unwrap_or_else(|| "(none)".into())),
        ),
    ];
    for (id, zh, en, key) in &groups {
        let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
        if *id == "severity" {
            for s in SEVERITIES {
                sums.insert(s.as_str().into(), Sums::new());
            }
        }
        let mut all = Sums::new();
        for f in &month {
            sums.entry(key(f)).or_insert_with(Sums::new).add(f, now);
            all.add(f, now);
        }
        let mut times_t = table(
            &format!("mtta_mttr_by_{id}"),
            &format!("平均响应与解决时长（按{zh}）"),
            &format!("MTTA and MTTR by {en}"),
            times_columns(col(id, zh, en)),
        );
        let mut comp_t = table(
            &format!("compliance_by_{id}"),
            &format!("时限达标（按{zh}）"),
            &format!("Deadline compliance by {en}"),
            compliance_columns(col(id, zh, en)),
        );
        // Severities from the most urgent; teams and people by name.
        let mut keys: Vec<&String> = sums.keys().collect();
        if *id == "severity" {
            keys.sort_by_key(|k| SEVERITIES.iter().position(|s| s.as_str() == k.as_str()));
        }
        for k in keys {
            times_t.rows.push(sums[k].times_row(k));
            comp_t.rows.push(sums[k].compliance_row(k));
        }
        times_t.rows.push(all.times_row("total"));
        comp_t.rows.push(all.compliance_row("total"));
        tables.push(times_t);
        tables.push(comp_t);
    }

    // 4. Overdue faults.
    let mut t = table(
        "overdue",
        "超时故障",
        "Faults past a deadline",
        vec![
            col("id", "编号", "id"),
            col("severity", "级别", "severity"),
            col("host", "主机", "host"),
            col("rule", "规则", "rule"),
            col("opened_at", "发生时间", "opened at"),
            col("response_met", "响应达标", "response met"),
            col("resolve_met", "解决达标", "resolve met"),
            col("summary", "摘要", "summary"),
        ],
    );
    let yes_no = |v: Option<bool>| text(v.map_or("-", |b| if b { "yes" } else { "no" }));
    for f in month.iter().rev() {
        let resp = judged(f.response_met, &f.response_due, now);
        let resv = judged(f.resolve_met, &f.resolve_due, now);
        if resp == Some(false) || resv == Some(false) {
            t.rows.push(vec![
                text(f.id.to_string()),
                text(f.severity.as_str()),
                text(f.host.clone()),
                text(f.rule.clone()),
                text(f.opened_at.clone()),
                yes_no(resp),
                yes_no(resv),
                text(f.summary.clone()),
            ]);
        }
    }
    tables.push(t);

    // 5. Availability.
    let end = until.min(now);
    let service_total = service_ms(from, end, m.service, m.calendar);
    let mut hosts = m.hosts.clone();
    // Hosts down in the month, also since before it.
    for f in m
        .faults
        .iter()
        .filter(|f| counts(f) && m.unreachable_rules.contains(&f.rule))
    {
        let opened = ms(&f.opened_at).unwrap_or(i64::MAX);
        let resolved = f.resolved_at.as_deref().and_then(ms).unwrap_or(i64::MAX);
        if opened < until && resolved > from {
            hosts.insert(f.host.clone());
        }
    }
    let mut t = table(
        "availability",
        "可用率",
        "Availability",
        vec![
            col("host", "主机/设备", "host or device"),
            col("service_min", "服务时长（分钟）", "service time (min)"),
            col("unavailable_min", "不可用时长（分钟）", "unavailable (min)"),
            col("availability_pct", "可用率 %", "availability %"),
            col("target_pct", "目标 %", "target %"),
            col("met", "达标", "met"),
        ],
    );
    let mut chart_hosts = Vec::new();
    let mut chart_values = Vec::new();
    for host in &hosts {
        // Faults opened before the month that were still unresolved count too.
        let down: Vec<(i64, i64)> = m
            .faults
            .iter()
            .filter(|f| counts(f) && &f.host == host && m.unreachable_rules.contains(&f.rule))
            .filter_map(|f| {
                let a = ms(&f.opened_at)?;
                let b = f.resolved_at.as_deref().and_then(ms).unwrap_or(end);
                Some((a.max(from), b.min(end)))
            })
            .collect();
        let down = merge(down);
        let windows: Vec<(i64, i64)> = m
            .windows
            .iter()
            .filter(|w| {
                let probe = w.starts_at_ms.max(from);
                m.faults
                    .iter()
                    .filter(|f| &f.host == host && m.unreachable_rules.contains(&f.rule))
                    .any(|f| w.covers(&f.rule, host, &f.labels, probe))
                    || (w.host.as_deref() == Some(host.as_str()) || w.hosts.iter().any(|h| h == host))
            })
            .map(|w| (w.starts_at_ms.max(from), w.ends_at_ms.min(end)))
            .collect();
        let windows = merge(windows);
        let unavailable: i64 = subtract(&down, &windows)
            .iter()
            .map(|(a, b)| service_ms(*a, *b, m.service, m.calendar))
            .sum();
        let service = service_total
            - windows
                .iter()
                .map(|(a, b)| service_ms(*a, *b, m.service, m.calendar))
                .sum::<i64>();
        let pct = (service > 0).then(|| (1.0 - unavailable as f64 / service as f64) * 100.0);
        chart_hosts.push(host.clone());
        chart_values.push(pct.unwrap_or(100.0));
        t.rows.push(vec![
            text(host.clone()),
            num(service as f64 / MINUTE),
            num(unavailable as f64 / MINUTE),
            pct.map_or(Cell::None, |p| Cell::Num((p * 1000.0).round() / 1000.0)),
            num(m.target_pct),
            text(pct.map_or("-", |p| if p >= m.target_pct { "yes" } else { "no" })),
        ]);
    }
    tables.push(t);

    // 6. Noisiest rules, flapping, notifications, changes, satisfaction.
    let mut per_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in &month {
        let e = per_rule.entry(f.rule.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(f.flapping);
    }
    let mut rules: Vec<(&str, (usize, usize))> = per_rule.into_iter().collect();
    rules.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let mut t = table(
        "noisiest_rules",
        "告警最多的规则",
        "Noisiest rules",
        vec![
            col("rule", "规则", "rule"),
            col("faults", "故障数", "faults"),
            col("flapping", "其中抖动", "of them flapping"),
        ],
    );
    for (rule, (n, flap)) in rules.into_iter().take(10) {
        t.rows.push(vec![text(rule), num(n as f64), num(flap as f64)]);
    }
    tables.push(t);

    let drill_ids: BTreeSet<i64> = m
        .faults
        .iter()
        .filter(|f| f.source == FaultSource::Drill)
        .map(|f| f.id)
        .collect();
    let mut per_channel: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for n in m
        .notifications
        .iter()
        .filter(|n| !drill_ids.contains(&n.fault_id))
    {
        let e = per_channel.entry(n.channel.as_str()).or_default();
        match n.status.as_str() {
            "delivered" => e[0] += 1,
            "failed" => e[1] += 1,
            _ => {}
        }
        if n.step > 0 {
            e[2] += 1;
        }
    }
    let mut t = table(
        "notifications_by_channel",
        "通知（按通道）",
        "Notifications by channel",
        vec![
            col("channel", "通道", "channel"),
            col("sent", "已送达", "delivered"),
            col("failed", "失败", "failed"),
            col("escalations", "升级通知", "escalation steps"),
        ],
    );
    for (c, [sent, failed, esc]) in per_channel {
        t.rows.push(vec![
            text(c),
            num(sent as f64),
            num(failed as f64),
            num(esc as f64),
        ]);
    }
    tables.push(t);

    let mut t = table(
        "changes",
        "变更",
        "Changes",
        vec![col("status", "状态", "status"), col("changes", "数量", "changes")],
    );
    let in_span = |c: &&Change| ms(&c.starts_at).is_some_and(|s| s >= from && s < until);
    for (status, key) in [
        (ChangeStatus::Done, "done"),
        (ChangeStatus::RolledBack, "rolled_back"),
        (ChangeStatus::Cancelled, "cancelled"),
        (ChangeStatus::Rejected, "rejected"),
        (ChangeStatus::InProgress, "in_progress"),
        (ChangeStatus::Approved, "approved"),
        (ChangeStatus::Requested, "requested"),
    ] {
        let n = m
            .changes
            .iter()
            .filter(in_span)
            .filter(|c| c.status == status)
            .count();
        t.rows.push(vec![text(key), num(n as f64)]);
    }
    tables.push(t);

    let reported: Vec<&&Fault> = month
        .iter()
        .filter(|f| f.source == FaultSource::Reported)
        .collect();
    let scores: Vec<f64> = reported
        .iter()
        .filter_map(|f| f.report.as_ref()?.feedback.as_ref())
        .map(|fb| f64::from(fb.satisfaction))
        .collect();
    let mut t = table(
        "satisfaction",
        "用户满意度（回访）",
        "Reporters' satisfaction (follow-up)",
        vec![col("figure", "项目", "figure"), col("value", "数值", "value")],
    );
    t.rows.push(vec![text("reported"), num(reported.len() as f64)]);
    t.rows.push(vec![text("with_feedback"), num(scores.len() as f64)]);
    t.rows.push(vec![text("mean_satisfaction"), opt(mean(&scores))]);
    for s in 1..=5 {
        t.rows.push(vec![
            text(format!("score_{s}")),
            num(scores.iter().filter(|x| **x == f64::from(s)).count() as f64),
        ]);
    }
    tables.push(t);

    // Charts: faults per day by severity, MTTA/MTTR per day, availability.
    let tz = m.calendar.time_zone().clone();
    let day_of = |t: i64| {
        Timestamp::from_millisecond(t)
            .map(|t| t.to_zoned(tz.clone()).date().to_string())
            .unwrap_or_default()
    };
    let mut days: Vec<String> = Vec::new();
    let mut t0 = from;
    while t0 < until {
        let d = day_of(t0);
        if !days.contains(&d) {
            days.push(d);
        }
        t0 += 3_600_000;
    }
    let per_day = |pick: &dyn Fn(&Fault) -> Option<f64>, agg: fn(&[f64]) -> Option<f64>| -> Vec<f64> {
        days.iter()
            .map(|d| {
                let v: Vec<f64> = month
                    .iter()
                    .filter(|f| ms(&f.opened_at).map(day_of).as_ref() == Some(d))
                    .filter_map(|f| pick(f))
                    .collect();
                agg(&v).unwrap_or(0.0)
            })
            .collect()
    };
    let count = |v: &[f64]| Some(v.len() as f64);
    let severity_series = SEVERITIES
        .iter()
        .map(|s| {
            let s = *s;
            (
                Text::new(s.chinese(), s.as_str()),
                per_day(&move |f: &Fault| (f.severity == s).then_some(1.0), count),
            )
        })
        .collect();
    tables.extend(super::inspections::month_tables(m.inspections));
    let charts = vec![
        Chart {
            id: "faults_per_day".into(),
            title: Text::new("每日故障数（按级别）", "Faults per day by severity"),
            unit: Text::new("个", "faults"),
            labels: days.iter().map(|d| d[5..].to_string()).collect(),
            series: severity_series,
            stacked: true,
        },
        Chart {
            id: "mtta_mttr_per_day".into(),
            title: Text::new("每日平均响应/解决时长", "MTTA and MTTR per day"),
            unit: Text::new("分钟", "min"),
            labels: days.iter().map(|d| d[5..].to_string()).collect(),
            series: vec![
                (Text::new("MTTA", "MTTA"), per_day(&|f: &Fault| times(f).0, mean)),
                (Text::new("MTTR", "MTTR"), per_day(&|f: &Fault| times(f).1, mean)),
            ],
            stacked: false,
        },
        Chart {
            id: "availability".into(),
            title: Text::new("可用率", "Availability"),
            unit: Text::new("%", "%"),
            labels: chart_hosts,
            series: vec![(Text::new("可用率", "availability"), chart_values)],
            stacked: false,
        },
    ];

    let service_text = match m.service {
        ServiceHours::Always => Text::new("服务时间：7×24", "Service hours: 7x24"),
        ServiceHours::Calendar => Text::new(
            format!("服务时间：工作日历 {} 的工作时间", m.calendar.name()),
            format!(
                "Service hours: the working hours of calendar {}",
                m.calendar.name()
            ),
        ),
    };
    ReportData {
        kind: "monthly".into(),
        period: m.period.clone(),
        title: Text::new(
            format!("运维月报 {}", m.period),
            format!("Monthly service report {}", m.period),
        ),
        time_zone: m.calendar.time_zone_name().to_string(),
        generated_at: m.generated_at.clone(),
        facts: vec![
            service_text,
            Text::new(
                format!("可用率目标：{}%", m.target_pct),
                format!("Availability target: {}%", m.target_pct),
            ),
            Text::new(
                format!(
                    "本月故障 {} 个（不含演练 {} 个、维护窗口内抑制 {} 个）",
                    month.len(),
                    drills,
                    suppressed
                ),
                format!(
                    "{} faults this month ({} drills and {} suppressed in maintenance windows not counted)",
                    month.len(),
                    drills,
                    suppressed
                ),
            ),
            {
                let (due, done, abnormal) = m
                    .inspections
                    .iter()
                    .fold((0, 0, 0), |a, d| (a.0 + d.due, a.1 + d.done, a.2 + d.abnormal));
                let signed = m.inspections.iter().filter(|d| d.signed.is_some()).count();
                Text::new(
                    format!("巡检：应检 {due} 项次，已检 {done}，异常 {abnormal}；{signed} 天已签字"),
                    format!(
                        "Inspections: {due} items due, {done} done, {abnormal} abnormal; {signed} days signed"
                    ),
                )
            },
        ],
        tables,
        charts,
        notes: super::formulas::monthly(),
    }
}
