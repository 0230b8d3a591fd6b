//! Processes, services, logs and disks end to end: a real agent watching
//! processes and log files this test makes, and a real collector with the
//! shipped `examples/rules/system.toml` (`for` cut to a second).
//!
//! `systemctl` and `smartctl` are stand-in scripts: this machine's PID 1 is
//! not systemd and a VM has no SMART. The stand-ins print what the real
//! tools print (systemd 252's `show` blocks; smartctl 7.3's JSON from
//! `tests/fixtures/storage/`), and the test changes what they print.
//! `/proc/mdstat` is a file in the test's directory holding the fixtures'
//! texts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_model::Severity;
use watchpost_model::api::{self, FaultStatus};
use watchpost_tests::process::ChildProcess;
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);
const HOST: &str = "srv-1";

async fn start(agent_tables: &str) -> (tempfile::TempDir, Collector, watchpost_agent::RunningAgent) {
    collector_and_agent("system.toml", HOST, agent_tables).await
}

/// Waits for an open fault of `rule` whose labels include `label`.
async fn fault_for(c: &Collector, rule: &str, label: (&str, &str)) -> api::Fault {
    wait_for(
        &format!("a {rule} fault on {}={}", label.0, label.1),
        30 * SECOND,
        || async {
            faults_of(c, rule, HOST).await.into_iter().find(|f| {
                f.status != FaultStatus::Resolved
                    && f.labels.get(label.0).map(String::as_str) == Some(label.1)
            })
        },
    )
    .await
}

/// A process whose command line starts with `name` (bash's `exec -a`).
fn spawn_named(name: &str, program: &str) -> ChildProcess {
    let child = Command::new("bash")
        .arg("-c")
        .arg(format!("exec -a {name} {program}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bash");
    ChildProcess(child)
}

/// Resident memory of `pid` in bytes, as the kernel reports it.
fn rss_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024.0
}

