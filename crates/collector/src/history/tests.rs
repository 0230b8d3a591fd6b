use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::health::MinFree;

struct At(AtomicI64);
impl Clock for At {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// 2026-11-30T00:00Z.
const T0: i64 = 1_764_460_800_000;

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<At>,
    store: Arc<HotStore>,
    history: History,
}

fn open(dir: tempfile::TempDir, now: i64) -> Fixture {
    let clock = Arc::new(At(AtomicI64::new(now)));
    let store = Arc::new(HotStore::new(3_600_000));
    let health = Arc::new(Health::new(clock.clone(), dir.path(), MinFree::Default, 60_000));
    let history = History::open(
        &dir.path().join("history"),
        store.clone(),
        clock.clone(),
        health,
        HistoryConfig::default(),
    )
    .expect("opens");
    Fixture {
        dir,
        clock,
        store,
        history,
    }
}

fn minutes(f: &Fixture, metric: &str, since: i64, until: i64, step: Step) -> Vec<(i64, Agg)> {
    let (id, _) = f.store.resolve(metric, &[("host", "a")]);
    let hash = f.history.hash_of(id).expect("hash");
    let mut missing = Vec::new();
    let out = f
        .history
        .read(hash, Some(id), since, until, step, &mut missing)
        .expect("reads");
    assert!(missing.is_empty(), "{missing:?}");
    out
}

fn expected(samples: &[(i64, f64)], unit: i64) -> Vec<(i64, Agg)> {
    let mut run = Vec::new();
    codec::fold(samples.iter().copied(), unit, &mut run);
    run.into_iter().map(|(s, a)| (s * unit, a)).collect()
}

fn same(a: &[(i64, Agg)], b: &[(i64, Agg)]) {
    assert_eq!(a.len(), b.len(), "slots");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0);
        assert_eq!(
            (x.1.count, x.1.min, x.1.max, x.1.last),
            (y.1.count, y.1.min, y.1.max, y.1.last),
            "at {}",
            x.0
        );
        assert!((x.1.sum - y.1.sum).abs() < 1e-6, "sum at {}", x.0);
    }
}

#[test]
fn passes_a_restart_and_a_late_backlog_roll_every_sample_up_once() {
    let f = open(tempfile::tempdir().expect("tempdir"), T0 + 20 * MINUTE_MS);
    let (id, _) = f.store.resolve("cpu", &[("host", "a")]);
    let mut sent = Vec::new();
    for i in 0..(20 * 6) {
        let s = (T0 + i * 10_000, (i % 13) as f64 + 0.25);
        f.store.append(id, s.0, s.1).expect("in order");
        sent.push(s);
    }
    let r = f.history.pass().expect("pass");
    assert_eq!(r.series, 1);
    // The cutoff is 30 s behind: minute 19 is not rolled up yet, but the
    // answer still has it, from the store.
    assert_eq!(r.samples, 19 * 6);
    same(
        &minutes(&f, "cpu", T0, T0 + DAY_MS, Step::Minute),
        &expected(&sent, MINUTE_MS),
    );

    // A "restart": a new store refilled as the journal would, then the marks.
    let dir = f.dir;
    let g = open(dir, T0 + 20 * MINUTE_MS);
    let (id2, _) = g.store.resolve("cpu", &[("host", "a")]);
    for s in &sent {
        g.store.append(id2, s.0, s.1).expect("in order");
    }
    assert_eq!(g.history.restore_marks().expect("marks"), 1);
    assert_eq!(g.store.rolled(id2), T0 + (19 * 6 - 1) * 10_000);
    // More samples, then the clock moves on a whole hour.
    for i in (20 * 6)..(70 * 6) {
        let s = (T0 + i * 10_000, (i % 7) as f64);
        g.store.append(id2, s.0, s.1).expect("in order");
        sent.push(s);
    }
    g.clock.0.store(T0 + 71 * MINUTE_MS, Ordering::Relaxed);
    let r = g.history.pass().expect("pass");
    assert_eq!(r.samples, 70 * 6 - 19 * 6);
    same(
        &minutes(&g, "cpu", T0, T0 + DAY_MS, Step::Minute),
        &expected(&sent, MINUTE_MS),
    );
    same(
        &minutes(&g, "cpu", T0, T0 + DAY_MS, Step::Hour),
        &expected(&sent, HOUR_MS),
    );
    // A second pass with nothing new writes nothing.
    assert_eq!(g.history.pass().expect("pass").samples, 0);
}

