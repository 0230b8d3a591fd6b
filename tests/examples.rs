//! Every shipped example config and rule file loads, so they never rot.

use std::path::Path;

use watchpost_agent::AgentConfig;
use watchpost_collector::CollectorConfig;
use watchpost_collector::rules::RuleSet;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

#[test]
fn agent_example_loads() {
    let c = AgentConfig::load(&examples().join("agent.toml")).expect("examples/agent.toml is valid");
    assert_eq!(c.collector, "http://127.0.0.1:9810");
    assert_eq!(c.labels.get("room").map(String::as_str), Some("A"));
    assert_eq!(c.probes.len(), 3, "ping, tcp and http probes");
    assert_eq!(c.snmp.devices.len(), 2, "a switch and a UPS");
    assert_eq!(c.snmp.profiles.len(), 3, "the profiles they name are loaded");
    assert_eq!(c.modbus.devices[0].registers.len(), 3);
}

#[test]
fn collector_example_and_its_rules_load() {
    let c =
        CollectorConfig::load(&examples().join("collector.toml")).expect("examples/collector.toml is valid");
    let rules = RuleSet::load(&c.rules, &c.rules_base).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!rules.files.is_empty());
    assert_eq!(c.notify.channels.len(), 5, "one channel of each type");
    assert_eq!(c.notify.routes.len(), 2);
    assert_eq!(c.checklist.items.len(), 8, "examples/inspections.toml");
    assert_eq!(c.reports.send_to, ["platform"]);
    assert_eq!(
        c.notify.parents.get("web-01").map(String::as_str),
        Some("sw-core-1")
    );
    for name in [
        "filesystem_full",
        "filesystem_filling",
        "memory_pressure",
        "swap_in_use",
        "cpu_busy",
        "load_per_core_high",
        "network_errors",
        "agent_silent",
        "host_metrics_missing",
        "probe_ping_down",
        "probe_service_down",
        "probe_http_slow",
    ] {
        assert!(rules.get(name).is_some(), "default rule {name} missing");
    }
}

#[test]
fn every_calendar_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples().join("calendars")).expect("dir") {
        let path = entry.expect("entry").path();
        let cal = watchpost_calendar::Calendar::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cal.time_zone_name(), "Asia/Shanghai");
        n += 1;
    }
    assert!(n > 0);
    let c = CollectorConfig::load(&examples().join("collector.toml")).expect("valid");
    let national_day: jiff::civil::Date = "2026-10-01".parse().expect("date");
    assert!(
        !c.calendar.is_working_day(national_day),
        "the example config uses the example calendar"
    );
}

#[test]
fn every_rule_file_loads() {
    for dir in ["rules", "dev-rules"] {
        for entry in std::fs::read_dir(examples().join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            RuleSet::parse(&text, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        }
    }
}

#[test]
fn provisional_2027_calendar_skips_the_spring_festival() {
    let cal = watchpost_calendar::Calendar::load(&examples().join("calendars/cn-2027-provisional.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    // A general fault (resolve within 1 workday) on Thursday 4 Feb 2027,
    // 16:00: 1.5 h that day, then 除夕 to 初三 (Fri 5 – Mon 8 Feb) are off.
    let opened: jiff::Timestamp = "2027-02-04T16:00:00+08:00".parse().expect("ts");
    let d = watchpost_calendar::SeverityPolicy::default()
        .deadlines(&cal, watchpost_model::Severity::General, opened)
        .expect("deadlines");
    assert_eq!(
        d.resolve,
        "2027-02-09T16:00:00+08:00"
            .parse::<jiff::Timestamp>()
            .expect("ts")
    );
}

#[test]
fn every_snmp_profile_loads() {
    let dir = examples().join("snmp-profiles");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let p = watchpost_agent::sources::snmp::Profile::load(&dir, name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.metrics.is_empty() && !p.description.is_empty(), "{name}");
        n += 1;
    }
    assert!(n >= 6);
}