fn open_fds(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count() as f64
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/storage")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_and_services_are_counted_and_a_missing_one_is_a_fault() {
    let tag = std::process::id();
    let dir = tempfile::tempdir().expect("tempdir");
    let units = dir.path().join("units.txt");
    // Written whole and renamed in place: the stand-in never reads half a file.
    let show = |orders: &str, restarts: u32| {
        let next = units.with_extension("new");
        std::fs::write(
            &next,
            format!(
                "NRestarts=0\nId=nginx.service\nLoadState=loaded\nActiveState=active\n\n\
                 NRestarts={restarts}\nId=orders.service\nLoadState=loaded\nActiveState={orders}\n\n\
                 Id=nope.service\nLoadState=not-found\nActiveState=inactive\n"
            ),
        )
        .expect("write units");
        std::fs::rename(&next, &units).expect("rename units");
    };
    show("active", 0);
    let systemctl = dir.path().join("systemctl");
    let asked = dir.path().join("asked.txt");
    script(
        &systemctl,
        &format!("echo \"$@\" > {}\ncat {}\n", asked.display(), units.display()),
    );
    let mut workers = vec![
        spawn_named(&format!("wp-worker-{tag}"), "sleep 600"),
        spawn_named(&format!("wp-worker-{tag}"), "sleep 600"),
    ];
    let _busy = spawn_named(&format!("wp-busy-{tag}"), "sh -c 'while :; do :; done'");
    let (_data, c, _agent) = start(&format!(
        r#"
[[process]]
name = "worker"
match = '^wp-worker-{tag}\b'
min = 2
labels = {{ system = "orders" }}

[[process]]
name = "busy"
match = '^wp-busy-{tag}\b'

[service]
systemd = ["nginx", "orders.service", "nope"]
systemctl = "{systemctl}"
"#,
        systemctl = systemctl.display(),
    ))
    .await;
    let w = |m: &str| format!("metric={m}&process=worker");
    latest_value(&c, &w("process_count"), 2.0, 30 * SECOND).await;
    latest_value(&c, &w("process_up"), 1.0, 10 * SECOND).await;
    latest_value(&c, &w("process_threads"), 2.0, 10 * SECOND).await;
    // What the kernel says of the two processes.
    let pids: Vec<u32> = workers.iter().map(|p| p.0.id()).collect();
    let fds: f64 = pids.iter().map(|p| open_fds(*p)).sum();
    latest_value(&c, &w("process_open_fds"), fds, 10 * SECOND).await;
    // Read again on each try: a process just started still maps its pages.
    value_where(&c, &w("process_memory_rss_bytes"), 10 * SECOND, |seen| {
        let rss: f64 = pids.iter().map(|p| rss_bytes(*p)).sum();
        (seen - rss).abs() <= rss * 0.05
    })
    .await;
    let s: Vec<api::Series> = get(&c, &format!("/api/v1/series?{}", w("process_up"))).await;
    assert_eq!(s[0].labels.get("system").map(String::as_str), Some("orders"));
    // A spinning process reads as busy (100 = one core).
    let cpu = value_where(&c, "metric=process_cpu_percent&process=busy", 15 * SECOND, |v| {
        v >= 20.0
    })
    .await;
    assert!(cpu <= 205.0, "one thread on two cores: {cpu}");
    // One worker gone: fewer than min, a fault; back: resolved.
    workers.pop();
    latest_value(&c, &w("process_count"), 1.0, 10 * SECOND).await;
    let f = fault_for(&c, "process_down", ("process", "worker")).await;
    assert_eq!(f.severity, Severity::Urgent);
    assert!(
        f.summary.contains("process worker is not running"),
        "{}",
        f.summary
    );
    workers.push(spawn_named(&format!("wp-worker-{tag}"), "sleep 600"));
    latest_value(&c, &w("process_up"), 1.0, 10 * SECOND).await;
    fault_in_status(&c, f.id, FaultStatus::Resolved, 30 * SECOND).await;

    // Services: bare names are .service units, asked in one call.
    latest_value(
        &c,
        "metric=service_active&service=nginx.service",
        1.0,
        10 * SECOND,
    )
    .await;
    let args = std::fs::read_to_string(&asked).expect("asked");
    assert!(
        args.contains(
            "show --property=Id,LoadState,ActiveState,NRestarts -- nginx.service orders.service nope.service"
        ),
        "{args}"
    );
    latest_value(&c, "metric=service_active&service=nope.service", 0.0, 10 * SECOND).await;
    // orders fails, and systemd restarts it again and again.
    show("failed", 0);
    latest_value(
        &c,
        "metric=service_failed&service=orders.service",
        1.0,
        10 * SECOND,
    )
    .await;
    let f = fault_for(&c, "service_down", ("service", "orders.service")).await;
    assert_eq!(f.severity, Severity::Urgent);
    show("active", 5);
    latest_value(
        &c,
        "metric=service_restarts&service=orders.service",
        5.0,
        10 * SECOND,
    )
    .await;
    fault_in_status(&c, f.id, FaultStatus::Resolved, 30 * SECOND).await;
    let f = fault_for(&c, "service_restarting", ("service", "orders.service")).await;
    assert_eq!(f.severity, Severity::General);
    assert!(
        f.summary.contains("restarted 5 times in the last hour"),
        "{}",
        f.summary
    );
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_counted_through_rotation_and_the_last_one_is_in_the_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("catalina.out");
    append(
        &log,
        "ORA-00600 from before the agent started: history, not news\n",
    );
    let (_data, c, _agent) = start(&format!(
        r#"
[[log]]
name = "tomcat"
path = "{}"
patterns = {{ ora = 'ORA-\d+', oom = "OutOfMemoryError" }}
labels = {{ system = "orders" }}
"#,
        log.display()
    ))
    .await;
    let total = |p: &str| format!("metric=log_matches_total&log=tomcat&pattern={p}");
    latest_value(&c, "metric=log_files&log=tomcat", 1.0, 30 * SECOND).await;
    latest_value(&c, &total("ora"), 0.0, 10 * SECOND).await;
    append(
        &log,
        "INFO started\n2026-12-07 10:00:01 ERROR ORA-01555: snapshot too old\njava.lang.OutOfMemoryError: Java heap space\n",
    );
    latest_value(&c, &total("ora"), 1.0, 10 * SECOND).await;
    latest_value(&c, &total("oom"), 1.0, 10 * SECOND).await;
    let f = fault_for(&c, "log_pattern", ("pattern", "ora")).await;
    assert_eq!(f.severity, Severity::General);
    assert_eq!(
        f.summary,
        "srv-1: tomcat log matched ora: 2026-12-07 10:00:01 ERROR ORA-01555: snapshot too old"
    );
    assert_eq!(f.labels.get("system").map(String::as_str), Some("orders"));
    let f = fault_for(&c, "log_pattern", ("pattern", "oom")).await;
    assert!(
        f.summary.ends_with("java.lang.OutOfMemoryError: Java heap space"),
        "{}",
        f.summary
    );

    // Rotation by rename: the writer still holds the old file and writes
    // one more line to it, then the new file starts.
    let mut writer = std::fs::OpenOptions::new().append(true).open(&log).expect("open");
    std::fs::rename(&log, dir.path().join("catalina.out.1")).expect("rename");
    writer
        .write_all(b"ORA-04031 written to the renamed file\n")
        .expect("write");
    drop(writer);
    append(&log, "ORA-12541: TNS:no listener, in the new file\n");
    latest_value(&c, &total("ora"), 3.0, 10 * SECOND).await;
    // copytruncate: emptied in place, then written past the old length.
    std::fs::write(&log, "").expect("truncate");
    append(
        &log,
        "a first line longer than the one before the truncation\nORA-00060: deadlock detected after the truncation\n",
    );
    latest_value(&c, &total("ora"), 4.0, 10 * SECOND).await;
    // Nothing is read twice: a few rounds later the count still stands.
    tokio::time::sleep(3 * SECOND).await;
    latest_value(&c, &total("ora"), 4.0, SECOND).await;
    latest_value(&c, &total("oom"), 1.0, SECOND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_and_raid_faults_follow_what_the_disks_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disks = dir.path().join("disks");
    std::fs::create_dir(&disks).expect("mkdir");
    for (name, file) in [
        ("sda", "smart-ata-ssd.json"),
        ("sdb", "smart-standby.json"),
        ("sdc", "smart-ata-failing.json"),
        ("sdd", "smart-sas.json"),
        ("nvme0", "smart-nvme-worn.json"),
    ] {
        std::fs::copy(fixture(file), disks.join(format!("{name}.json"))).expect("copy fixture");
    }
    std::fs::write(
        disks.join("scan.json"),
        r#"{"smartctl": {"version": [7, 3], "exit_status": 0}, "devices": [
  {"name": "/dev/sda", "type": "sat", "protocol": "ATA"},
  {"name": "/dev/sdb", "type": "sat", "protocol": "ATA"},
  {"name": "/dev/sdc", "type": "sat", "protocol": "ATA"},
  {"name": "/dev/sdd", "type": "scsi", "protocol": "SCSI"},
  {"name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"}]}"#,
    )
    .expect("scan");
    // The stand-in prints the disk's JSON; the last argument is the device.
    let smartctl = dir.path().join("smartctl");
    let asked = dir.path().join("asked.txt");
    script(
        &smartctl,
        &format!(
            "echo \"$@\" >> {asked}\nfor a; do last=$a; done\nif [ \"$1\" = --scan-open ]; then cat {d}/scan.json; else cat {d}/$(basename $last).json; fi\n",
            asked = asked.display(),
            d = disks.display()
        ),
    );
    let mdstat = dir.path().join("mdstat");
    std::fs::copy(fixture("mdstat-mixed.txt"), &mdstat).expect("copy mdstat");
    let (_data, c, _agent) = start(&format!(
        r#"
[storage]
smartctl = "{}"
smart_interval = "10s"
mdstat = "{}"
"#,
        smartctl.display(),
        mdstat.display()
    ))
    .await;
    let sdc = |m: &str| format!("metric={m}&device=/dev/sdc");
    latest_value(&c, &sdc("smart_health_passed"), 0.0, 30 * SECOND).await;
    latest_value(&c, &sdc("smart_reallocated_sectors"), 1975.0, 10 * SECOND).await;
    latest_value(&c, &sdc("smart_pending_sectors"), 8.0, 10 * SECOND).await;
    latest_value(&c, "metric=smart_health_passed&device=/dev/sda", 1.0, 10 * SECOND).await;
    latest_value(
        &c,
        "metric=smart_nvme_percentage_used&device=/dev/nvme0",
        93.0,
        10 * SECOND,
    )
    .await;
    let s: Vec<api::Series> = get(
        &c,
        "/api/v1/series?metric=smart_reallocated_sectors&device=/dev/sdd",
    )
    .await;
    assert_eq!(
        s.len(),
        1,
        "a SAS disk's grown defects count as reallocated: {s:?}"
    );
    // The disk asleep is skipped without waking it.
    let s: Vec<api::Series> = get(&c, "/api/v1/series?device=/dev/sdb").await;
    assert!(s.is_empty(), "{s:?}");
    let args = std::fs::read_to_string(&asked).expect("asked");
    assert!(args.contains("--scan-open --json"), "{args}");
    assert!(args.contains("--json -a -n standby -d sat /dev/sdc"), "{args}");
    assert!(args.contains("--json -a -n standby -d nvme /dev/nvme0"), "{args}");

    let f = fault_for(&c, "smart_failed", ("device", "/dev/sdc")).await;
    assert_eq!(f.severity, Severity::Urgent);
    assert_eq!(
        f.summary,
        "srv-1: disk /dev/sdc (WDC WD10EZEX-08WN4A0 WD-WCC6Y3KX1234) fails its SMART health check"
    );
    let f = fault_for(&c, "smart_nvme_worn", ("device", "/dev/nvme0")).await;
    assert_eq!(f.severity, Severity::General);
    assert!(
        f.summary.contains("has used 93% of its endurance"),
        "{}",
        f.summary
    );

    // More sectors go bad: the next SMART read (10 s) shows the rise.
    let failing = std::fs::read_to_string(disks.join("sdc.json")).expect("read");
    let worse = failing
        .replacen("\"value\": 1975", "\"value\": 1980", 1)
        .replacen("\"value\": 8,", "\"value\": 9,", 1);
    assert_ne!(
        worse, failing,
        "the fixture's raw values are where the test expects them"
    );
    std::fs::write(disks.join("sdc.json"), worse).expect("write");
    latest_value(&c, &sdc("smart_reallocated_sectors"), 1980.0, 30 * SECOND).await;
    let f = fault_for(&c, "smart_sectors_reallocated", ("device", "/dev/sdc")).await;
    assert_eq!(f.severity, Severity::General);
    assert!(
        f.summary.contains("reallocated 5 more sectors in 24 h"),
        "{}",
        f.summary
    );
    fault_for(&c, "smart_sectors_pending", ("device", "/dev/sdc")).await;

    // RAID: md1 lost a disk (failed), md2 rebuilds, md127 is inactive.
    let f = fault_for(&c, "raid_degraded", ("device", "md1")).await;
    assert_eq!(f.severity, Severity::Urgent);
    assert_eq!(f.summary, "srv-1: RAID md1 (raid5) is degraded");
    fault_for(&c, "raid_disk_failed", ("device", "md1")).await;
    let resync = fault_for(&c, "raid_resync", ("device", "md2")).await;
    assert_eq!(resync.severity, Severity::Minor);
    latest_value(
        &c,
        "metric=md_sync_percent&device=md2&action=recovery",
        12.6,
        10 * SECOND,
    )
    .await;
    fault_for(&c, "raid_inactive", ("device", "md127")).await;
    let s: Vec<api::Series> = get(&c, "/api/v1/series?metric=md_degraded&device=md0").await;
    assert_eq!(s[0].last_value, Some(0.0), "md0 is whole");
    // The disk replaced and the rebuild done: the faults resolve.
    std::fs::write(
        &mdstat,
        "Personalities : [raid1] [raid5]\n\
         md1 : active raid5 sdf1[3] sdd1[1] sdc1[0]\n      1953260544 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]\n\n\
         md2 : active raid1 sdg1[2] sdf1[0]\n      976630464 blocks super 1.2 [2/2] [UU]\n\n\
         unused devices: <none>\n",
    )
    .expect("write mdstat");
    fault_in_status(&c, f.id, FaultStatus::Resolved, 30 * SECOND).await;
    fault_in_status(&c, resync.id, FaultStatus::Resolved, 30 * SECOND).await;
}
