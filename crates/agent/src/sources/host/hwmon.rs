//! Temperatures of the host itself from the kernel's hwmon drivers
//! (`/sys/class/hwmon/hwmon*/temp*_input`, millidegrees Celsius): CPU
//! packages and cores, chipset, NVMe drives, board sensors.
//!
//! Series `host_hwmon_temperature_celsius{chip, sensor}` and, where the
//! driver gives one, `host_hwmon_temperature_critical_celsius`. The sensor
//! list is rescanned every minute (drivers load late, disks are hot-plugged).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::series::{SeriesRegistry, round2};

const RESCAN: Duration = Duration::from_secs(60);

struct Sensor {
    input: PathBuf,
    crit: Option<PathBuf>,
    chip: String,
    sensor: String,
}

/// Reads hwmon temperatures.
pub struct Hwmon {
    dir: PathBuf,
    sensors: Vec<Sensor>,
    scanned: Option<Instant>,
    ids: HashMap<(String, String, bool), u32>,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn millidegrees(path: &Path) -> Option<f64> {
    read_trimmed(path)?
        .parse::<i64>()
        .ok()
        .map(|m| round2(m as f64 / 1000.0))
}

impl Hwmon {
    /// Reads sensors under `dir` (normally `/sys/class/hwmon`).
    pub fn new(dir: PathBuf) -> Hwmon {
        Hwmon {
            dir,
            sensors: Vec::new(),
            scanned: None,
            ids: HashMap::new(),
        }
    }

    fn scan(&mut self) {
        let mut chips: Vec<(String, PathBuf)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let path = e.path();
                let name = read_trimmed(&path.join("name"))
                    .unwrap_or_else(|| e.file_name().to_string_lossy().into_owned());
                chips.push((name, path));
            }
        }
        chips.sort();
        let mut sensors = Vec::new();
        for (name, path) in &chips {
            // Two chips of one driver (two CPU sockets): tell them apart by directory.
            let chip = if chips.iter().filter(|(n, _)| n == name).count() > 1 {
                format!(
                    "{name}-{}",
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                )
            } else {
                name.clone()
            };
            let Ok(files) = std::fs::read_dir(path) else {
                continue;
            };
            let mut inputs: Vec<String> = files
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|f| f.starts_with("temp") && f.ends_with("_input"))
                .collect();
            inputs.sort();
            for input in inputs {
                let stem = input.trim_end_matches("_input").to_string();
                let sensor = read_trimmed(&path.join(format!("{stem}_label")))
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| stem.clone());
                let crit = path.join(format!("{stem}_crit"));
                sensors.push(Sensor {
                    input: path.join(&input),
                    crit: crit.exists().then_some(crit),
                    chip: chip.clone(),
                    sensor,
                });
            }
        }
        self.sensors = sensors;
        self.scanned = Some(Instant::now());
    }

    /// Appends this round's temperatures.
    pub fn collect(&mut self, registry: &mut SeriesRegistry, out: &mut Vec<(u32, f64)>) {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.scan();
        }
        for s in &self.sensors {
            for (critical, path) in [(false, Some(&s.input)), (true, s.crit.as_ref())] {
                let Some(v) = path.and_then(|p| millidegrees(p)) else {
                    continue;
                };
                let id = *self
                    .ids
                    .entry((s.chip.clone(), s.sensor.clone(), critical))
                    .or_insert_with(|| {
                        let metric = if critical {
                            "host_hwmon_temperature_critical_celsius"
                        } else {
                            "host_hwmon_temperature_celsius"
                        };
                        registry.define(metric, &[("chip", &s.chip), ("sensor", &s.sensor)])
                    });
                out.push((id, v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labelled_and_unlabelled_sensors_of_each_chip() {
        let dir = tempfile::tempdir().expect("dir");
        let chip = |n: &str, name: &str| {
            let p = dir.path().join(n);
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join("name"), format!("{name}\n")).expect("name");
            p
        };
        let a = chip("hwmon0", "coretemp");
        std::fs::write(a.join("temp1_input"), "47000\n").expect("w");
        std::fs::write(a.join("temp1_label"), "Package id 0\n").expect("w");
        std::fs::write(a.join("temp1_crit"), "100000\n").expect("w");
        let b = chip("hwmon1", "nvme");
        std::fs::write(b.join("temp1_input"), "38850\n").expect("w");
        let mut h = Hwmon::new(dir.path().to_path_buf());
        let mut reg = SeriesRegistry::new([]);
        let mut out = Vec::new();
        h.collect(&mut reg, &mut out);
        let defs = reg.take_new();
        let value_of = |metric: &str, sensor: &str| {
            let d = defs
                .iter()
                .find(|d| d.metric == metric && d.labels.iter().any(|l| l.value == sensor))
                .expect("defined");
            out.iter().find(|(id, _)| *id == d.id).map(|(_, v)| *v)
        };
        assert_eq!(
            value_of("host_hwmon_temperature_celsius", "Package id 0"),
            Some(47.0)
        );
        assert_eq!(
            value_of("host_hwmon_temperature_critical_celsius", "Package id 0"),
            Some(100.0)
        );
        assert_eq!(value_of("host_hwmon_temperature_celsius", "temp1"), Some(38.85));
        assert_eq!(out.len(), 3);
    }
}
