//! The daily record's fault figures: per entity opened, resolved, still
//! open and overdue at the day's end, and the day's fault list.

use watchpost_model::api::{Fault, FaultSource, FaultStatus};
use watchpost_model::reports::{Cell, Column, ReportTable};

use super::Say;
use crate::reports::cells::{col, local_of, ms, num, table, text};

/// Fault counts of one entity on the day.
#[derive(Default)]
pub(super) struct FaultCounts {
    pub opened: usize,
    pub resolved: usize,
    pub open: usize,
    pub overdue: usize,
}

pub(super) fn counts(f: &Fault) -> bool {
    f.source != FaultSource::Drill && f.status != FaultStatus::Suppressed
}

/// Whether fault `f` was open at `end` past a deadline it had not met.
pub(super) fn overdue_at(f: &Fault, end: i64) -> bool {
    let resolved = f.resolved_at.as_deref().and_then(ms).unwrap_or(i64::MAX);
    if resolved < end {
        return false;
    }
    let acked = f.acknowledged_at.as_deref().and_then(ms).unwrap_or(i64::MAX);
    let past = |due: &str, done: i64| ms(due).is_some_and(|d| d < end && done > d);
    past(&f.response_due, acked) || past(&f.resolve_due, resolved)
}

pub(super) fn fault_counts<'a>(
    faults: impl Iterator<Item = &'a Fault>,
    (from, end): (i64, i64),
) -> FaultCounts {
    let mut c = FaultCounts::default();
    for f in faults {
        let opened = ms(&f.opened_at).unwrap_or(i64::MAX);
        let resolved = f.resolved_at.as_deref().and_then(ms).unwrap_or(i64::MAX);
        if opened >= end || resolved < from {
            continue;
        }
        c.opened += usize::from(opened >= from);
        c.resolved += usize::from(resolved >= from && resolved < end);
        c.open += usize::from(resolved >= end);
        c.overdue += usize::from(overdue_at(f, end));
    }
    c
}

pub(super) fn fault_cells(c: &FaultCounts) -> [Cell; 4] {
    [
        num(c.opened as f64),
        num(c.resolved as f64),
        num(c.open as f64),
        num(c.overdue as f64),
    ]
}

pub(super) fn fault_columns() -> [Column; 4] {
    [
        col("faults_opened", "新增故障", "faults opened"),
        col("faults_resolved", "已解决", "resolved"),
        col("faults_open", "日终未解决", "open at day's end"),
        col("faults_overdue", "超时", "overdue"),
    ]
}

pub(super) fn status_columns() -> [Column; 2] {
    [
        col("status", "状态", "status"),
        col("findings", "异常说明", "findings"),
    ]
}

pub(super) fn status_cells(findings: Vec<String>) -> [Cell; 2] {
    if findings.is_empty() {
        [text("normal"), text("")]
    } else {
        [text("abnormal"), text(findings.join("; "))]
    }
}

pub(super) fn fault_findings(say: Say, fc: &FaultCounts, out: &mut Vec<String>) {
    for (n, zh, en) in [
        (fc.opened, "新增故障", "fault(s) opened"),
        (fc.open, "未解决", "still open"),
        (fc.overdue, "超时", "overdue"),
    ] {
        if n > 0 {
            out.push(if say.en {
                format!("{n} {en}")
            } else {
                format!("{zh} {n}")
            });
        }
    }
}

pub(super) fn fault_list(faults: &[&Fault], (from, end): (i64, i64), tz: &jiff::tz::TimeZone) -> ReportTable {
    let mut t = table(
        "faults",
        "当日故障",
        "Faults of the day",
        vec![
            col("id", "编号", "id"),
            col("severity", "级别", "severity"),
            col("host", "主机", "host"),
            col("rule", "规则", "rule"),
            col("summary", "摘要", "summary"),
            col("opened_at", "发生时间", "opened at"),
            col("resolved_at", "解决时间", "resolved at"),
            col("overdue", "超时", "overdue"),
        ],
    );
    for f in faults {
        let opened = ms(&f.opened_at).unwrap_or(i64::MAX);
        let resolved = f.resolved_at.as_deref().and_then(ms).unwrap_or(i64::MAX);
        if opened >= end || resolved < from {
            continue;
        }
        t.rows.push(vec![
            num(f.id as f64),
            text(f.severity.as_str()),
            text(f.host.clone()),
            text(f.rule.clone()),
            text(f.summary.clone()),
            text(local_of(tz, &f.opened_at)),
            f.resolved_at
                .as_deref()
                .map_or(Cell::None, |r| text(local_of(tz, r))),
            text(if overdue_at(f, end) { "yes" } else { "no" }),
        ]);
    }
    t
}
