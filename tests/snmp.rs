//! SNMP end to end against real peers: net-snmp's `snmpd` (v2c and v3
//! authPriv) and snmpsim serving simulated switches and a UPS
//! (`tests/peers/snmprec.py`). A real collector with the shipped rules
//! (`examples/rules/snmp.toml`, with `for` shortened) and a real agent on
//! loopback; values are read back through the collector's API.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use watchpost_collector::Collector;
use watchpost_tests::api::{Series, SeriesPoints};
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

/// The shipped SNMP rules, with every `for` cut to zero so tests need not wait.
fn shipped() -> String {
    shipped_rules("snmp.toml", "0s")
}

fn agent(collector: &Collector, snmp: &str) -> watchpost_agent::RunningAgent {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        "[agent]\ncollector = \"http://{}\"\nhostname = \"poller-1\"\ninterval = \"500ms\"\n\n[host]\nenabled = false\n\n[snmp]\nprofile_dir = \"{}\"\n{snmp}",
        collector.grpc_addr(),
        root.join("examples/snmp-profiles").display()
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("agent config: {e}"));
    watchpost_agent::start(config)
}

async fn series(c: &Collector, query: &str) -> Vec<Series> {
    get(c, &format!("/api/v1/series?{query}")).await
}

async fn value(c: &Collector, query: &str) -> Option<f64> {
    series(c, query).await.first()?.last_value
}

