//! The collector rules (`kind = "collector_disk_low"`,
//! `"collector_writes_failing"`, `"notification_channel_failing"`): faults
//! about the collector itself, judged each tick from a health
//! [`Snapshot`]. Their state is keyed by fault: one per condition (the
//! disk, the writes, each failing channel).

use std::collections::BTreeMap;
use std::sync::Mutex;

use watchpost_model::Severity;

use super::{CollectorCheck, RuleKind, RuleSet};
use crate::faults::{FaultKey, NewFault, Transition};
use crate::health::Snapshot;
use crate::template::format_value;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which collector conditions hold or fire.
#[derive(Default)]
pub(super) struct CollectorRules {
    states: Mutex<BTreeMap<FaultKey, CollectorState>>,
}

impl CollectorRules {
    /// The collector rules of `set` against `health`: a condition that holds for
    /// the rule's `for` opens its fault, a higher severity raises it, and
    /// it resolves when the condition no longer holds.
    pub(super) fn tick(&self, set: &RuleSet, now_ms: i64, health: &Snapshot, out: &mut Vec<Transition>) {
        let mut holding: BTreeMap<FaultKey, Holding> = BTreeMap::new();
        for rule in &set.rules {
            let RuleKind::Collector {
                check,
                for_ms,
                severity,
            } = rule.kind
            else {
                continue;
            };
            for h in holding_now(check, severity, health) {
                let key = FaultKey {
                    rule: rule.name.clone(),
                    series: h.series.clone(),
                };
                let summary = rule.summary.render(|name| match name {
                    "rule" => Some(rule.name.to_string()),
                    "severity" => Some(h.severity.to_string()),
                    "value" => Some(format_value(h.value)),
                    other => h.vars.get(other).cloned(),
                });
                holding.insert(key, Holding { for_ms, summary, ..h });
            }
        }
        let mut states = lock(&self.states);
        for (key, h) in &holding {
            let st = states.entry(key.clone()).or_insert(CollectorState {
                since_ms: now_ms,
                firing: None,
            });
            match st.firing {
                None if now_ms.saturating_sub(st.since_ms) >= h.for_ms => {
                    st.firing = Some(h.severity);
                    out.push(Transition::Open(NewFault {
                        key: key.clone(),
                        severity: h.severity,
                        value: Some(h.value),
                        at_ms: now_ms,
                        summary: h.summary.clone(),
                        host: h.host.clone(),
                        metric: String::new(),
                        labels: h.labels.clone(),
                        unreachable: false,
                        flap: true,
                    }));
                }
                Some(was) if h.severity > was => {
                    st.firing = Some(h.severity);
                    out.push(Transition::Raise {
                        key: key.clone(),
                        severity: h.severity,
                        value: h.value,
                        at_ms: now_ms,
                        summary: h.summary.clone(),
                    });
                }
                _ => {}
            }
        }
        states.retain(|key, st| {
            if holding.contains_key(key) {
                return true;
            }
            if st.firing.is_some() {
                out.push(Transition::Resolve {
                    key: key.clone(),
                    value: None,
                    at_ms: now_ms,
                    reason: "the collector's condition no longer holds".to_string(),
                });
            }
            false
        });
    }

    /// A fault of a collector rule was open when the collector stopped:
    /// it resolves at the first tick its condition does not hold.
    pub(super) fn restore(&self, key: FaultKey, severity: Severity) {
        lock(&self.states).insert(
            key,
            CollectorState {
                since_ms: i64::MIN,
                firing: Some(severity),
            },
        );
    }

    /// After a reload: faults of collector rules no longer in `set` resolve.
    pub(super) fn keep_configured(&self, set: &RuleSet, now_ms: i64, out: &mut Vec<Transition>) {
        lock(&self.states).retain(|key, st| {
            let kept = matches!(
                set.get(&key.rule).map(|r| &r.kind),
                Some(RuleKind::Collector { .. })
            );
            if !kept && st.firing.is_some() {
                out.push(Transition::Resolve {
                    key: key.clone(),
                    value: None,
                    at_ms: now_ms,
                    reason: format!("rule {:?} is no longer configured", &*key.rule),
                });
            }
            kept
        });
    }
}

