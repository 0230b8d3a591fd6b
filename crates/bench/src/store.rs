//! `store`: the hot store alone, in this process: where the bytes per
//! series go (compressed samples, identity and index).

use std::time::Instant;

use watchpost_collector::store::HotStore;

use crate::{METRICS, proc};

pub fn run(series: usize, samples: usize) {
    println!(
        "== hot store: {series} series x {samples} samples at 10 s (random walks with two decimals, a third constant)"
    );
    let pid = std::process::id();
    let rss0 = proc::rss_bytes(pid);
    let store = HotStore::new(3_600_000);
    let dev: Vec<String> = (0..series / METRICS + 1).map(|d| format!("d{d}")).collect();
    let metrics: Vec<String> = (0..METRICS).map(|m| format!("bench_metric_{m}")).collect();
    let ids: Vec<_> = (0..series)
        .map(|s| {
            store
                .resolve(
                    &metrics[s % METRICS],
                    &[("dev", &dev[s / METRICS]), ("host", "sim-0001")],
                )
                .0
        })
        .collect();
    let rss_index = proc::rss_bytes(pid);
    let mut values: Vec<f64> = (0..series).map(|s| (s % 97) as f64).collect();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let started = Instant::now();
    for r in 0..samples {
        for (s, v) in values.iter_mut().enumerate() {
            if s % 3 != 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *v = (((*v + (rng % 101) as f64 / 100.0 - 0.5).clamp(0.0, 100.0)) * 100.0).round() / 100.0;
            }
            let _ = store.append(ids[s], r as i64 * 10_000, *v);
        }
    }
    let elapsed = started.elapsed();
    let rss1 = proc::rss_bytes(pid);
    let n = series as f64;
    println!(
        "appends                 {:.0} samples/s on one thread",
        (series * samples) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "compressed samples      {:.0} bytes per series ({:.2} bytes per sample)",
        store.sample_heap_bytes() as f64 / n,
        store.sample_heap_bytes() as f64 / (n * samples as f64)
    );
    println!(
        "identity and index      {:.0} bytes per series (RSS growth creating the series)",
        rss_index.saturating_sub(rss0) as f64 / n
    );
    println!(
        "total                   {:.0} bytes per series (RSS growth)",
        rss1.saturating_sub(rss0) as f64 / n
    );
}
