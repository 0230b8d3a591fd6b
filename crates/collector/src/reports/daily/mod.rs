//! The daily inspection record (日常巡检记录): per host, per SNMP device
//! and per machine room, what the minute rollups and the fault records
//! say of one day in the calendar's zone, anything abnormal marked; then
//! the manual checklist as recorded, its amendments and its signatures.
//!
//! No I/O: the caller reads the rollups, records and checklist and hands
//! them in.

use std::collections::{BTreeMap, BTreeSet};

use watchpost_model::api::Fault;
use watchpost_model::inspections::{InspectionDay, InspectionResult};
use watchpost_model::reports::{Cell, ReportData, Text};

use crate::reports::cells::{col, local, local_of, ms, num, opt, table, text};
use crate::reports::monthly::merge;
use faults::{
    counts, fault_cells, fault_columns, fault_counts, fault_findings, fault_list, status_cells,
    status_columns,
};

mod faults;
use crate::history::Rolled;
use crate::history::codec::Agg;
use crate::store::SeriesLabels;

/// Metrics the record reads, at one minute.
pub const METRICS: &[&str] = &[
    "host_cpu_usage_percent",
    "host_memory_used_percent",
    "host_load5_per_core",
    "host_filesystem_used_percent",
    "host_network_errors_per_second",
    "snmp_up",
    "snmp_cpu_usage_percent",
    "snmp_memory_usage_percent",
    "snmp_temperature_celsius",
    "snmp_if_in_errors_per_second",
    "snmp_if_out_errors_per_second",
    "snmp_if_in_discards_per_second",
    "snmp_if_out_discards_per_second",
    "snmp_ups_on_battery",
    "room_temperature_celsius",
    "room_humidity_percent",
    "snmp_humidity_percent",
];

/// A metric's limits from the rules: the lowest threshold a rule fires
/// above, the highest it fires below.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Fires above this.
    pub high: Option<f64>,
    /// Fires below this.
    pub low: Option<f64>,
}

/// What a day's record is computed from.
pub struct DayInput<'a> {
    /// `2026-12-01`.
    pub date: String,
    /// The calendar's zone.
    pub time_zone: String,
    /// `[from, until)` of the day (ms).
    pub span: (i64, i64),
    /// Now: a day not over is reported up to now.
    pub now_ms: i64,
    /// The minute rollups of [`METRICS`] over the day.
    pub series: &'a [Rolled],
    /// Spans of the day the rollups could not be read (quarantined files).
    pub missing: Vec<String>,
    /// Faults opened before the day's end that were unresolved at its start.
    pub faults: &'a [Fault],
    /// Hosts (agents) known.
    pub hosts: BTreeSet<String>,
    /// Rules whose faults mean "cannot be reached".
    pub unreachable_rules: BTreeSet<String>,
    /// Limits per metric from the rules.
    pub limits: &'a BTreeMap<String, Limits>,
    /// The manual checklist as recorded.
    pub inspection: &'a InspectionDay,
    /// When generated (RFC 3339).
    pub generated_at: String,
    /// The calendar's zone, for the times shown.
    pub tz: jiff::tz::TimeZone,
    /// The language findings are written in (`zh` or `en`).
    pub lang: String,
}

/// Peaks and sums of one entity's series of one metric.
#[derive(Default, Clone, Copy)]
struct Stat {
    /// Highest minute mean.
    peak: Option<f64>,
    /// Lowest and highest sample.
    min: Option<f64>,
    max: Option<f64>,
    /// Sum over minutes of mean x 60 s (a rate's count).
    total: f64,
}

impl Stat {
    fn add(&mut self, points: &[(i64, Agg)], span: (i64, i64)) {
        for (t, a) in points.iter().filter(|(t, _)| *t >= span.0 && *t < span.1) {
            let _ = t;
            if a.count == 0 {
                continue;
            }
            let m = a.mean();
            self.peak = Some(self.peak.map_or(m, |p| p.max(m)));
            self.min = Some(self.min.map_or(a.min, |p| p.min(a.min)));
            self.max = Some(self.max.map_or(a.max, |p| p.max(a.max)));
            self.total += m * 60.0;
        }
    }
}

