//! The collector's own metrics, served on `/metrics` in the Prometheus text
//! format. Counters are atomics bumped on the hot path; nothing allocates.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram in the Prometheus sense: cumulative buckets, a
/// count and a sum, each an atomic (observing never allocates or locks).
#[derive(Default)]
pub struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Latency {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Appends the histogram's lines; `labels` (`store="journal"`, or
    /// empty) go on every line. The HELP and TYPE lines are the caller's.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                get(&self.buckets[i])
            );
        }
        let count = get(&self.count);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {:.6}", get(&self.sum_ns) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Counters and histograms.
#[derive(Default)]
pub struct Telemetry {
    /// Samples stored.
    pub samples_ingested: AtomicU64,
    /// Samples refused (out of order, not finite, unknown series).
    pub samples_refused: AtomicU64,
    /// Series definitions refused (bad names, limits).
    pub series_refused: AtomicU64,
    /// Batches applied.
    pub batches: AtomicU64,
    /// Batches dropped as already applied (re-sent after a lost ack).
    pub duplicate_batches: AtomicU64,
    /// Samples of late batches (replayed from an agent's spool).
    pub samples_late: AtomicU64,
    /// Time spent evaluating rules, in nanoseconds.
    pub rule_eval_ns: AtomicU64,
    /// Rule evaluation passes (one per batch or tick).
    pub rule_evals: AtomicU64,
    /// Fault transitions written.
    pub fault_transitions: AtomicU64,
    /// Damaged journal spans found at start (bytes kept in `*.corrupt`).
    pub journal_damaged_spans: AtomicU64,
    /// Bytes in them.
    pub journal_damaged_bytes: AtomicU64,
    /// Journal writes that failed (disk full, I/O error).
    pub journal_write_failures: AtomicU64,
    /// Fault-record commits that failed (disk full, I/O error).
    pub db_write_failures: AtomicU64,
    /// History passes written.
    pub history_passes: AtomicU64,
    /// CPU time spent in them (ns, the pass's thread).
    pub history_pass_cpu_ns: AtomicU64,
    /// Backups taken.
    pub backups_taken: AtomicU64,
    /// Backups that failed.
    pub backup_failures: AtomicU64,
    /// When the last good one was taken (ms).
    pub backup_last_success_ms: AtomicU64,
    /// Its size.
    pub backup_last_bytes: AtomicU64,
    /// How long it took (ms).
    pub backup_last_ms: AtomicU64,
    /// Scheduled reports sent to a recipient on a channel.
    pub report_deliveries_sent: AtomicU64,
    /// Scheduled reports that could not be made or sent.
    pub report_deliveries_failed: AtomicU64,
    detection: Latency,
}

impl Telemetry {
    /// Records one sample-received → fault-committed latency.
    pub fn observe_detection(&self, d: Duration) {
        self.detection.observe(d);
    }