#[test]
fn a_backlog_longer_than_the_window_is_spilled_not_lost_and_days_seal() {
    let f = open(tempfile::tempdir().expect("tempdir"), T0 + DAY_MS + 3 * HOUR_MS);
    let (id, _) = f.store.resolve("temp", &[("host", "a")]);
    // 26 hours of samples at 30 s arrive at once: the hot store keeps one.
    let sent: Vec<(i64, f64)> = (0..(26 * 120))
        .map(|i| (T0 + i * 30_000, 20.0 + (i % 40) as f64 / 10.0))
        .collect();
    for s in &sent {
        f.store.append(id, s.0, s.1).expect("in order");
    }
    assert!(f.store.spill_bytes() > 0);
    let r = f.history.pass().expect("pass");
    assert_eq!(r.samples, sent.len());
    assert_eq!(r.sealed, 1, "the first day is over");
    let names: Vec<String> = files::list(&f.dir.path().join("history"))
        .expect("list")
        .iter()
        .map(|n| n.path.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("day-20251130-") && n.ends_with(".min")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("day-20251130-") && n.ends_with(".hour")),
        "{names:?}"
    );
    // The pass file still holds the second day's minutes.
    assert!(names.iter().any(|n| n.starts_with("pass-")), "{names:?}");
    same(
        &minutes(&f, "temp", T0, T0 + 2 * DAY_MS, Step::Minute),
        &expected(&sent, MINUTE_MS),
    );
    same(
        &minutes(&f, "temp", T0, T0 + 2 * DAY_MS, Step::Hour),
        &expected(&sent, HOUR_MS),
    );
    // The day after is over too: sealed, and the pass file goes.
    f.clock.0.store(T0 + 2 * DAY_MS + HOUR_MS, Ordering::Relaxed);
    let r = f.history.pass().expect("pass");
    assert_eq!(r.sealed, 1);
    let left = files::list(&f.dir.path().join("history")).expect("list");
    assert!(
        left.iter().all(|n| !matches!(n.kind, Kind::Pass { .. })),
        "{left:?}"
    );
    same(
        &minutes(&f, "temp", T0, T0 + 2 * DAY_MS, Step::Hour),
        &expected(&sent, HOUR_MS),
    );
    // Late samples for a sealed day reseal it; the answer merges them.
    let (late, _) = f.store.resolve("temp", &[("host", "b")]);
    f.store.append(late, T0 + 5 * MINUTE_MS, 1.0).expect("new series");
    f.history.pass().expect("pass");
    let hb = f.history.hash_of(late).expect("hash");
    let mut missing = Vec::new();
    let got = f
        .history
        .read(hb, None, T0, T0 + DAY_MS, Step::Hour, &mut missing)
        .expect("reads");
    assert_eq!(got, vec![(T0, Agg::of(1.0))]);
    // Past the retention of minutes, their day files go; hours stay.
    f.clock.0.store(T0 + 50 * DAY_MS, Ordering::Relaxed);
    f.history.pass().expect("pass");
    let left = files::list(&f.dir.path().join("history")).expect("list");
    assert!(
        left.iter().all(|n| !matches!(n.kind, Kind::DayMinutes { .. })),
        "{left:?}"
    );
    assert!(minutes(&f, "temp", T0, T0 + 2 * DAY_MS, Step::Minute).is_empty());
    same(
        &minutes(&f, "temp", T0, T0 + 2 * DAY_MS, Step::Hour),
        &expected(&sent, HOUR_MS),
    );
}

#[test]
fn a_damaged_file_is_quarantined_and_its_span_named_missing() {
    let f = open(tempfile::tempdir().expect("tempdir"), T0 + 20 * MINUTE_MS);
    let (id, _) = f.store.resolve("cpu", &[("host", "a")]);
    for i in 0..60 {
        f.store.append(id, T0 + i * 10_000, 5.0).expect("in order");
    }
    f.history.pass().expect("pass");
    let dir = f.dir.path().join("history");
    let pass = files::list(&dir)
        .expect("list")
        .into_iter()
        .find(|n| matches!(n.kind, Kind::Pass { .. }))
        .expect("a pass file");
    let mut bytes = fs::read(&pass.path).expect("read");
    bytes[30] ^= 0xff;
    fs::write(&pass.path, bytes).expect("write");
    let hash = f.history.hash_of(id).expect("hash");
    let mut missing = Vec::new();
    // Only what the store still holds past the mark is answered.
    let got = f
        .history
        .read(hash, None, T0, T0 + DAY_MS, Step::Minute, &mut missing)
        .expect("reads");
    assert!(got.is_empty());
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].file.ends_with(".wph.corrupt"), "{missing:?}");
    assert_eq!(missing[0].from, T0);
    // Named on later queries too, from the quarantined name.
    let mut again = Vec::new();
    f.history
        .read(hash, None, T0, T0 + DAY_MS, Step::Minute, &mut again)
        .expect("reads");
    assert_eq!(again, missing);
}

#[test]
fn a_full_spill_drops_what_it_cannot_hold_and_counts_it() {
    let f = open(tempfile::tempdir().expect("tempdir"), T0 + DAY_MS + 3 * HOUR_MS);
    f.store.set_spill_max(2_000);
    let (id, _) = f.store.resolve("temp", &[("host", "a")]);
    let sent: Vec<(i64, f64)> = (0..(26 * 120))
        .map(|i| (T0 + i * 30_000, 20.0 + (i % 40) as f64 / 10.0))
        .collect();
    for s in &sent {
        f.store.append(id, s.0, s.1).expect("in order");
    }
    assert!(
        f.store.spill_bytes() <= 2_000 + 4_096,
        "{}",
        f.store.spill_bytes()
    );
    let r = f.history.pass().expect("pass");
    let dropped = f.history.dropped_samples();
    assert!(dropped > 0);
    assert_eq!(
        r.samples as u64 + dropped,
        sent.len() as u64,
        "every sample is rolled up or counted as dropped"
    );
}
