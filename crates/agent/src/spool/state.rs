//! The spool directory's small files: `lock` (one agent per spool) and
//! `state` (the local↔wire sequence offset, the acknowledged point and the
//! clock offset the collector last measured),
//! written through a temporary file and a rename so a crash leaves the old
//! state or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::{SpoolError, io_err};
use crate::time::BootClock;

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct State {
    /// wire sequence = local sequence + offset, once a collector said where it stands.
    pub offset: Option<i64>,
    /// The highest acknowledged local sequence.
    pub acked: u64,
    /// This host's clock minus the collector's, as last measured (ms).
    pub clock_offset_ms: Option<i64>,
    /// When it was measured: the wall clock then, and this boot's clock.
    pub clock_at: Option<(i64, BootClock)>,
}

/// Takes the directory's lock; another agent holding it is an error naming the directory.
pub(super) fn lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(SpoolError::Locked(dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Reads the state file; an unreadable one is quarantined (`state.corrupt`)
/// and the spool starts unsynced, so its batches are renumbered.
pub(super) fn read(dir: &Path) -> Result<State, SpoolError> {
    let path = dir.join("state");
    match fs::read_to_string(&path) {
        Ok(text) => match parse(&text) {
            Ok(state) => Ok(state),
            Err(why) => {
                let to = dir.join("state.corrupt");
                tracing::error!(file = %path.display(), problem = %why, moved_to = %to.display(),
                    "spool state unreadable: quarantined; spooled batches will be renumbered");
                fs::rename(&path, &to).map_err(io_err(&path))?;
                Ok(State::default())
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Writes the state file (`sync`: durably).
pub(super) fn write(dir: &Path, state: State, sync: bool) -> std::io::Result<()> {
    let mut text = match state.offset {
        Some(o) => format!("offset={o}\nacked={}\n", state.acked),
        None => format!("acked={}\n", state.acked),
    };
    if let Some(c) = state.clock_offset_ms {
        text.push_str(&format!("clock_offset_ms={c}\n"));
    }
    if let Some((wall, boot)) = &state.clock_at {
        text.push_str(&format!(
            "clock_wall_ms={wall}\nclock_boot={}:{}\n",
            boot.boot_id, boot.ms
        ));
    }
    let tmp = dir.join("state.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    if sync {
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join("state"))
}

fn parse(text: &str) -> Result<State, String> {
    let mut offset = None;
    let mut acked = None;
    let mut clock_offset_ms = None;
    let mut clock_wall = None;
    let mut clock_boot = None;
    for (n, line) in text.lines().enumerate() {
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected key=value, found {line:?}", n + 1));
        };
        match k {
            "offset" => {
                offset = Some(
                    v.parse::<i64>()
                        .map_err(|e| format!("line {}: offset: {e}", n + 1))?,
                )
            }
            "acked" => {
                acked = Some(
                    v.parse::<u64>()
                        .map_err(|e| format!("line {}: acked: {e}", n + 1))?,
                )
            }
            "clock_offset_ms" => {
                clock_offset_ms = Some(
                    v.parse::<i64>()
                        .map_err(|e| format!("line {}: clock_offset_ms: {e}", n + 1))?,
                )
            }
            "clock_wall_ms" => {
                clock_wall = Some(
                    v.parse::<i64>()
                        .map_err(|e| format!("line {}: clock_wall_ms: {e}", n + 1))?,
                )
            }
            "clock_boot" => {
                let (id, ms) = v
                    .rsplit_once(':')
                    .ok_or_else(|| format!("line {}: clock_boot: expected BOOT_ID:MS", n + 1))?;
                let ms = ms
                    .parse::<i64>()
                    .map_err(|e| format!("line {}: clock_boot: {e}", n + 1))?;
                clock_boot = Some(BootClock {
                    boot_id: id.to_string(),
                    ms,
                });
            }
            _ => return Err(format!("line {}: unknown key {k:?}", n + 1)),
        }
    }
    Ok(State {
        offset,
        acked: acked.ok_or("no acked= line")?,
        clock_offset_ms,
        clock_at: clock_wall.zip(clock_boot),
    })
}
