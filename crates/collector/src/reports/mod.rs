//! Reports: generated from the fault records (and, for the daily record,
//! the rollups), stored immutably, listed.
//!
//! `monthly` computes the service statistics; `render` writes HTML and
//! CSV. Every generation is a new version: its files are written under the
//! data directory's `reports/` (temporary name, synced, renamed) and
//! recorded with their SHA-256 through the writer; nothing is overwritten,
//! and reading a stored report checks its hash.

pub mod cells;
pub mod checklist;
pub mod daily;
pub mod formulas;
pub mod inspections;
pub mod monthly;
pub mod render;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use sha2::Digest;
use watchpost_model::api::Fault;
use watchpost_model::reports::{ReportData, StoredReport};

use crate::Core;
use crate::db::FaultFilter;
use crate::history;
use crate::notify::Subject;
use crate::time::rfc3339;
use monthly::MonthInput;
use std::sync::Arc;
use watchpost_model::inspections::{InspectionDay, InspectionResult, ItemState};

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request names a period that cannot be reported on.
    #[error("{0}")]
    Bad(String),
    /// Reading the records or writing the files failed.
    #[error("{0}")]
    Failed(String),
}

/// A month read in the calendar's zone: its name, first millisecond, the
/// next month's, and the month before's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `2026-11`.
    pub period: String,
    /// `[from, until)` (ms).
    pub span: (i64, i64),
    /// First millisecond of the month before.
    pub previous_from: i64,
}

/// Reads `YYYY-MM` in `tz`; refuses a malformed month and one that has not
/// begun at `now_ms`.
pub fn parse_month(s: &str, tz: &jiff::tz::TimeZone, now_ms: i64) -> Result<Month, ReportError> {
    let bad = || ReportError::Bad(format!("month={s:?}: expected YYYY-MM, e.g. 2026-11"));
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let y: i16 = y.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    let first = Date::new(y, m, 1).map_err(|_| bad())?;
    let at = |d: Date| -> Result<i64, ReportError> {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ReportError::Bad(format!("month={s:?}: {e}")))
    };
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|_| bad())?;
    let before = first
        .checked_sub(jiff::Span::new().months(1))
        .map_err(|_| bad())?;
    let month = Month {
        period: format!("{y:04}-{m:02}"),
        span: (at(first)?, at(next)?),
        previous_from: at(before)?,
    };
    if month.span.0 > now_ms {
        return Err(ReportError::Bad(format!(
            "month={s:?} is in the future: it begins {}",
            rfc3339(month.span.0)
        )));
    }
    Ok(month)
}

/// The previous month of `now_ms` in `tz`, as `YYYY-MM`.
pub fn last_month(tz: &jiff::tz::TimeZone, now_ms: i64) -> String {
    let today = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.to_zoned(tz.clone()).date())
        .unwrap_or(Date::constant(2026, 1, 1));
    let d = today
        .first_of_month()
        .checked_sub(jiff::Span::new().days(1))
        .unwrap_or(today);
    format!("{:04}-{:02}", d.year(), d.month())
}

fn failed(e: impl std::fmt::Display) -> ReportError {
    ReportError::Failed(e.to_string())
}

