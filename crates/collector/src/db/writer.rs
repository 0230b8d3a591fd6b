//! The one writer thread and its group commit.
//!
//! The writer owns the write connection. Whatever has queued up when it
//! wakes is applied in one transaction and committed once (one fsync for
//! many changes); then every waiter is answered, so a change is reported
//! done only once it is on disk. Jobs that must stand alone (a person's
//! action, which may be refused) get a transaction each, after the group.
//! What a job *means* is the [`Committer`]'s business (the fault stage);
//! this module only runs transactions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::records::{FaultRecords, RecordError};
use super::sqlite::SqliteRecords;

/// Jobs taken into one group commit at most.
const GROUP_MAX: usize = 256;
/// Jobs queued for the writer at most (senders wait beyond it).
const QUEUE: usize = 4096;

/// What the writer thread runs: the fault stage's lifecycle.
pub trait Committer: Send + 'static {
    /// One unit of work, with whatever it needs to answer its waiter.
    type Job: Send + 'static;
    /// Whether `job` joins the group commit; if not, it runs alone, in a
    /// transaction of its own, after the group.
    fn joins_group(job: &Self::Job) -> bool;
    /// Called first in every group transaction (to re-apply what an
    /// earlier, failed group left to retry).
    fn begin(&mut self, _records: &mut dyn FaultRecords) -> Result<(), RecordError> {
        Ok(())
    }
    /// Applies `job` inside the open transaction. An error rolls back the
    /// transaction and every job in it.
    fn apply(&mut self, records: &mut dyn FaultRecords, job: &mut Self::Job) -> Result<(), RecordError>;
    /// The transaction that applied `jobs` committed (`Ok`) or was rolled
    /// back (`Err`) after `took`: keep or forget what it changed, answer
    /// the waiters.
    fn settle(&mut self, jobs: Vec<Self::Job>, result: Result<(), RecordError>, took: Duration);
}

/// Starts the writer thread on `conn`; jobs sent to the returned queue
/// are committed in groups. `wake` is notified after every round of
/// commits (the notification dispatcher looks at the outbox then).
pub fn spawn<C: Committer>(
    conn: Connection,
    committer: C,
    wake: Arc<tokio::sync::Notify>,
) -> std::io::Result<mpsc::Sender<C::Job>> {
    let (tx, rx) = mpsc::channel::<C::Job>(QUEUE);
    let writer = Writer {
        conn,
        committer,
        wake,
    };
    std::thread::Builder::new()
        .name("watchpost-db".into())
        .spawn(move || writer.run(rx))?;
    Ok(tx)
}

struct Writer<C: Committer> {
    conn: Connection,
    committer: C,
    wake: Arc<tokio::sync::Notify>,
}

impl<C: Committer> Writer<C> {
    fn run(mut self, mut rx: mpsc::Receiver<C::Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP_MAX {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let (mut group, alone): (Vec<_>, Vec<_>) = jobs.into_iter().partition(C::joins_group);
            if !group.is_empty() {
                let started = Instant::now();
                let result = self.transact(&mut group, true);
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "database write failed");
                }
                self.committer.settle(group, result, started.elapsed());
            }
            for job in alone {
                let mut one = vec![job];
                let started = Instant::now();
                let result = self.transact(&mut one, false);
                self.committer.settle(one, result, started.elapsed());
            }
            // The outbox may have new rows: let the dispatcher look.
            self.wake.notify_one();
        }
    }

    fn transact(&mut self, jobs: &mut [C::Job], group: bool) -> Result<(), RecordError> {
        let tx = self.conn.transaction()?;
        let mut records = SqliteRecords { tx: &tx };
        if group && let Err(e) = self.committer.begin(&mut records) {
            let _ = tx.rollback();
            return Err(e);
        }
        for job in jobs.iter_mut() {
            if let Err(e) = self.committer.apply(&mut records, job) {
                let _ = tx.rollback();
                return Err(e);
            }
        }
        Ok(tx.commit()?)
    }
}
