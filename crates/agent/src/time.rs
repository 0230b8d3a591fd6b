//! The agent's wall clock, in one place: sample timestamps, heartbeats,
//! certificate ages. The only module that reads the system clock
//! (`clippy.toml` disallows `SystemTime::now` elsewhere).

/// Milliseconds since the Unix epoch (0 before it).
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}