/// Waits until the series has a value and returns it.
async fn wait_value(c: &Collector, query: &str, limit: Duration) -> f64 {
    wait_for(&format!("a value for {query}"), limit, || value(c, query)).await
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * tolerance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmpd_over_v2c_and_v3_matches_what_snmpd_reports() {
    let snmpd = Snmpd::start();
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped()).await;
    let dead = free_udp_port();
    let _agent = agent(
        &collector,
        &format!(
            r#"
[[snmp.device]]
name = "lab-v2c"
address = "127.0.0.1:{port}"
version = "v2c"
community = "{community}"
interval = "1s"
timeout = "500ms"

[[snmp.device]]
name = "lab-v3"
address = "127.0.0.1:{port}"
version = "v3"
user = "{user}"
auth_protocol = "sha256"
auth_password = "{auth}"
privacy_protocol = "aes128"
privacy_password = "{privacy}"
interval = "1s"
timeout = "500ms"
labels = {{ room = "A-201" }}

[[snmp.device]]
name = "lab-wrong-password"
address = "127.0.0.1:{port}"
version = "v3"
user = "{user}"
auth_protocol = "sha256"
auth_password = "not-the-password"
privacy_protocol = "aes128"
privacy_password = "{privacy}"
interval = "1s"
timeout = "300ms"
retries = 0

[[snmp.device]]
name = "nobody-home"
address = "127.0.0.1:{dead}"
version = "v2c"
community = "public"
interval = "1s"
timeout = "300ms"
retries = 0
"#,
            port = snmpd.port,
            community = Snmpd::COMMUNITY,
            user = Snmpd::USER,
            auth = Snmpd::AUTH,
            privacy = Snmpd::PRIV,
        ),
    );
    for device in ["lab-v2c", "lab-v3"] {
        let up = wait_value(
            &collector,
            &format!("metric=snmp_up&device={device}"),
            30 * SECOND,
        )
        .await;
        assert_eq!(up, 1.0, "{device} answers");
    }
    // Wrong credentials and a dead address are values and faults, not agent errors.
    for device in ["lab-wrong-password", "nobody-home"] {
        let up = wait_value(
            &collector,
            &format!("metric=snmp_up&device={device}"),
            30 * SECOND,
        )
        .await;
        assert_eq!(up, 0.0, "{device} does not answer");
        let f = first_fault(&collector, "snmp_device_unreachable", "poller-1", 20 * SECOND).await;
        assert!(f.labels.contains_key("device"));
    }
    let faults = faults_of(&collector, "snmp_device_unreachable", "poller-1").await;
    let devices: Vec<&str> = faults
        .iter()
        .filter_map(|f| f.labels.get("device").map(String::as_str))
        .collect();
    assert!(
        devices.contains(&"lab-wrong-password") && devices.contains(&"nobody-home"),
        "{devices:?}"
    );
    assert!(!devices.contains(&"lab-v3"));

    // Every interface snmpd lists, with its name, index and status.
    let names = snmp_tool(
        "snmpwalk",
        &[
            "-v2c",
            "-c",
            Snmpd::COMMUNITY,
            "-On",
            &format!("127.0.0.1:{}", snmpd.port),
            "1.3.6.1.2.1.31.1.1.1.1",
        ],
    );
    let mut interfaces = BTreeMap::new();
    for line in names.lines() {
        // .1.3.6.1.2.1.31.1.1.1.1.4 = STRING: "eth0"
        let (oid, rest) = line.split_once(" = ").expect("snmpwalk line");
        let index: u32 = oid
            .rsplit('.')
            .next()
            .and_then(|i| i.parse().ok())
            .expect("index");
        let name = rest.trim_start_matches("STRING: ").trim_matches('"').to_string();
        interfaces.insert(index, name);
    }
    assert!(interfaces.values().any(|n| n == "lo"), "{interfaces:?}");
    for device in ["lab-v2c", "lab-v3"] {
        wait_for("every interface polled", 20 * SECOND, || async {
            let s = series(&collector, &format!("metric=snmp_if_oper_status&device={device}")).await;
            (s.len() == interfaces.len()).then_some(())
        })
        .await;
        for (index, name) in &interfaces {
            let q = format!("metric=snmp_if_oper_status&device={device}&ifIndex={index}&ifName={name}");
            let got = series(&collector, &q).await;
            assert_eq!(got.len(), 1, "{q}");
            let oper = snmp_get_value(
                snmpd.port,
                Snmpd::COMMUNITY,
                &format!("1.3.6.1.2.1.2.2.1.8.{index}"),
            );
            assert_eq!(
                got[0].last_value,
                oper.parse::<f64>().ok(),
                "{q}: snmpd says {oper}"
            );
            if device == "lab-v3" {
                assert_eq!(got[0].labels.get("room").map(String::as_str), Some("A-201"));
            }
        }
    }

    // sysUpTime as snmpd reports it (hundredths of a second).
    let ticks: f64 = snmp_get_value(snmpd.port, Snmpd::COMMUNITY, "1.3.6.1.2.1.1.3.0")
        .split(':')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .expect("sysUpTime ticks");
    let uptime = wait_value(
        &collector,
        "metric=snmp_uptime_seconds&device=lab-v3",
        10 * SECOND,
    )
    .await;
    assert!(
        (uptime - ticks / 100.0).abs() < 5.0,
        "agent {uptime} s, snmpd {} s",
        ticks / 100.0
    );

    // Loopback traffic: the agent's rate agrees with snmpd's own counter over
    // the same stretch of time.
    let lo = interfaces
        .iter()
        .find(|(_, n)| *n == "lo")
        .map(|(i, _)| *i)
        .expect("lo");
    let counter = || -> f64 {
        snmp_get_value(
            snmpd.port,
            Snmpd::COMMUNITY,
            &format!("1.3.6.1.2.1.31.1.1.1.6.{lo}"),
        )
        .parse()
        .expect("ifHCInOctets")
    };
    let (c0, t0) = (counter(), now_ms());
    let load = std::thread::spawn(|| {
        // About 4 MB/s for 5 s over a loopback TCP connection.
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("addr");
        let sink = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 1 << 16];
            while s.read(&mut buf).is_ok_and(|n| n > 0) {}
        });
        let mut out = std::net::TcpStream::connect(addr).expect("connect");
        let chunk = vec![7u8; 400_000];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            out.write_all(&chunk).expect("write");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(out);
        let _ = sink.join();
    });
    tokio::task::spawn_blocking(move || load.join())
        .await
        .expect("join")
        .expect("load");
    tokio::time::sleep(1500 * Duration::from_millis(1)).await;
    let (c1, t1) = (counter(), now_ms());
    let expected_bits = (c1 - c0) * 8.0 / ((t1 - t0) as f64 / 1000.0);
    let points: Vec<SeriesPoints> = get(
        &collector,
        &format!(
            "/api/v1/query?metric=snmp_if_in_bits_per_second&device=lab-v2c&ifName=lo&since={t0}&until={t1}"
        ),
    )
    .await;
    let pts: Vec<f64> = points
        .first()
        .map(|p| p.points.iter().map(|(_, v)| *v).collect())
        .unwrap_or_default();
    assert!(pts.len() >= 4, "{pts:?}");
    let mean = pts.iter().sum::<f64>() / pts.len() as f64;
    assert!(expected_bits > 8e6, "the load made traffic: {expected_bits}");
    assert!(
        close(mean, expected_bits, 0.35),
        "agent's mean {mean:.0} bit/s against snmpd's counters {expected_bits:.0} bit/s ({pts:?})"
    );
    // The speed is snmpd's ifSpeed (ifHighSpeed is 0 below 1 Mbit/s).
    let speed: f64 = snmp_get_value(snmpd.port, Snmpd::COMMUNITY, &format!("1.3.6.1.2.1.2.2.1.5.{lo}"))
        .parse()
        .expect("ifSpeed");
    let high: f64 = snmp_get_value(
        snmpd.port,
        Snmpd::COMMUNITY,
        &format!("1.3.6.1.2.1.31.1.1.1.15.{lo}"),
    )
    .parse()
    .expect("ifHighSpeed");
    let expected_speed = if high > 0.0 { high * 1e6 } else { speed };
    let got = value(
        &collector,
        "metric=snmp_if_speed_bits_per_second&device=lab-v2c&ifName=lo",
    )
    .await;
    assert_eq!(got, (expected_speed > 0.0).then_some(expected_speed));
}

