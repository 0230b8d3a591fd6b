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

/// Where a process's resident memory is, from `/proc/PID/smaps`: its
/// binary's code, read-only data and writable data, the heap, the main
/// stack, other anonymous mappings (allocator arenas, thread stacks),
/// shared libraries and the rest; (what, bytes), in that order.
pub fn rss_breakdown(pid: u32) -> Vec<(&'static str, u64)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let kinds = [
        "binary code",
        "binary read-only data",
        "binary writable data",
        "heap",
        "main stack",
        "other anonymous (arenas, thread stacks)",
        "shared libraries",
        "other",
    ];
    let mut sums = [0u64; 8];
    let mut kind = 7;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            // A mapping's header: range perms offset dev inode [path].
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            kind = if !exe.is_empty() && path == exe {
                if perms.contains('x') {
                    0
                } else if perms.contains('w') {
                    2
                } else {
                    1
                }
            } else if path == "[heap]" {
                3
            } else if path == "[stack]" {
                4
            } else if path.is_empty() {
                5
            } else if path.contains(".so") {
                6
            } else {
                7
            };
        } else if first == "Rss:" {
            sums[kind] += f.next().and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) * 1024;
        }
    }
    kinds.into_iter().zip(sums).collect()
}
