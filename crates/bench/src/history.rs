//! `history`: the rollups alone, in this process, on a simulated clock.
//!
//! - Bytes on disk per series-day: `series` series (random walks with two
//!   decimals, a third constant, like the hot-store figure) at 10 s for one
//!   UTC day, a pass every 30 minutes as the collector runs them, then the
//!   day sealed into its minute and hour files.
//! - Reading 30 days at 1 h: `read_series` series at 60 s for `days` days,
//!   sealed day by day; then one series and all of them read back through
//!   the same call `GET /api/v1/query?step=1h` makes.
//!
//! Rollup writing's share of the collector's CPU at 100,000 series is
//! printed by `ingest` (the collector counts its passes' CPU time).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use watchpost_collector::health::{Health, MinFree};
use watchpost_collector::history::{History, HistoryConfig, Step};
use watchpost_collector::store::{HotStore, SeriesId};
use watchpost_collector::time::Clock;

use crate::METRICS;

struct At(AtomicI64);
impl Clock for At {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// 2026-11-02T00:00Z, a Monday.
const DAY0: i64 = 1_793_577_600_000;
const DAY_MS: i64 = 86_400_000;

struct Sim {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<At>,
    store: Arc<HotStore>,
    history: History,
    ids: Vec<SeriesId>,
    values: Vec<f64>,
    rng: u64,
}

impl Sim {
    fn new(series: usize) -> anyhow::Result<Sim> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("history");
        let clock = Arc::new(At(AtomicI64::new(DAY0)));
        let store = Arc::new(HotStore::new(3_600_000));
        let health = Arc::new(Health::new(clock.clone(), dir.path(), MinFree::Default, 60_000));
        let history = History::open(
            &path,
            store.clone(),
            clock.clone(),
            health,
            HistoryConfig::default(),
        )
        .map_err(anyhow::Error::msg)?;
        let dev: Vec<String> = (0..series / METRICS + 1).map(|d| format!("d{d}")).collect();
        let ids = (0..series)
            .map(|s| {
                store
                    .resolve(
                        &format!("bench_metric_{}", s % METRICS),
                        &[("dev", &dev[s / METRICS]), ("host", "sim-0001")],
                    )
                    .0
            })
            .collect();
        Ok(Sim {
            _dir: dir,
            path,
            clock,
            store,
            history,
            ids,
            values: (0..series).map(|s| (s % 97) as f64).collect(),
            rng: 0x9E37_79B9_7F4A_7C15,
        })
    }

    /// Appends one round at `ts`.
    fn round(&mut self, ts: i64) {
        for (s, v) in self.values.iter_mut().enumerate() {
            if s % 3 != 0 {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                *v = (((*v + (self.rng % 101) as f64 / 100.0 - 0.5).clamp(0.0, 100.0)) * 100.0).round()
                    / 100.0;
            }
            let _ = self.store.append(self.ids[s], ts, *v);
        }
    }

    /// Runs from `from` to `to` at `step_ms`, a pass every 30 minutes;
    /// returns (samples, pass CPU seconds, append CPU seconds).
    fn run(&mut self, from: i64, to: i64, step_ms: i64) -> anyhow::Result<(u64, f64, f64)> {
        let (mut samples, mut pass_s, mut append_s) = (0u64, 0.0, 0.0);
        let mut next_pass = from + 30 * 60_000;
        let mut t = from;
        while t < to {
            let a = thread_cpu();
            self.round(t);
            append_s += thread_cpu() - a;
            samples += self.ids.len() as u64;
            t += step_ms;
            if t >= next_pass {
                self.clock.0.store(t, Ordering::Relaxed);
                let a = thread_cpu();
                self.history.pass().map_err(anyhow::Error::msg)?;
                pass_s += thread_cpu() - a;
                next_pass += 30 * 60_000;
            }
        }
        Ok((samples, pass_s, append_s))
    }

    fn bytes(&self, prefix: &str, suffix: &str) -> u64 {
        std::fs::read_dir(&self.path)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with(prefix) && n.ends_with(suffix)
                    })
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

fn thread_cpu() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