/// Share of `[from, end)` not covered by the unreachable faults `faults`.
fn reachable_pct<'a>(faults: impl Iterator<Item = &'a Fault>, (from, end): (i64, i64)) -> Option<f64> {
    if end <= from {
        return None;
    }
    let down = merge(
        faults
            .filter_map(|f| {
                let a = ms(&f.opened_at)?.max(from);
                let b = f.resolved_at.as_deref().and_then(ms).unwrap_or(end).min(end);
                (b > a).then_some((a, b))
            })
            .collect(),
    );
    let down: i64 = down.iter().map(|(a, b)| b - a).sum();
    Some((1.0 - down as f64 / (end - from) as f64) * 100.0)
}

fn fmt(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// Findings against a metric's limits: peak above `high`, minimum below `low`.
fn against(name: &str, hi: Option<f64>, lo: Option<f64>, limits: Option<&Limits>, out: &mut Vec<String>) {
    let Some(l) = limits else { return };
    if let (Some(v), Some(h)) = (hi, l.high)
        && v > h
    {
        out.push(format!("{name} {} > {}", fmt(v), fmt(h)));
    }
    if let (Some(v), Some(lim)) = (lo, l.low)
        && v < lim
    {
        out.push(format!("{name} {} < {}", fmt(v), fmt(lim)));
    }
}

/// A fault of something the host's agent polls (an SNMP device, a Modbus
/// sensor): counted on the device or the room, not on the host.
fn polled(f: &Fault) -> bool {
    ["snmp_", "modbus_", "room_"]
        .iter()
        .any(|p| f.metric.starts_with(p))
}

/// Every `(name, highest, lowest, metric)` against the metric's limits.
fn checks(d: &DayInput<'_>, list: &[(&str, Option<f64>, Option<f64>, &str)], out: &mut Vec<String>) {
    for (name, hi, lo, metric) in list {
        against(name, *hi, *lo, d.limits.get(*metric), out);
    }
}

/// "reachable 90%" when below `full`.
fn reach_finding(say: Say, reach: Option<f64>, full: f64, out: &mut Vec<String>) {
    if let Some(r) = reach.filter(|r| *r < full) {
        out.push(format!("{} {}%", say.pick("可达", "reachable"), fmt(r)));
    }
}

/// On-battery events (minutes on battery after one that was not, or the
/// day's first) and minutes on battery.
fn on_battery(points: &[(i64, Agg)], span: (i64, i64)) -> (usize, usize) {
    let mut events = 0;
    let mut minutes = 0;
    let mut before = false;
    for (_, a) in points
        .iter()
        .filter(|(t, a)| *t >= span.0 && *t < span.1 && a.count > 0)
    {
        let on = a.max > 0.0;
        minutes += usize::from(on);
        events += usize::from(on && !before);
        before = on;
    }
    (events, minutes)
}

/// Picks the text in the record's language.
#[derive(Clone, Copy)]
struct Say {
    en: bool,
}

impl Say {
    fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        if self.en { en } else { zh }
    }
}

