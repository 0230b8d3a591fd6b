//! The rule engine: evaluates rules as samples arrive and on a clock tick,
//! and says which faults open, rise, re-fire, resolve.
//!
//! Owns the per-(rule, series) state (pending since, firing tier) and which
//! rules bind which series. Produces [`Transition`]s for the fault stage;
//! does no I/O and reads time only from its arguments: threshold rules use
//! sample timestamps, absence and agent silence the collector's clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use watchpost_model::Severity;

use super::collector::CollectorRules;
use super::threshold::{Change, ThresholdState, evaluate};
use super::{Rule, RuleKind, RuleSet, Threshold};
use crate::faults::{FaultKey, NewFault, Transition};
use crate::health::Snapshot;
use crate::store::{Aggregate, HotStore, SeriesId};
use crate::template::format_value;

const SHARDS: usize = 16;

#[derive(Debug, Clone)]
struct AbsentState {
    last_arrival_ms: i64,
    host: Arc<str>,
    firing: bool,
}

/// An agent as the tick sees it.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// Agent id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Whether a stream is open.
    pub connected: bool,
    /// Last message (ms).
    pub last_seen_ms: i64,
}

/// Which rules select each series. Series of one kind share one set (all
/// filesystems of all hosts bind the same rules), so a series costs a
/// four-byte index here, not a list of its own.
struct Bindings {
    of_series: Vec<u32>,
    sets: Vec<Box<[u16]>>,
    index: HashMap<Box<[u16]>, u32>,
}

impl Default for Bindings {
    fn default() -> Self {
        let empty: Box<[u16]> = Box::new([]);
        Bindings {
            of_series: Vec::new(),
            sets: vec![empty.clone()],
            index: HashMap::from([(empty, 0)]),
        }
    }
}

impl Bindings {
    fn set(&mut self, id: SeriesId, rules: Box<[u16]>) {
        let next = self.sets.len() as u32;
        let set = match self.index.get(&rules) {
            Some(k) => *k,
            None => {
                self.sets.push(rules.clone());
                self.index.insert(rules, next);
                next
            }
        };
        let i = id.0 as usize;
        if self.of_series.len() <= i {
            self.of_series.resize(i + 1, 0);
        }
        self.of_series[i] = set;
    }

    fn get(&self, id: SeriesId) -> &[u16] {
        let set = self.of_series.get(id.0 as usize).copied().unwrap_or(0);
        &self.sets[set as usize]
    }

    fn len(&self) -> usize {
        self.of_series.len()
    }
}

struct Compiled {
    set: RuleSet,
    by_metric: HashMap<String, Vec<u16>>,
    silence: Option<u16>,
}

impl Compiled {
    fn new(set: RuleSet) -> Compiled {
        let mut by_metric: HashMap<String, Vec<u16>> = HashMap::new();
        let mut silence = None;
        for (i, r) in set.rules.iter().enumerate() {
            match r.kind {
                RuleKind::AgentSilent { .. } => silence = silence.or(Some(i as u16)),
                RuleKind::Collector { .. } | RuleKind::InventoryChanged { .. } => {}
                RuleKind::Threshold(_) | RuleKind::Absent { .. } => {
                    by_metric.entry(r.metric.clone()).or_default().push(i as u16)
                }
            }
        }
        Compiled {
            set,
            by_metric,
            silence,
        }
    }
}

/// Hasher for the small integer keys of rule state: one multiply, where
/// SipHash would cost more than the evaluation it guards.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type StateMap<S> = Box<[Mutex<HashMap<(u32, u16), S, std::hash::BuildHasherDefault<KeyHasher>>>]>;

