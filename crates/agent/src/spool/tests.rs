//! The spool through its public API: on disk and in memory, across
//! restarts, full disks and damaged segments.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::Ordering;

use watchpost_proto::v1::{Label, SeriesDefinition};

use super::*;
use crate::series::Round;

fn def(id: u32, metric: &str) -> SeriesDefinition {
    SeriesDefinition {
        id,
        metric: metric.into(),
        labels: vec![Label {
            name: "a".into(),
            value: "b".into(),
        }],
    }
}

fn round(defs: Vec<SeriesDefinition>, samples: Vec<(u32, f64)>) -> Round {
    Round {
        timestamp_ms: 1_000,
        definitions: defs,
        samples,
        offsets_ms: Vec::new(),
        texts: Vec::new(),
    }
}

fn disk(dir: &Path, max_bytes: u64) -> Spool {
    Spool::open(&SpoolConfig {
        dir: Some(dir.to_path_buf()),
        max_bytes,
        memory_batches: 8,
    })
    .expect("opens")
}

fn drain(s: &mut Spool) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut after = s.acked();
    while let Some(b) = s.next_after(after) {
        after = s.local_of(b.sequence);
        out.push(b);
    }
    out
}

#[test]
fn memory_spool_renumbers_on_first_welcome_and_drops_oldest() {
    let mut s = Spool::memory(3);
    s.push(round(vec![def(1, "m")], vec![(1, 1.0)]));
    for v in 2..=5 {
        s.push(round(vec![], vec![(1, f64::from(v))]));
    }
    assert_eq!(s.stats().dropped_batches.load(Ordering::Relaxed), 2);
    s.welcome(41);
    let b = drain(&mut s);
    let seqs: Vec<u64> = b.iter().map(|b| b.sequence).collect();
    assert_eq!(seqs, [42, 43, 44]);
    assert_eq!(b[0].values, [3.0]);
    s.ack(43);
    assert_eq!(drain(&mut s).len(), 1);
}

#[test]
fn disk_spool_survives_a_restart_with_stable_series_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut s = disk(dir.path(), 1 << 20);
        let fresh = s.push(round(vec![def(1, "x"), def(2, "y")], vec![(1, 1.0), (2, 2.0)]));
        assert_eq!(fresh.len(), 2);
        s.welcome(0);
        s.push(round(vec![], vec![(2, 3.0)]));
        s.ack(1);
        s.save_state(true);
    }
    let mut s = disk(dir.path(), 1 << 20);
    assert!(s.synced());
    // The new run numbers its series differently; the spool maps them back.
    let fresh = s.push(round(vec![def(1, "y"), def(2, "z")], vec![(1, 4.0), (2, 5.0)]));
    assert_eq!(fresh.len(), 1, "only z is new");
    assert_eq!(fresh[0].id, 3);
    let b = drain(&mut s);
    assert_eq!(b.len(), 2, "batch 2 from the last run and the new one");
    assert_eq!(
        (b[0].sequence, b[0].series_ids.clone(), b[0].values.clone()),
        (2, vec![2], vec![3.0])
    );
    assert_eq!((b[1].sequence, b[1].series_ids.clone()), (3, vec![2, 3]));
}

#[test]
fn many_definitions_are_restated_in_every_segment_and_survive_acks_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 4_500u32; // more than two definitions records' worth
    let defs: Vec<SeriesDefinition> = (1..=n).map(|i| def(i, &format!("m{i}"))).collect();
    let all: Vec<(u32, f64)> = (1..=n).map(|i| (i, f64::from(i))).collect();
    {
        let mut s = disk(dir.path(), 16 << 20);
        assert_eq!(s.push(round(defs.clone(), all.clone())).len(), n as usize);
        s.welcome(0);
        // Enough batches to roll segments; acknowledging them deletes the
        // first segment, the only one where the definitions were new.
        for _ in 0..60 {
            s.push(round(vec![], all.clone()));
        }
        s.ack(50);
        s.save_state(true);
        assert_eq!(s.definition_count(), n as usize);
        assert_eq!(s.stats().dropped_batches.load(Ordering::Relaxed), 0);
    }
    let first = fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .min()
        .expect("a segment is left");
    assert_ne!(
        first,
        format!("{:020}.seg", 1),
        "the first segment was acknowledged and deleted"
    );
    let mut s = disk(dir.path(), 16 << 20);
    assert_eq!(s.definition_count(), n as usize);
    let back = s.definitions(0..n as usize);
    assert_eq!((back[0].id, back[0].metric.as_str()), (1, "m1"));
    assert_eq!((back[4_499].id, back[4_499].metric.as_str()), (4_500, "m4500"));
    assert_eq!(back[17].labels, defs[17].labels);
    // A new run defining the same series in another order gets no new ids.
    let reversed: Vec<SeriesDefinition> = (1..=n).map(|i| def(i, &format!("m{}", n + 1 - i))).collect();
    assert!(s.push(round(reversed, vec![(1, 0.5)])).is_empty());
    let b = drain(&mut s);
    assert_eq!(b.first().map(|b| b.sequence), Some(51));
    assert_eq!(b.last().map(|b| b.series_ids.clone()), Some(vec![n]));
}

