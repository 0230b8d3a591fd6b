//! A host's page (CPU, memory, load, filesystems, disks, network) and an
//! SNMP device's (CPU, interface traffic, sensors, the interfaces table),
//! over 1 h to 30 d: the charts read the console's query endpoint, which
//! answers as `GET /api/v1/query` does (the hot store, then the rollups).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{Value, context};

use super::Signed;
use super::pages::{base, error_page, fault_view, internal, open_statuses, render};
use crate::Core;
use crate::db::FaultFilter;

/// The host page's ranges; longer ones read the rollups.
const RANGES: &[&str] = &["1h", "24h", "7d", "30d"];

/// A label matcher for exactly this value.
fn exactly(name: &str, value: &str) -> crate::matchers::Matcher {
    crate::matchers::Matcher {
        name: name.to_string(),
        op: crate::matchers::MatchOp::Eq(value.to_string()),
    }
}

/// A query string for the chart script: the metric and exact labels.
pub(super) fn chart_query(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("metric", metric);
    for (k, v) in labels {
        q.append_pair(k, v);
    }
    q.finish()
}

/// `GET /hosts/{name}?range=`: a host's charts, or an SNMP device's with
/// its interfaces.
pub async fn host(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let now = core.clock.now_ms();
    let range = q.get("range").map_or("1h", String::as_str);
    let Some(range) = RANGES.iter().find(|r| **r == range) else {
        return error_page(
            s,
            StatusCode::BAD_REQUEST,
            &format!("range={range:?}: expected 1h, 24h, 7d or 30d"),
        );
    };
    let device = !core
        .store
        .select(Some("snmp_up"), &[exactly("device", &name)])
        .is_empty();
    let agent = core.agents.list(now).into_iter().find(|a| a.hostname == name);
    if !device && agent.is_none() && core.store.select(None, &[exactly("host", &name)]).is_empty() {
        return error_page(s, StatusCode::NOT_FOUND, &format!("no host or device {name:?}"));
    }
    let open = match core
        .db
        .faults(FaultFilter {
            status: open_statuses(),
            host: Some(name.clone()),
            limit: 200,
            ..FaultFilter::default()
        })
        .await
    {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let worst = open.iter().map(|f| f.severity).max();
    let (state, state_name) = match (worst, agent.as_ref().map(|a| a.connected)) {
        (Some(sev), _) => (sev.as_str(), lang.severity(sev)),
        (None, Some(false)) => ("unreachable", lang.word("state_unreachable")),
        _ => ("ok", lang.word("state_ok")),
    };
    let chart = |title: &str, queries: Vec<(&str, String)>, label: &str, unit: &str| {
        let names: Vec<&str> = queries.iter().map(|q| q.0).collect();
        let queries: Vec<String> = queries.into_iter().map(|q| q.1).collect();
        context! {
            title => lang.word(title), query => queries.join("|"), names => names.join("|"),
            label => label, unit => unit,
        }
    };
    let on = |metric: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![if device {
            ("device", name.as_str())
        } else {
            ("host", name.as_str())
        }];
        labels.extend_from_slice(extra);
        chart_query(metric, &labels)
    };
    let charts = if device {
        vec![
            chart("ch_cpu", vec![("", on("snmp_cpu_usage_percent", &[]))], "", "%"),
            chart(
                "ch_if_in",
                vec![("", on("snmp_if_in_bits_per_second", &[]))],
                "ifName",
                "bit/s",
            ),
            chart(
                "ch_if_out",
                vec![("", on("snmp_if_out_bits_per_second", &[]))],
                "ifName",
                "bit/s",
            ),
            chart(
                "ch_sensors",
                vec![("", on("snmp_sensor_value", &[]))],
                "sensor",
                "",
            ),
        ]
    } else {
        vec![
            chart(
                "ch_cpu",
                vec![("CPU", on("host_cpu_usage_percent", &[("cpu", "total")]))],
                "",
                "%",
            ),
            chart(
                "ch_memory",
                vec![
                    (lang.word("memory"), on("host_memory_used_percent", &[])),
                    (lang.word("swap"), on("host_swap_used_percent", &[])),
                ],
                "",
                "%",
            ),
            chart(
                "ch_load",
                vec![
                    ("1m", on("host_load1", &[])),
                    ("5m", on("host_load5", &[])),
                    ("15m", on("host_load15", &[])),
                ],
                "",
                "",
            ),
            chart(
                "ch_fs",
                vec![("", on("host_filesystem_used_percent", &[]))],
                "mountpoint",
                "%",
            ),
            chart(
                "ch_disk",
                vec![("", on("host_disk_busy_percent", &[]))],
                "device",
                "%",
            ),
            chart(
                "ch_net",
                vec![
                    (lang.word("rx"), on("host_network_receive_bytes_per_second", &[])),
                    (lang.word("tx"), on("host_network_transmit_bytes_per_second", &[])),
                ],
                "interface",
                "bytes/s",
            ),
        ]
    };
    let interfaces = if device {
        interfaces(&core, &name)
    } else {
        Vec::new()
    };
    render(
        "host.html",
        context! {
            ..base(s, "overview", &format!("/hosts/{name}?range={range}")),
            ..context! {
                host => name, state => state, state_name => state_name,
                ranges => RANGES.to_vec(), range => *range, since => *range,
                charts => charts, interfaces => interfaces,
                faults => open.iter().map(|f| fault_view(&core, lang, f, now)).collect::<Vec<_>>(),
            }
        },
    )
}

/// An SNMP device's interfaces from their latest values.
fn interfaces(core: &Core, device: &str) -> Vec<Value> {
    let mut by_if: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    let metrics = [
        ("snmp_if_oper_status", "oper"),
        ("snmp_if_in_bits_per_second", "rx"),
        ("snmp_if_out_bits_per_second", "tx"),
        ("snmp_if_in_utilization_percent", "util_in"),
        ("snmp_if_out_utilization_percent", "util_out"),
        ("snmp_if_in_errors_per_second", "err_in"),
        ("snmp_if_out_errors_per_second", "err_out"),
    ];
    for (metric, key) in metrics {
        for id in core.store.select(Some(metric), &[exactly("device", device)]) {
            let (Some(l), Some((_, v))) = (core.store.labels(id), core.store.last(id)) else {
                continue;
            };
            let name = l
                .labels
                .get("ifName")
                .or_else(|| l.labels.get("ifIndex"))
                .cloned()
                .unwrap_or_default();
            by_if.entry(name).or_default().insert(key, v);
        }
    }
    let bits = |v: Option<&f64>| {
        v.map_or_else(String::new, |v| {
            let (n, u) = if *v >= 1e9 {
                (v / 1e9, "Gbit/s")
            } else if *v >= 1e6 {
                (v / 1e6, "Mbit/s")
            } else {
                (v / 1e3, "kbit/s")
            };
            format!("{n:.1} {u}")
        })
    };
    by_if
        .into_iter()
        .map(|(name, v)| {
            let status = match v.get("oper").copied() {
                Some(1.0) => "up",
                Some(2.0) => "down",
                Some(_) => "other",
                None => "",
            };
            let util = match (v.get("util_in"), v.get("util_out")) {
                (Some(i), Some(o)) => format!("{i:.1}% / {o:.1}%"),
                _ => String::new(),
            };
            let errors = v.get("err_in").copied().unwrap_or(0.0) + v.get("err_out").copied().unwrap_or(0.0);
            context! {
                name => name, status => status, rx => bits(v.get("rx")), tx => bits(v.get("tx")),
                util => util, errors => format!("{errors:.2}/s"),
            }
        })
        .collect()
}
