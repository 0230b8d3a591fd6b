//! The equipment the agent sees, for the collector's equipment list
//! (设备清单): its host (DMI vendor, model and serial, CPU, memory, disks,
//! OS and kernel, addresses) and, from `sources/snmp/entity.rs`, the SNMP
//! devices it polls.
//!
//! Each scope ("host", "snmp/<device>") is kept on a [`Board`]; the link
//! sends every scope on each connection and a scope again when its items
//! change. The host is read at start and every `[inventory] interval`
//! (default 1 h): a few small files, no command run.
//!
//! ```toml
//! [inventory]
//! enabled = true          # default
//! interval = "1h"         # how often the host is read again
//! sysfs = "/sys"          # the host's /sys and /proc as the agent sees them
//! procfs = "/proc"        # (in a container: where the host's are mounted)
//! ```
//!
//! DMI's serial numbers (`product_serial`, `board_serial`) are readable by
//! root only; an agent running as its own user lists the host without them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use watchpost_proto::v1::InventoryItem;

use watchpost_model::HumanDuration;

/// `[inventory]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInventory {
    enabled: Option<bool>,
    interval: Option<HumanDuration>,
    sysfs: Option<PathBuf>,
    procfs: Option<PathBuf>,
}

/// `[inventory]`, checked.
#[derive(Debug, Clone)]
pub struct InventoryConfig {
    /// Whether the host is listed at all.
    pub enabled: bool,
    /// How often it is read again.
    pub interval: Duration,
    /// The host's `/sys`.
    pub sysfs: PathBuf,
    /// The host's `/proc`.
    pub procfs: PathBuf,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            interval: Duration::from_secs(3600),
            sysfs: PathBuf::from("/sys"),
            procfs: PathBuf::from("/proc"),
        }
    }
}

impl InventoryConfig {
    pub(crate) fn check(raw: Option<RawInventory>) -> Result<InventoryConfig, String> {
        let d = InventoryConfig::default();
        let Some(raw) = raw else { return Ok(d) };
        let interval = raw.interval.map_or(d.interval, |i| i.0);
        if interval < Duration::from_secs(1) {
            return Err("[inventory] interval must be at least 1s".to_string());
        }
        for (key, p) in [("sysfs", &raw.sysfs), ("procfs", &raw.procfs)] {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return Err(format!(
                    "[inventory] {key} must be an absolute path, not {}",
                    p.display()
                ));
            }
        }
        Ok(InventoryConfig {
            enabled: raw.enabled.unwrap_or(true),
            interval,
            sysfs: raw.sysfs.unwrap_or(d.sysfs),
            procfs: raw.procfs.unwrap_or(d.procfs),
        })
    }
}

/// Every scope's items, and a generation that moves when one changes.
#[derive(Debug, Default)]
pub struct Board {
    scopes: Mutex<BTreeMap<String, Vec<InventoryItem>>>,
    generation: AtomicU64,
}

