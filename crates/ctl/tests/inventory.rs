//! The equipment list end to end: a real agent lists its host (DMI from a
//! sysfs directory the test writes, as a container's mounted host /sys
//! would be: this VM has no DMI; CPU, memory and kernel from this
//! machine), a real collector keeps it with its history, a changed serial
//! opens the shipped `equipment_changed` fault, and `watchpostctl
//! inventory` lists, exports and imports it.

use std::path::Path;
use std::time::Duration;

use watchpost_model::api::FaultStatus;
use watchpost_model::inventory::{InventoryEvent, InventoryItem};
use watchpost_tests::process::Ctl;
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

async fn items(c: &watchpost_collector::Collector) -> Vec<InventoryItem> {
    get(c, "/api/v1/inventory").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_listed_changes_are_kept_and_imports_join_them() {
    let data = tempfile::tempdir().expect("tempdir");
    let sys = tempfile::tempdir().expect("tempdir");
    let dmi = sys.path().join("class/dmi/id");
    for (f, v) in [
        ("sys_vendor", "Inspur"),
        ("product_name", "NF5280M6"),
        ("product_serial", "220394518"),
        ("bios_version", "06.00.01"),
    ] {
        write(&dmi.join(f), &format!("{v}\n"));
    }
    write(&sys.path().join("block/sda/device/model"), "SAMSUNG MZ7L3960\n");
    write(&sys.path().join("block/sda/size"), "1875385008\n");
    write(&sys.path().join("block/sdb/device/model"), "ST4000NM000A\n");
    write(&sys.path().join("block/sdb/size"), "7814037168\n");
    let rules = shipped_rules("inventory.toml", "1s");
    let collector = start_collector(data.path(), &rules).await;
    let text = format!(
        "[agent]\ncollector = \"http://{}\"\nhostname = \"db-01\"\ninterval = \"1s\"\nlabels = {{ room = \"A-201\", rack = \"A05\" }}\n\n\
         [host]\nenabled = false\n\n[inventory]\ninterval = \"1s\"\nsysfs = \"{}\"\n",
        collector.grpc_addr(),
        sys.path().display()
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let agent = watchpost_agent::start(config);
    let host = wait_for("the host in the inventory", 30 * SECOND, || async {
        items(&collector).await.into_iter().find(|i| i.id == "db-01:host")
    })
    .await;
    assert_eq!(
        (host.kind.as_str(), host.name.as_str(), host.host.as_str()),
        ("server", "db-01", "db-01")
    );
    assert_eq!(
        (host.vendor.as_str(), host.model.as_str()),
        ("Inspur", "NF5280M6")
    );
    assert_eq!(
        (host.serial.as_str(), host.firmware.as_str()),
        ("220394518", "06.00.01")
    );
    assert_eq!((host.room.as_str(), host.rack.as_str()), ("A-201", "A05"));
    // What this machine says of itself.
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .expect("cpuinfo")
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(host.details.get("cpu_threads"), Some(&cpus.to_string()));
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .expect("MemTotal");
    assert_eq!(
        host.details.get("memory_bytes"),
        Some(&(mem_kb * 1024).to_string())
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(
        host.details.get("kernel").map(String::as_str),
        Some(release.trim())
    );
    assert!(host.details.contains_key("addresses"), "{:?}", host.details);
    let sda = wait_for("the disks", 10 * SECOND, || async {
        items(&collector)
            .await
            .into_iter()
            .find(|i| i.id == "db-01:host/disk/sda")
    })
    .await;
    assert_eq!(
        (sda.parent.as_str(), sda.model.as_str()),
        ("db-01:host", "SAMSUNG MZ7L3960")
    );
    assert_eq!(
        sda.details.get("size_bytes").map(String::as_str),
        Some("960197124096")
    );

    // The board is swapped (a new serial) and a disk pulled.
    write(&dmi.join("product_serial"), "220394777\n");
    std::fs::remove_dir_all(sys.path().join("block/sdb")).expect("pull sdb");
    let fault = first_fault(&collector, "equipment_changed", "db-01", 30 * SECOND).await;
    assert_eq!(fault.severity, watchpost_model::Severity::Minor);
    assert_eq!(
        fault.summary,
        "db-01: server db-01: serial changed from 220394518 to 220394777"
    );
    assert_eq!(fault.labels.get("rack").map(String::as_str), Some("A05"));
    let history: Vec<InventoryEvent> = wait_for("the history", 10 * SECOND, || async {
        let h: Vec<InventoryEvent> = get(&collector, "/api/v1/inventory/history").await;
        h.iter().any(|e| e.change == "removed").then_some(h)
    })
    .await;
    let changed = history
        .iter()
        .find(|e| e.item == "db-01:host" && e.field == "serial")
        .expect("the serial's change");
    assert_eq!(
        (changed.old.as_str(), changed.new.as_str()),
        ("220394518", "220394777")
    );
    assert_eq!(changed.fault_id, Some(fault.id));
    assert!(
        history
            .iter()
            .any(|e| e.item == "db-01:host/disk/sdb" && e.change == "removed"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|e| e.item == "db-01:host" && e.change == "added")
    );
    // A fault for a change stays open until someone closes it.
    tokio::time::sleep(3 * SECOND).await;
    let f: watchpost_model::api::Fault = get(&collector, &format!("/api/v1/faults/{}", fault.id)).await;
    assert_eq!(f.status, FaultStatus::Open);
    // Nothing reported twice: the agent's later rounds change nothing.
    let again: Vec<InventoryEvent> = get(&collector, "/api/v1/inventory/history").await;
    assert_eq!(again.len(), history.len(), "{again:?}");

    // watchpostctl: the table, the CSV, an import and its errors.
    let server = format!("http://{}", collector.http_addr());
    let ctl = Ctl::new(env!("CARGO_BIN_EXE_watchpostctl"), &server);
    let (ok, out, err) = ctl.run(&["inventory"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("ID") && out.contains("SERIAL") && out.contains("220394777"),
        "{out}"
    );
    assert!(out.contains("A-201/A05"), "{out}");
    assert!(!out.contains("disk/sdb"), "removed items are left out: {out}");
    let csv_file = data.path().join("rooms.csv");
    std::fs::write(
        &csv_file,
        "name,kind,vendor,model,serial,room,rack,notes\n\
         PP-A05-1,patch panel,Panduit,CP48BLY,,A-201,A05,48 ports\n\
         \"KVM, row A\",kvm,Raritan,DKX4-108,R1234567,A-201,A01,\n",
    )
    .expect("csv");
    let (ok, out, err) = ctl
        .run(&[
            "--by",
            "zhang.wei",
            "inventory",
            "import",
            csv_file.to_str().expect("path"),
        ])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("imported 2 item(s)"), "{out}");
    let bad = data.path().join("bad.csv");
    std::fs::write(&bad, "name,kind,colour\nX,camera,red\n").expect("csv");
    let (ok, _, err) = ctl
        .run(&[
            "--by",
            "zhang.wei",
            "inventory",
            "import",
            bad.to_str().expect("path"),
        ])
        .await;
    assert!(!ok);
    assert!(
        err.contains("line 1, column 3: unknown column \"colour\""),
        "{err}"
    );
    let all = items(&collector).await;
    let kvm = all.iter().find(|i| i.id == "import:KVM, row A").expect("the KVM");
    assert_eq!(
        (kvm.source.as_str(), kvm.serial.as_str(), kvm.rack.as_str()),
        ("import", "R1234567", "A01")
    );
    assert!(
        !all.iter().any(|i| i.name == "X"),
        "a refused file imports nothing"
    );
    let (ok, csv, err) = ctl.run(&["inventory", "--csv"]).await;
    assert!(ok, "{err}");
    assert!(csv.starts_with("id,kind,name,vendor,model,serial"), "{csv}");
    assert!(
        csv.contains("\"import:KVM, row A\",kvm,\"KVM, row A\",Raritan"),
        "{csv}"
    );
    assert!(
        csv.contains("db-01:host,server,db-01,Inspur,NF5280M6,220394777"),
        "{csv}"
    );
    let (ok, out, err) = ctl.run(&["inventory", "history", "db-01:host"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("serial") && out.contains("220394518") && out.contains(&fault.id.to_string()),
        "{out}"
    );
    agent.stop().await;
}