pub fn run(series: usize, days: usize, read_series: usize) -> anyhow::Result<()> {
    println!(
        "== history: bytes on disk per series-day ({series} series at 10 s for one UTC day, a pass every 30 min)"
    );
    let mut sim = Sim::new(series)?;
    let (samples, pass_s, append_s) = sim.run(DAY0, DAY0 + DAY_MS, 10_000)?;
    let passes = sim.bytes("pass-", ".wph");
    // The day is over: the next pass seals it.
    sim.clock.0.store(DAY0 + DAY_MS + 30 * 60_000, Ordering::Relaxed);
    let a = thread_cpu();
    let report = sim.history.pass().map_err(anyhow::Error::msg)?;
    let seal_s = thread_cpu() - a;
    let n = series as f64;
    println!(
        "pass files (before sealing)   {:.0} bytes per series-day ({} passes)",
        passes as f64 / n,
        48
    );
    println!(
        "sealed day, 1-minute rollups  {:.0} bytes per series-day ({:.2} bytes per minute)",
        sim.bytes("day-", ".min") as f64 / n,
        sim.bytes("day-", ".min") as f64 / n / 1440.0
    );
    println!(
        "sealed day, 1-hour rollups    {:.0} bytes per series-day",
        sim.bytes("day-", ".hour") as f64 / n
    );
    println!(
        "  so 10,000 series keep       {:.1} GB for 45 days of minutes and {:.1} GB for 400 days of hours",
        sim.bytes("day-", ".min") as f64 / n * 10_000.0 * 45.0 / 1e9,
        sim.bytes("day-", ".hour") as f64 / n * 10_000.0 * 400.0 / 1e9
    );
    println!(
        "rollup CPU                    {:.3} µs per sample in passes, {:.3} µs per sample appending to the store; sealing the day {:.2} s ({} sealed)",
        pass_s * 1e6 / samples as f64,
        append_s * 1e6 / samples as f64,
        seal_s,
        report.sealed
    );
    drop(sim);

    println!("== history: reading {days} days at 1 h ({read_series} series at 60 s, sealed day by day)");
    let mut sim = Sim::new(read_series)?;
    let started = Instant::now();
    let mut day = 0;
    while day < days {
        let from = DAY0 + day as i64 * DAY_MS;
        sim.run(from, from + DAY_MS, 60_000)?;
        day += 1;
    }
    sim.clock
        .0
        .store(DAY0 + days as i64 * DAY_MS + 30 * 60_000, Ordering::Relaxed);
    sim.history.pass().map_err(anyhow::Error::msg)?;
    println!(
        "written in                    {:.1} s ({:.0} bytes on disk per series-day, both resolutions)",
        started.elapsed().as_secs_f64(),
        sim.history.disk_bytes() as f64 / read_series as f64 / days as f64
    );
    let (since, until) = (DAY0, DAY0 + days as i64 * DAY_MS - 1);
    let hashes: Vec<(u64, SeriesId)> = sim
        .ids
        .iter()
        .map(|id| (sim.history.hash_of(*id).unwrap_or(0), *id))
        .collect();
    let read_one = |(h, id): (u64, SeriesId)| -> anyhow::Result<usize> {
        let mut missing = Vec::new();
        let pts = sim
            .history
            .read(h, Some(id), since, until, Step::Hour, &mut missing)
            .map_err(anyhow::Error::msg)?;
        Ok(pts.len())
    };
    let mut one = Vec::new();
    let mut points = 0;
    for i in 0..20 {
        let t = Instant::now();
        points = read_one(hashes[i * 37 % hashes.len()])?;
        one.push(t.elapsed().as_secs_f64() * 1e3);
    }
    one.sort_by(f64::total_cmp);
    println!(
        "one series, {days} d at 1 h       {:.2} ms median of 20 ({points} points)",
        one[one.len() / 2]
    );
    // As `GET /api/v1/query` reads many series: the files listed once.
    let t = Instant::now();
    let keys: Vec<(u64, Option<SeriesId>)> = hashes.iter().map(|(h, id)| (*h, Some(*id))).collect();
    let mut missing = Vec::new();
    let total: usize = sim
        .history
        .read_many(&keys, since, until, Step::Hour, &mut missing)
        .map_err(anyhow::Error::msg)?
        .iter()
        .map(Vec::len)
        .sum();
    println!(
        "{} series, {days} d at 1 h      {:.0} ms ({total} points)",
        hashes.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