/// The monthly service statistics of `month`.
pub async fn monthly_report(core: &Core, month: &str) -> Result<ReportData, ReportError> {
    let now = core.clock.now_ms();
    let calendar = &core.config.calendar;
    let m = parse_month(month, calendar.time_zone(), now)?;
    let faults = faults_for(core, m.span).await?;
    if !data_before(core, m.span.1).await? {
        return Err(ReportError::Bad(format!(
            "month={month:?}: this collector has no agents and no fault records before {}: there is nothing to report on",
            rfc3339(m.span.1)
        )));
    }
    let agents = core.db.agents().await.map_err(failed)?;
    let notifications = core
        .db
        .notifications_between(m.span.0, m.span.1)
        .await
        .map_err(failed)?;
    let changes = core.db.changes(100_000).await.map_err(failed)?;
    let windows = core.db.windows().await.map_err(failed)?;
    let rules = core.engine.rules();
    let unreachable_rules: BTreeSet<String> = rules
        .rules
        .iter()
        .filter(|r| r.unreachable)
        .map(|r| r.name.to_string())
        .chain(["agent_silent".to_string()])
        .collect();
    let hosts: BTreeSet<String> = agents.iter().map(|a| a.hostname.clone()).collect();
    let notify = core.config.notify.clone();
    let team_of = move |f: &Fault| {
        let subject = Subject {
            rule: &f.rule,
            host: &f.host,
            severity: f.severity,
            labels: &f.labels,
            acknowledged: false,
            unreachable: false,
        };
        notify
            .routes_for(&subject)
            .next()
            .map_or_else(|| "(unrouted)".to_string(), |r| r.team.clone())
    };
    let mut inspections = Vec::new();
    let today = jiff::Timestamp::from_millisecond(now)
        .map(|t| t.to_zoned(calendar.time_zone().clone()).date())
        .map_err(failed)?;
    let first = jiff::Timestamp::from_millisecond(m.span.0)
        .map(|t| t.to_zoned(calendar.time_zone().clone()).date())
        .map_err(failed)?;
    let mut d = first;
    while d <= today && (d.year(), d.month()) == (first.year(), first.month()) {
        inspections.push(inspection_day(core, d).await?);
        d = d.tomorrow().map_err(failed)?;
    }
    let r = &core.config.reports;
    Ok(monthly::monthly(&MonthInput {
        period: m.period,
        span: m.span,
        previous_from: m.previous_from,
        now_ms: now,
        faults: &faults,
        notifications: &notifications,
        changes: &changes,
        windows: &windows,
        hosts,
        unreachable_rules,
        team_of: &team_of,
        service: r.service_hours,
        calendar,
        target_pct: r.availability_target,
        group_labels: &r.group_labels,
        generated_at: rfc3339(now),
        inspections: &inspections,
    }))
}

/// A day read in the calendar's zone: its first millisecond and the next day's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// The date.
    pub date: Date,
    /// `[from, until)` (ms).
    pub span: (i64, i64),
}

/// Reads `YYYY-MM-DD` in `tz`; refuses a malformed date and one that has
/// not begun at `now_ms`.
pub fn parse_day(s: &str, tz: &jiff::tz::TimeZone, now_ms: i64) -> Result<Day, ReportError> {
    let t = s.trim();
    let date: Date = t
        .parse()
        .ok()
        .filter(|_| t.len() == 10)
        .ok_or_else(|| ReportError::Bad(format!("date={s:?}: expected YYYY-MM-DD, e.g. 2026-12-01")))?;
    let at = |d: Date| -> Result<i64, ReportError> {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ReportError::Bad(format!("date={s:?}: {e}")))
    };
    let next = date
        .tomorrow()
        .map_err(|e| ReportError::Bad(format!("date={s:?}: {e}")))?;
    let day = Day {
        date,
        span: (at(date)?, at(next)?),
    };
    if day.span.0 > now_ms {
        return Err(ReportError::Bad(format!(
            "date={s:?} is in the future: it begins {}",
            rfc3339(day.span.0)
        )));
    }
    Ok(day)
}

/// Today in the calendar's zone, or the day before (`back` days).
pub fn today(tz: &jiff::tz::TimeZone, now_ms: i64, back: i64) -> String {
    let d = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.to_zoned(tz.clone()).date())
        .unwrap_or(Date::constant(2026, 1, 1));
    d.checked_sub(jiff::Span::new().days(back))
        .unwrap_or(d)
        .to_string()
}

/// Day `day`'s inspection record: the checklist items due then, each with
/// its latest recording, the signatures and every recording.
pub async fn inspection_day(core: &Core, day: Date) -> Result<InspectionDay, ReportError> {
    let calendar = &core.config.calendar;
    let rec = core.db.inspection_day(day.to_string()).await.map_err(failed)?;
    let mut items: Vec<ItemState> = core
        .config
        .checklist
        .due_on(day, calendar)
        .map(|i| ItemState {
            item: i.item.clone(),
            entry: None,
        })
        .collect();
    // An item recorded on a day it was not due (the checklist changed) is shown too.
    for e in &rec.entries {
        if !items.iter().any(|i| i.item.id == e.item)
            && let Some(i) = core.config.checklist.get(&e.item)
        {
            items.push(ItemState {
                item: i.item.clone(),
                entry: None,
            });
        }
    }
    for i in &mut items {
        i.entry = rec.entries.iter().rev().find(|e| e.item == i.item.id).cloned();
    }
    let done = items.iter().filter(|i| i.entry.is_some()).count();
    let abnormal = items
        .iter()
        .filter(|i| {
            i.entry
                .as_ref()
                .is_some_and(|e| e.result == InspectionResult::Abnormal)
        })
        .count();
    Ok(InspectionDay {
        date: day.to_string(),
        due: items.len(),
        done,
        abnormal,
        items,
        signed: rec.signed,
        reviewed: rec.reviewed,
        entries: rec.entries,
    })
}

