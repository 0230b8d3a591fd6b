//! Sealing finished UTC days into one file per resolution, and expiry.
//!
//! A day is sealed once a pass's cutoff is past its end: its pass files
//! (and the day's earlier day files, for late samples) are merged series
//! by series into `day-YYYYMMDD-<pass>.min` and `.hour`; a pass file goes
//! once every day it touches is sealed past it. Expiry deletes whole
//! files: minute day files after `history.minute_retention`, hour day
//! files and quarantined files after `history.hour_retention`.

use std::fs;
use std::sync::Arc;

use super::codec::{self, Agg};
use super::files::{self, FileWriter, HistoryFile, Kind, Named};
use super::{DAY_MS, HOUR_MS, History, MINUTE_MS, State, io};

impl History {
    /// Seals every day that is over and has pass files newer than its
    /// day files. Returns the number of days sealed.
    pub(super) fn seal(&self, cutoff: i64) -> Result<usize, String> {
        let list = files::list(&self.dir).map_err(io(&self.dir))?;
        let sealed_through = |day: i64, hours: bool| {
            list.iter()
                .filter(|n| !n.corrupt)
                .filter_map(|n| match n.kind {
                    Kind::DayMinutes { day: d, pass } if d == day && !hours => Some(pass),
                    Kind::DayHours { day: d, pass } if d == day && hours => Some(pass),
                    _ => None,
                })
                .max()
        };
        let mut days: Vec<i64> = Vec::new();
        for n in list.iter().filter(|n| !n.corrupt) {
            let Kind::Pass { pass } = n.kind else { continue };
            for day in n.span.0.div_euclid(DAY_MS)..=n.span.1.div_euclid(DAY_MS) {
                let over = (day + 1) * DAY_MS <= cutoff;
                if over && sealed_through(day, true).is_none_or(|p| p < pass) && !days.contains(&day) {
                    days.push(day);
                }
            }
        }
        days.sort_unstable();
        for &day in &days {
            self.seal_day(day, &list)?;
        }
        // Pass files every day of which is sealed past them go.
        let list = files::list(&self.dir).map_err(io(&self.dir))?;
        let mut st = self.lock();
        for n in list.iter().filter(|n| !n.corrupt) {
            let Kind::Pass { pass } = n.kind else { continue };
            let absorbed = (n.span.0.div_euclid(DAY_MS)..=n.span.1.div_euclid(DAY_MS)).all(|day| {
                list.iter().any(|d| {
                    !d.corrupt
                        && matches!(d.kind, Kind::DayHours { day: x, pass: p } if x == day && p >= pass)
                })
            });
            if absorbed {
                self.forget(&mut st, &n.path);
                let _ = fs::remove_file(&n.path);
            }
        }
        Ok(days.len())
    }

