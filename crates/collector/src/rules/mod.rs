//! Rules: loading and checking rule files ([`RuleSet`]), and evaluating
//! them ([`engine`]).
//!
//! Rule files are TOML (`[[rule]]` tables, see `examples/rules/`). Every
//! problem is reported with its file and line, all files are checked before
//! any error is returned, and a set that loaded is valid by construction.

mod collector;
pub mod condition;
pub mod engine;
mod threshold;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::{HumanDuration, Severity};

pub use crate::template::{Template, format_value};
pub use condition::Condition;

use crate::matchers::Matcher;
use crate::store::Aggregate;

/// The name of the built-in agent-silence rule, used when no rule file
/// declares one of `kind = "agent_silent"`.
pub const BUILTIN_AGENT_SILENT: &str = "agent_silent";

/// What a collector rule watches: the collector's own health
/// ([`crate::health`]). Each has a built-in rule, named as its kind, used
/// when no rule file declares one of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorCheck {
    /// `collector_disk_low`: the data directory's disk has less free than
    /// `collector.min_free`; raised to urgent while writes fail.
    DiskLow,
    /// `collector_writes_failing`: journal or database writes fail.
    WritesFailing,
    /// `notification_channel_failing`: a channel's sends have failed for
    /// `notify.channel_failing_after`; told on the other channels.
    ChannelFailing,
    /// `agent_clock_skew`: an agent's clock is off the collector's by more
    /// than `collector.max_clock_offset`.
    AgentClock,
    /// `collector_backup_failing`: the last backup failed.
    BackupFailing,
}

impl CollectorCheck {
    /// Every check, in the order the built-ins are added.
    pub const ALL: [CollectorCheck; 5] = [
        CollectorCheck::DiskLow,
        CollectorCheck::WritesFailing,
        CollectorCheck::ChannelFailing,
        CollectorCheck::AgentClock,
        CollectorCheck::BackupFailing,
    ];

    /// Its `kind` in a rule file, and the name of its built-in rule.
    pub fn kind_name(self) -> &'static str {
        match self {
            CollectorCheck::DiskLow => "collector_disk_low",
            CollectorCheck::WritesFailing => "collector_writes_failing",
            CollectorCheck::ChannelFailing => "notification_channel_failing",
            CollectorCheck::AgentClock => "agent_clock_skew",
            CollectorCheck::BackupFailing => "collector_backup_failing",
        }
    }

    fn default_severity(self) -> Severity {
        match self {
            CollectorCheck::WritesFailing => Severity::Urgent,
            CollectorCheck::DiskLow
            | CollectorCheck::ChannelFailing
            | CollectorCheck::AgentClock
            | CollectorCheck::BackupFailing => Severity::General,
        }
    }

    fn default_summary(self) -> &'static str {
        match self {
            CollectorCheck::DiskLow => {
                "the collector's data directory {data_dir} on {host} has {free} free, below {min_free}"
            }
            CollectorCheck::WritesFailing => "the collector on {host} cannot write its {store}: {error}",
            CollectorCheck::ChannelFailing => {
                "notification channel {channel} has failed since {since}: {error}"
            }
            CollectorCheck::AgentClock => "clock of {agent} on {host} is off by {offset}",
            CollectorCheck::BackupFailing => {
                "the backup of the collector on {host} failed since {since}: {error}"
            }
        }
    }
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RuleError {
    /// `file` or `file:line`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// What a rule watches for.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// A value crosses thresholds.
    Threshold(Threshold),
    /// A series stops receiving samples for `for_ms` while its agent is connected.
    Absent {
        /// How long without a sample.
        for_ms: i64,
        /// Severity of the fault.
        severity: Severity,
    },
    /// An agent's stream is gone for `for_ms`.
    AgentSilent {
        /// How long without a message.
        for_ms: i64,
        /// Severity of the fault.
        severity: Severity,
    },
    /// An item of the equipment list changed its serial, model or firmware:
    /// a fault that stays open until someone closes it.
    InventoryChanged {
        /// Severity of the fault.
        severity: Severity,
    },
    /// The collector's own health.
    Collector {
        /// What it watches.
        check: CollectorCheck,
        /// How long it must hold.
        for_ms: i64,
        /// Severity of the fault.
        severity: Severity,
    },
}

