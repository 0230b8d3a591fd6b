//! `GET /metrics`: the collector's own metrics (telemetry, health, history,
//! backups, scheduled reports) in the Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::Core;

/// `GET /metrics`: the collector's own metrics, Prometheus text format.
pub(super) async fn metrics(State(core): State<Arc<Core>>) -> impl IntoResponse {
    let mut text = core.telemetry.render(
        core.store.len(),
        core.agents.connected(),
        (core.faults.open_fault_count(), core.faults.flapping_count()),
        core.engine.rule_count(),
    );
    text.push_str(&core.health.render_metrics());
    for (name, kind, help, value) in [
        (
            "watchpost_history_samples_dropped_total",
            "counter",
            "Samples missing from the rollups: they left the hot window while the history could not write and its spill was full.",
            core.history.dropped_samples(),
        ),
        (
            "watchpost_backups_total",
            "counter",
            "Backups taken (watchpostctl backup create, [backup] every).",
            core.telemetry
                .backups_taken
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_backup_failures_total",
            "counter",
            "Backups that failed (the collector_backup_failing fault says why).",
            core.telemetry
                .backup_failures
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_backup_last_success_timestamp_seconds",
            "gauge",
            "When the last good backup was taken (0: none since the start).",
            core.telemetry
                .backup_last_success_ms
                .load(std::sync::atomic::Ordering::Relaxed)
                / 1000,
        ),
        (
            "watchpost_backup_last_bytes",
            "gauge",
            "Size of the last good backup.",
            core.telemetry
                .backup_last_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_backup_last_duration_milliseconds",
            "gauge",
            "How long the last good backup took.",
            core.telemetry
                .backup_last_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_report_deliveries_sent_total",
            "counter",
            "Scheduled reports (daily record, monthly statistics) sent, per recipient and channel.",
            core.telemetry
                .report_deliveries_sent
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_report_deliveries_failed_total",
            "counter",
            "Scheduled reports that could not be made, stored or sent (the log says why).",
            core.telemetry
                .report_deliveries_failed
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "watchpost_history_spill_bytes",
            "gauge",
            "Chunks that left the hot window waiting for the next history pass.",
            core.store.spill_bytes() as u64,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    text.push_str(crate::listen::METRICS_HELP);
    for gate in &core.gates {
        gate.render_metrics(&mut text);
    }
    let name = "watchpost_agent_clock_offset_seconds";
    text.push_str(&format!(
        "# HELP {name} Each agent's clock minus the collector's, as measured from heartbeats.\n# TYPE {name} gauge\n"
    ));
    for (agent, offset_ms) in core.agents.clock_offsets() {
        text.push_str(&format!(
            "{name}{{agent=\"{}\"}} {:.3}\n",
            agent.replace('\\', "\\\\").replace('"', "\\\""),
            offset_ms as f64 / 1000.0
        ));
    }
    remote_write_metrics(&core.remote_write, &mut text);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

/// Each `[[remote_write]]` destination's counters, labelled by its name and URL.
fn remote_write_metrics(destinations: &[Arc<crate::remote_write::Stats>], text: &mut String) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    if destinations.is_empty() {
        return;
    }
    type Read = fn(&crate::remote_write::Stats) -> f64;
    let families: [(&str, &str, &str, Read); 7] = [
        (
            "watchpost_remote_write_samples_sent_total",
            "counter",
            "Samples the receiver accepted.",
            |s| s.sent.load(Relaxed) as f64,
        ),
        (
            "watchpost_remote_write_samples_failed_total",
            "counter",
            "Samples in attempts that failed and are retried (5xx, 429, no answer), once per attempt.",
            |s| s.failed.load(Relaxed) as f64,
        ),
        (
            "watchpost_remote_write_samples_dropped_total",
            "counter",
            "Samples the receiver refused for good (4xx other than 429).",
            |s| s.dropped.load(Relaxed) as f64,
        ),
        (
            "watchpost_remote_write_samples_pending",
            "gauge",
            "Journal samples after the destination's position: not yet sent.",
            |s| s.pending() as f64,
        ),
        (
            "watchpost_remote_write_lag_seconds",
            "gauge",
            "The newest sample on disk minus the newest sample sent (0 when caught up).",
            |s| s.lag_ms() as f64 / 1000.0,
        ),
        (
            "watchpost_remote_write_requests_total",
            "counter",
            "Requests the receiver accepted.",
            |s| s.requests.load(Relaxed) as f64,
        ),
        (
            "watchpost_remote_write_segments_missed_total",
            "counter",
            "Journal segments deleted before the destination sent them (older than its max_backlog).",
            |s| s.segments_missed.load(Relaxed) as f64,
        ),
    ];
    let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    for (name, kind, help, read) in families {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for d in destinations {
            let _ = writeln!(
                text,
                "{name}{{destination=\"{}\",url=\"{}\"}} {}",
                esc(&d.name),
                esc(&d.url),
                read(d)
            );
        }
    }
}
