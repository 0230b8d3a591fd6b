//! Agents' clocks: how far each is off the collector's, and what is done
//! about it.
//!
//! An agent's offset (its clock minus the collector's) is measured as NTP
//! does, from heartbeats (see `Heartbeat` in the protocol): each exchange
//! gives an offset and a round trip, and the estimate is the offset of the
//! shortest round trip among the last [`KEPT`]; the hello gives a first,
//! rough one. Only heartbeats are used, never sample timestamps, so data
//! that arrives late is never mistaken for a clock that is wrong.
//!
//! [`ClockPolicy::shift`] says by how much an agent's timestamps are
//! rebased: by the offset, when the collector corrects skew and the offset
//! is beyond the tolerance; else not at all. A shared leaf.

use std::collections::VecDeque;
use std::time::Duration;

pub use watchpost_model::format_offset;

/// Exchanges the estimate looks back on.
pub const KEPT: usize = 8;

/// The round trip counted for the hello's one-way estimate: any real
/// exchange, however slow, supersedes it.
const HELLO_RTT_MS: i64 = 60_000;

/// What the collector does with an agent whose clock is off
/// (`collector.clock_skew`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    /// Rebase its timestamps by the measured offset (the default).
    Correct,
    /// Keep its timestamps; samples too far off the window are refused.
    Refuse,
}

/// `collector.clock_skew`, `clock_tolerance` and `max_clock_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPolicy {
    /// Correct or refuse.
    pub skew: Skew,
    /// Offsets up to this are left alone (ms).
    pub tolerance_ms: i64,
    /// Beyond this the built-in `agent_clock_skew` fault opens (ms).
    pub max_offset_ms: i64,
}

impl Default for ClockPolicy {
    fn default() -> Self {
        ClockPolicy {
            skew: Skew::Correct,
            tolerance_ms: 2_000,
            max_offset_ms: 30_000,
        }
    }
}

impl ClockPolicy {
    /// How much to subtract from an agent's timestamps, given its offset.
    pub fn shift(&self, offset_ms: Option<i64>) -> i64 {
        match (self.skew, offset_ms) {
            (Skew::Correct, Some(o)) if o.abs() > self.tolerance_ms => o,
            _ => 0,
        }
    }

    /// The tolerance as the welcome carries it.
    pub fn tolerance(&self) -> Duration {
        Duration::from_millis(self.tolerance_ms.max(0) as u64)
    }
}

/// One agent session's measurements.
#[derive(Debug, Clone, Default)]
pub struct ClockFilter {
    /// (round trip, offset), newest last.
    samples: VecDeque<(i64, i64)>,
}

impl ClockFilter {
    /// The hello, sent at `sent_ms` on the agent's clock, arrived at
    /// `received_ms` on ours: a first estimate, off by the one-way delay.
    pub fn hello(&mut self, sent_ms: i64, received_ms: i64) {
        if sent_ms > 0 {
            self.push(HELLO_RTT_MS, sent_ms - received_ms);
        }
    }

    /// One exchange: we sent at `t0`, the agent received at `t1` and
    /// answered at `t2` (its clock), we received at `t3`. Returns the
    /// exchange's (offset, round trip), or `None` if its times cannot be
    /// right (an answer older than its question).
    pub fn exchange(&mut self, t0: i64, t1: i64, t2: i64, t3: i64) -> Option<(i64, i64)> {
        if t0 <= 0 || t1 <= 0 || t2 < t1 || t3 < t0 {
            return None;
        }
        let rtt = (t3 - t0) - (t2 - t1);
        if rtt < 0 {
            return None;
        }
        let offset = ((t1 - t0) + (t2 - t3)) / 2;
        self.push(rtt, offset);
        Some((offset, rtt))
    }

    fn push(&mut self, rtt: i64, offset: i64) {
        if self.samples.len() == KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back((rtt, offset));
    }

    /// The estimate: the offset of the shortest round trip kept.
    pub fn offset(&self) -> Option<i64> {
        self.best().map(|(_, o)| o)
    }

    /// The round trip of the estimate, when it came from an exchange.
    pub fn rtt(&self) -> Option<i64> {
        self.best().map(|(r, _)| r).filter(|r| *r < HELLO_RTT_MS)
    }

    fn best(&self) -> Option<(i64, i64)> {
        self.samples.iter().min_by_key(|(rtt, _)| *rtt).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_measures_offset_and_round_trip_as_ntp_does() {
        let mut f = ClockFilter::default();
        // The agent is 2 h ahead; 10 ms each way; it answers 1 ms later.
        let ahead = 7_200_000;
        let (t0, t3) = (1_000_000, 1_000_021);
        let (t1, t2) = (t0 + 10 + ahead, t0 + 11 + ahead);
        assert_eq!(f.exchange(t0, t1, t2, t3), Some((ahead, 20)));
        assert_eq!(f.offset(), Some(ahead));
        assert_eq!(f.rtt(), Some(20));
        assert_eq!(f.exchange(t0, t1, t1 - 1, t3), None, "answered before asked");
    }

    #[test]
    fn the_shortest_round_trip_wins_and_the_hello_is_only_a_start() {
        let mut f = ClockFilter::default();
        f.hello(5_000_100, 5_000_000);
        assert_eq!(f.offset(), Some(100));
        assert_eq!(f.rtt(), None, "no exchange yet");
        // A slow exchange (300 ms, asymmetric) and a fast one.
        f.exchange(1_000, 1_290, 1_290, 1_300);
        f.exchange(2_000, 2_003, 2_004, 2_006);
        assert_eq!(f.offset(), Some(0));
        assert_eq!(f.rtt(), Some(5));
        for i in 0..KEPT as i64 {
            f.exchange(10_000 + i, 10_500 + i, 10_500 + i, 10_050 + i);
        }
        assert_eq!(f.offset(), Some(475), "old measurements age out");
    }

    #[test]
    fn only_offsets_beyond_the_tolerance_are_corrected() {
        let p = ClockPolicy::default();
        assert_eq!(p.shift(Some(1_500)), 0);
        assert_eq!(p.shift(Some(-7_200_000)), -7_200_000);
        assert_eq!(p.shift(None), 0);
        let refuse = ClockPolicy {
            skew: Skew::Refuse,
            ..p
        };
        assert_eq!(refuse.shift(Some(7_200_000)), 0);
        assert_eq!(format_offset(-250), "-0.250s");
    }
}