#[test]
fn full_disk_spool_drops_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = disk(dir.path(), 40 << 10);
    s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
    let samples: Vec<(u32, f64)> = (0..100).map(|i| (1, f64::from(i))).collect();
    for _ in 0..200 {
        s.push(round(vec![], samples.clone()));
    }
    let st = s.stats();
    let dropped = st.dropped_batches.load(Ordering::Relaxed);
    assert!(dropped > 0);
    assert!(st.bytes.load(Ordering::Relaxed) <= 40 << 10);
    s.welcome(0);
    let b = drain(&mut s);
    assert_eq!(b.len() as u64 + dropped, 201);
    // The oldest kept batch follows the collector's last sequence.
    assert_eq!(b.last().map(|b| b.sequence), Some(b.len() as u64));
    assert_eq!(b.last().map(|b| b.values.len()), Some(100));
}

#[test]
fn torn_tail_is_cut_and_damaged_segment_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut s = disk(dir.path(), 64 << 10);
        s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
        let samples: Vec<(u32, f64)> = (0..200).map(|i| (1, f64::from(i))).collect();
        for _ in 0..20 {
            s.push(round(vec![], samples.clone()));
        }
    }
    let mut segs: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 2, "{segs:?}");
    // Flip a byte in the first segment; cut the last one mid-record.
    let mut first = fs::read(&segs[0]).expect("read");
    let mid = first.len() / 2;
    first[mid] ^= 0xff;
    fs::write(&segs[0], first).expect("write");
    let last = segs.last().expect("segments");
    let len = fs::metadata(last).expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open")
        .set_len(len - 5)
        .expect("truncate");
    let mut s = disk(dir.path(), 64 << 10);
    assert_eq!(s.stats().quarantined_segments.load(Ordering::Relaxed), 1);
    assert!(segs[0].with_extension("corrupt").exists());
    s.welcome(0);
    let b = drain(&mut s);
    assert!(!b.is_empty());
    // Every batch that comes back is whole, and the series is still known.
    assert!(b.iter().all(|b| b.values.len() == 200));
    assert_eq!(s.definition_count(), 1);
}

#[test]
fn batches_the_disk_refuses_are_counted_when_they_leave_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("spool");
    let mut s = disk(&spool_dir, 1 << 20);
    s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
    // The directory vanishes (a disk pulled, a mistaken cleanup): the
    // next segment cannot be created.
    fs::remove_dir_all(&spool_dir).expect("remove");
    let samples: Vec<(u32, f64)> = (0..2_000).map(|i| (1, f64::from(i))).collect();
    for _ in 0..(MEMORY_TAIL + 20) {
        s.push(round(vec![], samples.clone()));
    }
    let st = s.stats();
    let dropped = st.dropped_batches.load(Ordering::Relaxed);
    // All that left memory, but for the one or two written to the last segment
    // before the directory went.
    assert!((18..=21).contains(&dropped), "{dropped} dropped");
    assert_eq!(st.dropped_samples.load(Ordering::Relaxed), dropped * 2_000);
    // What is still in memory is still sent.
    s.welcome(0);
    assert!(drain(&mut s).len() >= MEMORY_TAIL);
}

#[test]
fn a_second_agent_on_the_same_spool_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = disk(dir.path(), 1 << 20);
    let second = Spool::open(&SpoolConfig {
        dir: Some(dir.path().to_path_buf()),
        max_bytes: 1 << 20,
        memory_batches: 8,
    });
    assert!(matches!(second, Err(SpoolError::Locked(_))));
}

#[test]
fn unreadable_state_is_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("state"), "offset=banana\n").expect("write");
    let s = disk(dir.path(), 1 << 20);
    assert!(!s.synced());
    assert!(dir.path().join("state.corrupt").exists());
}

#[test]
fn a_full_spool_disk_leaves_no_torn_record_and_what_follows_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(small) = super::small_disk::SmallDisk::mount(dir.path(), "256k") else {
        return;
    };
    let spool_dir = small.path.join("spool");
    let mut s = disk(&spool_dir, 1 << 20);
    s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
    let samples: Vec<(u32, f64)> = (0..100).map(|i| (1, f64::from(i))).collect();
    // Room for a few rounds, then writes fail part way through a record.
    let filler = small.fill_leaving("filler", 8 << 10);
    for _ in 0..30 {
        s.push(round(vec![], samples.clone()));
    }
    // Space returns: these are written, after whatever failed.
    fs::remove_file(&filler).expect("free");
    for _ in 0..10 {
        s.push(round(vec![], samples.clone()));
    }
    let last = s.next_sequence() - 1;
    s.save_state(true);
    drop(s);

    let mut s = disk(&spool_dir, 1 << 20);
    let corrupt: Vec<_> = fs::read_dir(&spool_dir)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt"))
        .map(|e| e.file_name())
        .collect();
    assert!(corrupt.is_empty(), "no segment was damaged: {corrupt:?}");
    s.welcome(0);
    let seqs: Vec<u64> = drain(&mut s).iter().map(|b| b.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    for seq in last - 9..=last {
        assert!(
            seqs.contains(&seq),
            "batch {seq}, written after space returned, is kept: {seqs:?}"
        );
    }
    assert!(seqs.len() < 41, "some rounds found the disk full: {seqs:?}");
}
