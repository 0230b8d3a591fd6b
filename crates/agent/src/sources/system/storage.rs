//! `[storage]`: the health of the host's disks, from `smartctl --json`
//! (smartmontools), and of its software RAID, from `/proc/mdstat`.
//!
//! SMART is read every `smart_interval` (default 10 min; smartd's own
//! default is 30), with `-n standby` so that a sleeping disk is not spun
//! up just to be asked how it is. The disks are those `smartctl
//! --scan-open` finds each time (a disk hot-plugged is picked up), or the
//! listed `devices`. RAID is read every agent interval: a degraded array
//! is news at once, and reading the file costs nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::HumanDuration;

use super::{Job, Once, push, run_tool};
use crate::series::{Measured, SharedLabels};

/// `[storage]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    #[serde(default = "yes")]
    smart: bool,
    #[serde(default)]
    devices: Vec<String>,
    smart_interval: Option<HumanDuration>,
    smartctl: Option<String>,
    #[serde(default = "yes")]
    raid: bool,
    mdstat: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

/// `[storage]`, checked.
#[derive(Debug, Clone)]
pub struct StorageWatch {
    /// Read SMART.
    pub smart: bool,
    /// (device, `-d` type) to read; empty: what `smartctl --scan-open` finds.
    pub devices: Vec<(String, Option<String>)>,
    /// How often SMART is read.
    pub smart_interval: Duration,
    /// The `smartctl` program (default: found on PATH).
    pub smartctl: String,
    /// The RAID status file, if RAID is watched (`/proc/mdstat`).
    pub mdstat: Option<PathBuf>,
}

pub(super) fn check(raw: RawStorage) -> Result<StorageWatch, String> {
    let mut devices = Vec::new();
    for (i, d) in raw.devices.iter().enumerate() {
        let mut parts = d.split_whitespace();
        let (Some(name), kind, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "[storage] devices[{}]: {d:?} must be a device, optionally with its smartctl -d type (\"/dev/sda\", \"/dev/bus/0 megaraid,1\")",
                i + 1
            ));
        };
        if !name.starts_with("/dev/") {
            return Err(format!(
                "[storage] devices[{}]: {name:?} is not under /dev/",
                i + 1
            ));
        }
        devices.push((name.to_string(), kind.map(str::to_string)));
    }
    let smart_interval = raw.smart_interval.map_or(Duration::from_secs(600), |i| i.0);
    if smart_interval < Duration::from_secs(10) {
        return Err("[storage] smart_interval must be at least 10s".to_string());
    }
    if !raw.smart && !raw.raid {
        return Err("[storage]: smart and raid are both off; remove the table instead".to_string());
    }
    Ok(StorageWatch {
        smart: raw.smart,
        devices,
        smart_interval,
        smartctl: raw.smartctl.unwrap_or_else(|| "smartctl".to_string()),
        mdstat: raw
            .raid
            .then(|| raw.mdstat.unwrap_or_else(|| PathBuf::from("/proc/mdstat"))),
    })
}

/// What one disk's SMART says, as published.
#[derive(Debug, Default, PartialEq)]
struct Health {
    model: String,
    serial: String,
    values: Vec<(&'static str, f64)>,
}

/// Reads `smartctl --json -a` of one disk; `Err` when it holds no SMART
/// data (the device could not be opened, is asleep, or has no SMART).
fn parse_smart(text: &str) -> Result<Health, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("smartctl printed no JSON: {e}"))?;
    let exit = v["smartctl"]["exit_status"].as_i64().unwrap_or(0);
    let message = v["smartctl"]["messages"][0]["string"].as_str().unwrap_or("");
    // Bits 0 and 1: the command line was refused or the device could not
    // be opened (or is in a low-power mode): nothing was read.
    if exit & 0b11 != 0 {
        return Err(if message.is_empty() {
            format!("smartctl exit status {exit}")
        } else {
            message.to_string()
        });
    }
    let mut h = Health {
        model: v["model_name"]
            .as_str()
            .or_else(|| v["scsi_product"].as_str())
            .unwrap_or("")
            .trim()
            .to_string(),
        serial: v["serial_number"].as_str().unwrap_or("").trim().to_string(),
        values: Vec::new(),
    };
    let mut put = |metric: &'static str, value: Option<f64>| {
        if let Some(x) = value {
            h.values.push((metric, x));
        }
    };
    put(
        "smart_health_passed",
        v["smart_status"]["passed"]
            .as_bool()
            .map(|p| f64::from(u8::from(p))),
    );
    put("smart_temperature_celsius", v["temperature"]["current"].as_f64());
    put("smart_power_on_hours", v["power_on_time"]["hours"].as_f64());
    let attribute = |id: u64| {
        v["ata_smart_attributes"]["table"]
            .as_array()
            .and_then(|t| t.iter().find(|a| a["id"].as_u64() == Some(id)))
            .and_then(|a| a["raw"]["value"].as_f64())
    };
    // SAS disks count grown defects where ATA counts reallocated sectors.
    put(
        "smart_reallocated_sectors",
        attribute(5).or_else(|| v["scsi_grown_defect_list"].as_f64()),
    );
    put("smart_pending_sectors", attribute(197));
    put("smart_offline_uncorrectable", attribute(198));
    let nvme = &v["nvme_smart_health_information_log"];
    put("smart_nvme_percentage_used", nvme["percentage_used"].as_f64());
    put(
        "smart_nvme_available_spare_percent",
        nvme["available_spare"].as_f64(),
    );
    put(
        "smart_nvme_available_spare_threshold_percent",
        nvme["available_spare_threshold"].as_f64(),
    );
    put("smart_nvme_critical_warning", nvme["critical_warning"].as_f64());
    put("smart_media_errors", nvme["media_errors"].as_f64());
    if h.values.is_empty() {
        return Err("the device reports no SMART data".to_string());
    }
    Ok(h)
}