/// Whether the collector has anything from before `until`: an agent first
/// seen or a fault opened then (one row asked for, not every fault read).
async fn data_before(core: &Core, until: i64) -> Result<bool, ReportError> {
    let agents = core.db.agents().await.map_err(failed)?;
    if agents.iter().any(|a| a.first_seen_ms < until) {
        return Ok(true);
    }
    let earlier = core
        .db
        .faults(FaultFilter {
            opened_before_ms: Some(until),
            limit: 1,
            ..FaultFilter::default()
        })
        .await
        .map_err(failed)?;
    Ok(!earlier.is_empty())
}

/// The faults a period's report reads: opened before its end, from a year
/// before its start (an outage that began earlier still counts in it).
async fn faults_for(core: &Core, (from, until): (i64, i64)) -> Result<Vec<Fault>, ReportError> {
    core.db
        .faults(FaultFilter {
            opened_from_ms: Some(from - 366 * 86_400_000),
            opened_before_ms: Some(until),
            limit: usize::MAX >> 1,
            ..FaultFilter::default()
        })
        .await
        .map_err(failed)
}

/// The daily inspection record of `date`, its findings written in `lang`.
pub async fn daily_report(core: &Arc<Core>, date: &str, lang: &str) -> Result<ReportData, ReportError> {
    let now = core.clock.now_ms();
    let calendar = &core.config.calendar;
    let day = parse_day(date, calendar.time_zone(), now)?;
    if !data_before(core, day.span.1).await? {
        return Err(ReportError::Bad(format!(
            "date={date:?}: this collector has no agents and no fault records before {}: there is nothing to record",
            rfc3339(day.span.1)
        )));
    }
    let inspection = inspection_day(core, day.date).await?;
    let faults = faults_for(core, day.span).await?;
    let hosts: BTreeSet<String> = core
        .db
        .agents()
        .await
        .map_err(failed)?
        .into_iter()
        .filter(|a| a.first_seen_ms < day.span.1)
        .map(|a| a.hostname)
        .collect();
    let rules = core.engine.rules();
    let mut limits: std::collections::BTreeMap<String, daily::Limits> = Default::default();
    for r in &rules.rules {
        if let crate::rules::RuleKind::Threshold(t) = &r.kind
            && let Some(first) = t.tiers.first()
        {
            use crate::rules::condition::Op;
            let l = limits.entry(r.metric.clone()).or_default();
            let v = first.when.threshold;
            match first.when.op {
                Op::Gt | Op::Ge => l.high = Some(l.high.map_or(v, |h: f64| h.min(v))),
                Op::Lt | Op::Le => l.low = Some(l.low.map_or(v, |h: f64| h.max(v))),
                _ => {}
            }
        }
    }
    let unreachable_rules: BTreeSet<String> = rules
        .rules
        .iter()
        .filter(|r| r.unreachable)
        .map(|r| r.name.to_string())
        .chain(["agent_silent".to_string()])
        .collect();
    let c = Arc::clone(core);
    let span = day.span;
    let (series, missing) = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        let mut missing = Vec::new();
        for m in daily::METRICS {
            let live = c.store.select(Some(m), &[]);
            let (s, gone) = c.history.select(
                &c.store,
                Some(m),
                &[],
                &live,
                (span.0, span.1 - 1),
                history::Step::Minute,
                100_000,
            )?;
            all.extend(s);
            for g in gone {
                if !missing.iter().any(|x: &history::Missing| x.file == g.file) {
                    missing.push(g);
                }
            }
        }
        Ok::<_, String>((all, missing))
    })
    .await
    .map_err(failed)?
    .map_err(failed)?;
    Ok(daily::daily(&daily::DayInput {
        date: day.date.to_string(),
        time_zone: calendar.time_zone_name().to_string(),
        span,
        now_ms: now,
        series: &series,
        missing: missing
            .iter()
            .map(|m| format!("{} – {} ({})", rfc3339(m.from), rfc3339(m.until), m.file))
            .collect(),
        faults: &faults,
        hosts,
        unreachable_rules,
        limits: &limits,
        inspection: &inspection,
        generated_at: rfc3339(now),
        tz: calendar.time_zone().clone(),
        lang: lang.to_string(),
    }))
}

