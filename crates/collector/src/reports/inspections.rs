//! The inspection checklist as report tables: a day's recordings,
//! amendments and signatures (the daily record), and a month's due, done
//! and abnormal per day with the abnormal findings (the monthly report).

use watchpost_model::inspections::{InspectionDay, InspectionResult};
use watchpost_model::reports::{Cell, ReportTable};

use super::cells::{col, local_of, num, table, text};

/// A day's checklist as recorded, its amendments and its signatures.
pub fn day_tables(i: &InspectionDay, tz: &jiff::tz::TimeZone) -> [ReportTable; 3] {
    let mut items = table(
        "checklist",
        "人工巡检项",
        "Checklist",
        vec![
            col("item", "编号", "item"),
            col("name", "巡检内容", "what"),
            col("scope", "范围", "scope"),
            col("result", "结果", "result"),
            col("remark", "说明", "remark"),
            col("by", "巡检人", "by"),
            col("at", "时间", "at"),
            col("fault", "故障单", "fault"),
        ],
    );
    for s in &i.items {
        let e = s.entry.as_ref();
        items.rows.push(vec![
            text(s.item.id.clone()),
            text(s.item.name.clone()),
            text(s.item.scope.clone()),
            e.map_or_else(|| text("not recorded"), |e| text(e.result.as_str())),
            e.map_or(Cell::None, |e| text(e.remark.clone())),
            e.map_or(Cell::None, |e| text(e.by.clone())),
            e.map_or(Cell::None, |e| text(local_of(tz, &e.at))),
            e.and_then(|e| e.fault_id).map_or(Cell::None, |f| num(f as f64)),
        ]);
    }
    let mut amendments = table(
        "amendments",
        "签字后的更正",
        "Amendments after signing",
        vec![
            col("item", "编号", "item"),
            col("result", "结果", "result"),
            col("remark", "说明", "remark"),
            col("why", "更正原因", "why"),
            col("by", "更正人", "by"),
            col("at", "时间", "at"),
        ],
    );
    for e in i.entries.iter().filter(|e| e.amendment) {
        amendments.rows.push(vec![
            text(e.item.clone()),
            text(e.result.as_str()),
            text(e.remark.clone()),
            text(e.why.clone().unwrap_or_default()),
            text(e.by.clone()),
            text(local_of(tz, &e.at)),
        ]);
    }
    let mut signatures = table(
        "signatures",
        "签字",
        "Signatures",
        vec![
            col("role", "角色", "role"),
            col("by", "签字人", "by"),
            col("at", "时间", "at"),
            col("remark", "意见", "remark"),
        ],
    );
    for (role, s) in [("inspector", &i.signed), ("reviewer", &i.reviewed)] {
        if let Some(s) = s {
            signatures.rows.push(vec![
                text(role),
                text(s.by.clone()),
                text(local_of(tz, &s.at)),
                text(s.remark.clone()),
            ]);
        }
    }
    [items, amendments, signatures]
}

/// Inspections due, done and abnormal per day, and the abnormal findings.
pub fn month_tables(days: &[InspectionDay]) -> [ReportTable; 2] {
    let mut t = table(
        "inspections",
        "巡检完成情况（按日）",
        "Inspections per day",
        vec![
            col("date", "日期", "date"),
            col("due", "应检", "due"),
            col("done", "已检", "done"),
            col("abnormal", "异常", "abnormal"),
            col("signed_by", "巡检人签字", "signed by"),
            col("reviewed_by", "审核人", "reviewed by"),
        ],
    );
    let mut total = (0, 0, 0);
    for d in days.iter().filter(|d| d.due > 0 || !d.entries.is_empty()) {
        total = (total.0 + d.due, total.1 + d.done, total.2 + d.abnormal);
        t.rows.push(vec![
            text(d.date.clone()),
            num(d.due as f64),
            num(d.done as f64),
            num(d.abnormal as f64),
            d.signed.as_ref().map_or(Cell::None, |s| text(s.by.clone())),
            d.reviewed.as_ref().map_or(Cell::None, |s| text(s.by.clone())),
        ]);
    }
    if !t.rows.is_empty() {
        t.rows.push(vec![
            text("total"),
            num(total.0 as f64),
            num(total.1 as f64),
            num(total.2 as f64),
            Cell::None,
            Cell::None,
        ]);
    }
    let mut a = table(
        "inspection_findings",
        "巡检异常项",
        "Abnormal inspection findings",
        vec![
            col("date", "日期", "date"),
            col("item", "编号", "item"),
            col("name", "巡检内容", "what"),
            col("remark", "说明", "remark"),
            col("by", "巡检人", "by"),
            col("fault", "故障单", "fault"),
        ],
    );
    for d in days {
        for i in &d.items {
            if let Some(e) = i
                .entry
                .as_ref()
                .filter(|e| e.result == InspectionResult::Abnormal)
            {
                a.rows.push(vec![
                    text(d.date.clone()),
                    text(i.item.id.clone()),
                    text(i.item.name.clone()),
                    text(e.remark.clone()),
                    text(e.by.clone()),
                    e.fault_id.map_or(Cell::None, |f| num(f as f64)),
                ]);
            }
        }
    }
    [t, a]
}
