//! A host's page (CPU, memory, load, filesystems, disks, network), an
//! SNMP device's (CPU, interface traffic, sensors, the interfaces table; a
//! UPS's battery, voltages and load) and a machine room's (temperature,
//! humidity, alarms, the UPSes in it, what each sensor reads now),
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

/// The `range` a page asks for (`1h` when none); another is a 400 page.
fn range_of(s: &super::session::Session, q: &HashMap<String, String>) -> Result<&'static str, Box<Response>> {
    let range = q.get("range").map_or("1h", String::as_str);
    RANGES.iter().find(|r| **r == range).copied().ok_or_else(|| {
        Box::new(error_page(
            s,
            StatusCode::BAD_REQUEST,
            &format!("range={range:?}: expected 1h, 24h, 7d or 30d"),
        ))
    })
}

/// A chart as the template draws it: its title, its queries (with a name
/// for each, or blank to name lines by `label`) and its unit.
fn chart_view(
    lang: super::i18n::Lang,
    title: &str,
    queries: Vec<(&str, String)>,
    label: &str,
    unit: &str,
) -> Value {
    let names: Vec<&str> = queries.iter().map(|q| q.0).collect();
    let queries: Vec<String> = queries.into_iter().map(|q| q.1).collect();
    context! {
        title => lang.word(title), query => queries.join("|"), names => names.join("|"),
        label => label, unit => unit,
    }
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
    let range = match range_of(s, &q) {
        Ok(r) => r,
        Err(r) => return *r,
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
        chart_view(lang, title, queries, label, unit)
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
    let ups = device
        && ["snmp_ups_on_battery", "snmp_ups_battery_charge_percent"]
            .iter()
            .any(|m| !core.store.select(Some(m), &[exactly("device", &name)]).is_empty());
    let charts = if ups {
        vec![
            chart(
                "ch_battery",
                vec![
                    (lang.word("charge"), on("snmp_ups_battery_charge_percent", &[])),
                    (lang.word("load"), on("snmp_ups_output_load_percent", &[])),
                ],
                "",
                "%",
            ),
            chart(
                "ch_minutes",
                vec![("", on("snmp_ups_battery_minutes_remaining", &[]))],
                "",
                "min",
            ),
            chart(
                "ch_voltage",
                vec![
                    (lang.word("input"), on("snmp_ups_input_voltage_volts", &[])),
                    (lang.word("output"), on("snmp_ups_output_voltage_volts", &[])),
                ],
                "",
                "V",
            ),
            chart(
                "ch_on_battery",
                vec![("", on("snmp_ups_on_battery", &[]))],
                "",
                "",
            ),
            chart(
                "ch_battery_temp",
                vec![("", on("snmp_ups_battery_temperature_celsius", &[]))],
                "",
                "°C",
            ),
        ]
    } else if device {
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
                host => name.clone(), subject => name, range_path => "/hosts", state => state, state_name => state_name,
                ranges => RANGES.to_vec(), range => range, since => range,
                charts => charts, interfaces => interfaces,
                faults => open.iter().map(|f| fault_view(&core, lang, f, now)).collect::<Vec<_>>(),
            }
        },
    )
}

/// The machine rooms: the `room` label of the `room_*` sensor series and
/// of `modbus_up`, each with whether any of its sensor pollers answers
/// (a room without `modbus_up` counts as reachable).
pub(super) fn rooms(core: &Core) -> BTreeMap<String, bool> {
    let mut rooms: BTreeMap<String, Option<bool>> = BTreeMap::new();
    for (metric, _) in core.store.metric_names() {
        let up = metric == "modbus_up";
        if !(up || metric.starts_with("room_")) {
            continue;
        }
        for id in core.store.select(Some(&metric), &[]) {
            let Some(room) = core.store.labels(id).and_then(|l| l.labels.get("room").cloned()) else {
                continue;
            };
            let e = rooms.entry(room).or_insert(None);
            if up {
                let answers = core.store.last(id).is_some_and(|p| p.1 >= 1.0);
                *e = Some(e.unwrap_or(false) | answers);
            }
        }
    }
    rooms.into_iter().map(|(r, up)| (r, up.unwrap_or(true))).collect()
}

/// Whether a fault is a room's: its `room` label, or a fault reported
/// against the room itself (an inspection's).
pub(super) fn in_room(f: &watchpost_model::api::Fault, room: &str) -> bool {
    f.labels.get("room").map(String::as_str) == Some(room) || f.host == room
}