/// The formats a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The data itself.
    Json,
    /// A standalone page.
    Html,
    /// One file per table.
    Csv,
    /// An Excel workbook, one sheet per table.
    Xlsx,
    /// A printable document (Chinese text and charts).
    Pdf,
}

impl Format {
    /// Reads `json`, `html`, `csv`.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "json" => Format::Json,
            "html" => Format::Html,
            "csv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }
}

fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.part"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// The directory stored reports live in.
pub fn dir(core: &Core) -> PathBuf {
    core.config.data_dir.join("reports")
}

/// Stores `data` as JSON and in `format` (HTML in `lang`; CSV one file per
/// table), each as the next version of its period; returns what was stored,
/// the data's JSON first.
pub async fn store(
    core: &Core,
    data: &ReportData,
    format: Format,
    lang: &str,
    by: &str,
) -> Result<Vec<(StoredReport, Vec<u8>)>, ReportError> {
    let dir = dir(core);
    fs::create_dir_all(&dir).map_err(failed)?;
    let mut files: Vec<(String, String, Vec<u8>)> = vec![(
        "json".into(),
        "json".into(),
        serde_json::to_vec_pretty(data).map_err(failed)?,
    )];
    match format {
        Format::Json => {}
        Format::Html => files.push((
            "html".into(),
            "html".into(),
            render::html(data, lang).into_bytes(),
        )),
        Format::Pdf => files.push((
            "pdf".into(),
            "pdf".into(),
            render::pdf(data, lang).map_err(failed)?,
        )),
        Format::Xlsx => files.push((
            "xlsx".into(),
            "xlsx".into(),
            render::xlsx(data, lang).map_err(failed)?,
        )),
        Format::Csv => {
            for t in &data.tables {
                files.push((format!("csv:{}", t.id), "csv".into(), render::csv(t).into_bytes()));
            }
        }
    }
    let now = core.clock.now_ms();
    let mut out = Vec::new();
    for (fmt, ext, bytes) in files {
        let version = core
            .db
            .next_report_version(data.kind.clone(), data.period.clone(), fmt.clone())
            .await
            .map_err(failed)?;
        let table = fmt
            .strip_prefix("csv:")
            .map(|t| format!("-{t}"))
            .unwrap_or_default();
        let name = format!("{}-{}-v{version}{table}.{ext}", data.kind, data.period);
        let write = {
            let dir = dir.clone();
            let name = name.clone();
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || write_synced(&dir, &name, &bytes))
        };
        write
            .await
            .map_err(failed)?
            .map_err(|e| failed(format!("{}: {e}", dir.join(&name).display())))?;
        let stored = core
            .faults
            .add_report(
                StoredReport {
                    id: 0,
                    kind: data.kind.clone(),
                    period: data.period.clone(),
                    version,
                    format: fmt,
                    file: name,
                    sha256: hex(&sha2::Sha256::digest(&bytes)),
                    bytes: bytes.len() as i64,
                    generated_at: rfc3339(now),
                    generated_by: by.to_string(),
                },
                now,
            )
            .await
            .map_err(failed)?;
        out.push((stored, bytes));
    }
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A stored report's bytes, checked against its hash.
pub fn read_stored(core: &Core, r: &StoredReport) -> Result<Vec<u8>, ReportError> {
    let path = dir(core).join(&r.file);
    let bytes = fs::read(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let got = hex(&sha2::Sha256::digest(&bytes));
    if got != r.sha256 {
        return Err(failed(format!(
            "{}: its SHA-256 is {got}, not the {} recorded when it was generated: the file was changed",
            path.display(),
            r.sha256
        )));
    }
    Ok(bytes)
}