impl Board {
    /// Sets `scope`'s items; the generation moves only if they changed.
    pub fn set(&self, scope: &str, items: Vec<InventoryItem>) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        if scopes.get(scope) != Some(&items) {
            scopes.insert(scope.to_string(), items);
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves whenever a scope changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Every scope with its items, and the generation they are of.
    pub fn snapshot(&self) -> (u64, Vec<(String, Vec<InventoryItem>)>) {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let g = self.generation();
        (g, scopes.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// Reads the host on its schedule.
pub struct HostInventory {
    config: InventoryConfig,
    hostname: String,
    next: Instant,
}

impl HostInventory {
    pub fn new(config: InventoryConfig, hostname: String) -> HostInventory {
        HostInventory {
            config,
            hostname,
            next: Instant::now(),
        }
    }

    /// Reads the host into `board` when it is due.
    pub fn tick(&mut self, board: &Board) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.config.interval;
        board.set("host", read_host(&self.config, &self.hostname));
    }
}

fn item(key: &str, parent: &str, kind: &str, name: &str) -> InventoryItem {
    InventoryItem {
        key: key.to_string(),
        parent: parent.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        ..Default::default()
    }
}

/// A sysfs attribute, trimmed; `None` when absent, unreadable or empty.
fn attr(path: &Path) -> Option<String> {
    let v = std::fs::read_to_string(path).ok()?;
    let v = v.trim().trim_matches('\0').trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// A DMI attribute, without the placeholders firmware writes when the
/// vendor filled nothing in.
fn dmi_attr(path: &Path) -> Option<String> {
    let placeholder = [
        "To be filled by O.E.M.",
        "Default string",
        "Not Specified",
        "None",
        "0",
    ];
    attr(path).filter(|v| !placeholder.contains(&v.as_str()))
}

/// The host and its disks.
pub fn read_host(c: &InventoryConfig, hostname: &str) -> Vec<InventoryItem> {
    let mut host = item("host", "", "server", hostname);
    let dmi = c.sysfs.join("class/dmi/id");
    host.vendor = dmi_attr(&dmi.join("sys_vendor")).unwrap_or_default();
    host.model = dmi_attr(&dmi.join("product_name")).unwrap_or_default();
    host.serial = dmi_attr(&dmi.join("product_serial")).unwrap_or_default();
    host.firmware = dmi_attr(&dmi.join("bios_version")).unwrap_or_default();
    let d = &mut host.details;
    for (key, file) in [
        ("bios_date", "bios_date"),
        ("board_vendor", "board_vendor"),
        ("board_name", "board_name"),
        ("board_serial", "board_serial"),
        ("chassis_serial", "chassis_serial"),
        ("product_uuid", "product_uuid"),
    ] {
        if let Some(v) = dmi_attr(&dmi.join(file)) {
            d.insert(key.to_string(), v);
        }
    }
    if let Ok(text) = std::fs::read_to_string(c.procfs.join("cpuinfo")) {
        let (model, cores, threads, sockets) = parse_cpuinfo(&text);
        if let Some(m) = model {
            d.insert("cpu_model".into(), m);
        }
        d.insert("cpu_threads".into(), threads.to_string());
        if cores > 0 {
            d.insert("cpu_cores".into(), cores.to_string());
        }
        if sockets > 0 {
            d.insert("cpu_sockets".into(), sockets.to_string());
        }
    }
    if let Some(kb) = std::fs::read_to_string(c.procfs.join("meminfo"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
    {
        d.insert("memory_bytes".into(), (kb * 1024).to_string());
    }
    if let Some(os) = std::fs::read_to_string("/etc/os-release").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
    }) {
        d.insert("os".into(), os);
    }
    let uname = rustix::system::uname();
    d.insert("kernel".into(), uname.release().to_string_lossy().into_owned());
    d.insert("arch".into(), uname.machine().to_string_lossy().into_owned());
    let (addresses, macs) = addresses(&c.sysfs);
    if !addresses.is_empty() {
        d.insert("addresses".into(), addresses.join(", "));
    }
    if !macs.is_empty() {
        d.insert("macs".into(), macs.join(", "));
    }
    let mut items = vec![host];
    items.extend(disks(&c.sysfs));
    items
}

/// (model, physical cores, logical CPUs, sockets) from `/proc/cpuinfo`.
fn parse_cpuinfo(text: &str) -> (Option<String>, usize, usize, usize) {
    let mut model = None;
    let mut threads = 0;
    let mut cores = std::collections::BTreeSet::new();
    let mut sockets = std::collections::BTreeSet::new();
    let mut socket = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => threads += 1,
            "model name" | "Model" if model.is_none() => model = Some(v.to_string()),
            "physical id" => {
                socket = v.to_string();
                sockets.insert(v.to_string());
            }
            "core id" => {
                cores.insert((socket.clone(), v.to_string()));
            }
            _ => {}
        }
    }
    (model, cores.len(), threads, sockets.len())
}

/// ("eth0 10.0.0.5/24", "eth0 52:54:00:12:34:56") for every interface but loopback.
fn addresses(sysfs: &Path) -> (Vec<String>, Vec<String>) {
    let mut ips = Vec::new();
    let mut macs = Vec::new();
    let Ok(networks) = sysinfo::Networks::new_with_refreshed_list() else {
        return (ips, macs);
    };
    let mut names: Vec<_> = networks
        .iter()
        .map(|(n, data)| (n.to_string_lossy().into_owned(), data))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, data) in names {
        if name == "lo" {
            continue;
        }
        for net in data.ip_networks() {
            if !net.addr.is_loopback() {
                ips.push(format!("{name} {}/{}", net.addr, net.prefix));
            }
        }
        let mac = attr(&sysfs.join("class/net").join(&name).join("address"))
            .unwrap_or_else(|| data.mac_address().to_string());
        if mac != "00:00:00:00:00:00" {
            macs.push(format!("{name} {mac}"));
        }
    }
    (ips, macs)
}

/// Whole disks under `/sys/block`: no partitions, loop, RAM or mapper devices.
fn disks(sysfs: &Path) -> Vec<InventoryItem> {
    let Ok(dir) = std::fs::read_dir(sysfs.join("block")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let skip = ["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"];
    let mut out = Vec::new();
    for name in names {
        if skip.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let base = sysfs.join("block").join(&name);
        let mut d = item(&format!("host/disk/{name}"), "host", "disk", &name);
        let udev = udev_properties(&base);
        d.vendor = attr(&base.join("device/vendor")).unwrap_or_default();
        d.model = attr(&base.join("device/model"))
            .or_else(|| udev.get("ID_MODEL").cloned())
            .unwrap_or_default();
        d.serial = attr(&base.join("device/serial"))
            .or_else(|| attr(&base.join("serial")))
            .or_else(|| udev.get("ID_SERIAL_SHORT").cloned())
            .unwrap_or_default();
        d.firmware = attr(&base.join("device/firmware_rev"))
            .or_else(|| attr(&base.join("device/rev")))
            .unwrap_or_default();
        if let Some(sectors) = attr(&base.join("size")).and_then(|s| s.parse::<u64>().ok()) {
            d.details.insert("size_bytes".into(), (sectors * 512).to_string());
        }
        if let Some(r) = attr(&base.join("queue/rotational")) {
            d.details
                .insert("rotational".into(), if r == "1" { "yes" } else { "no" }.into());
        }
        out.push(d);
    }
    out
}

/// What udev recorded of a block device (`/run/udev/data/b<major>:<minor>`),
/// readable by every user where sysfs serials are not.
fn udev_properties(block: &Path) -> BTreeMap<String, String> {
    let Some(dev) = attr(&block.join("dev")) else {
        return BTreeMap::new();
    };
    std::fs::read_to_string(format!("/run/udev/data/b{dev}"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dmi_cpus_memory_and_disks_from_the_given_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("sys");
        let proc = dir.path().join("proc");
        let dmi = sys.join("class/dmi/id");
        std::fs::create_dir_all(&dmi).expect("mkdir");
        for (f, v) in [
            ("sys_vendor", "Inspur\n"),
            ("product_name", "NF5280M6\n"),
            ("product_serial", "220394518\n"),
            ("bios_version", "06.00.01\n"),
            ("board_serial", "To be filled by O.E.M.\n"),
        ] {
            std::fs::write(dmi.join(f), v).expect("write");
        }
        let sda = sys.join("block/sda");
        std::fs::create_dir_all(sda.join("device")).expect("mkdir");
        std::fs::create_dir_all(sda.join("queue")).expect("mkdir");
        std::fs::write(sda.join("device/model"), "SAMSUNG MZ7L3960\n").expect("write");
        std::fs::write(sda.join("size"), "1875385008\n").expect("write");
        std::fs::write(sda.join("queue/rotational"), "0\n").expect("write");
        std::fs::create_dir_all(sys.join("block/loop0")).expect("mkdir");
        std::fs::create_dir_all(&proc).expect("mkdir");
        std::fs::write(
            proc.join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t: 0\n\n\
             processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t: 0\n\n\
             processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t: 0\n",
        )
        .expect("write");
        std::fs::write(
            proc.join("meminfo"),
            "MemTotal:       263842216 kB\nMemFree: 1 kB\n",
        )
        .expect("write");
        let c = InventoryConfig {
            sysfs: sys,
            procfs: proc,
            ..Default::default()
        };
        let items = read_host(&c, "db-01");
        let host = &items[0];
        assert_eq!((host.key.as_str(), host.name.as_str()), ("host", "db-01"));
        assert_eq!(
            (host.vendor.as_str(), host.model.as_str()),
            ("Inspur", "NF5280M6")
        );
        assert_eq!(
            (host.serial.as_str(), host.firmware.as_str()),
            ("220394518", "06.00.01")
        );
        assert!(
            !host.details.contains_key("board_serial"),
            "placeholders are left out"
        );
        assert_eq!(
            host.details.get("cpu_model").map(String::as_str),
            Some("Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz")
        );
        assert_eq!(host.details.get("cpu_threads").map(String::as_str), Some("3"));
        assert_eq!(host.details.get("cpu_cores").map(String::as_str), Some("2"));
        assert_eq!(host.details.get("cpu_sockets").map(String::as_str), Some("2"));
        assert_eq!(
            host.details.get("memory_bytes").map(String::as_str),
            Some((263_842_216u64 * 1024).to_string().as_str())
        );
        assert!(host.details.contains_key("kernel"));
        assert_eq!(items.len(), 2, "sda; loop0 is no disk: {items:?}");
        let sda = &items[1];
        assert_eq!((sda.key.as_str(), sda.parent.as_str()), ("host/disk/sda", "host"));
        assert_eq!(sda.model, "SAMSUNG MZ7L3960");
        assert_eq!(
            sda.details.get("size_bytes").map(String::as_str),
            Some("960197124096")
        );
        assert_eq!(sda.details.get("rotational").map(String::as_str), Some("no"));
    }

    #[test]
    fn the_board_moves_only_on_change() {
        let b = Board::default();
        b.set("host", vec![item("host", "", "server", "a")]);
        let g = b.generation();
        b.set("host", vec![item("host", "", "server", "a")]);
        assert_eq!(b.generation(), g);
        b.set("host", vec![item("host", "", "server", "b")]);
        assert_eq!(b.generation(), g + 1);
        assert_eq!(b.snapshot().1.len(), 1);
    }

    #[test]
    fn config_errors_name_the_key() {
        let raw: RawInventory = toml::from_str("sysfs = \"host/sys\"").expect("toml");
        let e = InventoryConfig::check(Some(raw)).expect_err("relative");
        assert!(e.contains("[inventory] sysfs"), "{e}");
        let raw: RawInventory = toml::from_str("interval = \"0s\"").expect("toml");
        assert!(InventoryConfig::check(Some(raw)).is_err());
    }
}
