//! The storage boundary of the fault stage: what the fault lifecycle
//! (`crate::faults`) asks of a record store inside one transaction.
//!
//! The lifecycle decides every change (which status, which deadline, which
//! timeline event, whom to notify) and says it through [`FaultRecords`] in
//! typed values; an implementation only stores and finds rows. SQLite
//! implements it in `db::sqlite`; a second backend (PostgreSQL, for several
//! collectors sharing one record store) implements the same trait and the
//! lifecycle does not change. The faults stage keeps an in-memory
//! implementation for its own tests.

use std::collections::BTreeMap;

use watchpost_model::Severity;
use watchpost_model::api::{FaultSource, FaultStatus, Reporter};
use watchpost_model::changes::{ChangeScope, ChangeStatus};

use crate::maintenance::Window;
use crate::notify::Planned;

/// A record store failed; the whole transaction is rolled back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RecordError {
    /// What went wrong, as the store says it.
    pub message: String,
    /// The store's disk is full or failing: the change is worth retrying
    /// once space returns (the fault stage keeps it).
    pub disk_trouble: bool,
}

impl RecordError {
    /// A failure that is not the disk's.
    pub fn other(message: impl Into<String>) -> RecordError {
        RecordError {
            message: message.into(),
            disk_trouble: false,
        }
    }
}

impl From<rusqlite::Error> for RecordError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{CannotOpen, DiskFull, SystemIoFailure};
        RecordError {
            disk_trouble: matches!(
                e.sqlite_error_code(),
                Some(DiskFull | SystemIoFailure | CannotOpen)
            ),
            message: e.to_string(),
        }
    }
}

/// What the lifecycle needs to know of a stored fault record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordState {
    pub id: i64,
    pub rule: String,
    pub series_key: String,
    pub host: String,
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub status: FaultStatus,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub response_met: Option<bool>,
    pub resolve_met: Option<bool>,
    pub acknowledged_at_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    /// It says its host or device cannot be reached.
    pub unreachable: bool,
    pub window_id: Option<i64>,
    pub parent_fault_id: Option<i64>,
    pub source: FaultSource,
    /// Who reported it (reported faults).
    pub reporter: Option<Reporter>,
    /// The reporter's satisfaction, once recorded.
    pub satisfaction: Option<u8>,
}

impl RecordState {
    /// The name its children declare as their parent: its device, else its host.
    pub fn name(&self) -> &str {
        self.labels.get("device").unwrap_or(&self.host)
    }
}

/// A fault record to insert, every column decided by the lifecycle.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub rule: &'a str,
    pub series_key: &'a str,
    pub host: &'a str,
    pub metric: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub severity: Severity,
    pub status: FaultStatus,
    pub summary: &'a str,
    pub value: Option<f64>,
    pub opened_at_ms: i64,
    pub response_due_ms: i64,
    pub resolve_due_ms: i64,
    pub window_id: Option<i64>,
    pub unreachable: bool,
    pub parent_fault_id: Option<i64>,
    pub source: FaultSource,
    pub reporter: Option<&'a Reporter>,
    /// A reported fault: when it was entered and by whom.
    pub entered: Option<(i64, &'a str)>,
    /// The change whose window it opened in.
    pub change_id: Option<i64>,
}

/// A change request to insert (status `requested`).
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub reason: &'a str,
    pub impact: &'a str,
    pub test_plan: &'a str,
    pub rollback_plan: &'a str,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub scope: &'a ChangeScope,
    pub requested_by: &'a str,
    pub at_ms: i64,
}

/// What the lifecycle needs to know of a stored change request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeState {
    pub id: i64,
    pub title: String,
    pub status: ChangeStatus,
    pub requested_by: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub scope: ChangeScope,
    pub window_id: Option<i64>,
}

/// A change request's new state.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePatch {
    pub status: ChangeStatus,
    pub decided_by: Option<String>,
    pub window_id: Option<i64>,
    pub result_reason: Option<String>,
}

