//! Reading a process's footprint from /proc: resident memory and CPU time
//! (nanosecond run time summed over all its threads from `schedstat`).

use std::path::Path;

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

/// The anonymous part of the resident set (heap, stacks): what the process
/// itself allocated, as opposed to pages of its binary and libraries.
pub fn anon_bytes(pid: u32) -> u64 {
    status_kb(pid, "RssAnon:")
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time used by all threads of the process, in nanoseconds.
pub fn cpu_ns(pid: u32) -> u64 {
    let dir = format!("/proc/{pid}/task");
    let Ok(tasks) = std::fs::read_dir(Path::new(&dir)) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// MiB with two decimals.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1_048_576.0)
}
