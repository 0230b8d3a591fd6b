//! Parsers for the Linux `/proc` files sysinfo does not cover (CPU modes,
//! disk I/O, per-interface errors and drops, mounts). Pure functions over
//! text, so they are tested on fixtures; the caller owns the read buffers.

/// One `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// All ticks (guest time is already inside user and nice).
    pub fn total(&self) -> u64 {
        self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }
}

/// Calls `f(cpu, times)` for each `cpu` line; `cpu` is `None` for the
/// aggregate line and `Some(n)` for `cpuN`.
pub fn parse_stat(text: &str, mut f: impl FnMut(Option<usize>, CpuTimes)) {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let Some(name) = parts.next() else { continue };
        let cpu = if rest.starts_with(' ') {
            // "cpu  1 2 3": the name we took is the first number.
            None
        } else {
            match name.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => continue,
            }
        };
        let mut v = [0u64; 8];
        let mut n = 0;
        let first = if cpu.is_none() { Some(name) } else { None };
        for (slot, field) in v.iter_mut().zip(first.into_iter().chain(parts)) {
            *slot = field.parse().unwrap_or(0);
            n += 1;
        }
        if n < 4 {
            continue;
        }
        f(
            cpu,
            CpuTimes {
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: v[4],
                irq: v[5],
                softirq: v[6],
                steal: v[7],
            },
        );
    }
}

/// Counters of one block device from `/proc/diskstats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskCounters {
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
    /// Milliseconds the device had I/O in flight.
    pub busy_ms: u64,
}

/// Calls `f(device, counters)` for each line of `/proc/diskstats`.
pub fn parse_diskstats(text: &str, mut f: impl FnMut(&str, DiskCounters)) {
    for line in text.lines() {
        let p: Vec<&str> = line.split_ascii_whitespace().take(13).collect();
        if p.len() < 13 {
            continue;
        }
        let n = |i: usize| p[i].parse::<u64>().unwrap_or(0);
        // Sectors in diskstats are always 512 bytes, whatever the device's own.
        f(
            p[2],
            DiskCounters {
                reads: n(3),
                read_bytes: n(5) * 512,
                writes: n(7),
                write_bytes: n(9) * 512,
                busy_ms: n(12),
            },
        );
    }
}

/// Counters of one interface from `/proc/net/dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// Calls `f(interface, counters)` for each interface in `/proc/net/dev`.
pub fn parse_net_dev(text: &str, mut f: impl FnMut(&str, NetCounters)) {
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut v = [0u64; 16];
        let mut n = 0;
        for (slot, field) in v.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = field.parse().unwrap_or(0);
            n += 1;
        }
        if n < 12 {
            continue;
        }
        f(
            name.trim(),
            NetCounters {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_drops: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_drops: v[11],
            },
        );
    }
}

/// Calls `f(device, mountpoint, fstype)` for each line of `/proc/self/mounts`,
/// with the kernel's octal escapes (`\040` for a space) decoded.
pub fn parse_mounts(text: &str, mut f: impl FnMut(&str, &str, &str)) {
    let mut mountpoint = String::new();
    for line in text.lines() {
        let mut p = line.split_ascii_whitespace();
        let (Some(device), Some(mp), Some(fstype)) = (p.next(), p.next(), p.next()) else {
            continue;
        };
        mountpoint.clear();
        unescape_octal(mp, &mut mountpoint);
        f(device, &mountpoint, fstype);
    }
}

fn unescape_octal(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v as char);
            i += 4;
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_total_and_cores() {
        let text = "cpu  10 1 5 100 4 1 1 2 0 0\ncpu0 5 0 2 50 2 0 1 1 0 0\ncpu1 5 1 3 50 2 1 0 1 0 0\nintr 1 2\nctxt 3\n";
        let mut seen = Vec::new();
        parse_stat(text, |cpu, t| seen.push((cpu, t)));
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0, None);
        assert_eq!(seen[0].1.total(), 124);
        assert_eq!(seen[0].1.steal, 2);
        assert_eq!(seen[2].0, Some(1));
        assert_eq!(seen[2].1.nice, 1);
    }

    #[test]
    fn diskstats_fields() {
        let text = "   8       0 sda 100 0 2000 0 50 0 4000 0 0 777 0 0 0 0 0\n   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0\n";
        let mut seen = Vec::new();
        parse_diskstats(text, |d, c| seen.push((d.to_string(), c)));
        assert_eq!(seen[0].0, "sda");
        assert_eq!(
            seen[0].1,
            DiskCounters {
                reads: 100,
                read_bytes: 2000 * 512,
                writes: 50,
                write_bytes: 4000 * 512,
                busy_ms: 777
            }
        );
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn net_dev_fields() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n";
        let mut seen = Vec::new();
        parse_net_dev(text, |i, c| seen.push((i.to_string(), c)));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "eth0");
        assert_eq!(seen[0].1.tx_bytes, 2000);
        assert_eq!(seen[0].1.tx_drops, 4);
        assert_eq!(seen[0].1.rx_errors, 1);
    }

    #[test]
    fn mounts_unescape() {
        let text = "/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\nproc /proc proc rw 0 0\n";
        let mut seen = Vec::new();
        parse_mounts(text, |d, m, t| {
            seen.push((d.to_string(), m.to_string(), t.to_string()))
        });
        assert_eq!(
            seen[0],
            ("/dev/sda1".into(), "/mnt/my disk".into(), "ext4".into())
        );
        assert_eq!(seen[1].2, "proc");
    }
}