/// The day's record.
pub fn daily(d: &DayInput<'_>) -> ReportData {
    let say = Say { en: d.lang == "en" };
    let end = d.span.1.min(d.now_ms.max(d.span.0));
    let span = (d.span.0, end);
    let by_metric = |metric: &'static str| d.series.iter().filter(move |(l, _)| l.metric == metric);
    let label = |l: &SeriesLabels, k: &str| l.labels.get(k).cloned();
    let faults: Vec<&Fault> = d.faults.iter().filter(|f| counts(f)).collect();
    let mut tables = Vec::new();

    // Hosts: the agents' own `host_*` series (their `device` label is a
    // disk or an interface, not an SNMP device).
    let mut hosts: BTreeSet<String> = d.hosts.clone();
    let host_series = |metric: &'static str| by_metric(metric);
    for m in METRICS.iter().filter(|m| m.starts_with("host_")) {
        hosts.extend(host_series(m).filter_map(|(l, _)| label(l, "host")));
    }
    let mut t = table(
        "hosts",
        "主机",
        "Hosts",
        [
            col("host", "主机", "host"),
            col("reachable_pct", "可达 %", "reachable %"),
            col("cpu_peak_pct", "CPU 峰值 %", "CPU peak %"),
            col("memory_peak_pct", "内存峰值 %", "memory peak %"),
            col("load5_per_core_peak", "每核负载峰值", "load5 per core peak"),
            col(
                "fs_headroom_min_pct",
                "文件系统最低余量 %",
                "lowest filesystem headroom %",
            ),
            col("fs_lowest", "余量最低的挂载点", "at mount"),
            col("net_errors", "网卡错误包", "network errors"),
        ]
        .into_iter()
        .chain(fault_columns())
        .chain(status_columns())
        .collect(),
    );
    for h in &hosts {
        let of = |metric: &'static str| {
            let mut s = Stat::default();
            for (l, p) in host_series(metric).filter(|(l, _)| l.labels.get("host") == Some(h)) {
                if metric == "host_cpu_usage_percent" && l.labels.get("cpu").is_some_and(|c| c != "total") {
                    continue;
                }
                s.add(p, span);
            }
            s
        };
        let (cpu, mem, load, net) = (
            of("host_cpu_usage_percent"),
            of("host_memory_used_percent"),
            of("host_load5_per_core"),
            of("host_network_errors_per_second"),
        );
        let mut fs: Option<(f64, String)> = None;
        for (l, p) in
            host_series("host_filesystem_used_percent").filter(|(l, _)| l.labels.get("host") == Some(h))
        {
            let mut s = Stat::default();
            s.add(p, span);
            if let Some(max) = s.max {
                let headroom = 100.0 - max;
                if fs.as_ref().is_none_or(|(v, _)| headroom < *v) {
                    fs = Some((
                        headroom,
                        label(l, "mountpoint")
                            .or_else(|| label(l, "mount"))
                            .unwrap_or_default(),
                    ));
                }
            }
        }
        let mine: Vec<&Fault> = faults
            .iter()
            .copied()
            .filter(|f| &f.host == h && !polled(f))
            .collect();
        let reach = reachable_pct(
            mine.iter()
                .copied()
                .filter(|f| d.unreachable_rules.contains(&f.rule)),
            span,
        );
        let fc = fault_counts(mine.iter().copied(), span);
        let mut findings = Vec::new();
        reach_finding(say, reach, 100.0, &mut findings);
        checks(
            d,
            &[
                ("CPU", cpu.peak, None, "host_cpu_usage_percent"),
                (
                    say.pick("内存", "memory"),
                    mem.peak,
                    None,
                    "host_memory_used_percent",
                ),
                (
                    say.pick("每核负载", "load5/core"),
                    load.peak,
                    None,
                    "host_load5_per_core",
                ),
                (
                    say.pick("文件系统使用率", "filesystem used"),
                    fs.as_ref().map(|(v, _)| 100.0 - v),
                    None,
                    "host_filesystem_used_percent",
                ),
            ],
            &mut findings,
        );
        if net.total >= 1.0 {
            findings.push(format!(
                "{} {}",
                say.pick("网卡错误包", "network errors"),
                fmt(net.total.round())
            ));
        }
        fault_findings(say, &fc, &mut findings);
        t.rows.push(
            [
                text(h.clone()),
                opt(reach),
                opt(cpu.peak),
                opt(mem.peak),
                opt(load.peak),
                opt(fs.as_ref().map(|(v, _)| *v)),
                fs.map_or(Cell::None, |(_, m)| text(m)),
                num(net.total.round()),
            ]
            .into_iter()
            .chain(fault_cells(&fc))
            .chain(status_cells(findings))
            .collect(),
        );
    }
    tables.push(t);

    // SNMP devices: the device label of snmp_up.
    let devices: BTreeMap<String, String> = by_metric("snmp_up")
        .filter_map(|(l, _)| Some((label(l, "device")?, label(l, "host").unwrap_or_default())))
        .collect();
    let mut t = table(
        "devices",
        "网络与 SNMP 设备",
        "Network and SNMP devices",
        [
            col("device", "设备", "device"),
            col("poller", "采集主机", "polled by"),
            col("reachable_pct", "可达 %", "reachable %"),
            col("cpu_peak_pct", "CPU 峰值 %", "CPU peak %"),
            col("memory_peak_pct", "内存峰值 %", "memory peak %"),
            col("temperature_max", "温度最高 °C", "temperature max °C"),
            col("if_errors", "接口错误包", "interface errors"),
            col("if_discards", "接口丢弃包", "interface discards"),
            col("on_battery_events", "UPS 转电池次数", "UPS on-battery events"),
        ]
        .into_iter()
        .chain(fault_columns())
        .chain(status_columns())
        .collect(),
    );
    for (dev, poller) in &devices {
        let of = |metrics: &[&'static str]| {
            let mut s = Stat::default();
            for m in metrics {
                for (_, p) in by_metric(m).filter(|(l, _)| l.labels.get("device") == Some(dev)) {
                    s.add(p, span);
                }
            }
            s
        };
        let up = of(&["snmp_up"]);
        let cpu = of(&["snmp_cpu_usage_percent"]);
        let mem = of(&["snmp_memory_usage_percent"]);
        let temp = of(&["snmp_temperature_celsius"]);
        let errors = of(&["snmp_if_in_errors_per_second", "snmp_if_out_errors_per_second"]);
        let discards = of(&[
            "snmp_if_in_discards_per_second",
            "snmp_if_out_discards_per_second",
        ]);
        let battery = by_metric("snmp_ups_on_battery")
            .filter(|(l, _)| l.labels.get("device") == Some(dev))
            .map(|(_, p)| on_battery(p, span))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let mine: Vec<&Fault> = faults
            .iter()
            .copied()
            .filter(|f| f.labels.get("device") == Some(dev))
            .collect();
        let from_faults = reachable_pct(
            mine.iter()
                .copied()
                .filter(|f| d.unreachable_rules.contains(&f.rule)),
            span,
        );
        // Polls answered, where no fault says otherwise.
        let reach = match (from_faults, up.total > 0.0 || up.peak.is_some()) {
            (Some(r), _) if r < 100.0 => Some(r),
            (_, true) => Some(up.total / 60.0 / polled_minutes(dev, d.series, span) * 100.0),
            (r, false) => r,
        };
        let fc = fault_counts(mine.iter().copied(), span);
        let mut findings = Vec::new();
        // Polls are rounded to a hundredth of a percent.
        reach_finding(say, reach, 99.995, &mut findings);
        checks(
            d,
            &[
                ("CPU", cpu.peak, None, "snmp_cpu_usage_percent"),
                (
                    say.pick("内存", "memory"),
                    mem.peak,
                    None,
                    "snmp_memory_usage_percent",
                ),
                (
                    say.pick("温度", "temperature"),
                    temp.max,
                    None,
                    "snmp_temperature_celsius",
                ),
            ],
            &mut findings,
        );
        if errors.total >= 1.0 {
            findings.push(format!(
                "{} {}",
                say.pick("接口错误包", "interface errors"),
                fmt(errors.total.round())
            ));
        }
        if discards.total >= 1.0 {
            findings.push(format!(
                "{} {}",
                say.pick("接口丢弃包", "interface discards"),
                fmt(discards.total.round())
            ));
        }
        if battery.0 > 0 {
            findings.push(on_battery_text(say, battery));
        }
        fault_findings(say, &fc, &mut findings);
        t.rows.push(
            [
                text(dev.clone()),
                text(poller.clone()),
                opt(reach),
                opt(cpu.peak),
                opt(mem.peak),
                opt(temp.max),
                num(errors.total.round()),
                num(discards.total.round()),
                num(battery.0 as f64),
            ]
            .into_iter()
            .chain(fault_cells(&fc))
            .chain(status_cells(findings))
            .collect(),
        );
    }
    tables.push(t);

    // Machine rooms: the room label, and the rooms the checklist names.
    let mut rooms: BTreeSet<String> = d.series.iter().filter_map(|(l, _)| label(l, "room")).collect();
    rooms.extend(
        d.inspection
            .items
            .iter()
            .filter_map(|i| i.item.scope.strip_prefix("room:").map(str::to_string)),
    );
    let mut t = table(
        "rooms",
        "机房环境",
        "Machine rooms",
        [
            col("room", "机房", "room"),
            col("temperature_min", "温度最低 °C", "temperature min °C"),
            col("temperature_max", "温度最高 °C", "temperature max °C"),
            col("temperature_range", "温度阈值", "temperature limits"),
            col("humidity_min", "湿度最低 %", "humidity min %"),
            col("humidity_max", "湿度最高 %", "humidity max %"),
            col("humidity_range", "湿度阈值", "humidity limits"),
            col("on_battery_events", "UPS 转电池次数", "UPS on-battery events"),
            col("on_battery_min", "电池供电分钟", "minutes on battery"),
            col("checklist_abnormal", "巡检异常项", "checklist items abnormal"),
        ]
        .into_iter()
        .chain(fault_columns())
        .chain(status_columns())
        .collect(),
    );
    let range = |l: Option<&Limits>| {
        let l = l.copied().unwrap_or_default();
        match (l.low, l.high) {
            (None, None) => Cell::None,
            (lo, hi) => text(format!(
                "{}–{}",
                lo.map_or("".into(), fmt),
                hi.map_or("".into(), fmt)
            )),
        }
    };
    for room in &rooms {
        let in_room =
            |metric: &'static str| by_metric(metric).filter(|(l, _)| l.labels.get("room") == Some(room));
        let mut temp = Stat::default();
        for (_, p) in in_room("room_temperature_celsius") {
            temp.add(p, span);
        }
        let mut hum = Stat::default();
        for (_, p) in in_room("room_humidity_percent").chain(in_room("snmp_humidity_percent")) {
            hum.add(p, span);
        }
        let battery = in_room("snmp_ups_on_battery")
            .map(|(_, p)| on_battery(p, span))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let scope = format!("room:{room}");
        let abnormal = d
            .inspection
            .items
            .iter()
            .filter(|i| i.item.scope == scope)
            .filter(|i| {
                i.entry
                    .as_ref()
                    .is_some_and(|e| e.result == InspectionResult::Abnormal)
            })
            .count();
        let fc = fault_counts(
            faults
                .iter()
                .copied()
                .filter(|f| f.labels.get("room") == Some(room)),
            span,
        );
        let mut findings = Vec::new();
        checks(
            d,
            &[
                (
                    say.pick("温度", "temperature"),
                    temp.max,
                    temp.min,
                    "room_temperature_celsius",
                ),
                (
                    say.pick("湿度", "humidity"),
                    hum.max,
                    hum.min,
                    "room_humidity_percent",
                ),
            ],
            &mut findings,
        );
        if battery.0 > 0 {
            findings.push(on_battery_text(say, battery));
        }
        if abnormal > 0 {
            findings.push(match say.en {
                true => format!("{abnormal} checklist item(s) abnormal"),
                false => format!("人工巡检异常 {abnormal} 项"),
            });
        }
        fault_findings(say, &fc, &mut findings);
        t.rows.push(
            [
                text(room.clone()),
                opt(temp.min),
                opt(temp.max),
                range(d.limits.get("room_temperature_celsius")),
                opt(hum.min),
                opt(hum.max),
                range(d.limits.get("room_humidity_percent")),
                num(battery.0 as f64),
                num(battery.1 as f64),
                num(abnormal as f64),
            ]
            .into_iter()
            .chain(fault_cells(&fc))
            .chain(status_cells(findings))
            .collect(),
        );
    }
    tables.push(t);
    tables.extend(crate::reports::inspections::day_tables(d.inspection, &d.tz));
    tables.push(fault_list(&faults, span, &d.tz));

    let i = d.inspection;
    let mut facts = vec![Text::new(
        format!(
            "日期 {}（{}），数据截至 {}",
            d.date,
            d.time_zone,
            local(&d.tz, end)
        ),
        format!(
            "Day {} ({}), data up to {}",
            d.date,
            d.time_zone,
            local(&d.tz, end)
        ),
    )];
    facts.push(Text::new(
        format!("巡检项：应检 {}，已检 {}，异常 {}", i.due, i.done, i.abnormal),
        format!(
            "Checklist: {} due, {} done, {} abnormal",
            i.due, i.done, i.abnormal
        ),
    ));
    facts.push(match (&i.signed, &i.reviewed) {
        (None, _) => Text::new("未签字：本记录为草稿", "Not signed: this record is a draft"),
        (Some(s), None) => Text::new(
            format!("巡检人 {} 已于 {} 签字，待审核", s.by, local_of(&d.tz, &s.at)),
            format!(
                "Signed by {} at {}, awaiting review",
                s.by,
                local_of(&d.tz, &s.at)
            ),
        ),
        (Some(s), Some(r)) => Text::new(
            format!(
                "巡检人 {} 于 {} 签字；审核人 {} 于 {} 审核",
                s.by,
                local_of(&d.tz, &s.at),
                r.by,
                local_of(&d.tz, &r.at)
            ),
            format!(
                "Signed by {} at {}; reviewed by {} at {}",
                s.by,
                local_of(&d.tz, &s.at),
                r.by,
                local_of(&d.tz, &r.at)
            ),
        ),
    });
    if d.span.1 > d.now_ms {
        facts.push(Text::new(
            "当日未结束：数据截至生成时",
            "The day is not over: figures up to now",
        ));
    }
    for m in &d.missing {
        facts.push(Text::new(
            format!("以下时段的汇总数据已损坏隔离，未计入：{m}"),
            format!("Rollups quarantined as damaged, not counted: {m}"),
        ));
    }
    ReportData {
        kind: "daily".into(),
        period: d.date.clone(),
        title: Text::new(
            format!("日常巡检记录 {}", d.date),
            format!("Daily inspection record {}", d.date),
        ),
        time_zone: d.time_zone.clone(),
        generated_at: d.generated_at.clone(),
        facts,
        tables,
        charts: Vec::new(),
        notes: crate::reports::formulas::daily(),
    }
}

/// Minutes in `span` device `dev` was polled (its `snmp_up` has a sample).
fn polled_minutes(dev: &str, series: &[Rolled], span: (i64, i64)) -> f64 {
    let n = series
        .iter()
        .filter(|(l, _)| l.metric == "snmp_up" && l.labels.get("device").map(String::as_str) == Some(dev))
        .flat_map(|(_, p)| p.iter())
        .filter(|(t, a)| *t >= span.0 && *t < span.1 && a.count > 0)
        .count();
    (n as f64).max(1.0)
}

fn on_battery_text(say: Say, (events, minutes): (usize, usize)) -> String {
    if say.en {
        format!("UPS on battery {events} times, {minutes} min")
    } else {
        format!("UPS 转电池 {events} 次，共 {minutes} 分钟")
    }
}