    fn seal_day(&self, day: i64, list: &[Named]) -> Result<(), String> {
        let (from, until) = (day * DAY_MS, (day + 1) * DAY_MS - 1);
        let newest = |want_hours: bool| {
            list.iter()
                .filter(|n| !n.corrupt)
                .filter(|n| match n.kind {
                    Kind::DayMinutes { day: d, .. } => d == day && !want_hours,
                    Kind::DayHours { day: d, .. } => d == day && want_hours,
                    Kind::Pass { .. } => false,
                })
                .max_by_key(|n| n.path.clone())
                .cloned()
        };
        let old_min = newest(false);
        let old_hour = newest(true);
        let base_pass = match old_hour.as_ref().map(|n| &n.kind) {
            Some(Kind::DayHours { pass, .. }) => *pass,
            _ => 0,
        };
        let mut passes: Vec<&Named> = list
            .iter()
            .filter(|n| !n.corrupt && n.span.0 <= until && n.span.1 >= from)
            .filter(|n| matches!(n.kind, Kind::Pass { pass } if pass > base_pass))
            .collect();
        passes.sort_by_key(|n| match n.kind {
            Kind::Pass { pass } => pass,
            _ => 0,
        });
        let Some(top) = passes.last().map(|n| match n.kind {
            Kind::Pass { pass } => pass,
            _ => 0,
        }) else {
            return Ok(());
        };
        let mut st = self.lock();
        let open = |n: &Named, st: &mut State| -> Result<Option<Arc<HistoryFile>>, String> {
            match self.file(st, n) {
                Ok(f) => Ok(Some(f)),
                Err(e) => {
                    self.forget(st, &n.path);
                    files::quarantine(&n.path, &e);
                    Err(format!(
                        "sealing day {}: {e}",
                        files::day_file_name(day, top, MINUTE_MS)
                    ))
                }
            }
        };
        // Sources oldest first: the day files, then the newer passes.
        let min_base = match &old_min {
            Some(n) => open(n, &mut st)?,
            None => None,
        };
        let hour_base = match &old_hour {
            Some(n) => open(n, &mut st)?,
            None => None,
        };
        let mut sources = Vec::new();
        for n in &passes {
            if let Some(f) = open(n, &mut st)? {
                sources.push((*n, f));
            }
        }
        drop(st);
        let mut hashes: Vec<u64> = Vec::new();
        for f in min_base
            .iter()
            .chain(hour_base.iter())
            .chain(sources.iter().map(|(_, f)| f))
        {
            for e in f.entries() {
                hashes.push(e?.0);
            }
        }
        hashes.sort_unstable();
        hashes.dedup();
        let mut wm = FileWriter::create(&self.dir, MINUTE_MS, top).map_err(io(&self.dir))?;
        let mut wh = FileWriter::create(&self.dir, HOUR_MS, top).map_err(io(&self.dir))?;
        let clip = |run: &mut Vec<(i64, Agg)>, unit: i64| {
            run.retain(|(s, _)| *s * unit >= from && *s * unit <= until)
        };
        let result = (|| -> Result<(), String> {
            for &h in &hashes {
                let mut through = i64::MIN;
                let mut minutes = Vec::new();
                if let (Some(f), Some(n)) = (&min_base, &old_min) {
                    f.series(&n.path, h, &mut minutes)?;
                    for (_, t) in f.find(h)? {
                        through = through.max(t);
                    }
                }
                let mut hours = Vec::new();
                if let (Some(f), Some(n)) = (&hour_base, &old_hour) {
                    f.series(&n.path, h, &mut hours)?;
                    for (_, t) in f.find(h)? {
                        through = through.max(t);
                    }
                }
                let mut fresh = Vec::new();
                for (n, f) in &sources {
                    let mut run = Vec::new();
                    f.series(&n.path, h, &mut run)?;
                    for (_, t) in f.find(h)? {
                        through = through.max(t);
                    }
                    clip(&mut run, MINUTE_MS);
                    codec::merge_runs(&mut fresh, &run);
                }
                codec::merge_runs(&mut minutes, &fresh);
                let mut fresh_hours = Vec::new();
                codec::coarsen(&fresh, MINUTE_MS, HOUR_MS, &mut fresh_hours);
                codec::merge_runs(&mut hours, &fresh_hours);
                if !minutes.is_empty() {
                    wm.block(h, through, &minutes).map_err(|e| e.to_string())?;
                }
                if !hours.is_empty() {
                    wh.block(h, through, &hours).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            wm.abandon();
            wh.abandon();
            return Err(e);
        }
        // Minutes whose day is past their retention are not kept again.
        let keep_minutes = until >= self.clock.now_ms() - self.config.minute_retention_ms;
        if keep_minutes && wm.blocks() > 0 {
            wm.finish(&files::day_file_name(day, top, MINUTE_MS))
                .map_err(io(&self.dir))?;
        } else {
            wm.abandon();
        }
        wh.finish(&files::day_file_name(day, top, HOUR_MS))
            .map_err(io(&self.dir))?;
        let mut st = self.lock();
        for old in [old_min, old_hour].into_iter().flatten() {
            self.forget(&mut st, &old.path);
            let _ = fs::remove_file(&old.path);
        }
        Ok(())
    }

    /// Deletes files past their retention. Returns how many went.
    pub(super) fn expire(&self, now: i64) -> usize {
        let Ok(list) = files::list(&self.dir) else {
            return 0;
        };
        let (minutes, hours) = (
            now - self.config.minute_retention_ms,
            now - self.config.hour_retention_ms,
        );
        let mut st = self.lock();
        let mut n = 0;
        for f in &list {
            let expired = match f.kind {
                _ if f.corrupt => f.span.1 < hours,
                Kind::DayHours { .. } => f.span.1 < hours,
                Kind::DayMinutes { .. } => f.span.1 < minutes,
                // Sealing deletes pass files it absorbed; one it never
                // could (its day's files are damaged) goes with the hours.
                Kind::Pass { .. } => f.span.1 < hours,
            };
            if expired {
                self.forget(&mut st, &f.path);
                if fs::remove_file(&f.path).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }
}
