//! Where a process's CPU goes, by stage: `perf record` samples the process
//! (every thread) while a bench phase runs, and each sampled function is
//! put in the stage its path names. Sampling, so the shares are repeatable
//! on a noisy machine in a way wall-clock timings are not.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The stages a sample of the collector is counted in, first match wins:
/// (stage, substrings of the function's name or its object).
const STAGES: &[(&str, &[&str])] = &[
    (
        "rule evaluation (incl. window decode)",
        &[
            "rules::",
            "HotStore::aggregate",
            "ChunkIter",
            "ValueCoder::get",
            "Bits::get",
            "samples_since",
        ],
    ),
    (
        "store append",
        &[
            "HotStore::append",
            "Bits::put",
            "ValueCoder::put",
            "ChunkWriter",
            "store::chunk",
        ],
    ),
    (
        "series lookup",
        &[
            "HotStore::",
            "ingest::define",
            "hashbrown",
            "BuildHasher",
            "sip::Hasher",
        ],
    ),
    ("journal encode + write", &["journal::", "watchpost_segment"]),
    (
        "commit (fault stage, SQLite)",
        &["faults::", "db::", "sqlite", "rusqlite"],
    ),
    ("history rollups", &["history::"]),
    (
        "receive + decode (HTTP/2, protobuf)",
        &[
            "prost::",
            "tonic::",
            "h2::",
            "hyper::",
            "bytes::",
            "http_body",
            "watchpost_proto",
        ],
    ),
    ("session (ingest loop)", &["ingest::"]),
    (
        "allocator",
        &[
            "malloc",
            "free",
            "realloc",
            "_int_",
            "unlink_chunk",
            "memmove",
            "memcpy",
            "memset",
        ],
    ),
    (
        "runtime, locks, threads",
        &[
            "tokio::",
            "Mutex",
            "futex",
            "parking",
            "std::sys::sync",
            "Condvar",
            "syscall",
        ],
    ),
];

/// (what, percent of the samples), the largest first.
type Shares = Vec<(String, f64)>;

/// A running `perf record` of one process.
pub struct Recording {
    child: Child,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts sampling `pid` at 499 Hz; `None` (and a line saying why) when perf
/// is not installed or not permitted.
pub fn record(pid: u32) -> Option<Recording> {
    let dir = tempfile::tempdir().ok()?;
    let data = dir.path().join("perf.data");
    let child = Command::new("perf")
        .args(["record", "-q", "-F", "499", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => Some(Recording {
            child,
            data,
            _dir: dir,
        }),
        Err(e) => {
            println!("perf                    not run: {e} (Debian package linux-perf)");
            None
        }
    }
}

impl Recording {
    /// Stops the recording; returns the share of samples per stage, the
    /// largest first, and the five hottest functions.
    pub fn finish(mut self) -> anyhow::Result<(Shares, Shares)> {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32)
                .ok_or_else(|| anyhow::anyhow!("perf has no pid"))?,
            rustix::process::Signal::INT,
        )?;
        self.child.wait()?;
        let out = Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--sort",
                "dso,sym",
                "-q",
                "--stdio",
                "-g",
                "none",
                "-i",
            ])
            .arg(&self.data)
            .output()?;
        if !out.status.success() {
            anyhow::bail!("perf report: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut stages: Vec<(String, f64)> = Vec::new();
        let mut hottest = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some((share, rest)) = line.split_once('%') else {
                continue;
            };
            let Ok(share) = share.trim().parse::<f64>() else {
                continue;
            };
            let stage = classify(rest);
            match stages.iter_mut().find(|(s, _)| s == stage) {
                Some(s) => s.1 += share,
                None => stages.push((stage.to_string(), share)),
            }
            if hottest.len() < 5 {
                let name = rest.rsplit("] ").next().unwrap_or(rest).trim();
                hottest.push((name.chars().take(90).collect(), share));
            }
        }
        stages.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok((stages, hottest))
    }
}

fn classify(entry: &str) -> &'static str {
    if entry.contains("[k]") {
        return "kernel (network, fsync, scheduling)";
    }
    STAGES
        .iter()
        .find(|(_, keys)| keys.iter().any(|k| entry.contains(k)))
        .map_or("other", |(stage, _)| stage)
}

/// Prints a recording's breakdown, each stage also as CPU per sample.
pub fn print(label: &str, rec: Option<Recording>, cpu_ns_per_sample: f64) {
    let Some(rec) = rec else { return };
    match rec.finish() {
        Ok((stages, hottest)) => {
            println!("CPU by stage            {label} (perf, 499 Hz, all threads):");
            for (stage, share) in stages {
                println!(
                    "                          {share:5.1} %  {:6.3} µs/sample  {stage}",
                    cpu_ns_per_sample * share / 100.0 / 1000.0
                );
            }
            for (name, share) in hottest {
                println!("  hottest                 {share:5.1} %  {name}");
            }
        }
        Err(e) => println!("perf                    no breakdown: {e}"),
    }
}
