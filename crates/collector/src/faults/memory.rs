//! An in-memory [`FaultRecords`], so the lifecycle is tested without
//! SQLite, and the tests below show what the lifecycle alone decides.

use std::collections::BTreeMap;

use watchpost_model::api::FaultStatus;

use crate::db::records::{
    AgentHello, ChangePatch, ChangeState, Deadline, FaultRecords, InspectionRow, NewChange, NewRecord,
    OutboxRow, RecordError, RecordPatch, RecordState, Told,
};
use crate::maintenance::Window;
use crate::notify::Planned;

#[derive(Debug, Clone)]
pub struct Notification {
    pub fault_id: i64,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub status: &'static str,
    pub attempts: u32,
    pub created_at_ms: i64,
}

/// Records, timelines, windows and the outbox as plain vectors.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    pub records: Vec<(RecordState, u32)>,
    /// (fault, at, actor, kind, message)
    pub events: Vec<(i64, i64, String, String, String)>,
    pub windows: Vec<Window>,
    pub outbox: Vec<Notification>,
    pub changes: Vec<ChangeState>,
    /// (change, at, actor, kind, message)
    pub change_events: Vec<(i64, i64, String, String, String)>,
    /// Reports recorded.
    pub reports: i64,
    /// Inspection recordings stored.
    pub inspection_entries: i64,
    /// Inspection days: (signed by, reviewed by).
    pub inspection_days: BTreeMap<String, (String, Option<String>)>,
    /// Equipment-list items by id: (scope, item).
    pub inventory: BTreeMap<String, (String, watchpost_model::inventory::InventoryItem)>,
    /// Their histories.
    pub inventory_events: Vec<watchpost_model::inventory::InventoryEvent>,
}

impl MemoryRecords {
    /// The kinds of fault `id`'s timeline, in order.
    pub fn kinds(&self, id: i64) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.0 == id)
            .map(|e| e.3.as_str())
            .collect()
    }

    pub fn get(&self, id: i64) -> &RecordState {
        &self.records[(id - 1) as usize].0
    }

    fn find(&mut self, id: i64) -> Result<&mut (RecordState, u32), RecordError> {
        self.records
            .get_mut((id - 1) as usize)
            .ok_or_else(|| RecordError::other(format!("no record {id}")))
    }

    fn named(r: &RecordState, name: &str) -> bool {
        r.host == name || r.labels.get("device").is_some_and(|d| d == name)
    }
}

fn live(s: FaultStatus) -> bool {
    super::lifecycle::is_live(s)
}

impl FaultRecords for MemoryRecords {
    fn record(&mut self, id: i64) -> Result<Option<RecordState>, RecordError> {
        Ok(self.records.get((id - 1) as usize).map(|r| r.0.clone()))
    }

    fn latest(&mut self, rule: &str, series_key: &str) -> Result<Option<RecordState>, RecordError> {
        Ok(self
            .records
            .iter()
            .rev()
            .find(|r| r.0.rule == rule && r.0.series_key == series_key)
            .map(|r| r.0.clone()))
    }

    fn insert(&mut self, f: &NewRecord<'_>) -> Result<i64, RecordError> {
        if live(f.status)
            && self
                .records
                .iter()
                .any(|r| live(r.0.status) && r.0.rule == f.rule && r.0.series_key == f.series_key)
        {
            return Err(RecordError::other("UNIQUE: one live fault per (rule, series)"));
        }
        let id = self.records.len() as i64 + 1;
        self.records.push((
            RecordState {
                id,
                rule: f.rule.into(),
                series_key: f.series_key.into(),
                host: f.host.into(),
                labels: f.labels.clone(),
                severity: f.severity,
                status: f.status,
                opened_at_ms: f.opened_at_ms,
                resolved_at_ms: None,
                response_due_ms: f.response_due_ms,
                resolve_due_ms: f.resolve_due_ms,
                response_met: None,
                resolve_met: None,
                acknowledged_at_ms: None,
                acknowledged_by: None,
                unreachable: f.unreachable,
                window_id: f.window_id,
                parent_fault_id: f.parent_fault_id,
                source: f.source,
                reporter: f.reporter.cloned(),
                satisfaction: None,
            },
            1,
        ));
        Ok(id)
    }

