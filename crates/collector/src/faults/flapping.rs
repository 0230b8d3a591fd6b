//! Flapping: a fault whose state changed (opened, reopened, resolved) more
//! than `flap_threshold` times within `flap_window` is marked flapping. One
//! notification says so; later changes are recorded on the timeline but
//! not notified, until it has been stable for `flap_window`: then it is
//! notified once more with its real state.
//!
//! What is counted lives in memory, per (rule, series), kept across
//! records of the same series; a transaction that rolls back restores it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use watchpost_model::format_duration;

use super::event::EventKind;
use super::lifecycle::Lifecycle;
use super::transition::FaultKey;
use crate::db::records::{FaultRecords, RecordError, RecordPatch};
use crate::notify::Kind;

/// The changes of one (rule, series) within the window.
#[derive(Debug, Clone, Default)]
pub struct FlapState {
    changes: VecDeque<i64>,
    flapping: bool,
}

/// Every (rule, series) that changed recently, and how many flap now.
#[derive(Debug, Clone, Default)]
pub struct Flaps {
    states: HashMap<FaultKey, FlapState>,
    /// While a transaction is open: what each key it touched was before
    /// (restored if it rolls back), so a commit costs what it changed.
    undo: Option<HashMap<FaultKey, Option<FlapState>>>,
    count: Arc<AtomicU64>,
}

impl Flaps {
    /// Faults flapping now (`watchpost_faults_flapping`).
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.count.clone()
    }

    pub(super) fn begin(&mut self) {
        self.undo = Some(HashMap::new());
    }

    pub(super) fn committed(&mut self) {
        if self.undo.take().is_some_and(|u| !u.is_empty()) {
            let n = self.states.values().filter(|s| s.flapping).count();
            self.count.store(n as u64, Ordering::Relaxed);
        }
    }

    pub(super) fn rolled_back(&mut self) {
        for (key, before) in self.undo.take().unwrap_or_default() {
            match before {
                Some(state) => self.states.insert(key, state),
                None => self.states.remove(&key),
            };
        }
    }

    /// Keeps what `key` was before the open transaction first changes it.
    fn touch(&mut self, key: &FaultKey) {
        if let Some(undo) = &mut self.undo
            && !undo.contains_key(key)
        {
            undo.insert(key.clone(), self.states.get(key).cloned());
        }
    }

    /// Whether `key`'s changes are being counted.
    pub(super) fn tracks(&self, key: &FaultKey) -> bool {
        self.states.contains_key(key)
    }
}

impl Lifecycle {
    /// `key` changed state at `at_ms`: whether it is flapping now, and
    /// whether this change made it so.
    pub(super) fn flap_change(&mut self, key: &FaultKey, at_ms: i64, enabled: bool) -> (bool, bool) {
        if !enabled {
            return (false, false);
        }
        let policy = self.settings.flap;
        self.flaps.touch(key);
        let s = self.flaps.states.entry(key.clone()).or_default();
        s.changes.push_back(at_ms);
        while s.changes.front().is_some_and(|t| *t <= at_ms - policy.window_ms) {
            s.changes.pop_front();
        }
        let became = !s.flapping && s.changes.len() > policy.threshold as usize;
        s.flapping |= became;
        (s.flapping, became)
    }

    /// Fault `id` flaps: marked, and with `notify` (the change that made
    /// its series flap) one notice; a later record of a series still
    /// flapping is marked only.
    pub(super) fn began_flapping(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
        notify: bool,
    ) -> Result<(), RecordError> {
        let policy = self.settings.flap;
        rec.update(
            id,
            &RecordPatch {
                flapping: Some(true),
                ..RecordPatch::default()
            },
        )?;
        Self::event(
            rec,
            id,
            at_ms,
            EventKind::Flapping,
            &format!(
                "flapping: more than {} changes within {}; further changes are recorded, not notified, until it is stable for {}",
                policy.threshold,
                format_duration(std::time::Duration::from_millis(policy.window_ms as u64)),
                format_duration(std::time::Duration::from_millis(policy.window_ms as u64)),
            ),
        )?;
        if notify {
            self.enqueue(rec, id, Kind::Flapping, at_ms)?;
        }
        Ok(())
    }

    /// The clock: flapping faults unchanged for the window are stable again,
    /// notified once with their real state.
    pub(super) fn settle_flaps(
        &mut self,
        rec: &mut dyn FaultRecords,
        now_ms: i64,
    ) -> Result<(), RecordError> {
        let window = self.settings.flap.window_ms;
        let stable: Vec<FaultKey> = self
            .flaps
            .states
            .iter()
            .filter(|(_, s)| s.changes.back().is_none_or(|t| *t <= now_ms - window))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stable {
            self.flaps.touch(&key);
            let Some(s) = self.flaps.states.remove(&key) else {
                continue;
            };
            if !s.flapping {
                continue;
            }
            let Some(r) = rec.latest(&key.rule, &key.series)? else {
                continue;
            };
            rec.update(
                r.id,
                &RecordPatch {
                    flapping: Some(false),
                    ..RecordPatch::default()
                },
            )?;
            Self::event(
                rec,
                r.id,
                now_ms,
                EventKind::Stable,
                &format!(
                    "stable again: no change for {}; it is {}",
                    format_duration(std::time::Duration::from_millis(window as u64)),
                    r.status.as_str()
                ),
            )?;
            self.enqueue(rec, r.id, Kind::Stable, now_ms)?;
        }
        Ok(())
    }
}
