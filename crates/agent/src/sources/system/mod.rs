//! What runs on the host besides its counters: processes (`process.rs`),
//! systemd services (`service.rs`), log files (`log.rs`), and the health of
//! its disks and software RAID (`storage.rs`).
//!
//! ```toml
//! [[process]]
//! name = "tomcat"                    # the `process` label
//! match = "java .*catalina"          # a regex over the command line, and/or
//! exe = "java"                       # the program's name
//! min = 1                            # process_up is 1 while count >= min
//!
//! [service]
//! systemd = ["nginx.service", "mariadb.service"]
//!
//! [[log]]
//! path = "/var/log/tomcat/catalina*.out"   # a file or a glob
//! patterns = { oom = "OutOfMemoryError", ora = 'ORA-\d+' }
//!
//! [storage]
//! smart = true                       # smartctl --json on every disk it finds
//! ```
//!
//! All of them read files or run a short command: blocking work, so they
//! share one plain thread (`watchpost-system`, no runtime), started only if
//! one of them is declared. Each publishes what it measured into
//! [`Published`]; a tool that is missing or lacks a permission is one
//! warning, not one per round.

mod log;
mod process;
mod service;
mod storage;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) use log::RawLog;
pub(crate) use process::RawProcess;
pub(crate) use service::RawService;
pub(crate) use storage::RawStorage;

use crate::series::{Measured, Published, SharedLabels};

/// Processes, services, logs and storage, checked.
#[derive(Debug, Clone, Default)]
pub struct SystemConfig {
    /// `[[process]]`, in config order.
    pub processes: Vec<process::ProcessWatch>,
    /// `[service]`.
    pub services: Option<service::ServiceWatch>,
    /// `[[log]]`, in config order.
    pub logs: Vec<log::LogWatch>,
    /// `[storage]`.
    pub storage: Option<storage::StorageWatch>,
    /// How often processes, services, logs and RAID are read.
    pub interval: Duration,
}

impl SystemConfig {
    /// Nothing declared.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.services.is_none() && self.logs.is_empty() && self.storage.is_none()
    }

    /// Checks the four tables; errors name the table, its position and the key.
    pub(crate) fn check(
        processes: Vec<RawProcess>,
        service: Option<RawService>,
        logs: Vec<RawLog>,
        storage: Option<RawStorage>,
        interval: Duration,
    ) -> Result<SystemConfig, String> {
        Ok(SystemConfig {
            processes: process::check(processes)?,
            services: service.map(service::check).transpose()?,
            logs: log::check(logs)?,
            storage: storage.map(storage::check).transpose()?,
            interval,
        })
    }
}

/// Starts the thread; nothing starts when `config` is empty.
pub fn start(config: SystemConfig, out: Published, stop: Arc<AtomicBool>) {
    if config.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("watchpost-system".into())
        .spawn(move || run(config, &out, &stop));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the system thread");
    }
}

/// One kind of check on its own schedule.
trait Job {
    /// Measures once, at `at_ms`.
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>);
}

fn run(config: SystemConfig, out: &Published, stop: &AtomicBool) {
    let mut jobs: Vec<(Box<dyn Job>, Duration, Instant)> = Vec::new();
    let now = Instant::now();
    if !config.processes.is_empty() {
        jobs.push((
            Box::new(process::Processes::new(config.processes)),
            config.interval,
            now,
        ));
    }
    if let Some(s) = config.services {
        let every = s.interval.unwrap_or(config.interval);
        jobs.push((Box::new(service::Services::new(s)), every, now));
    }
    if !config.logs.is_empty() {
        jobs.push((Box::new(log::Logs::new(config.logs)), config.interval, now));
    }
    if let Some(s) = config.storage {
        if let Some(raid) = storage::Raid::new(&s) {
            jobs.push((Box::new(raid), config.interval, now));
        }
        if let Some(smart) = storage::Smart::new(&s) {
            jobs.push((Box::new(smart), s.smart_interval, now));
        }
    }
    let mut batch = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for (job, every, next) in &mut jobs {
            if *next <= now {
                job.run(crate::time::now_ms(), &mut batch);
                *next += *every;
                if *next <= now {
                    *next = now + *every;
                }
            }
        }
        if !batch.is_empty() {
            out.publish(std::mem::take(&mut batch));
        }
        let wake = jobs.iter().map(|j| j.2).min().unwrap_or(now + config.interval);
        // Short naps, so that a stopping agent does not wait for a long interval.
        std::thread::sleep(
            wake.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250)),
        );
    }
}

/// A set of labels for one watched thing: its own labels, `key = name`
/// added, sorted, checked.
fn labels_of(
    what: &str,
    key: &'static str,
    name: &str,
    extra: std::collections::BTreeMap<String, String>,
) -> Result<SharedLabels, String> {
    use watchpost_model::names;
    names::check_label_value(name).map_err(|e| format!("{what}: name: {e}"))?;
    let mut labels = Vec::new();
    for (k, v) in extra {
        names::check_label_name(&k).map_err(|e| format!("{what}: labels.{k}: {e}"))?;
        names::check_label_value(&v).map_err(|e| format!("{what}: labels.{k}: {e}"))?;
        if k == key || k == names::HOST_LABEL {
            return Err(format!("{what}: label {k:?} is set by the agent"));
        }
        labels.push((k, v));
    }
    labels.push((key.to_string(), name.to_string()));
    labels.sort();
    Ok(labels.into())
}

/// Appends one value under `labels`.
fn push(out: &mut Vec<Measured>, metric: &'static str, labels: &SharedLabels, value: f64, at_ms: i64) {
    if value.is_finite() {
        out.push(Measured {
            metric: metric.into(),
            labels: labels.clone(),
            value: crate::series::round2(value),
            at_ms,
            text: None,
        });
    }
}

/// Warnings already given, so that a missing tool or permission is logged
/// once, not every round; cleared for a key when the thing works again.
#[derive(Default)]
struct Once(HashSet<String>);

impl Once {
    /// True the first time `key` is seen failing.
    fn first(&mut self, key: &str) -> bool {
        self.0.insert(key.to_string())
    }

    /// `key` works again: a later failure warns again.
    fn clear(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// Runs `program args` with a deadline; its exit code and standard output.
/// A program that is not installed, or that does not finish in time
/// (killed), is an error saying so.
fn run_tool(program: &str, args: &[&str], timeout: Duration) -> Result<(i32, String), String> {
    use std::io::Read;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{program} is not installed (not found on PATH)"),
            _ => format!("cannot run {program}: {e}"),
        })?;
    // Read on another thread: a chatty program must not block on a full pipe.
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not finish within {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let text = reader.join().unwrap_or_default();
    Ok((status.code().unwrap_or(-1), text))
}
