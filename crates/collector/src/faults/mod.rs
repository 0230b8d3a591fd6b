//! The fault stage: owns the fault lifecycle.
//!
//! It takes the rule engine's [`Transition`]s, the clock's ticks, people's
//! [`FaultAction`]s, maintenance windows and the dispatcher's delivery
//! reports, and decides what each does to a fault record: opening,
//! re-firing, rising, reopening, resolving, missed deadlines (on the
//! working calendar), suppression by windows and failed parents, and which
//! notifications go into the outbox. It works on typed states
//! ([`FaultStatus`](watchpost_model::api::FaultStatus), [`EventKind`]) and
//! writes through the storage boundary [`crate::db::FaultRecords`], inside
//! the database writer's group commit; it does no SQL and holds no
//! connection. It does not decide *when* a condition holds (the rule
//! engine does) nor send anything (the dispatcher does).

mod actions;
mod changes;
mod event;
mod flapping;
mod inspections;
mod inventory;
mod lifecycle;
#[cfg(test)]
mod memory;
mod notices;
mod reported;
#[cfg(test)]
mod tests;
mod transition;

pub use changes::{ChangeEffect, ChangeOp, ChangeRequest, window_of};
pub use event::EventKind;
pub use inspections::InspectionOp;
pub use inventory::{ChangeRule, InventoryReport};
pub use lifecycle::Lifecycle;
pub use reported::{DRILL_RULE, REPORTED_RULE, ReportedFault};
pub use transition::{FaultKey, NewFault, Transition};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use watchpost_calendar::{Calendar, SeverityPolicy};

use crate::db::records::{AgentHello, FaultRecords, RecordError};
use crate::db::writer::{self, Committer};
use crate::db::{Database, DbError};
use crate::health::{Health, Store};
use crate::maintenance::Window;
use crate::notify::dispatch::{Delivery, Outbox};
use crate::notify::{DueNotification, NotifyConfig};

/// Actor recorded for what the rule engine and the clock do.
pub const SYSTEM_ACTOR: &str = "system";

/// How fault records are kept: deadlines, reopening, notifications.
#[derive(Debug, Clone)]
pub struct FaultSettings {
    /// Response and resolve durations per severity.
    pub policy: SeverityPolicy,
    /// The calendar they are counted on.
    pub calendar: Calendar,
    /// A resolved fault that fires again within this time reopens (ms).
    pub reopen_within_ms: i64,
    /// Routes, escalation and parents: what to put in the outbox.
    pub notify: Arc<NotifyConfig>,
    /// Told whether each commit succeeds (`collector_writes_failing`).
    pub health: Arc<Health>,
    /// When a fault counts as flapping.
    pub flap: crate::config::FlapPolicy,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            policy: SeverityPolicy::default(),
            calendar: Calendar::default(),
            reopen_within_ms: 10 * 60 * 1000,
            notify: Arc::default(),
            health: Arc::default(),
            flap: crate::config::FlapPolicy::default(),
        }
    }
}

/// A change for the fault stage to record.
#[derive(Debug, Clone)]
pub enum Command {
    /// A fault transition from the rule engine.
    Fault(Transition),
    /// An agent said hello.
    AgentHello {
        /// Agent id.
        id: String,
        /// Its hostname.
        hostname: String,
        /// Its software version.
        version: String,
        /// The address it connected from.
        address: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// When (ms).
        at_ms: i64,
    },
    /// Agents last heard from at these times.
    AgentsSeen(Vec<(String, i64)>),
    /// The clock: records deadlines that passed unmet by `now_ms`, and
    /// releases faults whose maintenance window ended.
    Tick {
        /// The collector's clock.
        now_ms: i64,
    },
    /// The dispatcher's report on outbox rows.
    Delivery(Delivery),
    /// An agent's (or a person's) view of one scope of the equipment list.
    Inventory(Box<InventoryReport>),
}