/// What a room's sensors read now: the latest value of each series.
fn readings(core: &Core, lang: super::i18n::Lang, room: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for (metric, _) in core.store.metric_names() {
        let ups = metric.starts_with("snmp_ups_");
        if !(metric.starts_with("room_") || ups) {
            continue;
        }
        for id in core.store.select(Some(&metric), &[exactly("room", room)]) {
            let (Some(l), Some((ts, v))) = (core.store.labels(id), core.store.last(id)) else {
                continue;
            };
            let device = l.labels.get("device").cloned().unwrap_or_default();
            let place = ["position", "sensor", "rack"]
                .iter()
                .find_map(|k| l.labels.get(*k).cloned())
                .unwrap_or_default();
            let key = format!("m_{metric}");
            let what = match lang.words().get(key.as_str()) {
                Some(w) => (*w).to_string(),
                None => metric.clone(),
            };
            rows.push(context! {
                device => device, place => place, what => what, metric => metric.clone(),
                value => format!("{}", (v * 100.0).round() / 100.0), at => super::pages::local_ms(core, ts),
            });
        }
    }
    rows
}

/// `GET /rooms/{room}?range=`: a machine room's temperature, humidity,
/// alarms and the UPSes in it, with its open faults.
pub async fn room(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let now = core.clock.now_ms();
    let range = match range_of(s, &q) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(reachable) = rooms(&core).get(&name).copied() else {
        return error_page(s, StatusCode::NOT_FOUND, &format!("no machine room {name:?}"));
    };
    let open = match core
        .db
        .faults(FaultFilter {
            status: open_statuses(),
            limit: super::pages::MAX_LISTED,
            ..FaultFilter::default()
        })
        .await
    {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let open: Vec<_> = open.into_iter().filter(|f| in_room(f, &name)).collect();
    let (state, state_name) = match open.iter().map(|f| f.severity).max() {
        Some(sev) => (sev.as_str(), lang.severity(sev)),
        None if !reachable => ("unreachable", lang.word("state_unreachable")),
        None => ("ok", lang.word("state_ok")),
    };
    let here = |metric: &str| chart_query(metric, &[("room", name.as_str())]);
    let chart = |title: &str, queries: Vec<(&str, String)>, label: &str, unit: &str| {
        chart_view(lang, title, queries, label, unit)
    };
    // Only what the room has: a room without UPSes shows no battery chart.
    let has = |metrics: &[&str]| {
        metrics
            .iter()
            .any(|m| !core.store.select(Some(m), &[exactly("room", &name)]).is_empty())
    };
    let wanted = [
        vec!["room_temperature_celsius"],
        vec!["room_humidity_percent"],
        vec!["room_water_leak", "room_smoke_detected", "room_door_open"],
        vec!["snmp_ups_battery_charge_percent"],
        vec!["snmp_ups_battery_minutes_remaining"],
    ];
    let charts = vec![
        chart(
            "ch_temperature",
            vec![("", here("room_temperature_celsius"))],
            "device",
            "°C",
        ),
        chart(
            "ch_humidity",
            vec![("", here("room_humidity_percent"))],
            "device",
            "%",
        ),
        chart(
            "ch_alarms",
            vec![
                (lang.word("water_leak"), here("room_water_leak")),
                (lang.word("smoke"), here("room_smoke_detected")),
                (lang.word("door_open"), here("room_door_open")),
            ],
            "device",
            "",
        ),
        chart(
            "ch_battery",
            vec![("", here("snmp_ups_battery_charge_percent"))],
            "device",
            "%",
        ),
        chart(
            "ch_minutes",
            vec![("", here("snmp_ups_battery_minutes_remaining"))],
            "device",
            "min",
        ),
    ];
    let charts: Vec<Value> = charts
        .into_iter()
        .zip(wanted.iter())
        .filter(|(_, metrics)| has(metrics))
        .map(|(c, _)| c)
        .collect();
    render(
        "room.html",
        context! {
            ..base(s, "overview", &format!("/rooms/{name}?range={range}")),
            ..context! {
                room => name.clone(), subject => name.clone(), range_path => "/rooms", state => state, state_name => state_name,
                ranges => RANGES.to_vec(), range => range, since => range,
                charts => charts, readings => readings(&core, lang, &name),
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