/// Changes to one record; `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordPatch {
    pub status: Option<FaultStatus>,
    pub severity: Option<Severity>,
    pub summary: Option<String>,
    pub value: Option<f64>,
    /// The condition was seen at this time: the record's last-seen time
    /// becomes the later of it and the stored one (never goes back).
    pub seen_at_ms: Option<i64>,
    /// It fired once more: the count goes up by one.
    pub refired: bool,
    /// `Some(None)` clears the resolution (a reopened fault).
    pub resolved_at_ms: Option<Option<i64>>,
    pub response_due_ms: Option<i64>,
    pub resolve_due_ms: Option<i64>,
    pub response_met: Option<bool>,
    /// `Some(None)` clears it (a reopened fault is judged again).
    pub resolve_met: Option<Option<bool>>,
    pub acknowledged: Option<(i64, String)>,
    pub assignee: Option<String>,
    /// Closed at, cause, handling.
    pub closed: Option<(i64, String, String)>,
    pub parent_fault_id: Option<i64>,
    /// The reporter's follow-up: at, by, satisfaction, comment.
    pub feedback: Option<(i64, String, u8, Option<String>)>,
    pub flapping: Option<bool>,
}

/// Which deadline of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    Response,
    Resolve,
}

/// A notification already delivered for a fault, as a recovery notice
/// addresses it again.
#[derive(Debug, Clone, PartialEq)]
pub struct Told {
    pub channel: String,
    pub recipient: String,
    /// The stored contact (the planned person, as JSON).
    pub contact: String,
}

/// A pending outbox row, as the lifecycle needs it to record an outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub fault_id: i64,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub attempts: u32,
    pub created_at_ms: i64,
}

/// An agent's hello, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentHello {
    pub id: String,
    pub hostname: String,
    pub version: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub at_ms: i64,
}

