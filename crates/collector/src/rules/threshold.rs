//! The threshold state machine of one (rule, series): how long each tier's
//! condition has held, which tier fires, and what a new sample changes.
//! Pure: time comes only from the sample timestamps it is given.

use super::Threshold;

/// A firing fault's latest value is passed on at most this often.
const OBSERVE_EVERY_MS: i64 = 10_000;
const NOT_HOLDING: i64 = i64::MIN;

#[derive(Debug, Clone)]
pub(super) struct ThresholdState {
    pending_since: [i64; 3],
    pub(super) firing: Option<u8>,
    lowest_holding: bool,
    last_observe_ts: i64,
}

impl ThresholdState {
    /// Nothing pending, nothing firing: no need to keep it.
    pub(super) fn is_idle(&self) -> bool {
        self.firing.is_none() && self.pending_since.iter().all(|p| *p == NOT_HOLDING)
    }

    pub(super) fn new(firing: Option<u8>) -> ThresholdState {
        ThresholdState {
            pending_since: [NOT_HOLDING; 3],
            firing,
            lowest_holding: firing.is_some(),
            last_observe_ts: i64::MIN,
        }
    }
}

pub(super) enum Change {
    Open(usize),
    Raise(usize),
    Refire,
    Observe,
    Resolve,
}

pub(super) fn evaluate(t: &Threshold, st: &mut ThresholdState, ts: i64, x: f64) -> Option<Change> {
    for (i, tier) in t.tiers.iter().enumerate() {
        if tier.when.holds(x) {
            if st.pending_since[i] == NOT_HOLDING {
                st.pending_since[i] = ts;
            }
        } else {
            st.pending_since[i] = NOT_HOLDING;
        }
    }
    let ready =
        |i: usize| st.pending_since[i] != NOT_HOLDING && ts - st.pending_since[i] >= t.tiers[i].for_ms;
    let top_ready = (0..t.tiers.len()).rev().find(|i| ready(*i));
    match st.firing {
        None => {
            let i = top_ready?;
            st.firing = Some(i as u8);
            st.lowest_holding = true;
            st.last_observe_ts = ts;
            Some(Change::Open(i))
        }
        Some(f) => {
            let holding = t.tiers[0].when.holds(x);
            let recovered = match &t.recover {
                Some(c) => c.holds(x),
                None => !holding,
            };
            if recovered {
                *st = ThresholdState::new(None);
                return Some(Change::Resolve);
            }
            if let Some(i) = top_ready
                && i > usize::from(f)
            {
                st.firing = Some(i as u8);
                st.last_observe_ts = ts;
                return Some(Change::Raise(i));
            }
            let was_holding = std::mem::replace(&mut st.lowest_holding, holding);
            if holding && !was_holding {
                st.last_observe_ts = ts;
                return Some(Change::Refire);
            }
            if ts.saturating_sub(st.last_observe_ts) >= OBSERVE_EVERY_MS {
                st.last_observe_ts = ts;
                return Some(Change::Observe);
            }
            None
        }
    }
}
