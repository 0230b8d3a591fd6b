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

/// Where this boot's clock that never jumps stood: milliseconds since the
/// machine booted (`CLOCK_BOOTTIME`, counting suspend) and the boot's id.
/// Compared with the wall clock across agent restarts, it tells whether
/// the wall clock was set since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootClock {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// Milliseconds since boot.
    pub ms: i64,
}

/// This boot's clock now (`None` where the system has no boot id).
pub fn boot_clock() -> Option<BootClock> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Some(BootClock {
        boot_id: boot_id.trim().to_string(),
        ms: t.tv_sec.saturating_mul(1000) + t.tv_nsec / 1_000_000,
    })
}

/// How far the wall clock was set (forward +, back −) between a reading
/// `then_wall_ms`/`then` and now, if both are of this boot.
pub fn wall_clock_step(then_wall_ms: i64, then: &BootClock) -> Option<i64> {
    let now = boot_clock()?;
    if now.boot_id != then.boot_id {
        return None;
    }
    let expected = then_wall_ms + (now.ms - then.ms);
    Some(now_ms() - expected)
}
