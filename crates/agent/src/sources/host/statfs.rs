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
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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

struct Worker {
    ask: Sender<String>,
    answers: Receiver<Option<FsStat>>,
}

impl Worker {
    fn spawn(stat: &StatFn) -> Option<Worker> {
        let (ask, asked) = mpsc::channel::<String>();
        let (answer, answers) = mpsc::channel();
        let stat = stat.clone();
        std::thread::Builder::new()
            .name("watchpost-statfs".into())
            .spawn(move || {
                for mountpoint in asked {
                    if answer.send(stat(&mountpoint)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the statfs thread"))
            .ok()?;
        Some(Worker { ask, answers })
    }
}

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

    /// Stats `mountpoint`, waiting at most the timeout.
    pub fn stat(&mut self, mountpoint: &str) -> Answer {
        if let Some(w) = self.hung.get(mountpoint) {
            match w.answers.try_recv() {
                // Still stuck: do not ask again.
                Err(mpsc::TryRecvError::Empty) => return Answer::TimedOut,
                // It came back: the mount answers again; its worker is free.
                Ok(_) | Err(mpsc::TryRecvError::Disconnected) => {
                    let w = self.hung.remove(mountpoint).expect("looked up above");
                    if self.worker.is_none() {
                        self.worker = Some(w);
                    }
                }
            }
        }
        if self.worker.is_none() {
            self.worker = Worker::spawn(&self.stat);
        }
        let Some(w) = self.worker.as_ref() else {
            return Answer::Failed;
        };
        if w.ask.send(mountpoint.to_string()).is_err() {
            self.worker = None;
            return Answer::Failed;
        }
        match w.answers.recv_timeout(self.timeout) {
            Ok(Some(st)) => Answer::Stat(st),
            Ok(None) => Answer::Failed,
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(mountpoint, timeout = ?self.timeout,
                    "statvfs does not return (a hung network mount?): reported, not asked again until it answers");
                if let Some(w) = self.worker.take() {
                    self.hung.insert(mountpoint.to_string(), w);
                }
                Answer::TimedOut
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.worker = None;
                Answer::Failed
            }
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
        let stat: StatFn = Arc::new(move |m: &str| {
            if m == "/nfs" {
                let (lock, cv) = &*g;
                let mut open = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*open {
                    open = cv.wait(open).unwrap_or_else(|p| p.into_inner());
                }
            }
            (m != "/gone").then(figures)
        });
        let mut s = StatFs::new(stat, Duration::from_millis(200));
        assert_eq!(s.stat("/"), Answer::Stat(figures()));
        assert_eq!(s.stat("/gone"), Answer::Failed);
        assert_eq!(s.stat("/nfs"), Answer::TimedOut);
        assert_eq!(s.hung(), 1);
        // Later rounds: the other mounts still answer, the hung one is not
        // asked again (no wait, no second parked thread).
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(s.stat("/nfs"), Answer::TimedOut);
            assert!(started.elapsed() < Duration::from_millis(150), "asked again");
            assert_eq!(s.stat("/"), Answer::Stat(figures()));
            assert_eq!(s.hung(), 1);
        }
        {
            let (lock, cv) = &*gate;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        // Once its call returns, the mount is asked again and answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match s.stat("/nfs") {
                Answer::Stat(st) => {
                    assert_eq!(st, figures());
                    break;
                }
                other => assert!(Instant::now() < deadline, "still {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(s.hung(), 0);
    }
}
