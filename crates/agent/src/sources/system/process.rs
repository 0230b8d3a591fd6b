//! `[[process]]`: the processes of one program, found by name or by a
//! regex over the command line, summed: how many, their CPU, memory,
//! threads and open files, and whether at least `min` of them run.
//!
//! One scan of `/proc` per round serves every watch: `stat` of each
//! process (name, CPU ticks, threads) and its `cmdline`, and `statm`
//! (resident pages) and `fd/` only for the processes that matched.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::{Job, Once, labels_of, push};
use crate::series::{Measured, SharedLabels};

/// One `[[process]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    name: String,
    exe: Option<String>,
    #[serde(rename = "match")]
    pattern: Option<String>,
    min: Option<u32>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One watched program, checked.
#[derive(Debug, Clone)]
pub struct ProcessWatch {
    /// Its `process` label.
    pub name: String,
    /// The program's name: the kernel's `comm` (first 15 bytes) or the
    /// file name of `argv[0]`.
    pub exe: Option<String>,
    /// A regex the whole command line (arguments joined by spaces) must match.
    pub pattern: Option<regex::Regex>,
    /// `process_up` is 1 while at least this many run.
    pub min: u32,
    labels: SharedLabels,
}

pub(super) fn check(raws: Vec<RawProcess>) -> Result<Vec<ProcessWatch>, String> {
    let mut out: Vec<ProcessWatch> = Vec::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let what = format!("[[process]] {}", i + 1);
        if raw.name.trim().is_empty() {
            return Err(format!("{what}: `name` must not be empty"));
        }
        if out.iter().any(|p| p.name == raw.name) {
            return Err(format!("{what}: name {:?} is used twice", raw.name));
        }
        if raw.exe.is_none() && raw.pattern.is_none() {
            return Err(format!(
                "{what} ({}): give `exe` (the program's name) or `match` (a regex over its command line)",
                raw.name
            ));
        }
        if raw
            .exe
            .as_deref()
            .is_some_and(|e| e.is_empty() || e.contains('/'))
        {
            return Err(format!(
                "{what}: exe {:?} must be a program's name without a directory (use `match` for a path)",
                raw.exe.unwrap_or_default()
            ));
        }
        let pattern = raw
            .pattern
            .map(|p| regex::Regex::new(&p).map_err(|e| format!("{what}: match {p:?} is not a regex: {e}")))
            .transpose()?;
        out.push(ProcessWatch {
            labels: labels_of(&what, "process", &raw.name, raw.labels)?,
            name: raw.name,
            exe: raw.exe,
            pattern,
            min: raw.min.unwrap_or(1),
        });
    }
    Ok(out)
}

impl ProcessWatch {
    fn matches(&self, comm: &str, cmdline: Option<&str>) -> bool {
        let exe_ok = self.exe.as_deref().is_none_or(|exe| {
            // The kernel keeps only the first 15 bytes of the name.
            let short = &exe.as_bytes()[..exe.len().min(15)];
            comm.as_bytes() == short
                || cmdline
                    .and_then(|c| c.split(' ').next())
                    .is_some_and(|argv0| argv0.rsplit('/').next() == Some(exe))
        });
        exe_ok
            && self
                .pattern
                .as_ref()
                .is_none_or(|p| cmdline.is_some_and(|c| p.is_match(c)))
    }
}

/// What `/proc/PID/stat` says of one process.
#[derive(Debug, PartialEq)]
struct Stat {
    comm: String,
    ticks: u64,
    start: u64,
    threads: u64,
    rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The name is in parentheses and may itself hold
/// spaces and parentheses: the fields start after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields from 3 (state) on; utime is field 14, stime 15, num_threads
    // 20, starttime 22, rss 24 (proc(5)).
    let f: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    let at = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        ticks: at(14)? + at(15)?,
        threads: at(20)?,
        start: at(22)?,
        rss_pages: at(24)?,
    })
}

/// Sums for one watch in one scan.
#[derive(Default)]
struct Sum {
    count: u64,
    ticks: u64,
    rss_pages: u64,
    threads: u64,
    fds: u64,
    fds_known: bool,
}