    fn update(&mut self, id: i64, p: &RecordPatch) -> Result<(), RecordError> {
        let (r, count) = self.find(id)?;
        if let Some(s) = p.status {
            r.status = s;
        }
        if let Some(s) = p.severity {
            r.severity = s;
        }
        if p.refired {
            *count += 1;
        }
        if let Some(v) = p.resolved_at_ms {
            r.resolved_at_ms = v;
        }
        if let Some(v) = p.response_due_ms {
            r.response_due_ms = v;
        }
        if let Some(v) = p.resolve_due_ms {
            r.resolve_due_ms = v;
        }
        if let Some((_, _, satisfaction, _)) = &p.feedback {
            r.satisfaction = Some(*satisfaction);
        }
        if let Some(v) = p.response_met {
            r.response_met = Some(v);
        }
        if let Some(v) = p.resolve_met {
            r.resolve_met = v;
        }
        if let Some((at, by)) = &p.acknowledged {
            r.acknowledged_at_ms = Some(*at);
            r.acknowledged_by = Some(by.clone());
        }
        if let Some(parent) = p.parent_fault_id {
            r.parent_fault_id = Some(parent);
        }
        Ok(())
    }

    fn append_event(
        &mut self,
        fault_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.events
            .push((fault_id, at_ms, actor.into(), kind.into(), message.into()));
        Ok(())
    }

    fn unmet(
        &mut self,
        deadline: Deadline,
        statuses: &[FaultStatus],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>, RecordError> {
        Ok(self
            .records
            .iter()
            .map(|r| &r.0)
            .filter(|r| statuses.contains(&r.status))
            .filter_map(|r| match deadline {
                Deadline::Response => (r.response_met.is_none() && r.response_due_ms < now_ms)
                    .then_some((r.id, r.response_due_ms)),
                Deadline::Resolve => {
                    (r.resolve_met.is_none() && r.resolve_due_ms < now_ms).then_some((r.id, r.resolve_due_ms))
                }
            })
            .collect())
    }

    fn suppressed_by_ended_windows(&mut self, now_ms: i64) -> Result<Vec<(i64, i64)>, RecordError> {
        let ended: Vec<i64> = self
            .windows
            .iter()
            .filter(|w| w.ends_at_ms <= now_ms)
            .map(|w| w.id)
            .collect();
        Ok(self
            .records
            .iter()
            .map(|r| &r.0)
            .filter(|r| r.status == FaultStatus::Suppressed)
            .filter_map(|r| r.window_id.filter(|w| ended.contains(w)).map(|w| (r.id, w)))
            .collect())
    }

    fn live_unreachable(&mut self, name: &str) -> Result<Option<i64>, RecordError> {
        Ok(self
            .records
            .iter()
            .map(|r| &r.0)
            .find(|r| r.unreachable && live(r.status) && Self::named(r, name))
            .map(|r| r.id))
    }

    fn unlinked_unreachable(&mut self, name: &str) -> Result<Vec<i64>, RecordError> {
        Ok(self
            .records
            .iter()
            .map(|r| &r.0)
            .filter(|r| {
                r.unreachable
                    && matches!(r.status, FaultStatus::Open | FaultStatus::Acknowledged)
                    && r.parent_fault_id.is_none()
                    && Self::named(r, name)
            })
            .map(|r| r.id)
            .collect())
    }

    fn children_of(&mut self, parent: i64) -> Result<Vec<RecordState>, RecordError> {
        Ok(self
            .records
            .iter()
            .map(|r| &r.0)
            .filter(|r| {
                r.parent_fault_id == Some(parent)
                    && r.status == FaultStatus::Suppressed
                    && r.window_id.is_none()
            })
            .cloned()
            .collect())
    }

    fn insert_report(
        &mut self,
        r: &mut watchpost_model::reports::StoredReport,
        _at_ms: i64,
    ) -> Result<(), RecordError> {
        self.reports += 1;
        r.id = self.reports;
        Ok(())
    }

    fn inspection_signatures(&mut self, day: &str) -> Result<Option<(String, Option<String>)>, RecordError> {
        Ok(self.inspection_days.get(day).cloned())
    }

    fn insert_inspection_entry(&mut self, _e: &InspectionRow<'_>) -> Result<i64, RecordError> {
        self.inspection_entries += 1;
        Ok(self.inspection_entries)
    }

    fn sign_inspection(
        &mut self,
        day: &str,
        review: bool,
        by: &str,
        _at_ms: i64,
        _remark: &str,
    ) -> Result<(), RecordError> {
        if review {
            if let Some(d) = self.inspection_days.get_mut(day) {
                d.1 = Some(by.to_string());
            }
        } else {
            self.inspection_days
                .insert(day.to_string(), (by.to_string(), None));
        }
        Ok(())
    }

    fn insert_window(&mut self, window: &Window) -> Result<i64, RecordError> {
        let mut w = window.clone();
        w.id = self.windows.len() as i64 + 1;
        self.windows.push(w);
        Ok(self.windows.len() as i64)
    }

    fn end_window(&mut self, id: i64, at_ms: i64) -> Result<(), RecordError> {
        if let Some(w) = self.windows.iter_mut().find(|w| w.id == id) {
            w.ends_at_ms = w.ends_at_ms.min(at_ms.max(w.starts_at_ms + 1));
        }
        Ok(())
    }

    fn insert_change(&mut self, c: &NewChange<'_>) -> Result<i64, RecordError> {
        let id = self.changes.len() as i64 + 1;
        self.changes.push(ChangeState {
            id,
            title: c.title.into(),
            status: watchpost_model::changes::ChangeStatus::Requested,
            requested_by: c.requested_by.into(),
            starts_at_ms: c.starts_at_ms,
            ends_at_ms: c.ends_at_ms,
            scope: c.scope.clone(),
            window_id: None,
        });
        Ok(id)
    }

    fn change(&mut self, id: i64) -> Result<Option<ChangeState>, RecordError> {
        Ok(self.changes.iter().find(|c| c.id == id).cloned())
    }

    fn update_change(&mut self, id: i64, p: &ChangePatch) -> Result<(), RecordError> {
        let c = self
            .changes
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| RecordError::other(format!("no change {id}")))?;
        c.status = p.status;
        if p.window_id.is_some() {
            c.window_id = p.window_id;
        }
        Ok(())
    }