/// Reads `smartctl --scan-open --json`: (device, `-d` type).
fn parse_scan(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("smartctl printed no JSON: {e}"))?;
    Ok(v["devices"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| {
                    Some((
                        d["name"].as_str()?.to_string(),
                        d["type"].as_str().map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The SMART job.
pub(super) struct Smart {
    smartctl: String,
    devices: Vec<(String, Option<String>)>,
    labels: BTreeMap<String, SharedLabels>,
    warned: Once,
}

impl Smart {
    pub(super) fn new(w: &StorageWatch) -> Option<Smart> {
        w.smart.then(|| Smart {
            smartctl: w.smartctl.clone(),
            devices: w.devices.clone(),
            labels: BTreeMap::new(),
            warned: Once::default(),
        })
    }

    fn warn(&mut self, key: &str, error: &str) {
        if self.warned.first(key) {
            tracing::warn!(
                device = key,
                error,
                "cannot read SMART; smart_* series are left out until it can"
            );
        }
    }

    fn disks(&mut self) -> Vec<(String, Option<String>)> {
        if !self.devices.is_empty() {
            return self.devices.clone();
        }
        match run_tool(
            &self.smartctl,
            &["--scan-open", "--json"],
            Duration::from_secs(30),
        )
        .and_then(|(_, text)| parse_scan(&text))
        {
            Ok(found) => {
                self.warned.clear("scan");
                found
            }
            Err(e) => {
                self.warn("scan", &e);
                Vec::new()
            }
        }
    }
}

impl Job for Smart {
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>) {
        for (device, kind) in self.disks() {
            let mut args = vec!["--json", "-a", "-n", "standby"];
            if let Some(k) = kind.as_deref() {
                args.extend(["-d", k]);
            }
            args.push(&device);
            let read =
                run_tool(&self.smartctl, &args, Duration::from_secs(60)).and_then(|(_, t)| parse_smart(&t));
            let health = match read {
                Ok(h) => h,
                Err(e) if e.contains("STANDBY") || e.contains("SLEEP") => continue, // asleep: next time
                Err(e) => {
                    let hint = if e.contains("ermission") {
                        format!("{e} (smartctl needs root or CAP_SYS_RAWIO)")
                    } else {
                        e
                    };
                    self.warn(&device, &hint);
                    continue;
                }
            };
            self.warned.clear(&device);
            let labels = self
                .labels
                .entry(format!("{device}\0{}\0{}", health.model, health.serial))
                .or_insert_with(|| {
                    let mut l = vec![("device".to_string(), device.clone())];
                    // Always both labels, so a summary's {model} and {serial} read.
                    for (k, v) in [("model", &health.model), ("serial", &health.serial)] {
                        let ok = !v.is_empty() && watchpost_model::names::check_label_value(v).is_ok();
                        l.push((k.to_string(), if ok { v.clone() } else { "unknown".into() }));
                    }
                    l.sort();
                    Arc::from(l)
                })
                .clone();
            for (metric, value) in health.values {
                push(out, metric, &labels, value, at_ms);
            }
        }
    }
}

/// One md array as `/proc/mdstat` shows it.
#[derive(Debug, Default, PartialEq)]
struct Array {
    name: String,
    level: String,
    active: bool,
    disks: u32,
    disks_up: u32,
    failed: u32,
    spares: u32,
    /// (action, percent) while a resync, recovery, reshape or check runs.
    sync: Option<(String, f64)>,
}

/// Parses `/proc/mdstat`.
fn parse_mdstat(text: &str) -> Vec<Array> {
    let mut arrays: Vec<Array> = Vec::new();
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(" : ")
            && name.starts_with("md")
            && !line.starts_with(' ')
        {
            let mut words = rest.split_whitespace();
            let state = words.next().unwrap_or("");
            let mut a = Array {
                name: name.trim().to_string(),
                active: state == "active",
                ..Array::default()
            };
            for w in words {
                if w.starts_with('(') {
                    continue; // (auto-read-only), (read-only)
                } else if w.starts_with("raid") || w == "linear" || w == "multipath" {
                    a.level = w.to_string();
                } else if w.contains('[') {
                    if w.ends_with("(F)") {
                        a.failed += 1;
                    } else if w.ends_with("(S)") {
                        a.spares += 1;
                    }
                }
            }
            arrays.push(a);
            continue;
        }
        let Some(a) = arrays.last_mut() else { continue };
        let t = line.trim();
        // "... [2/1] [U_]": disks wanted / disks working.
        if let Some(counts) = t
            .split_whitespace()
            .find(|w| w.starts_with('[') && w.contains('/') && w.ends_with(']'))
            && let Some((n, up)) = counts.trim_matches(['[', ']']).split_once('/')
        {
            a.disks = n.parse().unwrap_or(0);
            a.disks_up = up.parse().unwrap_or(0);
        }
        // "[==>......]  recovery = 12.6% (...)", or "resync=DELAYED".
        for action in ["resync", "recovery", "reshape", "check", "repair"] {
            if let Some(after) = t.split_once(action).map(|x| x.1.trim_start())
                && let Some(value) = after.strip_prefix('=')
                && let Some(percent) = value.trim_start().split('%').next()
                && let Ok(p) = percent.trim().parse::<f64>()
            {
                a.sync = Some((action.to_string(), p));
            }
        }
    }
    arrays
}

/// The RAID job.
pub(super) struct Raid {
    path: PathBuf,
    warned: Once,
}

impl Raid {
    pub(super) fn new(w: &StorageWatch) -> Option<Raid> {
        w.mdstat.clone().map(|path| Raid {
            path,
            warned: Once::default(),
        })
    }
}

impl Job for Raid {
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>) {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                // No md driver loaded: no arrays, which is most hosts.
                if e.kind() != std::io::ErrorKind::NotFound && self.warned.first("mdstat") {
                    tracing::warn!(file = %self.path.display(), error = %e, "cannot read the RAID status");
                }
                return;
            }
        };
        for a in parse_mdstat(&text) {
            let mut l = vec![("device".to_string(), a.name.clone())];
            if !a.level.is_empty() {
                l.push(("level".to_string(), a.level.clone()));
            }
            let labels: SharedLabels = l.into();
            let flag = |b: bool| f64::from(u8::from(b));
            push(out, "md_active", &labels, flag(a.active), at_ms);
            if a.disks > 0 {
                push(out, "md_disks", &labels, f64::from(a.disks), at_ms);
                push(out, "md_disks_active", &labels, f64::from(a.disks_up), at_ms);
                push(out, "md_degraded", &labels, flag(a.disks_up < a.disks), at_ms);
            }
            push(out, "md_disks_failed", &labels, f64::from(a.failed), at_ms);
            push(out, "md_disks_spare", &labels, f64::from(a.spares), at_ms);
            push(out, "md_sync_running", &labels, flag(a.sync.is_some()), at_ms);
            if let Some((action, percent)) = &a.sync {
                let mut l = labels.to_vec();
                l.push(("action".to_string(), action.clone()));
                l.sort();
                push(out, "md_sync_percent", &l.into(), *percent, at_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/storage/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn value(h: &Health, metric: &str) -> Option<f64> {
        h.values.iter().find(|(m, _)| *m == metric).map(|(_, v)| *v)
    }

    #[test]
    fn a_healthy_sata_ssd() {
        let h = parse_smart(&fixture("smart-ata-ssd.json")).expect("data");
        assert_eq!(h.model, "Samsung SSD 870 EVO 1TB");
        assert_eq!(h.serial, "S6PTNZ0R612345X");
        assert_eq!(value(&h, "smart_health_passed"), Some(1.0));
        assert_eq!(value(&h, "smart_reallocated_sectors"), Some(0.0));
        assert_eq!(
            value(&h, "smart_pending_sectors"),
            None,
            "Samsung SSDs have no attribute 197"
        );
        assert_eq!(value(&h, "smart_temperature_celsius"), Some(31.0));
        assert_eq!(value(&h, "smart_power_on_hours"), Some(14_523.0));
        assert_eq!(value(&h, "smart_nvme_percentage_used"), None);
    }

    #[test]
    fn a_failing_hard_disk() {
        let h = parse_smart(&fixture("smart-ata-failing.json")).expect("data");
        assert_eq!(value(&h, "smart_health_passed"), Some(0.0));
        assert_eq!(value(&h, "smart_reallocated_sectors"), Some(1975.0));
        assert_eq!(value(&h, "smart_pending_sectors"), Some(8.0));
        assert_eq!(value(&h, "smart_offline_uncorrectable"), Some(0.0));
    }

    #[test]
    fn a_worn_nvme_and_a_sas_disk() {
        let h = parse_smart(&fixture("smart-nvme-worn.json")).expect("data");
        assert_eq!(value(&h, "smart_nvme_percentage_used"), Some(93.0));
        assert_eq!(value(&h, "smart_nvme_available_spare_percent"), Some(64.0));
        assert_eq!(value(&h, "smart_nvme_critical_warning"), Some(0.0));
        assert_eq!(value(&h, "smart_media_errors"), Some(0.0));
        assert_eq!(value(&h, "smart_reallocated_sectors"), None);
        let s = parse_smart(&fixture("smart-sas.json")).expect("data");
        assert_eq!(s.model, "ST4000NM0025");
        assert_eq!(value(&s, "smart_reallocated_sectors"), Some(12.0));
        assert_eq!(value(&s, "smart_health_passed"), Some(1.0));
    }

    #[test]
    fn asleep_or_unreadable_devices_hold_no_data() {
        let e = parse_smart(&fixture("smart-standby.json")).expect_err("asleep");
        assert!(e.contains("STANDBY"), "{e}");
        let e = parse_smart(&fixture("smart-permission.json")).expect_err("not root");
        assert!(e.contains("Permission denied"), "{e}");
        assert!(parse_smart("smartctl: command not found").is_err());
        // This virtual machine's own disk, as smartctl 7.3 answers for it.
        let e = parse_smart(&fixture("smart-vda-no-smart.json")).expect_err("virtio");
        assert!(e.contains("Unable to detect device type"), "{e}");
        assert!(
            parse_scan(&fixture("smart-scan-vm.json"))
                .expect("json")
                .is_empty()
        );
    }

    #[test]
    fn scan_lists_devices_with_their_types() {
        assert_eq!(
            parse_scan(&fixture("smart-scan.json")).expect("json"),
            [
                ("/dev/sda".to_string(), Some("sat".to_string())),
                ("/dev/nvme0".to_string(), Some("nvme".to_string())),
                ("/dev/bus/0".to_string(), Some("megaraid,1".to_string())),
            ]
        );
    }

    #[test]
    fn mdstat_of_healthy_degraded_recovering_and_inactive_arrays() {
        let a = parse_mdstat(&fixture("mdstat-mixed.txt"));
        assert_eq!(a.len(), 4, "{a:?}");
        assert_eq!(
            a[0],
            Array {
                name: "md0".into(),
                level: "raid1".into(),
                active: true,
                disks: 2,
                disks_up: 2,
                ..Array::default()
            }
        );
        assert_eq!(
            (a[1].level.as_str(), a[1].disks, a[1].disks_up, a[1].failed),
            ("raid5", 3, 2, 1)
        );
        assert_eq!(a[1].sync, None);
        assert_eq!(a[2].sync, Some(("recovery".to_string(), 12.6)));
        assert_eq!((a[2].disks, a[2].disks_up, a[2].spares), (2, 1, 0));
        assert!(!a[3].active);
        assert_eq!(a[3].spares, 1);
        let resync = parse_mdstat(&fixture("mdstat-resync.txt"));
        assert_eq!(resync[0].sync, Some(("resync".to_string(), 0.4)));
        assert_eq!(resync[1].sync, None, "resync=DELAYED has no percentage yet");
        assert!(parse_mdstat("Personalities : \nunused devices: <none>\n").is_empty());
    }

    #[test]
    fn device_lists_are_checked() {
        let c = |t: &str| {
            let raw: RawStorage = toml::from_str(t).map_err(|e| e.to_string())?;
            check(raw)
        };
        let w = c("devices = [\"/dev/sda\", \"/dev/bus/0 megaraid,1\"]\n").expect("valid");
        assert_eq!(
            w.devices[1],
            ("/dev/bus/0".to_string(), Some("megaraid,1".to_string()))
        );
        assert_eq!(w.mdstat, Some(PathBuf::from("/proc/mdstat")));
        assert!(
            c("devices = [\"sda\"]\n")
                .expect_err("bad")
                .contains("devices[1]")
        );
        assert!(
            c("smart_interval = \"1s\"\n")
                .expect_err("fast")
                .contains("at least 10s")
        );
        assert!(
            c("smart = false\nraid = false\n")
                .expect_err("off")
                .contains("both off")
        );
    }
}