/// The `[[process]]` job.
pub(super) struct Processes {
    watches: Vec<ProcessWatch>,
    /// CPU ticks of each matched process (pid, start time) at the last scan.
    last: HashMap<(u32, u64), u64>,
    last_scan: Option<std::time::Instant>,
    ticks_per_second: f64,
    page_size: f64,
    own_pid: u32,
    warned: Once,
}

impl Processes {
    pub(super) fn new(watches: Vec<ProcessWatch>) -> Processes {
        Processes {
            watches,
            last: HashMap::new(),
            last_scan: None,
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as f64,
            own_pid: std::process::id(),
            warned: Once::default(),
        }
    }

    fn scan(&mut self, proc_dir: &Path) -> Vec<Sum> {
        let mut sums: Vec<Sum> = self.watches.iter().map(|_| Sum::default()).collect();
        let mut seen = HashMap::new();
        let Ok(entries) = std::fs::read_dir(proc_dir) else {
            if self.warned.first("proc") {
                tracing::warn!(dir = %proc_dir.display(), "cannot list processes");
            }
            return sums;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == self.own_pid {
                continue;
            }
            let dir = entry.path();
            // A process may end between the listing and the read: skipped.
            let Some(stat) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|t| parse_stat(&t))
            else {
                continue;
            };
            // Kernel threads have no command line; they are never a program's.
            let Some(cmdline) = std::fs::read(dir.join("cmdline"))
                .ok()
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .trim_end_matches('\0')
                        .replace('\0', " ")
                })
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let mut fds: Option<Option<u64>> = None;
            let mut rss: Option<u64> = None;
            for (w, sum) in self.watches.iter().zip(sums.iter_mut()) {
                if !w.matches(&stat.comm, Some(&cmdline)) {
                    continue;
                }
                sum.count += 1;
                let before = self.last.get(&(pid, stat.start)).copied().unwrap_or(0);
                sum.ticks += stat.ticks.saturating_sub(before);
                // `stat`'s RSS is the kernel's per-CPU estimate, off by
                // hundreds of KiB for a small process; `statm` is exact.
                sum.rss_pages += *rss.get_or_insert_with(|| {
                    std::fs::read_to_string(dir.join("statm"))
                        .ok()
                        .and_then(|t| t.split_whitespace().nth(1)?.parse().ok())
                        .unwrap_or(stat.rss_pages)
                });
                sum.threads += stat.threads;
                let n = *fds
                    .get_or_insert_with(|| std::fs::read_dir(dir.join("fd")).ok().map(|d| d.count() as u64));
                if let Some(n) = n {
                    sum.fds += n;
                    sum.fds_known = true;
                } else if self.warned.first(&format!("fd {}", w.name)) {
                    tracing::warn!(process = %w.name, pid,
                        "cannot read the process's open files (run the agent as the process's user or as root); process_open_fds is left out");
                }
                seen.insert((pid, stat.start), stat.ticks);
            }
        }
        self.last = seen;
        sums
    }

    fn measure(&mut self, proc_dir: &Path, at_ms: i64, out: &mut Vec<Measured>) {
        let now = std::time::Instant::now();
        let seconds = self.last_scan.map(|t| now.duration_since(t).as_secs_f64());
        let first = self.last_scan.is_none();
        let sums = self.scan(proc_dir);
        self.last_scan = Some(now);
        for (w, s) in self.watches.iter().zip(sums) {
            let l = &w.labels;
            push(out, "process_count", l, s.count as f64, at_ms);
            push(
                out,
                "process_up",
                l,
                f64::from(u8::from(s.count >= u64::from(w.min))),
                at_ms,
            );
            push(
                out,
                "process_memory_rss_bytes",
                l,
                s.rss_pages as f64 * self.page_size,
                at_ms,
            );
            push(out, "process_threads", l, s.threads as f64, at_ms);
            if s.fds_known {
                push(out, "process_open_fds", l, s.fds as f64, at_ms);
            }
            // The first scan has nothing to compare with; its processes'
            // ticks are their whole lives.
            if let Some(seconds) = seconds.filter(|s| !first && *s > 0.0) {
                let percent = 100.0 * s.ticks as f64 / self.ticks_per_second / seconds;
                push(out, "process_cpu_percent", l, percent, at_ms);
            }
        }
    }
}

