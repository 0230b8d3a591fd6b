//! Monotonic counters turned into per-second rates at the source.

/// The previous reading of one kernel counter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter {
    prev: Option<u64>,
}

impl Counter {
    /// Records `now` and returns the increase since the previous reading.
    /// `None` on the first reading and after a reset (the counter went
    /// backwards: device re-created, driver reloaded, wrap): no rate is
    /// better than a false spike.
    pub fn delta(&mut self, now: u64) -> Option<u64> {
        let d = match self.prev {
            Some(p) if now >= p => Some(now - p),
            _ => None,
        };
        self.prev = Some(now);
        d
    }

    /// Like [`Counter::delta`], as a rate over `seconds`.
    pub fn rate(&mut self, now: u64, seconds: Option<f64>) -> Option<f64> {
        let d = self.delta(now)?;
        let s = seconds?;
        (s > 0.0).then(|| d as f64 / s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reading_and_reset_give_no_rate() {
        let mut c = Counter::default();
        assert_eq!(c.rate(100, Some(1.0)), None);
        assert_eq!(c.rate(300, Some(2.0)), Some(100.0));
        assert_eq!(c.rate(50, Some(1.0)), None, "reset must not spike");
        assert_eq!(c.rate(80, Some(1.0)), Some(30.0));
        assert_eq!(c.rate(90, None), None);
    }
}