/// Threshold conditions of a rule.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// How samples are combined before the comparison.
    pub aggregate: Aggregate,
    /// Window of the aggregate (0 for `last`).
    pub over_ms: i64,
    /// Lowest severity first; a fault opens at the first that held for its
    /// `for`, and rises as higher ones hold.
    pub tiers: Vec<Tier>,
    /// Resolve only when this holds (hysteresis); without it, a fault
    /// resolves when the lowest tier no longer holds.
    pub recover: Option<Condition>,
}

/// One severity level of a threshold rule.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Fires when this holds...
    pub when: Condition,
    /// ...continuously for this long.
    pub for_ms: i64,
    /// At this severity.
    pub severity: Severity,
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: Arc<str>,
    /// What it watches for.
    pub kind: RuleKind,
    /// Metric selected (empty for agent silence).
    pub metric: String,
    /// Label matchers selecting series of the metric.
    pub matchers: Vec<Matcher>,
    /// Summary of its faults.
    pub summary: Template,
    /// `file:line` it came from.
    pub source: String,
    /// Its faults say the host or device cannot be reached (agent silence
    /// always does): a parent's such fault suppresses its children's.
    pub unreachable: bool,
    /// Its faults may be marked flapping (`flap = false` turns it off).
    pub flap: bool,
}

impl Rule {
    /// Whether a series of this rule's metric with these labels is selected.
    pub fn selects<'a>(&self, labels: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels(&m.name)))
    }

    /// The highest severity this rule can reach.
    pub fn max_severity(&self) -> Severity {
        match &self.kind {
            RuleKind::Threshold(t) => t
                .tiers
                .iter()
                .map(|t| t.severity)
                .max()
                .unwrap_or(Severity::Minor),
            RuleKind::Collector {
                check: CollectorCheck::DiskLow,
                ..
            } => Severity::Urgent,
            RuleKind::Absent { severity, .. }
            | RuleKind::AgentSilent { severity, .. }
            | RuleKind::InventoryChanged { severity }
            | RuleKind::Collector { severity, .. } => *severity,
        }
    }
}

/// All rules in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// Files they came from.
    pub files: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Threshold,
    Absent,
    AgentSilent,
    CollectorDiskLow,
    CollectorWritesFailing,
    NotificationChannelFailing,
    AgentClockSkew,
    CollectorBackupFailing,
    InventoryChanged,
}