    fn append_change_event(
        &mut self,
        change_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.change_events
            .push((change_id, at_ms, actor.into(), kind.into(), message.into()));
        Ok(())
    }

    fn queue_notification(&mut self, fault_id: i64, p: &Planned, at_ms: i64) -> Result<(), RecordError> {
        self.outbox.push(Notification {
            fault_id,
            kind: p.kind.as_str().into(),
            channel: p.channel.clone(),
            recipient: p.person.name.clone(),
            status: "pending",
            attempts: 0,
            created_at_ms: at_ms,
        });
        Ok(())
    }

    fn queue_recovery(&mut self, fault_id: i64, to: &Told, at_ms: i64) -> Result<(), RecordError> {
        self.outbox.push(Notification {
            fault_id,
            kind: "resolved".into(),
            channel: to.channel.clone(),
            recipient: to.recipient.clone(),
            status: "pending",
            attempts: 0,
            created_at_ms: at_ms,
        });
        Ok(())
    }

    fn cancel_pending(&mut self, fault_id: i64, _why: &str) -> Result<usize, RecordError> {
        let mut n = 0;
        for row in &mut self.outbox {
            if row.fault_id == fault_id
                && row.status == "pending"
                && !row.kind.starts_with("reporter_")
                && row.kind != "resolved"
            {
                row.status = "cancelled";
                n += 1;
            }
        }
        Ok(n)
    }

    fn told(&mut self, fault_id: i64) -> Result<Vec<Told>, RecordError> {
        let mut out: Vec<Told> = Vec::new();
        for row in &self.outbox {
            if row.fault_id == fault_id
                && row.status == "delivered"
                && !row.kind.starts_with("reporter_")
                && row.kind != "resolved"
                && !out
                    .iter()
                    .any(|t| t.channel == row.channel && t.recipient == row.recipient)
            {
                out.push(Told {
                    channel: row.channel.clone(),
                    recipient: row.recipient.clone(),
                    contact: "{}".into(),
                });
            }
        }
        Ok(out)
    }

    fn pending_notification(&mut self, id: i64) -> Result<Option<OutboxRow>, RecordError> {
        Ok(self
            .outbox
            .get((id - 1) as usize)
            .filter(|r| r.status == "pending")
            .map(|r| OutboxRow {
                fault_id: r.fault_id,
                kind: r.kind.clone(),
                channel: r.channel.clone(),
                recipient: r.recipient.clone(),
                attempts: r.attempts,
                created_at_ms: r.created_at_ms,
            }))
    }