fn shards<S>() -> StateMap<S> {
    (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect()
}

/// Moves rule state to the new rule indices after a reload; state of rules
/// gone (or no longer selecting the series) is dropped, and if it was firing
/// its (series, old rule) goes to `removed` so the fault can be resolved.
fn rekey<S>(
    map: &StateMap<S>,
    remap: &impl Fn(u16) -> Option<u16>,
    still_bound: &impl Fn(u32, u16) -> bool,
    firing: impl Fn(&S) -> bool,
    removed: &mut Vec<(u32, u16)>,
) {
    for shard in map.iter() {
        let mut states = lock(shard);
        for ((sid, ri), st) in std::mem::take(&mut *states) {
            match remap(ri) {
                Some(nri) if still_bound(sid, nri) => {
                    states.insert((sid, nri), st);
                }
                _ if firing(&st) => removed.push((sid, ri)),
                _ => {}
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Evaluates rules against the hot store.
pub struct Engine {
    store: Arc<HotStore>,
    compiled: RwLock<Arc<Compiled>>,
    bindings: RwLock<Bindings>,
    thresholds: StateMap<ThresholdState>,
    absents: StateMap<AbsentState>,
    /// Agents with an open silence fault, by id.
    silent: Mutex<HashMap<String, FaultKey>>,
    /// Collector rules' conditions holding or firing.
    collector: CollectorRules,
    /// Open faults found in the database at start, not yet matched to a series.
    restored: Mutex<HashMap<FaultKey, Severity>>,
    /// The latest text each series carried (a log's last matching line),
    /// for `{text}` in summaries. Only series whose agent sends texts have
    /// an entry, each at most [`watchpost_model::names::MAX_SERIES_TEXT_CHARS`] characters.
    texts: Mutex<HashMap<u32, Arc<str>>>,
}

/// The canonical key of a series: `metric{a="1",host="h"}`.
pub fn series_key(metric: &str, labels: &BTreeMap<String, String>) -> String {
    let mut s = String::with_capacity(metric.len() + 16 * labels.len());
    s.push_str(metric);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
    }
    s.push('}');
    s
}

impl Engine {
    /// An engine over `store` with `rules` in force.
    pub fn new(store: Arc<HotStore>, rules: RuleSet) -> Engine {
        Engine {
            store,
            compiled: RwLock::new(Arc::new(Compiled::new(rules))),
            bindings: RwLock::new(Bindings::default()),
            thresholds: shards(),
            absents: shards(),
            silent: Mutex::new(HashMap::new()),
            collector: CollectorRules::default(),
            restored: Mutex::new(HashMap::new()),
            texts: Mutex::new(HashMap::new()),
        }
    }

    fn compiled(&self) -> Arc<Compiled> {
        self.compiled.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Number of rules in force (built-ins included).
    pub fn rule_count(&self) -> usize {
        self.compiled().set.rules.len()
    }

    /// The rules in force.
    pub fn rules(&self) -> RuleSet {
        self.compiled().set.clone()
    }

    fn rules_for(&self, c: &Compiled, id: SeriesId) -> Box<[u16]> {
        self.store
            .with_labels(id, |metric, labels| {
                let Some(candidates) = c.by_metric.get(metric) else {
                    return Vec::new();
                };
                let labels: Vec<(&str, &str)> = labels.collect();
                candidates
                    .iter()
                    .copied()
                    .filter(|ri| {
                        c.set.rules[usize::from(*ri)]
                            .selects(|name| labels.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                    })
                    .collect()
            })
            .unwrap_or_default()
            .into_boxed_slice()
    }

    /// Binds a series the store just created to the rules that select it.
    pub fn bind_series(&self, id: SeriesId) {
        let c = self.compiled();
        let rules = self.rules_for(&c, id);
        self.seed_restored(&c, id, &rules);
        self.bindings
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set(id, rules);
    }

    /// Describes a series for a fault record: (metric, labels, key).
    fn describe(&self, id: SeriesId) -> (String, BTreeMap<String, String>, String) {
        match self.store.labels(id) {
            Some(l) => {
                let key = series_key(&l.metric, &l.labels);
                (l.metric, l.labels, key)
            }
            None => (String::new(), BTreeMap::new(), format!("series#{}", id.0)),
        }
    }

    /// Seeds state for open faults restored from the database whose series
    /// has just been bound (once per series, at creation or reload).
    fn seed_restored(&self, c: &Compiled, id: SeriesId, bound: &[u16]) {
        let mut restored = lock(&self.restored);
        if restored.is_empty() {
            return;
        }
        let (_, _, series) = self.describe(id);
        for &ri in bound {
            let rule = &c.set.rules[usize::from(ri)];
            let RuleKind::Threshold(t) = &rule.kind else {
                continue;
            };
            let key = FaultKey {
                rule: rule.name.clone(),
                series: series.clone(),
            };
            if let Some(sev) = restored.remove(&key) {
                let tier = t.tiers.iter().rposition(|t| t.severity <= sev).unwrap_or(0);
                lock(&self.thresholds[id.0 as usize % SHARDS])
                    .insert((id.0, ri), ThresholdState::new(Some(tier as u8)));
            }
        }
    }

    /// Keeps `text` as the latest text of series `id`, cut to
    /// [`watchpost_model::names::MAX_SERIES_TEXT_CHARS`] characters with control characters replaced: it
    /// arrives before the samples of its batch, so a fault they open shows it.
    pub fn set_text(&self, id: SeriesId, text: &str) {
        let text = watchpost_model::names::series_text(text);
        lock(&self.texts).insert(id.0, text.into());
    }

    /// The rule that opens a fault when the equipment list changes, if any.
    pub fn inventory_rule(&self) -> Option<crate::faults::ChangeRule> {
        self.compiled().set.rules.iter().find_map(|r| match r.kind {
            RuleKind::InventoryChanged { severity } => Some(crate::faults::ChangeRule {
                name: r.name.clone(),
                severity,
                summary: r.summary.clone(),
            }),
            _ => None,
        })
    }

    /// The latest text of series `id`, if it ever carried one.
    pub fn text(&self, id: SeriesId) -> Option<Arc<str>> {
        lock(&self.texts).get(&id.0).cloned()
    }

    fn render(
        rule: &Rule,
        labels: &BTreeMap<String, String>,
        metric: &str,
        value: Option<f64>,
        severity: Severity,
        text: Option<&str>,
    ) -> String {
        rule.summary.render(|name| match name {
            "value" => value.map(format_value),
            // A series that never carried a text shows none, not "{text}".
            "text" => Some(text.unwrap_or("").to_string()),
            "rule" => Some(rule.name.to_string()),
            "metric" => Some(metric.to_string()),
            "severity" => Some(severity.to_string()),
            other => labels.get(other).cloned(),
        })
    }

    /// Evaluates the rules bound to each sample's series; appends what
    /// changes to `out`. `now_ms` is the collector's clock (for absence).
    pub fn on_samples(&self, samples: &[(SeriesId, i64, f64)], now_ms: i64, out: &mut Vec<Transition>) {
        let c = self.compiled();
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        for &(id, ts, v) in samples {
            let bound = bindings.get(id);
            if bound.is_empty() {
                continue;
            }
            let shard = id.0 as usize % SHARDS;
            // Rules of one series often share an aggregate (a warning and
            // an urgent threshold on the same 5-minute average): the window
            // is decoded once per sample for each distinct one.
            let mut windows = [(Aggregate::Last, 0i64, None::<f64>); 4];
            let mut decoded = 0;
            for &ri in bound.iter() {
                let rule = &c.set.rules[usize::from(ri)];
                match &rule.kind {
                    RuleKind::Threshold(t) => {
                        let x = if t.aggregate == Aggregate::Last {
                            v
                        } else {
                            let seen = windows[..decoded]
                                .iter()
                                .find(|(a, over, _)| *a == t.aggregate && *over == t.over_ms)
                                .map(|w| w.2);
                            let x = seen.unwrap_or_else(|| {
                                let x = self.store.aggregate(id, ts - t.over_ms, t.aggregate);
                                if decoded < windows.len() {
                                    windows[decoded] = (t.aggregate, t.over_ms, x);
                                    decoded += 1;
                                }
                                x
                            });
                            match x {
                                Some(x) => x,
                                None => continue,
                            }
                        };
                        if x.is_nan() {
                            // A NaN reading (a sensor's "no value") says nothing
                            // about the condition: no state changes on it.
                            continue;
                        }
                        // State is kept only while something is pending or firing:
                        // most series never cross a threshold and cost nothing here.
                        let mut states = lock(&self.thresholds[shard]);
                        let change = match states.get_mut(&(id.0, ri)) {
                            Some(st) => {
                                let change = evaluate(t, st, ts, x);
                                if st.is_idle() {
                                    states.remove(&(id.0, ri));
                                }
                                change
                            }
                            None => {
                                let mut st = ThresholdState::new(None);
                                let change = evaluate(t, &mut st, ts, x);
                                if !st.is_idle() {
                                    states.insert((id.0, ri), st);
                                }
                                change
                            }
                        };
                        drop(states);
                        let Some(change) = change else { continue };
                        out.push(self.threshold_transition(rule, t, id, change, ts, x));
                    }
                    RuleKind::Absent { .. } => {
                        let mut states = lock(&self.absents[shard]);
                        let st = states.entry((id.0, ri)).or_insert_with(|| AbsentState {
                            last_arrival_ms: now_ms,
                            host: Arc::from(
                                self.describe(id).1.get("host").map(String::as_str).unwrap_or(""),
                            ),
                            firing: false,
                        });
                        st.last_arrival_ms = now_ms;
                        if st.firing {
                            st.firing = false;
                            drop(states);
                            let (_, _, series) = self.describe(id);
                            out.push(Transition::Resolve {
                                key: FaultKey {
                                    rule: rule.name.clone(),
                                    series,
                                },
                                value: Some(v),
                                at_ms: now_ms,
                                reason: "samples arrive again".to_string(),
                            });
                        }
                    }
                    RuleKind::AgentSilent { .. }
                    | RuleKind::Collector { .. }
                    | RuleKind::InventoryChanged { .. } => {}
                }
            }
        }
    }

    fn threshold_transition(
        &self,
        rule: &Rule,
        t: &Threshold,
        id: SeriesId,
        change: Change,
        ts: i64,
        x: f64,
    ) -> Transition {
        let (metric, labels, series) = self.describe(id);
        let key = FaultKey {
            rule: rule.name.clone(),
            series,
        };
        let text = self.text(id);
        let text = text.as_deref();
        match change {
            Change::Open(i) => {
                let severity = t.tiers[i].severity;
                Transition::Open(NewFault {
                    summary: Self::render(rule, &labels, &metric, Some(x), severity, text),
                    key,
                    severity,
                    value: Some(x),
                    at_ms: ts,
                    host: labels.get("host").cloned().unwrap_or_default(),
                    metric,
                    labels,
                    unreachable: rule.unreachable,
                    flap: rule.flap,
                })
            }
            Change::Raise(i) => {
                let severity = t.tiers[i].severity;
                Transition::Raise {
                    summary: Self::render(rule, &labels, &metric, Some(x), severity, text),
                    key,
                    severity,
                    value: x,
                    at_ms: ts,
                }
            }
            Change::Refire => Transition::Refire {
                key,
                value: x,
                at_ms: ts,
            },
            Change::Observe => Transition::Observe {
                key,
                value: x,
                at_ms: ts,
            },
            Change::Resolve => {
                let reason = match &t.recover {
                    Some(c) => format!("value {} meets recover \"{c}\"", format_value(x)),
                    None => format!(
                        "value {} no longer meets \"{}\"",
                        format_value(x),
                        t.tiers[0].when
                    ),
                };
                Transition::Resolve {
                    key,
                    value: Some(x),
                    at_ms: ts,
                    reason,
                }
            }
        }
    }

    /// Time-based conditions: series gone absent while their agent is
    /// connected, agents silent too long, and the collector's own health.
    pub fn tick(&self, now_ms: i64, agents: &[AgentStatus], health: &Snapshot, out: &mut Vec<Transition>) {
        let c = self.compiled();
        self.collector.tick(&c.set, now_ms, health, out);
        let connected_hosts: std::collections::HashSet<&str> = agents
            .iter()
            .filter(|a| a.connected)
            .map(|a| a.hostname.as_str())
            .collect();
        for shard in self.absents.iter() {
            let mut fired = Vec::new();
            {
                let mut states = lock(shard);
                for (&(sid, ri), st) in states.iter_mut() {
                    let Some(rule) = c.set.rules.get(usize::from(ri)) else {
                        continue;
                    };
                    let RuleKind::Absent { for_ms, severity } = rule.kind else {
                        continue;
                    };
                    if !st.firing
                        && now_ms - st.last_arrival_ms >= for_ms
                        && connected_hosts.contains(&*st.host)
                    {
                        st.firing = true;
                        fired.push((SeriesId(sid), ri, severity, now_ms - st.last_arrival_ms));
                    }
                }
            }
            for (id, ri, severity, gone_ms) in fired {
                let rule = &c.set.rules[usize::from(ri)];
                let (metric, labels, series) = self.describe(id);
                let gone = gone_ms as f64 / 1000.0;
                out.push(Transition::Open(NewFault {
                    summary: Self::render(rule, &labels, &metric, Some(gone), severity, None),
                    key: FaultKey {
                        rule: rule.name.clone(),
                        series,
                    },
                    severity,
                    value: Some(gone),
                    at_ms: now_ms,
                    host: labels.get("host").cloned().unwrap_or_default(),
                    metric,
                    labels,
                    unreachable: rule.unreachable,
                    flap: rule.flap,
                }));
            }
        }
        let Some(si) = c.silence else { return };
        let rule = &c.set.rules[usize::from(si)];
        let RuleKind::AgentSilent { for_ms, severity } = rule.kind else {
            return;
        };
        let mut silent = lock(&self.silent);
        for a in agents {
            let silent_ms = now_ms - a.last_seen_ms;
            match (a.connected, silent.contains_key(&a.id)) {
                (false, false) if silent_ms >= for_ms => {
                    let key = FaultKey {
                        rule: rule.name.clone(),
                        series: format!("agent:{}", a.id),
                    };
                    let labels = BTreeMap::from([
                        ("agent".to_string(), a.id.clone()),
                        ("host".to_string(), a.hostname.clone()),
                    ]);
                    let last_seen = jiff::Timestamp::from_millisecond(a.last_seen_ms)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    let summary = rule.summary.render(|name| match name {
                        "agent" => Some(a.id.clone()),
                        "host" => Some(a.hostname.clone()),
                        "last_seen" => Some(last_seen.clone()),
                        "value" => Some(format_value(silent_ms as f64 / 1000.0)),
                        "rule" => Some(rule.name.to_string()),
                        "severity" => Some(severity.to_string()),
                        _ => None,
                    });
                    silent.insert(a.id.clone(), key.clone());
                    out.push(Transition::Open(NewFault {
                        key,
                        severity,
                        value: Some(silent_ms as f64 / 1000.0),
                        at_ms: now_ms,
                        summary,
                        host: a.hostname.clone(),
                        metric: String::new(),
                        labels,
                        unreachable: rule.unreachable,
                        flap: rule.flap,
                    }));
                }
                (true, true) => {
                    if let Some(key) = silent.remove(&a.id) {
                        out.push(Transition::Resolve {
                            key,
                            value: None,
                            at_ms: now_ms,
                            reason: "agent connected again".to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes in the faults that were open when the collector stopped, so they
    /// resolve when their condition clears. Faults of rules no longer
    /// configured are resolved now.
    pub fn restore(&self, open: Vec<(FaultKey, Severity)>, now_ms: i64, out: &mut Vec<Transition>) {
        let c = self.compiled();
        let mut restored = lock(&self.restored);
        let mut silent = lock(&self.silent);
        for (key, severity) in open {
            match c.set.get(&key.rule).map(|r| &r.kind) {
                Some(RuleKind::Collector { .. }) => self.collector.restore(key, severity),
                Some(RuleKind::AgentSilent { .. }) => {
                    let id = key
                        .series
                        .strip_prefix("agent:")
                        .unwrap_or(&key.series)
                        .to_string();
                    silent.insert(id, key);
                }
                Some(_) => {
                    restored.insert(key, severity);
                }
                None => out.push(Transition::Resolve {
                    reason: format!("rule {:?} is no longer configured", &*key.rule),
                    key,
                    value: None,
                    at_ms: now_ms,
                }),
            }
        }
    }

    /// Puts a new rule set in force. State of rules that keep their name
    /// carries over, so faults that still fire stay open; firing faults of
    /// rules removed (or no longer selecting their series) resolve.
    pub fn replace_rules(&self, rules: RuleSet, now_ms: i64, out: &mut Vec<Transition>) {
        let old = self.compiled();
        let new = Arc::new(Compiled::new(rules));
        let remap: Vec<Option<u16>> = old
            .set
            .rules
            .iter()
            .map(|r| {
                new.set
                    .rules
                    .iter()
                    .position(|n| {
                        n.name == r.name && std::mem::discriminant(&n.kind) == std::mem::discriminant(&r.kind)
                    })
                    .map(|i| i as u16)
            })
            .collect();
        let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
        let series = bindings.len();
        *bindings = Bindings::default();
        for i in 0..series as u32 {
            bindings.set(SeriesId(i), self.rules_for(&new, SeriesId(i)));
        }
        let still_bound = |sid: u32, ri: u16| bindings.get(SeriesId(sid)).contains(&ri);
        let mut removed = Vec::new();
        let remap_rule = |ri: u16| remap.get(usize::from(ri)).copied().flatten();
        rekey(
            &self.thresholds,
            &remap_rule,
            &still_bound,
            |st| st.firing.is_some(),
            &mut removed,
        );
        rekey(
            &self.absents,
            &remap_rule,
            &still_bound,
            |st| st.firing,
            &mut removed,
        );
        drop(bindings);
        for (sid, ri) in removed {
            let rule = &old.set.rules[usize::from(ri)];
            let (_, _, series) = self.describe(SeriesId(sid));
            out.push(Transition::Resolve {
                key: FaultKey {
                    rule: rule.name.clone(),
                    series,
                },
                value: None,
                at_ms: now_ms,
                reason: format!(
                    "rule {:?} no longer selects this series after a reload",
                    &*rule.name
                ),
            });
        }
        let new_silence = new.silence.map(|i| new.set.rules[usize::from(i)].name.clone());
        let mut silent = lock(&self.silent);
        silent.retain(|_, key| {
            if Some(&key.rule) == new_silence.as_ref() {
                true
            } else {
                out.push(Transition::Resolve {
                    key: key.clone(),
                    value: None,
                    at_ms: now_ms,
                    reason: format!("rule {:?} is no longer configured", &*key.rule),
                });
                false
            }
        });
        self.collector.keep_configured(&new.set, now_ms, out);
        *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = new;
    }

    /// Whether `rule` watches the collector itself: its faults are sent
    /// directly when they cannot be recorded (see `notify::dispatch`).
    pub fn is_collector_rule(&self, rule: &str) -> bool {
        matches!(
            self.compiled().set.get(rule).map(|r| &r.kind),
            Some(RuleKind::Collector { .. })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(rules: &str) -> (Arc<HotStore>, Engine) {
        let store = Arc::new(HotStore::new(3_600_000));
        let set = RuleSet::parse(rules, "t.toml").expect("valid rules");
        let e = Engine::new(store.clone(), set);
        (store, e)
    }

    fn series(store: &HotStore, e: &Engine, metric: &str, labels: &[(&str, &str)]) -> SeriesId {
        let (id, created) = store.resolve(metric, labels);
        if created {
            e.bind_series(id);
        }
        id
    }

    fn feed(store: &HotStore, e: &Engine, id: SeriesId, ts: i64, v: f64) -> Vec<Transition> {
        store.append(id, ts, v).expect("in order");
        let mut out = Vec::new();
        e.on_samples(&[(id, ts, v)], ts, &mut out);
        out.retain(Transition::is_state_change);
        out
    }

    const FS: &str = r#"
[[rule]]
name = "fs_full"
metric = "fs"
match = { fstype = "!tmpfs" }
when = "> 90"
for = "20s"
recover = "< 85"
severity = "general"
summary = "{host} {mountpoint} is {value}% full"
"#;

    #[test]
    fn for_duration_then_hysteresis() {
        let (store, e) = engine(FS);
        let id = series(
            &store,
            &e,
            "fs",
            &[("fstype", "ext4"), ("host", "db1"), ("mountpoint", "/data")],
        );
        assert!(feed(&store, &e, id, 0, 95.0).is_empty(), "pending, not firing");
        assert!(feed(&store, &e, id, 10_000, 95.0).is_empty());
        let t = feed(&store, &e, id, 20_000, 96.0);
        let [Transition::Open(f)] = t.as_slice() else {
            panic!("expected open, got {t:?}")
        };
        assert_eq!(f.severity, Severity::General);
        assert_eq!(f.summary, "db1 /data is 96% full");
        assert_eq!(f.host, "db1");
        assert_eq!(
            f.key.series,
            "fs{fstype=\"ext4\",host=\"db1\",mountpoint=\"/data\"}"
        );
        assert!(
            feed(&store, &e, id, 30_000, 88.0).is_empty(),
            "between recover and when: still firing"
        );
        let t = feed(&store, &e, id, 40_000, 91.0);
        assert!(matches!(t.as_slice(), [Transition::Refire { .. }]), "{t:?}");
        let t = feed(&store, &e, id, 50_000, 84.0);
        assert!(matches!(t.as_slice(), [Transition::Resolve { .. }]), "{t:?}");
        assert!(
            feed(&store, &e, id, 60_000, 95.0).is_empty(),
            "pending again from scratch"
        );
    }

    #[test]
    fn interrupted_condition_restarts_for() {
        let (store, e) = engine(FS);
        let id = series(&store, &e, "fs", &[("fstype", "ext4"), ("host", "h")]);
        feed(&store, &e, id, 0, 95.0);
        feed(&store, &e, id, 10_000, 50.0);
        assert!(feed(&store, &e, id, 20_000, 95.0).is_empty());
        assert!(feed(&store, &e, id, 30_000, 95.0).is_empty());
        assert_eq!(feed(&store, &e, id, 40_000, 95.0).len(), 1);
    }

    #[test]
    fn matchers_exclude_series() {
        let (store, e) = engine(FS);
        let id = series(&store, &e, "fs", &[("fstype", "tmpfs"), ("host", "h")]);
        assert!(feed(&store, &e, id, 0, 99.0).is_empty());
        assert!(feed(&store, &e, id, 30_000, 99.0).is_empty());
    }

    #[test]
    fn tiers_raise_severity_and_never_lower_it() {
        let (store, e) = engine(
            r#"
[[rule]]
name = "cpu"
metric = "cpu"
tiers = [ { when = "> 80", severity = "minor", for = "10s" },
          { when = "> 95", severity = "urgent", for = "10s" } ]
"#,
        );
        let id = series(&store, &e, "cpu", &[("host", "h")]);
        feed(&store, &e, id, 0, 85.0);
        let t = feed(&store, &e, id, 10_000, 85.0);
        assert!(
            matches!(t.as_slice(), [Transition::Open(f)] if f.severity == Severity::Minor),
            "{t:?}"
        );
        assert!(
            feed(&store, &e, id, 20_000, 97.0).is_empty(),
            "urgent tier pending"
        );
        let t = feed(&store, &e, id, 30_000, 98.0);
        assert!(
            matches!(
                t.as_slice(),
                [Transition::Raise {
                    severity: Severity::Urgent,
                    ..
                }]
            ),
            "{t:?}"
        );
        assert!(
            feed(&store, &e, id, 40_000, 85.0).is_empty(),
            "back to minor range: no lowering"
        );
        let t = feed(&store, &e, id, 50_000, 50.0);
        assert!(matches!(t.as_slice(), [Transition::Resolve { .. }]), "{t:?}");
    }

    #[test]
    fn straight_to_top_tier() {
        let (store, e) = engine(
            r#"
[[rule]]
name = "cpu"
metric = "cpu"
tiers = [ { when = "> 80", severity = "minor", for = "1m" },
          { when = "> 95", severity = "urgent" } ]
"#,
        );
        let id = series(&store, &e, "cpu", &[("host", "h")]);
        let t = feed(&store, &e, id, 0, 99.0);
        assert!(
            matches!(t.as_slice(), [Transition::Open(f)] if f.severity == Severity::Urgent),
            "{t:?}"
        );
    }

    #[test]
    fn window_average() {
        let (store, e) = engine(
            r#"
[[rule]]
name = "avg"
metric = "m"
aggregate = "avg"
over = "30s"
when = "> 50"
severity = "minor"
"#,
        );
        let id = series(&store, &e, "m", &[("host", "h")]);
        assert!(feed(&store, &e, id, 0, 0.0).is_empty());
        assert!(feed(&store, &e, id, 10_000, 0.0).is_empty());
        assert!(
            feed(&store, &e, id, 20_000, 140.0).is_empty(),
            "avg 46.7: a spike alone does not fire"
        );
        let t = feed(&store, &e, id, 30_000, 80.0);
        assert!(
            matches!(t.as_slice(), [Transition::Open(f)] if f.value == Some(55.0)),
            "avg 55: {t:?}"
        );
    }

    #[test]
    fn absent_fires_only_while_agent_connected_and_resolves_on_return() {
        let (store, e) = engine(
            r#"
[[rule]]
name = "missing"
kind = "absent"
metric = "up"
for = "30s"
severity = "general"
"#,
        );
        let id = series(&store, &e, "up", &[("host", "h")]);
        feed(&store, &e, id, 1_000, 1.0);
        let agent = |connected| AgentStatus {
            id: "h".into(),
            hostname: "h".into(),
            connected,
            last_seen_ms: 60_000,
        };
        let mut out = Vec::new();
        e.tick(20_000, &[agent(true)], &Snapshot::default(), &mut out);
        assert!(out.is_empty());
        e.tick(40_000, &[agent(false)], &Snapshot::default(), &mut out);
        assert!(out.is_empty(), "agent gone: silence covers it");
        e.tick(40_000, &[agent(true)], &Snapshot::default(), &mut out);
        assert!(
            matches!(out.as_slice(), [Transition::Open(f)] if f.key.rule.as_ref() == "missing"),
            "{out:?}"
        );
        out.clear();
        e.tick(50_000, &[agent(true)], &Snapshot::default(), &mut out);
        assert!(out.is_empty(), "fires once");
        let t = feed(&store, &e, id, 60_000, 1.0);
        assert!(matches!(t.as_slice(), [Transition::Resolve { .. }]), "{t:?}");
    }

    #[test]
    fn agent_silence_opens_and_resolves() {
        let (_store, e) = engine("");
        let mut out = Vec::new();
        let a = |connected, last_seen_ms| AgentStatus {
            id: "a1".into(),
            hostname: "web".into(),
            connected,
            last_seen_ms,
        };
        e.tick(30_000, &[a(false, 0)], &Snapshot::default(), &mut out);
        assert!(out.is_empty(), "built-in waits 60s");
        e.tick(61_000, &[a(false, 0)], &Snapshot::default(), &mut out);
        let [Transition::Open(f)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(f.key.series, "agent:a1");
        assert_eq!(f.host, "web");
        assert!(
            f.summary.contains("a1") && f.summary.contains("web"),
            "{}",
            f.summary
        );
        out.clear();
        e.tick(62_000, &[a(false, 0)], &Snapshot::default(), &mut out);
        assert!(out.is_empty());
        e.tick(63_000, &[a(true, 63_000)], &Snapshot::default(), &mut out);
        assert!(matches!(out.as_slice(), [Transition::Resolve { .. }]), "{out:?}");
    }

    #[test]
    fn restored_fault_resolves_when_condition_clears() {
        let (store, e) = engine(FS);
        let key = FaultKey {
            rule: Arc::from("fs_full"),
            series: "fs{fstype=\"ext4\",host=\"h\"}".into(),
        };
        let mut out = Vec::new();
        e.restore(
            vec![
                (key.clone(), Severity::General),
                (
                    FaultKey {
                        rule: Arc::from("gone"),
                        series: "x{}".into(),
                    },
                    Severity::Minor,
                ),
            ],
            0,
            &mut out,
        );
        assert!(
            matches!(out.as_slice(), [Transition::Resolve { key, .. }] if key.rule.as_ref() == "gone"),
            "{out:?}"
        );
        let id = series(&store, &e, "fs", &[("fstype", "ext4"), ("host", "h")]);
        assert!(
            feed(&store, &e, id, 0, 95.0).is_empty(),
            "already firing: no second open"
        );
        let t = feed(&store, &e, id, 10_000, 10.0);
        assert!(
            matches!(t.as_slice(), [Transition::Resolve { key: k, .. }] if *k == key),
            "{t:?}"
        );
    }

    #[test]
    fn reload_keeps_firing_state_and_resolves_removed_rules() {
        let (store, e) = engine(FS);
        let id = series(&store, &e, "fs", &[("fstype", "ext4"), ("host", "h")]);
        feed(&store, &e, id, 0, 95.0);
        assert_eq!(feed(&store, &e, id, 20_000, 95.0).len(), 1);
        let mut out = Vec::new();
        let same = RuleSet::parse(&FS.replace("> 90", "> 92"), "t.toml").expect("valid");
        e.replace_rules(same, 25_000, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert!(
            feed(&store, &e, id, 30_000, 95.0).is_empty(),
            "still firing, not reopened"
        );
        e.replace_rules(RuleSet::parse("", "t.toml").expect("valid"), 35_000, &mut out);
        assert!(matches!(out.as_slice(), [Transition::Resolve { .. }]), "{out:?}");
    }
}
