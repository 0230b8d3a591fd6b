//! The host collector: CPU, load, memory, swap, filesystems, disk I/O,
//! network, processes and uptime of the machine the agent runs on.
//!
//! sysinfo gives memory, swap, load, uptime and the hostname; `/proc` gives
//! what sysinfo lacks (CPU modes incl. iowait/steal, disk busy time,
//! interface errors and drops) and statvfs gives inodes, each call bounded
//! on a thread of its own ([`statfs`]: a hung network mount is reported as
//! `host_filesystem_stat_timeout 1`, never a stalled round). Counters become
//! per-second rates here, with resets handled (see [`counter`]). Series ids
//! are cached per device, so a round allocates nothing per series once the
//! devices are known.

mod counter;
pub mod hwmon;
pub mod procfs;
pub mod statfs;

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use counter::Counter;
use procfs::{CpuTimes, DiskCounters, NetCounters};
use statfs::{Answer, StatFs};

use crate::config::HostConfig;
use crate::series::{Round, SeriesRegistry, round2};

const CPU_MODES: [&str; 5] = ["user", "system", "iowait", "steal", "idle"];

struct CpuSeries {
    usage: u32,
    modes: [u32; 5],
    prev: Option<CpuTimes>,
}

struct DiskSeries {
    read_bytes: u32,
    write_bytes: u32,
    reads: u32,
    writes: u32,
    busy: u32,
    c: [Counter; 5],
}

struct NetSeries {
    ids: [u32; 8],
    c: [Counter; 8],
}

struct FsSeries {
    size: u32,
    used: u32,
    avail: u32,
    used_percent: u32,
    inodes_used_percent: u32,
    stat_timeout: u32,
}

struct Scalars {
    load1: u32,
    load5: u32,
    load15: u32,
    load1_per_core: u32,
    load5_per_core: u32,
    load15_per_core: u32,
    cpu_count: u32,
    mem_total: u32,
    mem_available: u32,
    mem_used_percent: u32,
    swap_total: u32,
    swap_used: u32,
    swap_used_percent: u32,
    processes: u32,
    uptime: u32,
}

/// Reads the host's metrics once per round.
pub struct HostCollector {
    config: HostConfig,
    sys: Option<sysinfo::System>,
    scalars: Scalars,
    cpus: Vec<Option<CpuSeries>>,
    disks: HashMap<String, Option<DiskSeries>>,
    nets: HashMap<String, Option<NetSeries>>,
    filesystems: HashMap<String, FsSeries>,
    fs_key: String,
    buf: String,
    last_round: Option<Instant>,
    round_no: u64,
    hwmon: hwmon::Hwmon,
    statfs: StatFs,
    stat_answers: Vec<Answer>,
    /// Device, mountpoint and fstype of each mount read this round.
    mount_lines: Vec<[String; 3]>,
}

fn read_into(path: &str, buf: &mut String) -> bool {
    buf.clear();
    File::open(path).and_then(|mut f| f.read_to_string(buf)).is_ok()
}

fn percent(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| round2(100.0 * part / whole))
}