    /// Renders everything with the gauges the caller reads at scrape time.
    pub fn render(
        &self,
        series: usize,
        agents_connected: usize,
        (faults_open, faults_flapping): (u64, u64),
        rules: usize,
    ) -> String {
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "watchpost_samples_ingested_total",
            "counter",
            "Samples stored in the hot store.",
            get(&self.samples_ingested).to_string(),
        );
        metric(
            "watchpost_samples_refused_total",
            "counter",
            "Samples refused: out of order, not finite, or of an undefined series.",
            get(&self.samples_refused).to_string(),
        );
        metric(
            "watchpost_series_refused_total",
            "counter",
            "Series definitions refused: bad names or over the per-agent limit.",
            get(&self.series_refused).to_string(),
        );
        metric(
            "watchpost_batches_total",
            "counter",
            "Batches applied.",
            get(&self.batches).to_string(),
        );
        metric(
            "watchpost_duplicate_batches_total",
            "counter",
            "Batches dropped as already applied.",
            get(&self.duplicate_batches).to_string(),
        );
        for (name, help, value) in [
            (
                "watchpost_journal_damaged_spans_total",
                "Damaged spans of journal segments found at start; their bytes are kept in *.corrupt beside the segment.",
                &self.journal_damaged_spans,
            ),
            (
                "watchpost_journal_damaged_bytes_total",
                "Bytes in those damaged spans.",
                &self.journal_damaged_bytes,
            ),
            (
                "watchpost_journal_write_failures_total",
                "Journal writes that failed; their batches were not acknowledged, their samples are written before any later ack.",
                &self.journal_write_failures,
            ),
            (
                "watchpost_db_write_failures_total",
                "Fault-record commits that failed; changes that failed for a full or failing disk are retried with the next commit.",
                &self.db_write_failures,
            ),
            (
                "watchpost_history_passes_total",
                "History passes that rolled the samples due up into minute aggregates (and sealed finished days).",
                &self.history_passes,
            ),
        ] {
            metric(name, "counter", help, get(value).to_string());
        }
        metric(
            "watchpost_history_pass_cpu_seconds_total",
            "counter",
            "CPU time the history passes used (rolling up, sealing, expiring).",
            format!("{:.6}", get(&self.history_pass_cpu_ns) as f64 / 1e9),
        );
        metric(
            "watchpost_samples_late_total",
            "counter",
            "Samples that arrived late, replayed from an agent's spool after a disconnection.",
            get(&self.samples_late).to_string(),
        );
        metric(
            "watchpost_series",
            "gauge",
            "Series in the hot store.",
            series.to_string(),
        );
        metric(
            "watchpost_agents_connected",
            "gauge",
            "Agents with an open stream.",
            agents_connected.to_string(),
        );
        metric(
            "watchpost_faults_open",
            "gauge",
            "Fault records open now.",
            faults_open.to_string(),
        );
        metric(
            "watchpost_faults_flapping",
            "gauge",
            "Faults flapping now: their changes are recorded, not notified.",
            faults_flapping.to_string(),
        );
        metric("watchpost_rules", "gauge", "Rules in force.", rules.to_string());
        metric(
            "watchpost_fault_transitions_total",
            "counter",
            "Fault changes written.",
            get(&self.fault_transitions).to_string(),
        );
        metric(
            "watchpost_rule_evaluation_seconds_total",
            "counter",
            "Time spent evaluating rules.",
            format!("{:.6}", get(&self.rule_eval_ns) as f64 / 1e9),
        );
        metric(
            "watchpost_rule_evaluations_total",
            "counter",
            "Rule evaluation passes.",
            get(&self.rule_evals).to_string(),
        );
        let name = "watchpost_detection_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From a batch's arrival to the fault change it caused being durable.\n# TYPE {name} histogram"
        );
        self.detection.render(&mut out, name, "");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format() {
        let t = Telemetry::default();
        t.samples_ingested.fetch_add(5, Ordering::Relaxed);
        t.observe_detection(Duration::from_millis(3));
        let text = t.render(7, 1, (2, 1), 3);
        assert!(text.contains("watchpost_samples_ingested_total 5\n"));
        assert!(text.contains("watchpost_faults_flapping 1\n"));
        assert!(text.contains("watchpost_series 7\n"));
        assert!(text.contains("watchpost_detection_latency_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("watchpost_detection_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("watchpost_detection_latency_seconds_count 1\n"));
    }

    #[test]
    fn a_labelled_histogram_puts_its_labels_on_every_line() {
        let l = Latency::default();
        l.observe(Duration::from_micros(700));
        l.observe(Duration::from_millis(30));
        let mut out = String::new();
        l.render(&mut out, "w", "store=\"journal\"");
        assert!(
            out.contains("w_bucket{store=\"journal\",le=\"0.0005\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("w_bucket{store=\"journal\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("w_bucket{store=\"journal\",le=\"0.05\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("w_bucket{store=\"journal\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("w_sum{store=\"journal\"} 0.030700\n"), "{out}");
        assert!(out.contains("w_count{store=\"journal\"} 2\n"), "{out}");
    }
}