    fn pending_for(
        &mut self,
        fault_id: i64,
        kind: &str,
        channel: &str,
        recipient: &str,
    ) -> Result<Vec<i64>, RecordError> {
        Ok(self
            .outbox
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.status == "pending"
                    && r.fault_id == fault_id
                    && r.kind == kind
                    && r.channel == channel
                    && r.recipient == recipient
            })
            .map(|(i, _)| i as i64 + 1)
            .collect())
    }

    fn mark_delivered(
        &mut self,
        id: i64,
        _message_id: &str,
        _at_ms: i64,
    ) -> Result<Option<OutboxRow>, RecordError> {
        let row = self.pending_notification(id)?;
        if row.is_some() {
            self.outbox[(id - 1) as usize].status = "delivered";
        }
        Ok(row)
    }

    fn retry_notification(
        &mut self,
        id: i64,
        attempts: u32,
        _error: &str,
        _due_ms: i64,
    ) -> Result<(), RecordError> {
        self.outbox[(id - 1) as usize].attempts = attempts;
        Ok(())
    }

    fn give_up_notification(&mut self, id: i64, attempts: u32, _error: &str) -> Result<(), RecordError> {
        let row = &mut self.outbox[(id - 1) as usize];
        row.attempts = attempts;
        row.status = "failed";
        Ok(())
    }

    fn agent_hello(&mut self, _hello: &AgentHello) -> Result<(), RecordError> {
        Ok(())
    }

    fn agents_seen(&mut self, _seen: &[(String, i64)]) -> Result<(), RecordError> {
        Ok(())
    }

    fn inventory_items(
        &mut self,
        agent: &str,
        scope: &str,
    ) -> Result<Vec<watchpost_model::inventory::InventoryItem>, RecordError> {
        Ok(self
            .inventory
            .values()
            .filter(|(s, i)| s == scope && i.agent == agent)
            .map(|(_, i)| i.clone())
            .collect())
    }

    fn inventory_put(
        &mut self,
        scope: &str,
        item: &watchpost_model::inventory::InventoryItem,
    ) -> Result<(), RecordError> {
        self.inventory
            .insert(item.id.clone(), (scope.to_string(), item.clone()));
        Ok(())
    }

    fn inventory_event(
        &mut self,
        event: &watchpost_model::inventory::InventoryEvent,
    ) -> Result<(), RecordError> {
        self.inventory_events.push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use watchpost_model::Severity;

    use super::*;
    use crate::faults::{FaultAction, FaultKey, FaultSettings, Lifecycle, NewFault, Transition};

    fn fault(series: &str, host: &str, labels: &[(&str, &str)], unreachable: bool, at_ms: i64) -> NewFault {
        NewFault {
            key: FaultKey {
                rule: Arc::from(if unreachable { "down" } else { "disk" }),
                series: series.into(),
            },
            severity: Severity::General,
            value: Some(1.0),
            at_ms,
            summary: "s".into(),
            host: host.into(),
            metric: "m".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            unreachable,
            flap: true,
        }
    }

    fn apply(l: &mut Lifecycle, rec: &mut MemoryRecords, t: Transition) {
        l.transition(rec, &t).expect("applies");
        l.committed();
    }

    #[test]
    fn a_host_behind_a_failed_switch_is_suppressed_and_released_when_the_switch_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            crate::CollectorConfig::parse("[parents]\n\"web-1\" = \"sw-1\"\n", dir.path()).expect("config");
        let mut l = Lifecycle::new(
            FaultSettings {
                notify: config.notify.clone(),
                ..FaultSettings::default()
            },
            Vec::new(),
            Vec::new(),
        );
        let mut rec = MemoryRecords::default();
        apply(
            &mut l,
            &mut rec,
            Transition::Open(fault(
                "up{device=\"sw-1\"}",
                "poller",
                &[("device", "sw-1")],
                true,
                0,
            )),
        );
        apply(
            &mut l,
            &mut rec,
            Transition::Open(fault("up{host=\"web-1\"}", "web-1", &[], true, 1_000)),
        );
        assert_eq!(rec.get(2).status, FaultStatus::Suppressed);
        assert_eq!(rec.get(2).parent_fault_id, Some(1));
        apply(
            &mut l,
            &mut rec,
            Transition::Resolve {
                key: FaultKey {
                    rule: Arc::from("down"),
                    series: "up{device=\"sw-1\"}".into(),
                },
                value: None,
                at_ms: 60_000,
                reason: "answers".into(),
            },
        );
        let child = rec.get(2);
        assert_eq!(child.status, FaultStatus::Open);
        assert_eq!(
            child.response_due_ms,
            60_000 + 4 * 3_600_000,
            "a general fault's 4 h count from the release"
        );
        assert_eq!(rec.kinds(2), ["opened", "suppressed", "unsuppressed"]);
    }

    #[test]
    fn a_refused_action_writes_nothing_and_a_resolved_fault_leaves_the_live_set() {
        let mut l = Lifecycle::new(FaultSettings::default(), Vec::new(), Vec::new());
        let mut rec = MemoryRecords::default();
        apply(&mut l, &mut rec, Transition::Open(fault("x", "h", &[], false, 0)));
        assert_eq!(l.open_faults().load(std::sync::atomic::Ordering::Relaxed), 1);
        let close = FaultAction::Close {
            cause: "c".into(),
            handling: "h".into(),
        };
        let refused = l.act(&mut rec, 1, "li", 5, &close).expect("no storage error");
        assert!(matches!(refused, Err(crate::faults::ActionError::Conflict(_))));
        assert_eq!(rec.events.len(), 1, "only the opening: {:?}", rec.events);
        l.act(
            &mut rec,
            1,
            "li",
            10,
            &FaultAction::Resolve {
                comment: "fixed".into(),
            },
        )
        .expect("no storage error")
        .expect("resolves");
        l.committed();
        assert_eq!(l.open_faults().load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(rec.get(1).status, FaultStatus::Resolved);
        assert_eq!(
            (rec.get(1).response_met, rec.get(1).resolve_met),
            (Some(true), Some(true))
        );
        // A transaction that is rolled back leaves the live set as it was:
        // what it opened is not open to the next one.
        let y = fault("y", "h", &[], false, 20);
        l.transition(&mut rec, &Transition::Open(y.clone()))
            .expect("applies");
        l.rolled_back();
        let events = rec.events.len();
        let refire = Transition::Refire {
            key: y.key,
            value: 2.0,
            at_ms: 30,
        };
        l.transition(&mut rec, &refire).expect("applies");
        assert_eq!(
            rec.events.len(),
            events,
            "a refire of a fault never opened is ignored"
        );
    }

    /// What SQLite reports with `code`, classified as the writer sees it.
    fn sqlite_error(code: std::ffi::c_int) -> RecordError {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None).into()
    }

    #[test]
    fn changes_a_full_disk_refused_are_recorded_with_the_next_commit_and_only_once() {
        use crate::db::writer::Committer;
        use crate::faults::{Command, Job};
        let mut l = Lifecycle::new(FaultSettings::default(), Vec::new(), Vec::new());
        let mut rec = MemoryRecords::default();
        let open = Command::Fault(Transition::Open(fault("x", "h", &[], false, 0)));
        let mut job = Job::Write {
            commands: vec![open],
            done: None,
        };
        l.begin(&mut rec).expect("nothing held back yet");
        l.apply(&mut rec, &mut job).expect("applies");
        // The commit fails for want of disk: what it wrote is gone ...
        rec = MemoryRecords::default();
        l.settle(
            vec![job],
            Err(sqlite_error(rusqlite::ffi::SQLITE_FULL)),
            std::time::Duration::ZERO,
        );
        assert_eq!(l.open_faults().load(std::sync::atomic::Ordering::Relaxed), 0);
        // ... and comes back first in the next group, once.
        let mut tick = Job::Write {
            commands: vec![Command::Tick { now_ms: 1 }],
            done: None,
        };
        l.begin(&mut rec).expect("held back changes apply");
        l.apply(&mut rec, &mut tick).expect("applies");
        l.settle(vec![tick], Ok(()), std::time::Duration::ZERO);
        assert_eq!(rec.records.len(), 1);
        assert_eq!(rec.kinds(1), ["opened"]);
        assert_eq!(l.open_faults().load(std::sync::atomic::Ordering::Relaxed), 1);
        l.begin(&mut rec).expect("nothing held back");
        assert_eq!(rec.records.len(), 1, "not recorded twice");
        // Another kind of failure drops the group, as before.
        let mut job = Job::Write {
            commands: vec![Command::Fault(Transition::Open(fault("y", "h", &[], false, 2)))],
            done: None,
        };
        l.apply(&mut rec, &mut job).expect("applies");
        l.settle(
            vec![job],
            Err(sqlite_error(rusqlite::ffi::SQLITE_CONSTRAINT)),
            std::time::Duration::ZERO,
        );
        let before = rec.records.len();
        l.begin(&mut rec).expect("nothing held back");
        assert_eq!(rec.records.len(), before);
    }
}