/// A collector rule's condition: holding since, firing at.
#[derive(Debug, Clone)]
struct CollectorState {
    since_ms: i64,
    firing: Option<Severity>,
}

/// One collector condition that holds now.
struct Holding {
    series: String,
    /// The host the fault is about.
    host: String,
    severity: Severity,
    value: f64,
    labels: BTreeMap<String, String>,
    /// What its summary template may name.
    vars: BTreeMap<&'static str, String>,
    for_ms: i64,
    summary: String,
}

fn holding_now(check: CollectorCheck, severity: Severity, h: &Snapshot) -> Vec<Holding> {
    let since = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let base = |series: String, value: f64| Holding {
        series,
        host: h.host.clone(),
        severity,
        value,
        labels: BTreeMap::from([("host".to_string(), h.host.clone())]),
        vars: BTreeMap::from([("host", h.host.clone()), ("data_dir", h.data_dir.clone())]),
        for_ms: 0,
        summary: String::new(),
    };
    match check {
        CollectorCheck::DiskLow => {
            let Some(d) = h.disk.filter(|d| d.free < d.min_free) else {
                return Vec::new();
            };
            let mut x = base("collector:disk".to_string(), d.free as f64);
            if !h.writes.is_empty() {
                x.severity = Severity::Urgent;
            }
            x.labels.insert("data_dir".into(), h.data_dir.clone());
            x.vars.insert("free", watchpost_model::format_size(d.free));
            x.vars
                .insert("min_free", watchpost_model::format_size(d.min_free));
            x.vars.insert("total", watchpost_model::format_size(d.total));
            vec![x]
        }
        CollectorCheck::WritesFailing => {
            let Some((_, first)) = h.writes.iter().min_by_key(|(_, f)| f.since_ms) else {
                return Vec::new();
            };
            let failures: u64 = h.writes.iter().map(|(_, f)| f.failures).sum();
            let mut x = base("collector:writes".to_string(), failures as f64);
            x.labels.insert("data_dir".into(), h.data_dir.clone());
            let stores: Vec<&str> = h.writes.iter().map(|(s, _)| s.as_str()).collect();
            x.vars.insert("store", stores.join(" and "));
            x.vars.insert("error", first.error.clone());
            x.vars.insert("since", since(first.since_ms));
            vec![x]
        }
        CollectorCheck::AgentClock => h
            .clocks_off
            .iter()
            .map(|(agent, host, offset_ms)| {
                let mut x = base(format!("agent:{agent}:clock"), *offset_ms as f64 / 1000.0);
                x.labels = BTreeMap::from([
                    ("agent".to_string(), agent.clone()),
                    ("host".to_string(), host.clone()),
                ]);
                x.vars.insert("agent", agent.clone());
                x.vars.insert("host", host.clone());
                x.host = host.clone();
                x.vars
                    .insert("offset", crate::clock_offset::format_offset(*offset_ms));
                x
            })
            .collect(),
        CollectorCheck::BackupFailing => {
            let Some(f) = &h.backup else { return Vec::new() };
            let mut x = base("collector:backup".to_string(), f.failures as f64);
            x.vars.insert("error", f.error.clone());
            x.vars.insert("since", since(f.since_ms));
            vec![x]
        }
        CollectorCheck::ChannelFailing => h
            .channels
            .iter()
            .map(|(name, f)| {
                let mut x = base(format!("channel:{name}"), f.failures as f64);
                x.labels.insert("channel".into(), name.clone());
                x.vars.insert("channel", name.clone());
                x.vars.insert("error", f.error.clone());
                x.vars.insert("since", since(f.since_ms));
                x
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Disk, Failing, Store};
    use crate::rules::RuleSet;

    fn health(free: u64, writes: bool, channels: &[&str]) -> Snapshot {
        let failing = Failing {
            since_ms: 1_000,
            error: "No space left on device (os error 28)".into(),
            failures: 3,
        };
        Snapshot {
            host: "col1".into(),
            data_dir: "/var/lib/watchpost".into(),
            disk: Some(Disk {
                free,
                total: 100 << 30,
                min_free: 5 << 30,
            }),
            writes: if writes {
                vec![(Store::Journal, failing.clone())]
            } else {
                Vec::new()
            },
            channels: channels
                .iter()
                .map(|c| (c.to_string(), failing.clone()))
                .collect(),
            backup: None,
            clocks_off: Vec::new(),
        }
    }

    #[test]
    fn a_failed_backup_is_a_fault_until_one_succeeds() {
        let set = RuleSet::parse("", "r.toml").expect("built-ins");
        let c = CollectorRules::default();
        let mut h = health(50 << 30, false, &[]);
        assert!(run(&set, &c, 0, &h).is_empty());
        h.backup = Some(Failing {
            since_ms: 1_000,
            error: "/mnt/offsite: Permission denied (os error 13)".into(),
            failures: 1,
        });
        let t = run(&set, &c, 1_000, &h);
        let [Transition::Open(f)] = t.as_slice() else {
            panic!("{t:?}")
        };
        assert_eq!(&*f.key.rule, "collector_backup_failing");
        assert_eq!(f.severity, Severity::General);
        assert!(
            f.summary.contains("backup of the collector on col1 failed")
                && f.summary.contains("Permission denied"),
            "{}",
            f.summary
        );
        h.backup = None;
        let t = run(&set, &c, 2_000, &h);
        assert!(matches!(t.as_slice(), [Transition::Resolve { .. }]), "{t:?}");
    }

    fn run(set: &RuleSet, c: &CollectorRules, at: i64, h: &Snapshot) -> Vec<Transition> {
        let mut out = Vec::new();
        c.tick(set, at, h, &mut out);
        out
    }

    #[test]
    fn disk_low_opens_rises_while_writes_fail_and_resolves() {
        let set = RuleSet::parse("", "r.toml").expect("built-ins");
        let c = CollectorRules::default();
        assert!(run(&set, &c, 0, &health(50 << 30, false, &[])).is_empty());
        let t = run(&set, &c, 1_000, &health(4 << 30, false, &[]));
        let [Transition::Open(f)] = t.as_slice() else {
            panic!("{t:?}")
        };
        assert_eq!(&*f.key.rule, "collector_disk_low");
        assert_eq!(f.key.series, "collector:disk");
        assert_eq!(f.severity, Severity::General);
        assert_eq!(f.host, "col1");
        assert_eq!(
            f.summary,
            "the collector's data directory /var/lib/watchpost on col1 has 4.0 GiB free, below 5.0 GiB"
        );
        assert!(
            run(&set, &c, 2_000, &health(4 << 30, false, &[])).is_empty(),
            "once"
        );
        let t = run(&set, &c, 3_000, &health(0, true, &[]));
        assert!(
            t.iter().any(|t| matches!(t, Transition::Raise { key, severity: Severity::Urgent, .. } if key.series == "collector:disk")),
            "{t:?}"
        );
        let writes = t
            .iter()
            .find_map(|t| match t {
                Transition::Open(f) if &*f.key.rule == "collector_writes_failing" => Some(f),
                _ => None,
            })
            .expect("writes failing opens");
        assert_eq!(writes.severity, Severity::Urgent);
        assert!(
            writes.summary.contains("cannot write its journal: No space left"),
            "{}",
            writes.summary
        );
        let t = run(&set, &c, 4_000, &health(50 << 30, false, &[]));
        assert_eq!(t.len(), 2, "both resolve: {t:?}");
        assert!(t.iter().all(|t| matches!(t, Transition::Resolve { .. })));
    }

    #[test]
    fn each_failing_channel_is_a_fault_of_its_own() {
        let set = RuleSet::parse("", "r.toml").expect("built-ins");
        let c = CollectorRules::default();
        let t = run(&set, &c, 0, &health(50 << 30, false, &["hook", "mail"]));
        let series: Vec<&str> = t.iter().map(|t| t.key().series.as_str()).collect();
        assert_eq!(series, ["channel:hook", "channel:mail"]);
        let Transition::Open(f) = &t[0] else { panic!() };
        assert_eq!(f.labels.get("channel").map(String::as_str), Some("hook"));
        assert!(
            f.summary
                .starts_with("notification channel hook has failed since"),
            "{}",
            f.summary
        );
        let t = run(&set, &c, 1_000, &health(50 << 30, false, &["mail"]));
        assert!(
            matches!(t.as_slice(), [Transition::Resolve { key, .. }] if key.series == "channel:hook"),
            "{t:?}"
        );
    }

    #[test]
    fn a_rule_file_overrides_the_built_in_with_its_for_severity_and_summary() {
        let set = RuleSet::parse(
            r#"
[[rule]]
name = "data_disk"
kind = "collector_disk_low"
for = "10s"
severity = "urgent"
summary = "{host}: only {free} left"
"#,
            "r.toml",
        )
        .expect("valid");
        assert!(set.get("collector_disk_low").is_none(), "replaced, not added");
        assert!(set.get("collector_writes_failing").is_some());
        let c = CollectorRules::default();
        assert!(
            run(&set, &c, 0, &health(1 << 30, false, &[])).is_empty(),
            "pending"
        );
        assert!(run(&set, &c, 9_999, &health(1 << 30, false, &[])).is_empty());
        let t = run(&set, &c, 10_000, &health(1 << 30, false, &[]));
        let [Transition::Open(f)] = t.as_slice() else {
            panic!("{t:?}")
        };
        assert_eq!((&*f.key.rule, f.severity), ("data_disk", Severity::Urgent));
        assert_eq!(f.summary, "col1: only 1.0 GiB left");
        let e = RuleSet::parse(
            "[[rule]]\nname = \"d\"\nkind = \"collector_disk_low\"\nmetric = \"m\"\n",
            "r.toml",
        )
        .expect_err("metric");
        assert!(e[0].to_string().contains("`metric` does not apply"), "{e:?}");
        let e = RuleSet::parse(
            "[[rule]]\nname = \"d\"\nkind = \"collector_writes_failing\"\nwhen = \"> 1\"\n",
            "r.toml",
        )
        .expect_err("when");
        assert!(e[0].to_string().contains("`when` does not apply"), "{e:?}");
    }

    #[test]
    fn an_agent_whose_clock_is_off_has_a_fault_about_its_host() {
        let set = RuleSet::parse("", "r.toml").expect("built-ins");
        let c = CollectorRules::default();
        let mut h = health(50 << 30, false, &[]);
        h.clocks_off = vec![("web-1".into(), "web".into(), 7_200_004)];
        let t = run(&set, &c, 0, &h);
        let [Transition::Open(f)] = t.as_slice() else {
            panic!("{t:?}")
        };
        assert_eq!(
            (&*f.key.rule, f.key.series.as_str()),
            ("agent_clock_skew", "agent:web-1:clock")
        );
        assert_eq!((f.host.as_str(), f.severity), ("web", Severity::General));
        assert_eq!(f.summary, "clock of web-1 on web is off by +7200.004s");
        h.clocks_off.clear();
        assert!(matches!(
            run(&set, &c, 1_000, &h).as_slice(),
            [Transition::Resolve { .. }]
        ));
    }

    #[test]
    fn a_fault_open_at_restart_resolves_when_its_condition_is_gone() {
        let set = RuleSet::parse("", "r.toml").expect("built-ins");
        let c = CollectorRules::default();
        let key = FaultKey {
            rule: "collector_writes_failing".into(),
            series: "collector:writes".into(),
        };
        c.restore(key.clone(), Severity::Urgent);
        let t = run(&set, &c, 0, &health(50 << 30, false, &[]));
        assert!(
            matches!(t.as_slice(), [Transition::Resolve { key: k, .. }] if *k == key),
            "{t:?}"
        );
    }
}