impl HostCollector {
    /// A collector that defines its fixed series in `registry`.
    pub fn new(config: HostConfig, registry: &mut SeriesRegistry) -> HostCollector {
        let config_hwmon_dir = config.hwmon_dir.clone();
        let statfs = StatFs::new(std::sync::Arc::new(statfs::statvfs), config.stat_timeout);
        let mut d = |m: &str| registry.define(m, &[]);
        let scalars = Scalars {
            load1: d("host_load1"),
            load5: d("host_load5"),
            load15: d("host_load15"),
            load1_per_core: d("host_load1_per_core"),
            load5_per_core: d("host_load5_per_core"),
            load15_per_core: d("host_load15_per_core"),
            cpu_count: d("host_cpu_count"),
            mem_total: d("host_memory_total_bytes"),
            mem_available: d("host_memory_available_bytes"),
            mem_used_percent: d("host_memory_used_percent"),
            swap_total: d("host_swap_total_bytes"),
            swap_used: d("host_swap_used_bytes"),
            swap_used_percent: d("host_swap_used_percent"),
            processes: d("host_processes"),
            uptime: d("host_uptime_seconds"),
        };
        let sys = match sysinfo::System::new() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "sysinfo unavailable: no memory, swap or load metrics");
                None
            }
        };
        HostCollector {
            config,
            sys,
            scalars,
            cpus: Vec::new(),
            disks: HashMap::new(),
            nets: HashMap::new(),
            filesystems: HashMap::new(),
            fs_key: String::new(),
            buf: String::with_capacity(8192),
            last_round: None,
            round_no: 0,
            hwmon: hwmon::Hwmon::new(config_hwmon_dir),
            statfs,
            stat_answers: Vec::new(),
            mount_lines: Vec::new(),
        }
    }

    /// Reads everything once and appends the samples to `round`.
    pub fn collect(&mut self, registry: &mut SeriesRegistry, round: &mut Round) {
        let now = Instant::now();
        let seconds = self.last_round.map(|t| now.duration_since(t).as_secs_f64());
        self.last_round = Some(now);
        self.round_no += 1;
        let out = &mut round.samples;
        self.collect_cpu(registry, out);
        self.collect_system(out);
        self.collect_disks(registry, seconds, out);
        self.collect_network(registry, seconds, out);
        self.collect_filesystems(registry, out);
        self.hwmon.collect(registry, out);
    }

    fn collect_system(&mut self, out: &mut Vec<(u32, f64)>) {
        let s = &self.scalars;
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_memory();
            let total = sys.total_memory() as f64;
            let available = sys.available_memory() as f64;
            out.push((s.mem_total, total));
            out.push((s.mem_available, available));
            if let Some(p) = percent(total - available, total) {
                out.push((s.mem_used_percent, p));
            }
            let swap_total = sys.total_swap() as f64;
            let swap_used = sys.used_swap() as f64;
            out.push((s.swap_total, swap_total));
            out.push((s.swap_used, swap_used));
            out.push((s.swap_used_percent, percent(swap_used, swap_total).unwrap_or(0.0)));
        }
        // Slot 0 of `cpus` is the total; the rest are the cores /proc/stat lists.
        let cores = self.cpus.len().saturating_sub(1);
        if cores > 0 {
            out.push((s.cpu_count, cores as f64));
        }
        if let Ok(l) = sysinfo::System::load_average() {
            out.push((s.load1, l.one));
            out.push((s.load5, l.five));
            out.push((s.load15, l.fifteen));
            if cores > 0 {
                let per_core = |v: f64| round2(v / cores as f64);
                out.push((s.load1_per_core, per_core(l.one)));
                out.push((s.load5_per_core, per_core(l.five)));
                out.push((s.load15_per_core, per_core(l.fifteen)));
            }
        }
        if let Ok(up) = sysinfo::System::uptime() {
            out.push((s.uptime, up as f64));
        }
        if let Ok(dir) = std::fs::read_dir("/proc") {
            let n = dir
                .filter_map(Result::ok)
                .filter(|e| e.file_name().as_encoded_bytes().iter().all(u8::is_ascii_digit))
                .count();
            out.push((s.processes, n as f64));
        }
    }

    fn collect_cpu(&mut self, registry: &mut SeriesRegistry, out: &mut Vec<(u32, f64)>) {
        if !read_into("/proc/stat", &mut self.buf) {
            return;
        }
        let cpus = &mut self.cpus;
        procfs::parse_stat(&self.buf, |cpu, t| {
            // Slot 0 is the total, slot n+1 is cpu n.
            let slot = cpu.map_or(0, |n| n + 1);
            if cpus.len() <= slot {
                cpus.resize_with(slot + 1, || None);
            }
            let series = cpus[slot].get_or_insert_with(|| {
                let name = cpu.map_or_else(|| "total".to_string(), |n| n.to_string());
                let usage = registry.define("host_cpu_usage_percent", &[("cpu", &name)]);
                let modes = CPU_MODES
                    .map(|mode| registry.define("host_cpu_mode_percent", &[("cpu", &name), ("mode", mode)]));
                CpuSeries {
                    usage,
                    modes,
                    prev: None,
                }
            });
            let prev = series.prev.replace(t);
            let Some(p) = prev else { return };
            let (total, pt) = (t.total(), p.total());
            if total <= pt || t.idle < p.idle || t.iowait < p.iowait {
                return; // counters went backwards (CPU hot-plug): skip a round
            }
            let dt = (total - pt) as f64;
            let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
            let idle = d(t.idle, p.idle);
            let iowait = d(t.iowait, p.iowait);
            out.push((series.usage, round2(100.0 * (dt - idle - iowait).max(0.0) / dt)));
            let modes = [
                d(t.user + t.nice, p.user + p.nice),
                d(t.system + t.irq + t.softirq, p.system + p.irq + p.softirq),
                iowait,
                d(t.steal, p.steal),
                idle,
            ];
            for (id, v) in series.modes.iter().zip(modes) {
                out.push((*id, round2(100.0 * v / dt)));
            }
        });
    }

    fn collect_disks(
        &mut self,
        registry: &mut SeriesRegistry,
        seconds: Option<f64>,
        out: &mut Vec<(u32, f64)>,
    ) {
        if !read_into("/proc/diskstats", &mut self.buf) {
            return;
        }
        let disks = &mut self.disks;
        procfs::parse_diskstats(&self.buf, |dev, c: DiskCounters| {
            if !disks.contains_key(dev) {
                let whole_disk = Path::new("/sys/block").join(dev.replace('/', "!")).exists();
                let virtual_dev = ["loop", "ram", "zram", "fd"].iter().any(|p| dev.starts_with(p));
                let series = (whole_disk && !virtual_dev).then(|| {
                    let l = [("device", dev)];
                    DiskSeries {
                        read_bytes: registry.define("host_disk_read_bytes_per_second", &l),
                        write_bytes: registry.define("host_disk_write_bytes_per_second", &l),
                        reads: registry.define("host_disk_reads_per_second", &l),
                        writes: registry.define("host_disk_writes_per_second", &l),
                        busy: registry.define("host_disk_busy_percent", &l),
                        c: Default::default(),
                    }
                });
                disks.insert(dev.to_string(), series);
            }
            let Some(Some(s)) = disks.get_mut(dev) else { return };
            let values = [c.read_bytes, c.write_bytes, c.reads, c.writes, c.busy_ms];
            let ids = [s.read_bytes, s.write_bytes, s.reads, s.writes, s.busy];
            for (i, (id, v)) in ids.into_iter().zip(values).enumerate() {
                if let Some(rate) = s.c[i].rate(v, seconds) {
                    // busy: ms of I/O per second of wall time → percent.
                    let value = if i == 4 { (rate / 10.0).min(100.0) } else { rate };
                    out.push((id, round2(value)));
                }
            }
        });
    }

    fn collect_network(
        &mut self,
        registry: &mut SeriesRegistry,
        seconds: Option<f64>,
        out: &mut Vec<(u32, f64)>,
    ) {
        if !read_into("/proc/net/dev", &mut self.buf) {
            return;
        }
        let nets = &mut self.nets;
        let excluded = &self.config.exclude_interfaces;
        procfs::parse_net_dev(&self.buf, |iface, c: NetCounters| {
            if !nets.contains_key(iface) {
                let series = (!excluded.iter().any(|e| e == iface)).then(|| {
                    let i = ("interface", iface);
                    let rx = ("direction", "receive");
                    let tx = ("direction", "transmit");
                    NetSeries {
                        ids: [
                            registry.define("host_network_receive_bytes_per_second", &[i]),
                            registry.define("host_network_receive_packets_per_second", &[i]),
                            registry.define("host_network_errors_per_second", &[i, rx]),
                            registry.define("host_network_drops_per_second", &[i, rx]),
                            registry.define("host_network_transmit_bytes_per_second", &[i]),
                            registry.define("host_network_transmit_packets_per_second", &[i]),
                            registry.define("host_network_errors_per_second", &[i, tx]),
                            registry.define("host_network_drops_per_second", &[i, tx]),
                        ],
                        c: Default::default(),
                    }
                });
                nets.insert(iface.to_string(), series);
            }
            let Some(Some(s)) = nets.get_mut(iface) else {
                return;
            };
            let values = [
                c.rx_bytes,
                c.rx_packets,
                c.rx_errors,
                c.rx_drops,
                c.tx_bytes,
                c.tx_packets,
                c.tx_errors,
                c.tx_drops,
            ];
            for (i, v) in values.into_iter().enumerate() {
                if let Some(rate) = s.c[i].rate(v, seconds) {
                    out.push((s.ids[i], round2(rate)));
                }
            }
        });
    }

    fn collect_filesystems(&mut self, registry: &mut SeriesRegistry, out: &mut Vec<(u32, f64)>) {
        if !read_into("/proc/self/mounts", &mut self.buf) {
            return;
        }
        // First the mounts to read (into buffers kept between rounds), then
        // one bounded request for all of them, then their series.
        let (lines, excluded) = (&mut self.mount_lines, &self.config.exclude_fstypes);
        let mut n = 0;
        procfs::parse_mounts(&self.buf, |device, mountpoint, fstype| {
            // The same mountpoint twice (stacked mounts): report the first only.
            if excluded.iter().any(|e| e == fstype) || lines[..n].iter().any(|l| l[1] == mountpoint) {
                return;
            }
            if lines.len() == n {
                lines.push(Default::default());
            }
            for (slot, text) in lines[n].iter_mut().zip([device, mountpoint, fstype]) {
                slot.clear();
                slot.push_str(text);
            }
            n += 1;
        });
        let mounts = &self.mount_lines[..n];
        let paths: Vec<&str> = mounts.iter().map(|m| m[1].as_str()).collect();
        let answers = &mut self.stat_answers;
        self.statfs.stat_all(&paths, answers);
        let (filesystems, key) = (&mut self.filesystems, &mut self.fs_key);
        for (line, answer) in mounts.iter().zip(answers.iter()) {
            let [device, mountpoint, fstype] = [line[0].as_str(), line[1].as_str(), line[2].as_str()];
            key.clear();
            key.push_str(mountpoint);
            let define = |registry: &mut SeriesRegistry| {
                let l = [("mountpoint", mountpoint), ("device", device), ("fstype", fstype)];
                FsSeries {
                    size: registry.define("host_filesystem_size_bytes", &l),
                    used: registry.define("host_filesystem_used_bytes", &l),
                    avail: registry.define("host_filesystem_avail_bytes", &l),
                    used_percent: registry.define("host_filesystem_used_percent", &l),
                    inodes_used_percent: registry.define("host_filesystem_inodes_used_percent", &l),
                    stat_timeout: registry.define("host_filesystem_stat_timeout", &l),
                }
            };
            let st = match *answer {
                Answer::Stat(st) => st,
                Answer::Failed => continue,
                Answer::TimedOut => {
                    let fs = filesystems.entry(key.clone()).or_insert_with(|| define(registry));
                    out.push((fs.stat_timeout, 1.0));
                    continue;
                }
            };
            if st.blocks == 0 {
                continue; // nothing to fill (e.g. a bind of a pseudo fs)
            }
            let frsize = st.frsize as f64;
            let size = st.blocks as f64 * frsize;
            let free = st.bfree as f64 * frsize;
            let avail = st.bavail as f64 * frsize;
            let used = size - free;
            let fs = filesystems.entry(key.clone()).or_insert_with(|| define(registry));
            out.push((fs.stat_timeout, 0.0));
            out.push((fs.size, size));
            out.push((fs.used, used));
            out.push((fs.avail, avail));
            // As df computes it: the share of the space a user can have.
            if let Some(p) = percent(used, used + avail) {
                out.push((fs.used_percent, p));
            }
            if st.files > 0 {
                let files = st.files as f64;
                if let Some(p) = percent(files - st.ffree as f64, files) {
                    out.push((fs.inodes_used_percent, p));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    #[test]
    fn two_rounds_on_this_host_give_the_contract_metrics() {
        let config = AgentConfig::local("http://127.0.0.1:1").host;
        let mut registry = SeriesRegistry::new([]);
        let mut host = HostCollector::new(config, &mut registry);
        let mut first = Round::default();
        host.collect(&mut registry, &mut first);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let mut second = Round::default();
        host.collect(&mut registry, &mut second);
        let defs = registry.take_new();
        let metric_of = |id: u32| {
            defs.iter()
                .find(|d| d.id == id)
                .map(|d| d.metric.as_str())
                .expect("defined before use")
        };
        let names: std::collections::BTreeSet<&str> =
            second.samples.iter().map(|(id, _)| metric_of(*id)).collect();
        for m in [
            "host_cpu_usage_percent",
            "host_cpu_mode_percent",
            "host_load1",
            "host_memory_total_bytes",
            "host_memory_used_percent",
            "host_swap_used_percent",
            "host_filesystem_used_percent",
            "host_filesystem_inodes_used_percent",
            "host_processes",
            "host_uptime_seconds",
        ] {
            assert!(names.contains(m), "missing {m} in {names:?}");
        }
        // Rates need two readings: none in the first round.
        assert!(
            first
                .samples
                .iter()
                .all(|(id, _)| !metric_of(*id).ends_with("_per_second"))
        );
        for (id, v) in &second.samples {
            if metric_of(*id).ends_with("_percent") {
                assert!((0.0..=100.0).contains(v), "{} = {v}", metric_of(*id));
            }
        }
        let total_cpu = defs
            .iter()
            .find(|d| d.metric == "host_cpu_usage_percent" && d.labels.iter().any(|l| l.value == "total"))
            .expect("total cpu series");
        assert!(second.samples.iter().any(|(id, _)| *id == total_cpu.id));
    }
}