impl Job for Processes {
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>) {
        self.measure(Path::new("/proc"), at_ms, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(toml_text: &str) -> Result<Vec<ProcessWatch>, String> {
        #[derive(Deserialize)]
        struct F {
            process: Vec<RawProcess>,
        }
        let f: F = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        check(f.process)
    }

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name() {
        let text = "4242 (tmux: server (1)) S 1 4242 4242 0 -1 4194624 1200 0 0 0 150 25 0 0 20 0 3 0 987654 12345678 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                comm: "tmux: server (1)".into(),
                ticks: 175,
                start: 987654,
                threads: 3,
                rss_pages: 2048,
            })
        );
        assert_eq!(parse_stat("12 (short) S 1"), None);
    }

    #[test]
    fn matches_by_name_argv0_or_command_line() {
        let w = watch(
            "[[process]]\nname = \"a\"\nexe = \"nginx\"\n[[process]]\nname = \"b\"\nmatch = \"catalina\"\n[[process]]\nname = \"c\"\nexe = \"java\"\nmatch = \"-Dapp=orders\"\n[[process]]\nname = \"d\"\nexe = \"a-very-long-program-name\"\n",
        )
        .expect("valid");
        assert!(w[0].matches("nginx", Some("nginx: worker process")));
        assert!(w[0].matches("x", Some("/usr/sbin/nginx -g daemon off;")));
        assert!(!w[0].matches("nginx-exporter", Some("/usr/bin/nginx-exporter")));
        assert!(w[1].matches("java", Some("/usr/bin/java -cp catalina.jar")));
        assert!(!w[1].matches("java", None));
        assert!(w[2].matches("java", Some("java -Dapp=orders -jar a.jar")));
        assert!(!w[2].matches("java", Some("java -Dapp=billing -jar a.jar")));
        assert!(
            w[3].matches("a-very-long-pro", Some("./run")),
            "comm is cut at 15 bytes"
        );
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let e = |t: &str| watch(t).expect_err("invalid");
        assert!(e("[[process]]\nname = \"x\"\n").contains("[[process]] 1 (x): give `exe`"));
        assert!(e("[[process]]\nname = \"x\"\nmatch = \"(\"\n").contains("not a regex"));
        assert!(e("[[process]]\nname = \"x\"\nexe = \"/usr/bin/x\"\n").contains("without a directory"));
        assert!(
            e("[[process]]\nname = \"x\"\nexe = \"x\"\n[[process]]\nname = \"x\"\nexe = \"y\"\n")
                .contains("[[process]] 2: name \"x\" is used twice")
        );
        assert!(
            e("[[process]]\nname = \"x\"\nexe = \"x\"\nlabels = { process = \"y\" }\n")
                .contains("set by the agent")
        );
        assert!(e("[[process]]\nname = \"x\"\nexe = \"x\"\nuser = \"y\"\n").contains("user"));
    }

    #[test]
    fn sums_this_process_children_and_counts_their_cpu() {
        // Two sleeping children of the test, found by their command line.
        let mut children: Vec<std::process::Child> = (0..2)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30.5")
                    .spawn()
                    .expect("sleep runs")
            })
            .collect();
        let w = watch(
            "[[process]]\nname = \"sleepers\"\nexe = \"sleep\"\nmatch = \"^sleep 30\\\\.5$\"\nmin = 3\n",
        )
        .expect("valid");
        let mut p = Processes::new(w);
        let mut out = Vec::new();
        p.measure(Path::new("/proc"), 1, &mut out);
        p.measure(Path::new("/proc"), 2, &mut out);
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let last = |metric: &str| out.iter().rev().find(|m| m.metric == metric).map(|m| m.value);
        assert_eq!(last("process_count"), Some(2.0));
        assert_eq!(last("process_up"), Some(0.0), "2 < min 3");
        assert!(last("process_memory_rss_bytes").unwrap_or_default() > 100_000.0);
        assert_eq!(last("process_threads"), Some(2.0));
        assert_eq!(
            last("process_open_fds").map(|n| n >= 6.0),
            Some(true),
            "three each at least"
        );
        assert_eq!(
            last("process_cpu_percent").map(|c| c < 50.0),
            Some(true),
            "sleepers barely run"
        );
        assert_eq!(
            out.iter().filter(|m| m.metric == "process_cpu_percent").count(),
            1,
            "none on the first scan"
        );
    }
}