/// A record store inside one open transaction. Every method either does
/// what it says or fails; a failure rolls back the whole transaction.
pub trait FaultRecords {
    /// One record by id.
    fn record(&mut self, id: i64) -> Result<Option<RecordState>, RecordError>;
    /// The newest record of (rule, series), whatever its status.
    fn latest(&mut self, rule: &str, series_key: &str) -> Result<Option<RecordState>, RecordError>;
    /// Inserts a record; returns its id.
    fn insert(&mut self, record: &NewRecord<'_>) -> Result<i64, RecordError>;
    /// Changes a record.
    fn update(&mut self, id: i64, patch: &RecordPatch) -> Result<(), RecordError>;
    /// Appends an event to a record's timeline (never changed afterwards).
    fn append_event(
        &mut self,
        fault_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError>;
    /// Records whose `deadline` passed before `now_ms` unjudged, in one of
    /// `statuses`: (id, due).
    fn unmet(
        &mut self,
        deadline: Deadline,
        statuses: &[FaultStatus],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>, RecordError>;
    /// Suppressed records whose maintenance window ended by `now_ms`:
    /// (record, window).
    fn suppressed_by_ended_windows(&mut self, now_ms: i64) -> Result<Vec<(i64, i64)>, RecordError>;
    /// The oldest live unreachability record of host or device `name`.
    fn live_unreachable(&mut self, name: &str) -> Result<Option<i64>, RecordError>;
    /// Open or acknowledged unreachability records of host or device
    /// `name` that no parent suppresses yet.
    fn unlinked_unreachable(&mut self, name: &str) -> Result<Vec<i64>, RecordError>;
    /// Records suppressed by parent fault `parent` (not by a window).
    fn children_of(&mut self, parent: i64) -> Result<Vec<RecordState>, RecordError>;
    /// Stores a maintenance window; returns its id.
    fn insert_window(&mut self, window: &Window) -> Result<i64, RecordError>;
    /// Records a generated report's file and sets its `id`.
    fn insert_report(
        &mut self,
        report: &mut watchpost_model::reports::StoredReport,
        at_ms: i64,
    ) -> Result<(), RecordError>;
    /// Who signed day `day`'s inspection record and who reviewed it.
    fn inspection_signatures(&mut self, day: &str) -> Result<Option<(String, Option<String>)>, RecordError>;
    /// Appends a recording to a day's inspection record; returns its id.
    fn insert_inspection_entry(&mut self, entry: &InspectionRow<'_>) -> Result<i64, RecordError>;
    /// Signs a day's inspection record (`review` false) or reviews it.
    fn sign_inspection(
        &mut self,
        day: &str,
        review: bool,
        by: &str,
        at_ms: i64,
        remark: &str,
    ) -> Result<(), RecordError>;
    /// Window `id` ends at `at_ms` if it would end later.
    fn end_window(&mut self, id: i64, at_ms: i64) -> Result<(), RecordError>;
    /// Stores a change request; returns its id.
    fn insert_change(&mut self, change: &NewChange<'_>) -> Result<i64, RecordError>;
    /// One change request.
    fn change(&mut self, id: i64) -> Result<Option<ChangeState>, RecordError>;
    /// Changes a change request's state.
    fn update_change(&mut self, id: i64, patch: &ChangePatch) -> Result<(), RecordError>;
    /// Appends an event to a change's timeline (never changed afterwards).
    fn append_change_event(
        &mut self,
        change_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError>;

    /// Queues a planned notification of fault `fault_id`, created at `at_ms`.
    fn queue_notification(&mut self, fault_id: i64, planned: &Planned, at_ms: i64)
    -> Result<(), RecordError>;
    /// Queues a recovery notice to someone told of fault `fault_id` before.
    fn queue_recovery(&mut self, fault_id: i64, to: &Told, at_ms: i64) -> Result<(), RecordError>;
    /// Cancels fault `fault_id`'s pending notifications but recovery
    /// notices; returns how many.
    fn cancel_pending(&mut self, fault_id: i64, why: &str) -> Result<usize, RecordError>;
    /// Who was told of fault `fault_id` (delivered, not recovery notices),
    /// one per (channel, recipient), first told first.
    fn told(&mut self, fault_id: i64) -> Result<Vec<Told>, RecordError>;
    /// A pending outbox row.
    fn pending_notification(&mut self, id: i64) -> Result<Option<OutboxRow>, RecordError>;
    /// Pending rows of fault `fault_id` of `kind` to `recipient` by `channel`.
    fn pending_for(
        &mut self,
        fault_id: i64,
        kind: &str,
        channel: &str,
        recipient: &str,
    ) -> Result<Vec<i64>, RecordError>;
    /// Marks pending row `id` delivered as `message_id`; returns the row if
    /// it was pending.
    fn mark_delivered(
        &mut self,
        id: i64,
        message_id: &str,
        at_ms: i64,
    ) -> Result<Option<OutboxRow>, RecordError>;
    /// Pending row `id` is tried again at `due_ms`.
    fn retry_notification(
        &mut self,
        id: i64,
        attempts: u32,
        error: &str,
        due_ms: i64,
    ) -> Result<(), RecordError>;
    /// Pending row `id` is given up.
    fn give_up_notification(&mut self, id: i64, attempts: u32, error: &str) -> Result<(), RecordError>;
    /// An agent said hello.
    fn agent_hello(&mut self, hello: &AgentHello) -> Result<(), RecordError>;
    /// Agents last heard from at these times (never moves back).
    fn agents_seen(&mut self, seen: &[(String, i64)]) -> Result<(), RecordError>;
    /// The equipment-list items of one scope (`agent` empty: the imported
    /// ones), removed ones included.
    fn inventory_items(
        &mut self,
        agent: &str,
        scope: &str,
    ) -> Result<Vec<watchpost_model::inventory::InventoryItem>, RecordError>;
    /// Writes an item (by id), in `scope`.
    fn inventory_put(
        &mut self,
        scope: &str,
        item: &watchpost_model::inventory::InventoryItem,
    ) -> Result<(), RecordError>;
    /// Appends to an item's history.
    fn inventory_event(
        &mut self,
        event: &watchpost_model::inventory::InventoryEvent,
    ) -> Result<(), RecordError>;
}

/// A recording of an inspection item, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectionRow<'a> {
    /// `2026-12-01`.
    pub day: &'a str,
    /// The item's id.
    pub item: &'a str,
    /// `normal` or `abnormal`.
    pub result: watchpost_model::inspections::InspectionResult,
    /// What was seen.
    pub remark: &'a str,
    /// Who.
    pub by: &'a str,
    /// When (ms).
    pub at_ms: i64,
    /// Why a signed record is corrected (an amendment).
    pub why: Option<&'a str>,
    /// The reported fault opened for it.
    pub fault_id: Option<i64>,
}