impl RawKind {
    fn collector(self) -> Option<CollectorCheck> {
        match self {
            RawKind::CollectorDiskLow => Some(CollectorCheck::DiskLow),
            RawKind::CollectorWritesFailing => Some(CollectorCheck::WritesFailing),
            RawKind::NotificationChannelFailing => Some(CollectorCheck::ChannelFailing),
            RawKind::AgentClockSkew => Some(CollectorCheck::AgentClock),
            RawKind::CollectorBackupFailing => Some(CollectorCheck::BackupFailing),
            RawKind::Threshold | RawKind::Absent | RawKind::AgentSilent | RawKind::InventoryChanged => None,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawAggregate {
    Last,
    Avg,
    Min,
    Max,
    Increase,
    Predict,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    when: Condition,
    severity: Severity,
    #[serde(rename = "for")]
    for_: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: Option<RawKind>,
    metric: Option<String>,
    #[serde(rename = "match", default)]
    matchers: BTreeMap<String, String>,
    aggregate: Option<RawAggregate>,
    over: Option<HumanDuration>,
    horizon: Option<HumanDuration>,
    when: Option<Condition>,
    #[serde(rename = "for")]
    for_: Option<HumanDuration>,
    recover: Option<Condition>,
    severity: Option<Severity>,
    tiers: Option<Vec<RawTier>>,
    summary: Option<String>,
    description: Option<String>,
    unreachable: Option<bool>,
    flap: Option<bool>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

impl RuleSet {
    /// Loads every file matching `patterns` (globs; relative ones against
    /// `base`). All problems of all files are returned together.
    pub fn load(patterns: &[String], base: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for pattern in patterns {
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                base.join(pattern)
            };
            let full_text = full.to_string_lossy().to_string();
            match glob::glob(&full_text) {
                Ok(paths) => {
                    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                    if found.is_empty() {
                        errors.push(RuleError {
                            location: full_text.clone(),
                            message: "rules pattern matches no file".to_string(),
                        });
                    }
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(RuleError {
                    location: full_text,
                    message: format!("bad glob pattern: {e}"),
                }),
            }
        }
        let mut set = RuleSet::default();
        for file in &files {
            match std::fs::read_to_string(file) {
                Ok(text) => match Self::parse_into(&mut set, &text, &file.display().to_string()) {
                    Ok(()) => {}
                    Err(mut e) => errors.append(&mut e),
                },
                Err(e) => errors.push(RuleError {
                    location: file.display().to_string(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        set.files = files;
        if errors.is_empty() {
            set.add_builtins();
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Parses one file's text (named `file` in errors) into a set with the built-ins added.
    pub fn parse(text: &str, file: &str) -> Result<RuleSet, Vec<RuleError>> {
        let mut set = RuleSet::default();
        Self::parse_into(&mut set, text, file)?;
        set.add_builtins();
        Ok(set)
    }

    fn add_builtins(&mut self) {
        if !self
            .rules
            .iter()
            .any(|r| matches!(r.kind, RuleKind::AgentSilent { .. }))
        {
            self.rules.push(Rule {
                name: Arc::from(BUILTIN_AGENT_SILENT),
                kind: RuleKind::AgentSilent {
                    for_ms: 60_000,
                    severity: Severity::General,
                },
                metric: String::new(),
                matchers: Vec::new(),
                summary: Template::parse("agent {agent} on {host} has been silent since {last_seen}")
                    .expect("built-in template is valid"),
                source: "built-in".to_string(),
                unreachable: true,
                flap: true,
            });
        }
        for check in CollectorCheck::ALL {
            if self
                .rules
                .iter()
                .any(|r| matches!(r.kind, RuleKind::Collector { check: c, .. } if c == check))
            {
                continue;
            }
            self.rules.push(Rule {
                name: Arc::from(check.kind_name()),
                kind: RuleKind::Collector {
                    check,
                    for_ms: 0,
                    severity: check.default_severity(),
                },
                metric: String::new(),
                matchers: Vec::new(),
                summary: Template::parse(check.default_summary()).expect("built-in template is valid"),
                source: "built-in".to_string(),
                unreachable: false,
                flap: true,
            });
        }
    }

    fn parse_into(set: &mut RuleSet, text: &str, file: &str) -> Result<(), Vec<RuleError>> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            vec![RuleError {
                location: file.to_string(),
                message: e.to_string().trim_end().to_string(),
            }]
        })?;
        let mut errors = Vec::new();
        for spanned in raw.rule {
            let location = format!("{file}:{}", line_of(text, spanned.span().start));
            let r = spanned.into_inner();
            if let Some(existing) = set.rules.iter().find(|x| *x.name == *r.name) {
                errors.push(RuleError {
                    location,
                    message: format!("rule {:?} is already defined at {}", r.name, existing.source),
                });
                continue;
            }
            match check_rule(r, &location) {
                Ok(rule) => set.rules.push(rule),
                Err(message) => errors.push(RuleError { location, message }),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Rules by name.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| &*r.name == name)
    }
}

fn check_rule(r: RawRule, location: &str) -> Result<Rule, String> {
    let name = r.name.trim();
    let prefix = format!("rule {name:?}");
    if name.is_empty() {
        return Err("rule with an empty name".into());
    }
    let _ = r.description;
    let kind = r.kind.unwrap_or(RawKind::Threshold);
    let refuse = |what: &str, set: bool| -> Result<(), String> {
        if set {
            Err(format!(
                "{prefix}: `{what}` does not apply to kind {:?}",
                kind_name(kind)
            ))
        } else {
            Ok(())
        }
    };
    // What only threshold rules take.
    let threshold_keys = [
        ("when", r.when.is_some()),
        ("tiers", r.tiers.is_some()),
        ("recover", r.recover.is_some()),
        ("aggregate", r.aggregate.is_some()),
        ("over", r.over.is_some()),
        ("horizon", r.horizon.is_some()),
    ];
    let refuse_threshold_keys = || {
        threshold_keys
            .iter()
            .try_for_each(|(what, set)| refuse(what, *set))
    };
    let mut matchers = Vec::new();
    for (label, written) in &r.matchers {
        watchpost_model::names::check_label_name(label).map_err(|e| format!("{prefix}: match: {e}"))?;
        matchers.push(Matcher::parse(label, written).map_err(|e| format!("{prefix}: match: {e}"))?);
    }
    let metric = match (&r.metric, kind) {
        (Some(m), RawKind::Threshold | RawKind::Absent) => {
            watchpost_model::names::check_metric_name(m).map_err(|e| format!("{prefix}: metric: {e}"))?;
            m.clone()
        }
        (None, RawKind::Threshold | RawKind::Absent) => {
            return Err(format!("{prefix}: `metric` is required"));
        }
        (Some(_), _) => {
            return Err(format!(
                "{prefix}: `metric` does not apply to kind {:?}",
                kind_name(kind)
            ));
        }
        (None, _) => String::new(),
    };
    let for_ms = r.for_.map(|d| ms(d.0));
    let rule_kind = match kind {
        RawKind::Threshold => {
            let aggregate = match r.aggregate {
                None | Some(RawAggregate::Last) => Aggregate::Last,
                Some(RawAggregate::Avg) => Aggregate::Avg,
                Some(RawAggregate::Min) => Aggregate::Min,
                Some(RawAggregate::Max) => Aggregate::Max,
                Some(RawAggregate::Increase) => Aggregate::Increase,
                Some(RawAggregate::Predict) => match r.horizon {
                    Some(h) if !h.0.is_zero() => Aggregate::Predict { horizon_ms: ms(h.0) },
                    _ => {
                        return Err(format!(
                            "{prefix}: aggregate \"predict\" needs `horizon`, e.g. horizon = \"24h\""
                        ));
                    }
                },
            };
            if r.horizon.is_some() && !matches!(aggregate, Aggregate::Predict { .. }) {
                return Err(format!(
                    "{prefix}: `horizon` applies only to aggregate = \"predict\""
                ));
            }
            let over_ms = match (aggregate, r.over) {
                (Aggregate::Last, Some(_)) => {
                    return Err(format!(
                        "{prefix}: `over` needs `aggregate` = avg, min, max, increase or predict"
                    ));
                }
                (Aggregate::Last, None) => 0,
                (_, None) => {
                    return Err(format!(
                        "{prefix}: aggregate {:?} needs a window: `over = \"5m\"`",
                        aggregate
                    ));
                }
                (_, Some(d)) if d.0.is_zero() => {
                    return Err(format!("{prefix}: `over` must be longer than 0s"));
                }
                (_, Some(d)) => ms(d.0),
            };
            let tiers = match (r.when, r.tiers) {
                (Some(_), Some(_)) => {
                    return Err(format!("{prefix}: give either `when` or `tiers`, not both"));
                }
                (None, None) => {
                    return Err(format!(
                        "{prefix}: `when` (or `tiers`) is required, e.g. when = \"> 90\""
                    ));
                }
                (Some(when), None) => {
                    let severity = r.severity.ok_or_else(|| {
                        format!("{prefix}: `severity` is required (urgent, general or minor)")
                    })?;
                    vec![Tier {
                        when,
                        for_ms: for_ms.unwrap_or(0),
                        severity,
                    }]
                }
                (None, Some(raw_tiers)) => {
                    if r.severity.is_some() {
                        return Err(format!(
                            "{prefix}: with `tiers`, each tier has its own severity; remove the rule's `severity`"
                        ));
                    }
                    if r.for_.is_some() {
                        return Err(format!(
                            "{prefix}: with `tiers`, each tier has its own `for`; remove the rule's `for`"
                        ));
                    }
                    if raw_tiers.is_empty() {
                        return Err(format!("{prefix}: `tiers` is empty"));
                    }
                    let tiers: Vec<Tier> = raw_tiers
                        .into_iter()
                        .map(|t| Tier {
                            when: t.when,
                            for_ms: t.for_.map_or(0, |d| ms(d.0)),
                            severity: t.severity,
                        })
                        .collect();
                    for pair in tiers.windows(2) {
                        if pair[1].severity <= pair[0].severity {
                            return Err(format!(
                                "{prefix}: tiers must rise in severity (minor, general, urgent); {} follows {}",
                                pair[1].severity, pair[0].severity
                            ));
                        }
                    }
                    tiers
                }
            };
            if let Some(recover) = &r.recover
                && recover.overlaps(&tiers[0].when)
            {
                return Err(format!(
                    "{prefix}: recover \"{recover}\" overlaps when \"{}\": a value could fire and recover at once",
                    tiers[0].when
                ));
            }
            RuleKind::Threshold(Threshold {
                aggregate,
                over_ms,
                tiers,
                recover: r.recover,
            })
        }
        RawKind::CollectorDiskLow
        | RawKind::CollectorWritesFailing
        | RawKind::NotificationChannelFailing
        | RawKind::AgentClockSkew
        | RawKind::CollectorBackupFailing => {
            let check = kind.collector().expect("a collector kind");
            refuse_threshold_keys()?;
            refuse("match", !matchers.is_empty())?;
            RuleKind::Collector {
                check,
                for_ms: for_ms.unwrap_or(0).max(0),
                severity: r.severity.unwrap_or(check.default_severity()),
            }
        }
        RawKind::InventoryChanged => {
            refuse_threshold_keys()?;
            refuse("for", r.for_.is_some())?;
            refuse("match", !matchers.is_empty())?;
            RuleKind::InventoryChanged {
                severity: r.severity.unwrap_or(Severity::Minor),
            }
        }
        RawKind::Absent | RawKind::AgentSilent => {
            refuse_threshold_keys()?;
            let for_ms = for_ms.ok_or_else(|| format!("{prefix}: `for` is required, e.g. for = \"2m\""))?;
            if for_ms <= 0 {
                return Err(format!("{prefix}: `for` must be longer than 0s"));
            }
            let severity = r
                .severity
                .ok_or_else(|| format!("{prefix}: `severity` is required (urgent, general or minor)"))?;
            if kind == RawKind::Absent {
                RuleKind::Absent { for_ms, severity }
            } else {
                if !matchers.is_empty() {
                    return Err(format!(
                        "{prefix}: `match` does not apply to kind \"agent_silent\""
                    ));
                }
                RuleKind::AgentSilent { for_ms, severity }
            }
        }
    };
    let default_summary = match kind {
        RawKind::Threshold => "{rule}: {metric} on {host} is {value}",
        RawKind::Absent => "{rule}: no {metric} from {host}",
        RawKind::AgentSilent => "agent {agent} on {host} has been silent since {last_seen}",
        RawKind::InventoryChanged => "{host}: {kind} {item}: {field} changed from {old} to {new}",
        other => other.collector().map_or("", CollectorCheck::default_summary),
    };
    let summary = Template::parse(r.summary.as_deref().unwrap_or(default_summary))
        .map_err(|e| format!("{prefix}: summary: {e}"))?;
    Ok(Rule {
        name: Arc::from(name),
        kind: rule_kind,
        metric,
        matchers,
        summary,
        source: location.to_string(),
        unreachable: r.unreachable.unwrap_or(kind == RawKind::AgentSilent),
        flap: r.flap.unwrap_or(true),
    })
}

fn kind_name(k: RawKind) -> &'static str {
    match k {
        RawKind::Threshold => "threshold",
        RawKind::Absent => "absent",
        RawKind::AgentSilent => "agent_silent",
        RawKind::InventoryChanged => "inventory_changed",
        other => other.collector().map_or("", CollectorCheck::kind_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[[rule]]
name = "filesystem_full"
metric = "host_filesystem_used_percent"
match = { fstype = "!tmpfs" }
aggregate = "avg"        # last (default) | avg | min | max
over = "5m"
when = "> 90"
for = "2m"
recover = "< 85"
severity = "general"     # urgent | general | minor
summary = "{host} {mountpoint} is {value}% full"

[[rule]]
name = "cpu_busy"
metric = "host_cpu_usage_percent"
match = { cpu = "total" }
tiers = [ { when = "> 80", severity = "minor", for = "10m" },
          { when = "> 95", severity = "urgent", for = "2m" } ]
summary = "{host} CPU {value}%"

[[rule]]
name = "metrics_missing"
kind = "absent"
metric = "host_uptime_seconds"
for = "2m"
severity = "general"
"#;

    #[test]
    fn issue_example_loads() {
        let set = RuleSet::parse(ISSUE_EXAMPLE, "x.toml").expect("valid");
        assert_eq!(
            set.rules.len(),
            9,
            "three rules plus the built-in agent silence and the five collector rules"
        );
        let fs = set.get("filesystem_full").expect("rule");
        let RuleKind::Threshold(t) = &fs.kind else {
            panic!("threshold")
        };
        assert_eq!(t.aggregate, Aggregate::Avg);
        assert_eq!(t.over_ms, 300_000);
        assert_eq!(t.tiers[0].for_ms, 120_000);
        assert_eq!(fs.source, "x.toml:2");
        let cpu = set.get("cpu_busy").expect("rule");
        assert_eq!(cpu.max_severity(), Severity::Urgent);
        assert!(matches!(
            set.get("metrics_missing").map(|r| &r.kind),
            Some(RuleKind::Absent { for_ms: 120_000, .. })
        ));
        assert!(set.get(BUILTIN_AGENT_SILENT).is_some());
    }

    #[test]
    fn severities_may_be_written_in_chinese() {
        let set = RuleSet::parse(
            "[[rule]]\nname = \"a\"\nmetric = \"m\"\ntiers = [ { when = \"> 1\", severity = \"轻微\" }, { when = \"> 2\", severity = \"紧急\" } ]\n",
            "r.toml",
        )
        .expect("valid");
        assert_eq!(set.get("a").map(Rule::max_severity), Some(Severity::Urgent));
    }

    fn error_of(text: &str) -> String {
        let errs = RuleSet::parse(text, "r.toml").expect_err("invalid");
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = error_of("[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> x\"\nseverity = \"minor\"\n");
        assert!(
            e.contains("r.toml") && e.contains("line 4") && e.contains("not a number"),
            "{e}"
        );
        let e = error_of(
            "[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\nfor = \"2 parsecs\"\n",
        );
        assert!(e.contains("line 6") && e.contains("unknown unit"), "{e}");
        let e = error_of(
            "[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\nthreshold = 3\n",
        );
        assert!(e.contains("line 6") && e.contains("threshold"), "{e}");
        let e = error_of(
            "\n\n[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 90\"\nrecover = \"< 95\"\nseverity = \"minor\"\n",
        );
        assert!(e.contains("r.toml:3") && e.contains("overlaps"), "{e}");
        let e = error_of("[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"critical\"\n");
        assert!(e.contains("line 5") && e.contains("critical"), "{e}");
    }

    #[test]
    fn semantic_errors() {
        let base = "[[rule]]\nname = \"a\"\nmetric = \"m\"\n";
        for (extra, want) in [
            ("when = \"> 1\"\n", "severity"),
            ("severity = \"minor\"\n", "`when`"),
            (
                "when = \"> 1\"\nseverity = \"minor\"\naggregate = \"avg\"\n",
                "window",
            ),
            (
                "when = \"> 1\"\nseverity = \"minor\"\nover = \"5m\"\n",
                "`over` needs",
            ),
            (
                "tiers = [{ when = \"> 2\", severity = \"urgent\" }, { when = \"> 1\", severity = \"minor\" }]\n",
                "rise",
            ),
            ("kind = \"absent\"\nseverity = \"minor\"\n", "`for` is required"),
            (
                "kind = \"absent\"\nfor = \"1m\"\nseverity = \"minor\"\nwhen = \"> 1\"\n",
                "does not apply",
            ),
            (
                "when = \"> 1\"\nseverity = \"minor\"\nmatch = { fstype = \"~(\" }\n",
                "regex",
            ),
            (
                "when = \"> 1\"\nseverity = \"minor\"\nsummary = \"{host\"\n",
                "summary",
            ),
            (
                "when = \"> 1\"\nseverity = \"minor\"\naggregate = \"predict\"\nover = \"1h\"\n",
                "horizon",
            ),
            (
                "when = \"> 1\"\nseverity = \"minor\"\nhorizon = \"1h\"\n",
                "only to aggregate",
            ),
        ] {
            let e = error_of(&format!("{base}{extra}"));
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = error_of(
            "[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\n[[rule]]\nname = \"a\"\nmetric = \"m\"\nwhen = \"> 1\"\nseverity = \"minor\"\n",
        );
        assert!(
            e.contains("r.toml:6") && e.contains("already defined at r.toml:1"),
            "{e}"
        );
    }

    #[test]
    fn load_reports_missing_files_and_all_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.toml"), "[[rule]]\nname = 1\n").expect("write");
        std::fs::write(dir.path().join("b.toml"), "[[rule]]\nname = \"b\"\n").expect("write");
        let errs = RuleSet::load(&["*.toml".into(), "nothing/*.toml".into()], dir.path()).expect_err("bad");
        let all = errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
        assert!(
            all.contains("a.toml") && all.contains("b.toml") && all.contains("matches no file"),
            "{all}"
        );
    }
}