use watchpost_collector::time::now_ms;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_switches_and_a_ups_follow_their_profiles() {
    // The big switch gets a simulator of its own (snmpsim is single-threaded).
    let big = Snmpsim::start(&["cisco-n5k"]);
    let sim_started_ms = now_ms();
    let sim = Snmpsim::start(&[
        "huawei-s5735",
        "legacy-wrap",
        "h3c-s6850",
        "ruijie-s5750",
        "ups-room-a",
    ]);
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped()).await;
    let device = |name: &str, community: &str, profiles: &str, interval: &str| {
        let port = if community == "cisco-n5k" {
            big.port
        } else {
            sim.port
        };
        format!(
            "[[snmp.device]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\nversion = \"v2c\"\ncommunity = \"{community}\"\ninterval = \"{interval}\"\ntimeout = \"1500ms\"\nmax_repetitions = 60\nprofiles = [{profiles}]\n\n"
        )
    };
    let mut config = String::new();
    config += &device("hw-access-1", "huawei-s5735", "\"huawei-vrp\"", "3s");
    config += &device("old-sw", "legacy-wrap", "", "3s");
    config += &device(
        "dc-core-1",
        "cisco-n5k",
        "\"cisco-ios\", \"entity-sensor\"",
        "30s",
    );
    config += &device("h3c-agg-1", "h3c-s6850", "\"h3c-comware\"", "5s");
    config += &device("rj-access-1", "ruijie-s5750", "\"ruijie-rgos\"", "5s");
    config += &device("ups-room-a", "ups-room-a", "\"ups-rfc1628\"", "5s");
    let _agent = agent(&collector, &config);
    let limit = 90 * SECOND;

    // Huawei: 10 Mbit/s in and 2 Mbit/s out on a 1 Gbit/s port, HC counters.
    let q = "device=hw-access-1&ifName=GigabitEthernet0/0/1";
    let bits = wait_value(
        &collector,
        &format!("metric=snmp_if_in_bits_per_second&{q}"),
        limit,
    )
    .await;
    assert!(close(bits, 10e6, 0.05), "in {bits}");
    let out = wait_value(
        &collector,
        &format!("metric=snmp_if_out_bits_per_second&{q}"),
        limit,
    )
    .await;
    assert!(close(out, 2e6, 0.05), "out {out}");
    let util = wait_value(
        &collector,
        &format!("metric=snmp_if_in_utilization_percent&{q}"),
        limit,
    )
    .await;
    assert!(close(util, 1.0, 0.08), "utilization {util}");
    let s = series(&collector, &format!("metric=snmp_if_in_bits_per_second&{q}")).await;
    assert_eq!(
        s[0].labels.get("ifAlias").map(String::as_str),
        Some("uplink to core-1")
    );
    assert_eq!(s[0].labels.get("ifIndex").map(String::as_str), Some("1"));
    let speed = wait_value(
        &collector,
        &format!("metric=snmp_if_speed_bits_per_second&{q}"),
        limit,
    )
    .await;
    assert_eq!(speed, 1e9);
    let bcast = wait_value(
        &collector,
        &format!("metric=snmp_if_in_broadcast_packets_per_second&{q}"),
        limit,
    )
    .await;
    assert!(close(bcast, 10.0, 0.1), "broadcast {bcast}");
    // Port 2 is down while admin up: a fault; port 3 is shut on purpose: none.
    let down = first_fault(&collector, "snmp_interface_down", "poller-1", limit).await;
    assert_eq!(
        down.labels.get("ifName").map(String::as_str),
        Some("GigabitEthernet0/0/2")
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_if_link_down&device=hw-access-1&ifIndex=3"
        )
        .await,
        Some(0.0)
    );
    // Port 4 counts 5 input errors a second.
    let errors = first_fault(&collector, "snmp_interface_in_errors", "poller-1", limit).await;
    assert_eq!(
        errors.labels.get("ifName").map(String::as_str),
        Some("GigabitEthernet0/0/4")
    );
    // Profile: the board's CPU (the fan entity's 0 is skipped), fan 0.1 failed.
    let cpu = series(&collector, "metric=snmp_cpu_usage_percent&device=hw-access-1").await;
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(cpu[0].last_value, Some(23.0));
    assert_eq!(
        cpu[0].labels.get("entity_name").map(String::as_str),
        Some("S5735-L48T4X-A1 Board 0")
    );
    assert_eq!(
        value(&collector, "metric=snmp_temperature_celsius&device=hw-access-1").await,
        Some(44.0)
    );
    assert_eq!(
        value(&collector, "metric=snmp_fan_ok&device=hw-access-1&fan=0.0").await,
        Some(1.0)
    );
    let fans = faults_of(&collector, "snmp_fan_failed", "poller-1").await;
    assert!(
        fans.iter().any(
            |f| f.labels.get("device").map(String::as_str) == Some("hw-access-1")
                && f.labels.get("fan").map(String::as_str) == Some("0.1")
        ),
        "{fans:?}"
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_power_supply_ok&device=hw-access-1&psu=0.1"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        series(&collector, "metric=snmp_if_oper_status&device=hw-access-1")
            .await
            .len(),
        52
    );

    // UPS on battery: urgent; battery low; figures.
    let on_battery = first_fault(&collector, "ups_on_battery", "poller-1", limit).await;
    assert_eq!(on_battery.severity, watchpost_model::Severity::Urgent);
    first_fault(&collector, "ups_battery_low", "poller-1", limit).await;
    assert_eq!(
        wait_value(
            &collector,
            "metric=snmp_ups_battery_charge_percent&device=ups-room-a",
            limit
        )
        .await,
        18.0
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_ups_battery_minutes_remaining&device=ups-room-a"
        )
        .await,
        Some(9.0)
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_ups_output_voltage_volts&device=ups-room-a&line=1"
        )
        .await,
        Some(220.0)
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_ups_output_load_percent&device=ups-room-a&line=3"
        )
        .await,
        Some(71.0)
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_ups_input_voltage_volts&device=ups-room-a&line=1"
        )
        .await,
        Some(0.0)
    );

    // H3C: only the board (entPhysicalClass 9) has a CPU series; fan 2's
    // error status is a failure; the empty power slot is not reported.
    let cpu = wait_value(
        &collector,
        "metric=snmp_cpu_usage_percent&device=h3c-agg-1",
        limit,
    )
    .await;
    assert_eq!(cpu, 9.0);
    assert_eq!(
        series(&collector, "metric=snmp_cpu_usage_percent&device=h3c-agg-1")
            .await
            .len(),
        1
    );
    assert_eq!(
        value(&collector, "metric=snmp_fan_ok&device=h3c-agg-1&fan=31").await,
        Some(0.0)
    );
    assert_eq!(
        value(&collector, "metric=snmp_fan_ok&device=h3c-agg-1&fan=30").await,
        Some(1.0)
    );
    assert!(
        value(&collector, "metric=snmp_power_supply_ok&device=h3c-agg-1&psu=41")
            .await
            .is_none()
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_temperature_celsius&device=h3c-agg-1&entity=2"
        )
        .await,
        Some(47.0)
    );

    // Ruijie scalars.
    assert_eq!(
        wait_value(
            &collector,
            "metric=snmp_cpu_usage_percent&device=rj-access-1",
            limit
        )
        .await,
        14.0
    );
    assert_eq!(
        value(&collector, "metric=snmp_temperature_celsius&device=rj-access-1").await,
        Some(39.0)
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_memory_usage_percent&device=rj-access-1&entity=1"
        )
        .await,
        Some(52.0)
    );

    // Cisco with 1,000 interfaces: every one polled; the first port's rate;
    // CISCO-ENVMON and ENTITY-SENSOR values with their scale and precision.
    wait_for("1,000 interfaces of dc-core-1", 90 * SECOND, || async {
        let n = series(&collector, "metric=snmp_if_oper_status&device=dc-core-1")
            .await
            .len();
        (n == 1000).then_some(())
    })
    .await;
    let bits = wait_value(
        &collector,
        "metric=snmp_if_in_bits_per_second&device=dc-core-1&ifName=Ethernet1/1",
        120 * SECOND,
    )
    .await;
    assert!(close(bits, 1e9, 0.05), "{bits}");
    let util = wait_value(
        &collector,
        "metric=snmp_if_in_utilization_percent&device=dc-core-1&ifName=Ethernet1/1",
        limit,
    )
    .await;
    assert!(close(util, 10.0, 0.05), "{util}");
    assert_eq!(
        value(
            &collector,
            "metric=snmp_temperature_celsius&device=dc-core-1&sensor_name=Intake"
        )
        .await,
        Some(31.0)
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_temperature_celsius&device=dc-core-1&entity_name=Module 1 Inlet"
        )
        .await,
        Some(41.5)
    );
    let volts = value(&collector, "metric=snmp_sensor_volts&device=dc-core-1")
        .await
        .expect("volts");
    assert!((volts - 12.1).abs() < 1e-9, "{volts}");
    assert_eq!(
        value(
            &collector,
            "metric=snmp_fan_ok&device=dc-core-1&fan_name=Fan Module 2"
        )
        .await,
        Some(0.0)
    );
    assert!(
        value(
            &collector,
            "metric=snmp_power_supply_ok&device=dc-core-1&psu_name=PS 2"
        )
        .await
        .is_none()
    );
    assert_eq!(
        value(
            &collector,
            "metric=snmp_memory_used_bytes&device=dc-core-1&pool_name=Processor"
        )
        .await,
        Some(3e8)
    );

    // 32-bit counters across a wrap: 10 Mbit/s before and after, no spike.
    // The simulated counter wraps about 45 s after the simulator started.
    let wrap_ms = sim_started_ms + 45_000;
    let pts: Vec<(i64, f64)> = wait_for(
        "rates of old-sw from before and after the wrap",
        120 * SECOND,
        || async {
            let points: Vec<SeriesPoints> = get(
                &collector,
                "/api/v1/query?metric=snmp_if_in_bits_per_second&device=old-sw&ifName=Fa0/1&since=10m",
            )
            .await;
            let pts = points.first()?.points.clone();
            let before = pts.iter().any(|(t, _)| *t < wrap_ms - 5_000);
            let after = pts.iter().filter(|(t, _)| *t > wrap_ms + 5_000).count() >= 2;
            (before && after).then_some(pts)
        },
    )
    .await;
    for (_, v) in &pts {
        // A wrap taken for a reset gives no value; taken for a plain
        // decrease it would be a spike of gigabits.
        assert!(close(*v, 10e6, 0.1), "a rate across the wrap is off: {pts:?}");
    }
    let util = value(
        &collector,
        "metric=snmp_if_in_utilization_percent&device=old-sw&ifName=Fa0/1",
    )
    .await;
    assert!(util.is_some_and(|u| close(u, 10.0, 0.05)), "{util:?}");
}

