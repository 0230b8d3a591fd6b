//! `statvfs` where a hang is bounded.
//!
//! A hard NFS mount whose server is gone makes `statvfs` block for as long
//! as the server stays away. The collection thread also forwards traps and
//! SNMP samples, so it must never make that call itself: a worker thread
//! does, and the collection thread waits for each answer at most
//! `timeout`. A worker that does not answer in time is left with its mount
//! (it cannot be interrupted) and a new worker takes the next mounts; the
//! hung mount is reported as `host_filesystem_stat_timeout 1` without being
//! asked again until its old worker comes back. So one hung mount costs one
//! parked thread and one `timeout`, once, not one per round.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// What the collector needs of one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStat {
    /// Fragment size (the unit of the block counts).
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
}

/// The call being bounded (the real `statvfs`, or a stand-in in tests).
pub type StatFn = Arc<dyn Fn(&str) -> Option<FsStat> + Send + Sync>;

/// The real call.
pub fn statvfs(mountpoint: &str) -> Option<FsStat> {
    let st = rustix::fs::statvfs(mountpoint).ok()?;
    Some(FsStat {
        frsize: st.f_frsize,
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
    })
}

/// A thread that stats the mounts it is given, in order, answering each.
struct Worker {
    ask: SyncSender<Vec<String>>,
    answers: Receiver<Option<FsStat>>,
}

impl Worker {
    fn spawn(stat: &StatFn) -> Option<Worker> {
        // Bounded channels keep their buffers where they were made: the
        // worker allocates nothing itself, so it costs no malloc arena.
        let (ask, asked) = mpsc::sync_channel::<Vec<String>>(1);
        let (answer, answers) = mpsc::sync_channel(ANSWERS);
        let stat = stat.clone();
        std::thread::Builder::new()
            .name("watchpost-statfs".into())
            .stack_size(64 << 10)
            .spawn(move || {
                for batch in asked {
                    for mountpoint in &batch {
                        if answer.send(stat(mountpoint)).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the statfs thread"))
            .ok()?;
        Some(Worker { ask, answers })
    }
}

/// Answers a worker may queue before the collection thread reads them.
const ANSWERS: usize = 64;

/// The answer for one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Its figures.
    Stat(FsStat),
    /// The call failed (not a filesystem we can read).
    Failed,
    /// The call did not return in time, now or in an earlier round.
    TimedOut,
}

/// Bounded `statvfs` calls from the collection thread.
pub struct StatFs {
    stat: StatFn,
    timeout: Duration,
    worker: Option<Worker>,
    /// Mounts whose call is still hanging, with the worker stuck on it.
    hung: HashMap<String, Worker>,
}

impl StatFs {
    /// Calls `stat`, each call bounded by `timeout`.
    pub fn new(stat: StatFn, timeout: Duration) -> StatFs {
        StatFs {
            stat,
            timeout,
            worker: None,
            hung: HashMap::new(),
        }
    }

    /// Threads parked on a hung mount.
    pub fn hung(&self) -> usize {
        self.hung.len()
    }

    /// Stats every mount of `mounts` (one request to the worker a round),
    /// waiting at most the timeout for each; `answers[i]` is mount `i`'s.
    pub fn stat_all(&mut self, mounts: &[&str], answers: &mut Vec<Answer>) {
        answers.clear();
        answers.resize(mounts.len(), Answer::Failed);
        let mut pending: Vec<usize> = Vec::with_capacity(mounts.len());
        for (i, m) in mounts.iter().enumerate() {
            match self.hung.get(*m).map(|w| w.answers.try_recv()) {
                // Still stuck: not asked again.
                Some(Err(mpsc::TryRecvError::Empty)) => answers[i] = Answer::TimedOut,
                // It came back: asked again below. Its worker is dropped, not
                // reused: it may still be working through the rest of the
                // batch it was stuck in, and ends when it next answers.
                Some(_) => {
                    self.hung.remove(*m);
                    pending.push(i);
                }
                None => pending.push(i),
            }
        }
        let mut from = 0;
        while from < pending.len() {
            if self.worker.is_none() {
                self.worker = Worker::spawn(&self.stat);
            }
            let Some(w) = self.worker.as_ref() else { return };
            let batch = pending[from..].iter().map(|&i| mounts[i].to_string()).collect();
            if w.ask.send(batch).is_err() {
                self.worker = None;
                return;
            }
            let mut next = pending.len();
            for (k, &i) in pending.iter().enumerate().skip(from) {
                match w.answers.recv_timeout(self.timeout) {
                    Ok(Some(st)) => answers[i] = Answer::Stat(st),
                    Ok(None) => answers[i] = Answer::Failed,
                    Err(RecvTimeoutError::Timeout) => {
                        tracing::warn!(mountpoint = mounts[i], timeout = ?self.timeout,
                            "statvfs does not return (a hung network mount?): reported, not asked again until it answers");
                        answers[i] = Answer::TimedOut;
                        if let Some(w) = self.worker.take() {
                            self.hung.insert(mounts[i].to_string(), w);
                        }
                        // The rest go to a new worker.
                        next = k + 1;
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        self.worker = None;
                        return;
                    }
                }
            }
            from = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

    use super::*;

    fn figures() -> FsStat {
        FsStat {
            frsize: 4096,
            blocks: 100,
            bfree: 50,
            bavail: 40,
            files: 10,
            ffree: 5,
        }
    }

    #[test]
    fn a_hung_mount_is_reported_once_per_round_without_stalling_or_piling_up_threads() {
        // "/nfs" hangs until the test lets it go.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        // How often "/nfs" was asked: a hung mount is asked once, not each round.
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = asked.clone();
        let stat: StatFn = Arc::new(move |m: &str| {
            if m == "/nfs" {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (lock, cv) = &*g;
                let mut open = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*open {
                    open = cv.wait(open).unwrap_or_else(|p| p.into_inner());
                }
            }
            (m != "/gone").then(figures)
        });
        let mut s = StatFs::new(stat, Duration::from_millis(200));
        let mut answers = Vec::new();
        let mounts = ["/", "/nfs", "/gone", "/data"];
        s.stat_all(&mounts, &mut answers);
        let ok = Answer::Stat(figures());
        assert_eq!(
            answers,
            [ok, Answer::TimedOut, Answer::Failed, ok],
            "the mounts after the hung one answer too"
        );
        assert_eq!(s.hung(), 1);
        // Later rounds: the other mounts still answer, the hung one is not
        // asked again (no wait, no second parked thread).
        for _ in 0..3 {
            s.stat_all(&mounts, &mut answers);
            assert_eq!(answers, [ok, Answer::TimedOut, Answer::Failed, ok]);
            assert_eq!(s.hung(), 1);
        }
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the hung mount was asked again"
        );
        {
            let (lock, cv) = &*gate;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        // Once its call returns, the mount is asked again and answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            s.stat_all(&mounts, &mut answers);
            if answers[1] == ok {
                break;
            }
            assert!(Instant::now() < deadline, "still {:?}", answers[1]);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(answers, [ok, ok, Answer::Failed, ok]);
        assert_eq!(s.hung(), 0);
    }
}
