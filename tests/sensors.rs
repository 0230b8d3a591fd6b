//! Machine-room sensors end to end: a pymodbus Modbus TCP device whose
//! registers the test changes (as a SCADA client would, by writing them),
//! and hwmon temperatures of the host read from a sysfs-shaped directory.
//! A real collector with the shipped rules (`for` shortened) and a real agent.

use std::time::Duration;

use tokio_modbus::client::Writer;
use watchpost_collector::Collector;
use watchpost_model::api::FaultStatus;
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

/// A shipped rule file with `for` cut to a second (agent silence needs more than zero).
fn shipped(file: &str) -> String {
    shipped_rules(file, "1s")
}

async fn fault_on(c: &Collector, rule: &str, device: &str) -> Option<watchpost_model::api::Fault> {
    faults_of(c, rule, "poller-1")
        .await
        .into_iter()
        .find(|f| f.labels.get("device").map(String::as_str) == Some(device))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_registers_follow_the_device_and_fire_machine_room_faults() {
    // Input register 3: a power meter's 5.12 kW (scale 0.01).
    let sim = ModbusSim::start(&[(3, 512)]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped("machine-room.toml")).await;
    let text = format!(
        r#"
[agent]
collector = "http://{grpc}"
hostname = "poller-1"
interval = "500ms"

[host]
enabled = false

[[modbus.device]]
name = "room-a-th-1"
address = "127.0.0.1:{port}"
unit = 1
interval = "500ms"
timeout = "400ms"
labels = {{ room = "A-201" }}

[[modbus.device.register]]
metric = "room_temperature_celsius"
address = 0
kind = "holding"
type = "i16"
scale = 0.1
labels = {{ position = "cold aisle" }}

[[modbus.device.register]]
metric = "room_humidity_percent"
address = 1
kind = "holding"
scale = 0.1

[[modbus.device.register]]
metric = "room_power_kw"
address = 3
kind = "input"
scale = 0.01

[[modbus.device.register]]
metric = "room_supply_air_celsius"
address = 10
kind = "holding"
type = "f32"

[[modbus.device.register]]
metric = "room_water_leak"
address = 0
kind = "coil"

[[modbus.device.register]]
metric = "room_door_open"
address = 0
kind = "discrete"

[[modbus.device]]
name = "room-b-gateway"
address = "{closed}"
interval = "500ms"
timeout = "300ms"

[[modbus.device.register]]
metric = "room_temperature_celsius"
address = 0
kind = "holding"
"#,
        grpc = collector.grpc_addr(),
        port = sim.port,
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let _agent = watchpost_agent::start(config);

    let mut client = tokio_modbus::client::tcp::connect_slave(
        format!("127.0.0.1:{}", sim.port).parse().expect("addr"),
        tokio_modbus::Slave(1),
    )
    .await
    .expect("connect to the simulator");
    let write = async |client: &mut tokio_modbus::client::Context, addr: u16, v: u16| {
        client
            .write_single_register(addr, v)
            .await
            .expect("transport")
            .expect("no exception");
    };
    // 23.5 °C, 45.0 %RH, supply air 16.25 °C as an IEEE float in two registers.
    write(&mut client, 0, 235).await;
    write(&mut client, 1, 450).await;
    let bits = 16.25f32.to_bits();
    client
        .write_multiple_registers(10, &[(bits >> 16) as u16, bits as u16])
        .await
        .expect("transport")
        .expect("no exception");
    latest_value(
        &collector,
        "metric=room_temperature_celsius&device=room-a-th-1&position=cold aisle",
        23.5,
        20 * SECOND,
    )
    .await;
    latest_value(
        &collector,
        "metric=room_humidity_percent&device=room-a-th-1",
        45.0,
        10 * SECOND,
    )
    .await;
    latest_value(
        &collector,
        "metric=room_supply_air_celsius&device=room-a-th-1",
        16.25,
        10 * SECOND,
    )
    .await;
    latest_value(
        &collector,
        "metric=room_power_kw&device=room-a-th-1&room=A-201",
        5.12,
        10 * SECOND,
    )
    .await;
    latest_value(
        &collector,
        "metric=room_door_open&device=room-a-th-1",
        0.0,
        10 * SECOND,
    )
    .await;
    latest_value(
        &collector,
        "metric=modbus_up&device=room-a-th-1",
        1.0,
        10 * SECOND,
    )
    .await;
    assert!(
        fault_on(&collector, "room_temperature_high", "room-a-th-1")
            .await
            .is_none()
    );

    // Below zero: the i16 sign is kept (-5.0 °C), and the low rule fires.
    write(&mut client, 0, (-50i16) as u16).await;
    latest_value(
        &collector,
        "metric=room_temperature_celsius&device=room-a-th-1",
        -5.0,
        10 * SECOND,
    )
    .await;
    wait_for("a low temperature fault", 10 * SECOND, || {
        fault_on(&collector, "room_temperature_low", "room-a-th-1")
    })
    .await;
    // Hot aisle: 33.5 °C is a general fault.
    write(&mut client, 0, 335).await;
    let hot = wait_for("a high temperature fault", 10 * SECOND, || {
        fault_on(&collector, "room_temperature_high", "room-a-th-1")
    })
    .await;
    assert_eq!(hot.severity, watchpost_model::Severity::General);
    assert_eq!(hot.labels.get("position").map(String::as_str), Some("cold aisle"));

    // A water leak is urgent, and clears when the sensor does.
    client
        .write_single_coil(0, true)
        .await
        .expect("transport")
        .expect("no exception");
    let leak = wait_for("a water leak fault", 10 * SECOND, || {
        fault_on(&collector, "room_water_leak", "room-a-th-1")
    })
    .await;
    assert_eq!(leak.severity, watchpost_model::Severity::Urgent);
    client
        .write_single_coil(0, false)
        .await
        .expect("transport")
        .expect("no exception");
    fault_in_status(&collector, leak.id, FaultStatus::Resolved, 10 * SECOND).await;

    // A gateway that does not answer is a value and an unreachability fault.
    latest_value(
        &collector,
        "metric=modbus_up&device=room-b-gateway",
        0.0,
        10 * SECOND,
    )
    .await;
    wait_for("an unreachable sensor fault", 10 * SECOND, || {
        fault_on(&collector, "sensor_unreachable", "room-b-gateway")
    })
    .await;

    // The simulator goes away: the device goes down, and comes back.
    drop(sim);
    latest_value(
        &collector,
        "metric=modbus_up&device=room-a-th-1",
        0.0,
        10 * SECOND,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hwmon_temperatures_reach_the_collector_and_fire_the_host_rule() {
    let sys = tempfile::tempdir().expect("tempdir");
    let chip = sys.path().join("hwmon3");
    std::fs::create_dir_all(&chip).expect("mkdir");
    std::fs::write(chip.join("name"), "coretemp\n").expect("name");
    std::fs::write(chip.join("temp1_label"), "Package id 0\n").expect("label");
    std::fs::write(chip.join("temp1_input"), "52000\n").expect("input");
    std::fs::write(chip.join("temp1_crit"), "100000\n").expect("crit");
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped("host.toml")).await;
    let text = format!(
        "[agent]\ncollector = \"http://{}\"\nhostname = \"db-1\"\ninterval = \"300ms\"\n\n[host]\nhwmon_dir = \"{}\"\n",
        collector.grpc_addr(),
        sys.path().display()
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let _agent = watchpost_agent::start(config);
    let q = "metric=host_hwmon_temperature_celsius&chip=coretemp&sensor=Package id 0";
    latest_value(&collector, q, 52.0, 20 * SECOND).await;
    latest_value(
        &collector,
        "metric=host_hwmon_temperature_critical_celsius&chip=coretemp",
        100.0,
        10 * SECOND,
    )
    .await;
    std::fs::write(chip.join("temp1_input"), "93500\n").expect("input");
    latest_value(&collector, q, 93.5, 10 * SECOND).await;
    let f = first_fault(&collector, "hardware_temperature_high", "db-1", 10 * SECOND).await;
    assert_eq!(f.severity, watchpost_model::Severity::General);
    assert_eq!(f.labels.get("sensor").map(String::as_str), Some("Package id 0"));
}