fn send_trap(port: u16, community: &str, trap: &str, varbinds: &[&str]) {
    let target = format!("127.0.0.1:{port}");
    let mut args = vec!["-v2c", "-c", community, &target, "", trap];
    args.extend_from_slice(varbinds);
    snmp_tool("snmptrap", &args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_open_and_resolve_faults_at_once_and_a_restart_is_a_reboot() {
    let snmpd = Snmpd::start();
    let port = snmpd.port;
    let trap_port = free_udp_port();
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped()).await;
    let _agent = agent(
        &collector,
        &format!(
            r#"trap_listen = "127.0.0.1:{trap_port}"
trap_communities = ["traps"]

[[snmp.device]]
name = "edge-1"
address = "127.0.0.1:{port}"
version = "v2c"
community = "{community}"
interval = "60s"
profiles = ["ups-rfc1628"]

[[snmp.device]]
name = "edge-reboot"
address = "127.0.0.1:{port}"
version = "v2c"
community = "{community}"
interval = "1s"
timeout = "300ms"
retries = 0
interfaces = false
reboot_hold = "3s"
"#,
            community = Snmpd::COMMUNITY
        ),
    );
    // The first poll of edge-1 tells the agent its interfaces; the next poll is a minute away.
    wait_for("edge-1's interfaces", 20 * SECOND, || async {
        value(&collector, "metric=snmp_if_oper_status&device=edge-1&ifIndex=1").await
    })
    .await;
    let if_index = "1.3.6.1.2.1.2.2.1.1.1";
    let admin = "1.3.6.1.2.1.2.2.1.7.1";
    let oper = "1.3.6.1.2.1.2.2.1.8.1";

    // A trap with a community not in trap_communities is dropped.
    send_trap(
        trap_port,
        "public",
        "1.3.6.1.6.3.1.1.5.3",
        &[if_index, "i", "1", admin, "i", "1", oper, "i", "2"],
    );
    // linkDown: the interface fault opens at once, labelled from the poll.
    let sent = Instant::now();
    send_trap(
        trap_port,
        "traps",
        "1.3.6.1.6.3.1.1.5.3",
        &[if_index, "i", "1", admin, "i", "1", oper, "i", "2"],
    );
    let down = first_fault(&collector, "snmp_interface_down", "poller-1", 10 * SECOND).await;
    let took = sent.elapsed();
    assert_eq!(down.labels.get("device").map(String::as_str), Some("edge-1"));
    assert_eq!(down.labels.get("ifName").map(String::as_str), Some("lo"));
    assert!(
        took < Duration::from_secs(30),
        "opened by the trap, not by a poll ({took:?})"
    );
    let faults = faults_of(&collector, "snmp_interface_down", "poller-1").await;
    assert_eq!(
        faults.len(),
        1,
        "one fault: the trap with the wrong community was dropped"
    );
    // linkUp resolves it.
    send_trap(
        trap_port,
        "traps",
        "1.3.6.1.6.3.1.1.5.4",
        &[if_index, "i", "1", admin, "i", "1", oper, "i", "1"],
    );
    fault_in_status(
        &collector,
        down.id,
        watchpost_model::api::FaultStatus::Resolved,
        10 * SECOND,
    )
    .await;

    // coldStart: the device is marked rebooted at once.
    send_trap(trap_port, "traps", "1.3.6.1.6.3.1.1.5.1", &[]);
    wait_for("a reboot fault for edge-1", 10 * SECOND, || async {
        let f = faults_of(&collector, "snmp_device_rebooted", "poller-1").await;
        f.into_iter()
            .find(|f| f.labels.get("device").map(String::as_str) == Some("edge-1"))
    })
    .await;
    // A profile-declared trap: upsTrapOnBattery is urgent.
    send_trap(trap_port, "traps", "1.3.6.1.2.1.33.2.0.1", &[]);
    let ups = first_fault(&collector, "ups_on_battery", "poller-1", 10 * SECOND).await;
    assert_eq!(ups.severity, watchpost_model::Severity::Urgent);
    assert_eq!(ups.labels.get("device").map(String::as_str), Some("edge-1"));

    // sysUpTime going back: restart snmpd on the same port.
    wait_for("edge-reboot past its reboot hold", 20 * SECOND, || async {
        let v = value(&collector, "metric=snmp_device_rebooted&device=edge-reboot").await?;
        let up = value(&collector, "metric=snmp_uptime_seconds&device=edge-reboot").await?;
        (v == 0.0 && up > 3.0).then_some(())
    })
    .await;
    let edge_reboot =
        |f: &watchpost_model::api::Fault| f.labels.get("device").map(String::as_str) == Some("edge-reboot");
    wait_for(
        "edge-reboot's first-contact reboot fault resolved",
        20 * SECOND,
        || async {
            let f = faults_of(&collector, "snmp_device_rebooted", "poller-1").await;
            let mine: Vec<_> = f.iter().filter(|f| edge_reboot(f)).collect();
            let rebooted = value(&collector, "metric=snmp_device_rebooted&device=edge-reboot").await;
            (!mine.is_empty()
                && mine
                    .iter()
                    .all(|f| f.status == watchpost_model::api::FaultStatus::Resolved)
                && rebooted == Some(0.0))
            .then_some(())
        },
    )
    .await;
    drop(snmpd);
    let _restarted = Snmpd::start_on(port);
    // The collector reopens the recently resolved record rather than adding one.
    wait_for(
        "edge-reboot's reboot fault to fire again",
        20 * SECOND,
        || async {
            let f = faults_of(&collector, "snmp_device_rebooted", "poller-1").await;
            f.iter()
                .any(|f| edge_reboot(f) && f.status == watchpost_model::api::FaultStatus::Open)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domestic_switches_firewalls_and_ups_variants_follow_their_profiles() {
    let sim = Snmpsim::start(&[
        "zte-5950",
        "maipu-s4320",
        "huawei-usg6555",
        "h3c-f1080",
        "ups-unknown",
        "huawei-ups2000",
    ]);
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped()).await;
    let mut config = String::new();
    for (name, community, profiles) in [
        ("zte-agg-1", "zte-5950", "\"zte-zxr10\""),
        ("mp-access-1", "maipu-s4320", "\"maipu-mypower\""),
        ("fw-dmz-1", "huawei-usg6555", "\"huawei-vrp\", \"huawei-usg\""),
        ("fw-core-1", "h3c-f1080", "\"h3c-comware\", \"h3c-secpath\""),
        ("ups-room-b", "ups-unknown", "\"ups-rfc1628\""),
        ("ups-room-c", "huawei-ups2000", "\"huawei-ups2000\""),
    ] {
        config += &format!(
            "[[snmp.device]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\nversion = \"v2c\"\ncommunity = \"{community}\"\ninterval = \"2s\"\ntimeout = \"1500ms\"\nprofiles = [{profiles}]\n\n",
            sim.port
        );
    }
    let _agent = agent(&collector, &config);
    let limit = 60 * SECOND;
    let c = &collector;

    // ZTE: one CPU and memory series per stack member, temperature per slot,
    // the empty slot left out.
    assert_eq!(
        wait_value(c, "metric=snmp_cpu_usage_percent&device=zte-agg-1&unit=1", limit).await,
        17.0
    );
    assert_eq!(
        value(c, "metric=snmp_cpu_usage_percent&device=zte-agg-1&unit=2").await,
        Some(9.0)
    );
    assert_eq!(
        value(c, "metric=snmp_memory_usage_percent&device=zte-agg-1&unit=1").await,
        Some(42.0)
    );
    assert_eq!(
        value(c, "metric=snmp_temperature_celsius&device=zte-agg-1&slot=1.1.1").await,
        Some(41.0)
    );
    assert_eq!(
        series(c, "metric=snmp_temperature_celsius&device=zte-agg-1")
            .await
            .len(),
        1
    );
    // Its equipment-list entry: the vendor from sysObjectID's enterprise,
    // chassis model, serial and software from ENTITY-MIB, the line card
    // as a part; the fan tray without a serial or model is not listed.
    let items: Vec<watchpost_model::inventory::InventoryItem> =
        wait_for("the ZTE switch's inventory", limit, || async {
            let all: Vec<watchpost_model::inventory::InventoryItem> = get(c, "/api/v1/inventory").await;
            let zte: Vec<_> = all
                .into_iter()
                .filter(|i| i.id.starts_with("poller-1:snmp/zte-agg-1"))
                .collect();
            (zte.len() >= 2).then_some(zte)
        })
        .await;
    let switch = items
        .iter()
        .find(|i| i.id == "poller-1:snmp/zte-agg-1")
        .expect("the switch");
    assert_eq!(switch.kind, "network-device");
    assert_eq!(
        (switch.vendor.as_str(), switch.model.as_str()),
        ("ZTE", "ZXR10 5950-36TM-H")
    );
    assert_eq!(
        (switch.serial.as_str(), switch.firmware.as_str()),
        ("ZTE5950A1234", "V4.08.23")
    );
    assert_eq!(
        switch.details.get("sys_object_id").map(String::as_str),
        Some("1.3.6.1.4.1.3902.3.100.5950")
    );
    let card = items
        .iter()
        .find(|i| i.id == "poller-1:snmp/zte-agg-1/entity/10")
        .expect("the line card");
    assert_eq!(
        (card.kind.as_str(), card.parent.as_str()),
        ("module", "poller-1:snmp/zte-agg-1")
    );
    assert_eq!(
        (card.model.as_str(), card.serial.as_str()),
        ("5950-16XS", "ZTELC00987")
    );
    assert_eq!(items.len(), 2, "{items:?}");

    // Maipu.
    assert_eq!(
        wait_value(c, "metric=snmp_cpu_usage_percent&device=mp-access-1", limit).await,
        12.0
    );
    assert_eq!(
        value(c, "metric=snmp_temperature_celsius&device=mp-access-1").await,
        Some(38.0)
    );
    assert_eq!(
        value(c, "metric=snmp_memory_usage_percent&device=mp-access-1").await,
        Some(57.0)
    );
    assert_eq!(
        value(c, "metric=snmp_memory_total_bytes&device=mp-access-1").await,
        Some(268_435_456.0)
    );

    // Firewalls: sessions per CPU (and the older global scalar), new sessions per second.
    assert_eq!(
        wait_value(c, "metric=snmp_firewall_sessions&device=fw-dmz-1&cpu=0.1", limit).await,
        179_988.0
    );
    assert_eq!(
        series(c, "metric=snmp_firewall_sessions&device=fw-dmz-1")
            .await
            .len(),
        3
    );
    assert_eq!(
        value(c, "metric=snmp_firewall_new_sessions_per_second&device=fw-dmz-1").await,
        Some(2150.0)
    );
    assert_eq!(
        wait_value(
            c,
            "metric=snmp_firewall_sessions&device=fw-core-1&cpu=1.0.0",
            limit
        )
        .await,
        52_011.0
    );
    assert_eq!(
        value(
            c,
            "metric=snmp_firewall_new_sessions_per_second&device=fw-core-1&cpu=1.1.0"
        )
        .await,
        Some(295.0)
    );

    // A UPS card that answers -1 for what it does not know: those readings
    // are left out, and no battery fault opens; the voltages still come.
    assert_eq!(
        wait_value(
            c,
            "metric=snmp_ups_output_voltage_volts&device=ups-room-b&line=1",
            limit
        )
        .await,
        220.0
    );
    for metric in [
        "snmp_ups_battery_charge_percent",
        "snmp_ups_battery_minutes_remaining",
        "snmp_ups_battery_temperature_celsius",
    ] {
        let s = series(c, &format!("metric={metric}&device=ups-room-b")).await;
        assert!(s.is_empty(), "{metric}: {s:?}");
    }
    assert_eq!(
        value(c, "metric=snmp_ups_battery_low&device=ups-room-b").await,
        Some(0.0)
    );
    // The Huawei card's 0.1 V figures read in volts.
    assert_eq!(
        wait_value(
            c,
            "metric=snmp_ups_output_voltage_volts&device=ups-room-c&line=1",
            limit
        )
        .await,
        220.0
    );
    assert_eq!(
        value(c, "metric=snmp_ups_input_voltage_volts&device=ups-room-c&line=1").await,
        Some(230.0)
    );
    assert_eq!(
        value(c, "metric=snmp_ups_battery_charge_percent&device=ups-room-c").await,
        Some(100.0)
    );
    // A few more rounds: still nothing fires for the UPSes.
    tokio::time::sleep(5 * SECOND).await;
    let faults: Vec<watchpost_tests::api::Fault> = get(c, "/api/v1/faults?host=poller-1").await;
    let ups: Vec<_> = faults.iter().filter(|f| f.rule.starts_with("ups_")).collect();
    assert!(ups.is_empty(), "{ups:?}");
}