/// What a person does to a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Responds: meets the response deadline.
    Ack {
        /// Optional comment.
        comment: Option<String>,
    },
    /// Resolves by hand: meets the resolve deadline.
    Resolve {
        /// What was done.
        comment: String,
    },
    /// Documents and closes a resolved fault.
    Close {
        /// Why it happened.
        cause: String,
        /// How it was handled.
        handling: String,
    },
    /// Adds a note to the timeline.
    Note {
        /// The note.
        text: String,
    },
    /// Hands it to someone.
    Assign {
        /// Who.
        assignee: String,
    },
    /// The reporter's satisfaction with the handling of a closed reported fault.
    Feedback {
        /// 1 to 5.
        satisfaction: u8,
        /// What they said.
        comment: Option<String>,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such fault.
    #[error("no fault {0}")]
    NotFound(i64),
    /// The fault's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// This person may not do it (e.g. approve their own change).
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
}

/// One unit of work for the writer thread.
pub enum Job {
    Write {
        commands: Vec<Command>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    AddWindow {
        window: Window,
        reply: oneshot::Sender<Result<i64, String>>,
    },
    AddReport {
        report: watchpost_model::reports::StoredReport,
        at_ms: i64,
        reply: oneshot::Sender<Result<watchpost_model::reports::StoredReport, String>>,
    },
    Change {
        id: i64,
        op: ChangeOp,
        actor: String,
        at_ms: i64,
        outcome: Result<ChangeEffect, ActionError>,
        reply: oneshot::Sender<Result<i64, ActionError>>,
    },
    Report {
        fault: ReportedFault,
        outcome: Result<i64, ActionError>,
        reply: oneshot::Sender<Result<i64, ActionError>>,
    },
    Inspection {
        day: String,
        op: InspectionOp,
        actor: String,
        at_ms: i64,
        outcome: Result<i64, ActionError>,
        reply: oneshot::Sender<Result<i64, ActionError>>,
    },
    Act {
        id: i64,
        actor: String,
        at_ms: i64,
        action: FaultAction,
        outcome: Result<(), ActionError>,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
}

impl Lifecycle {
    fn command(&mut self, rec: &mut dyn FaultRecords, cmd: &Command) -> Result<(), RecordError> {
        match cmd {
            Command::Fault(t) => self.transition(rec, t),
            Command::AgentHello {
                id,
                hostname,
                version,
                address,
                labels,
                at_ms,
            } => rec.agent_hello(&AgentHello {
                id: id.clone(),
                hostname: hostname.clone(),
                version: version.clone(),
                address: address.clone(),
                labels: labels.clone(),
                at_ms: *at_ms,
            }),
            Command::AgentsSeen(seen) => rec.agents_seen(seen),
            Command::Tick { now_ms } => self.tick(rec, *now_ms),
            Command::Delivery(d) => self.delivery(rec, d),
            Command::Inventory(r) => self.inventory(rec, r),
        }
    }
}

impl Lifecycle {
    /// Keeps `cmd` to retry. A clock tick right after another replaces it
    /// (the later one records every deadline the earlier would), so a long
    /// outage does not make every retry replay one tick per second of it.
    fn hold(&mut self, cmd: Command) {
        if let (Command::Tick { .. }, Some(Command::Tick { .. })) = (&cmd, self.backlog.last()) {
            self.backlog.pop();
        }
        self.backlog.push(cmd);
    }
}

impl Committer for Lifecycle {
    type Job = Job;

    fn joins_group(job: &Job) -> bool {
        matches!(job, Job::Write { .. })
    }

    fn begin(&mut self, rec: &mut dyn FaultRecords) -> Result<(), RecordError> {
        self.flaps.begin();
        let backlog = std::mem::take(&mut self.backlog);
        let result = backlog.iter().try_for_each(|cmd| self.command(rec, cmd));
        self.backlog = backlog;
        result
    }

    fn apply(&mut self, rec: &mut dyn FaultRecords, job: &mut Job) -> Result<(), RecordError> {
        match job {
            Job::Write { commands, .. } => {
                for cmd in commands.iter() {
                    self.command(rec, cmd)?;
                }
                Ok(())
            }
            Job::AddWindow { window, .. } => {
                window.id = rec.insert_window(window)?;
                Ok(())
            }
            Job::AddReport { report, at_ms, .. } => rec.insert_report(report, *at_ms),
            Job::Act {
                id,
                actor,
                at_ms,
                action,
                outcome,
                ..
            } => {
                *outcome = self.act(rec, *id, actor, *at_ms, action)?;
                Ok(())
            }
            Job::Report { fault, outcome, .. } => {
                *outcome = self.report(rec, fault)?;
                Ok(())
            }
            Job::Inspection {
                day,
                op,
                actor,
                at_ms,
                outcome,
                ..
            } => {
                *outcome = self.inspection(rec, day, op, actor, *at_ms)?;
                Ok(())
            }
            Job::Change {
                id,
                op,
                actor,
                at_ms,
                outcome,
                ..
            } => {
                *outcome = self.change(rec, *id, op, actor, *at_ms)?;
                Ok(())
            }
        }
    }

    /// A commit that failed for want of disk (full, or failing) keeps its
    /// changes to retry, since the condition that caused them will not be
    /// reported again; other errors drop the group as before.
    fn settle(&mut self, jobs: Vec<Job>, result: Result<(), RecordError>, took: std::time::Duration) {
        self.settings.health.observe_write(Store::Database, took);
        let keep = match &result {
            Ok(()) => {
                self.settings.health.write_succeeded(Store::Database);
                self.committed();
                if !self.backlog.is_empty() {
                    tracing::info!(
                        changes = self.backlog.len(),
                        "fault changes held back by a failed commit are recorded now"
                    );
                    self.backlog.clear();
                }
                false
            }
            Err(e) => {
                self.settings.health.write_failed(Store::Database, &e.message);
                self.rolled_back();
                let keep = e.disk_trouble;
                if keep && self.backlog.is_empty() {
                    tracing::error!(error = %e, "fault changes not recorded: kept, and retried with every commit until one succeeds");
                } else if keep {
                    tracing::debug!(error = %e, changes = self.backlog.len(), "fault changes still not recorded");
                } else if !self.backlog.is_empty() {
                    tracing::error!(error = %e, changes = self.backlog.len(), "fault changes held back are dropped: the commit fails for another reason than the disk");
                    self.backlog.clear();
                }
                keep
            }
        };
        let result = result.map_err(|e| e.to_string());
        for job in jobs {
            match job {
                Job::Write { done, commands } => {
                    if keep {
                        for cmd in commands {
                            self.hold(cmd);
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(result.clone());
                    }
                }
                Job::AddReport { report, reply, .. } => {
                    let _ = reply.send(result.clone().map(|()| report));
                }
                Job::AddWindow { window, reply } => {
                    let answer = result.clone().map(|()| window.id);
                    if result.is_ok() {
                        self.windows.push(window);
                    }
                    let _ = reply.send(answer);
                }
                Job::Act { outcome, reply, .. } => {
                    let _ = reply.send(result.clone().map_err(ActionError::Db).and(outcome));
                }
                Job::Change { outcome, reply, .. } => {
                    let answer = match (&result, outcome) {
                        (Ok(()), Ok(effect)) => {
                            self.change_committed(&effect);
                            Ok(effect.id)
                        }
                        (Ok(()), Err(e)) => Err(e),
                        (Err(e), _) => Err(ActionError::Db(e.clone())),
                    };
                    let _ = reply.send(answer);
                }
                Job::Report { outcome, reply, .. } | Job::Inspection { outcome, reply, .. } => {
                    let _ = reply.send(result.clone().map_err(ActionError::Db).and(outcome));
                }
            }
        }
    }
}

/// Handle to the fault stage: sends changes to the writer thread and waits
/// until they are on disk.
#[derive(Clone)]
pub struct Faults {
    writer: mpsc::Sender<Job>,
    open_faults: Arc<AtomicU64>,
    flapping: Arc<AtomicU64>,
    wake: Arc<tokio::sync::Notify>,
    db: Database,
}

impl Faults {
    /// Opens (creating and migrating) the record store in `dir` and starts
    /// the writer thread with the lifecycle; returns the stage's handle and
    /// the store's read handle.
    pub fn open(dir: &Path, settings: FaultSettings) -> Result<(Faults, Database), DbError> {
        let opened = Database::open(dir)?;
        let lifecycle = Lifecycle::new(settings, opened.live, opened.windows);
        let open_faults = lifecycle.open_faults();
        let flapping = lifecycle.flaps.counter();
        let wake = Arc::new(tokio::sync::Notify::new());
        let writer = writer::spawn(opened.writer, lifecycle, wake.clone()).map_err(|e| DbError::Open {
            path: dir.join("watchpost.db"),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        let db = opened.database;
        Ok((
            Faults {
                writer,
                open_faults,
                flapping,
                wake,
                db: db.clone(),
            },
            db,
        ))
    }

    /// Faults live now (kept by the writer).
    pub fn open_fault_count(&self) -> u64 {
        self.open_faults.load(Ordering::Relaxed)
    }

    /// Faults flapping now.
    pub fn flapping_count(&self) -> u64 {
        self.flapping.load(Ordering::Relaxed)
    }

    /// Records `commands` in the next group commit and waits until they are on disk.
    pub async fn write(&self, commands: Vec<Command>) -> Result<(), DbError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job::Write {
                commands,
                done: Some(done),
            })
            .await
            .map_err(|_| DbError::WriterGone)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DbError::Write(e)),
            Err(_) => Err(DbError::WriterGone),
        }
    }

    /// Queues `commands` without waiting for them to be written.
    pub async fn write_later(&self, commands: Vec<Command>) {
        if self
            .writer
            .send(Job::Write { commands, done: None })
            .await
            .is_err()
        {
            tracing::warn!("database writer has stopped: update dropped");
        }
    }

    /// Carries out a person's action on fault `id` and waits until it is on disk.
    pub async fn act(
        &self,
        id: i64,
        actor: &str,
        at_ms: i64,
        action: FaultAction,
    ) -> Result<(), ActionError> {
        self.ask(|reply| Job::Act {
            id,
            actor: actor.to_string(),
            at_ms,
            action,
            outcome: Ok(()),
            reply,
        })
        .await
    }

    /// Carries out a step of change `id` (0 to request one) and waits until
    /// it is on disk; returns the change's id.
    pub async fn change(&self, id: i64, op: ChangeOp, actor: &str, at_ms: i64) -> Result<i64, ActionError> {
        self.ask(|reply| Job::Change {
            id,
            op,
            actor: actor.to_string(),
            at_ms,
            outcome: Err(ActionError::Db("not applied".into())),
            reply,
        })
        .await
    }

    /// Opens a fault someone reported and waits until it is on disk; returns its id.
    pub async fn report(&self, fault: ReportedFault) -> Result<i64, ActionError> {
        self.ask(|reply| Job::Report {
            fault,
            outcome: Ok(0),
            reply,
        })
        .await
    }

    /// Carries out a step on day `day`'s inspection record and waits until
    /// it is on disk; returns a recording's id (0 for a signature).
    pub async fn inspection(
        &self,
        day: &str,
        op: InspectionOp,
        actor: &str,
        at_ms: i64,
    ) -> Result<i64, ActionError> {
        self.ask(|reply| Job::Inspection {
            day: day.to_string(),
            op,
            actor: actor.to_string(),
            at_ms,
            outcome: Ok(0),
            reply,
        })
        .await
    }

    /// Sends the job `make` builds around its reply and waits for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ActionError>>) -> Job,
    ) -> Result<T, ActionError> {
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(make(reply))
            .await
            .map_err(|_| ActionError::Db("writer stopped".into()))?;
        wait.await.map_err(|_| ActionError::Db("writer stopped".into()))?
    }

    /// Records a generated report's file (written and synced by the caller).
    pub async fn add_report(
        &self,
        report: watchpost_model::reports::StoredReport,
        at_ms: i64,
    ) -> Result<watchpost_model::reports::StoredReport, DbError> {
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Job::AddReport { report, at_ms, reply })
            .await
            .map_err(|_| DbError::WriterGone)?;
        wait.await
            .map_err(|_| DbError::WriterGone)?
            .map_err(DbError::Write)
    }

    /// Stores a checked maintenance window; returns its id.
    pub async fn add_window(&self, window: Window) -> Result<i64, DbError> {
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Job::AddWindow { window, reply })
            .await
            .map_err(|_| DbError::WriterGone)?;
        wait.await
            .map_err(|_| DbError::WriterGone)?
            .map_err(DbError::Write)
    }
}

impl Outbox for Faults {
    fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueNotification>, String> {
        self.db
            .due_notifications(now_ms, limit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn record(&self, delivery: Delivery) -> Result<(), String> {
        self.write(vec![Command::Delivery(delivery)])
            .await
            .map_err(|e| e.to_string())
    }
}
