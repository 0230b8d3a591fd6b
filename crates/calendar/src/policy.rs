//! The severity policy: how long each severity has to be responded to and
//! resolved, and the deadlines that gives on a calendar.

use jiff::Timestamp;
use watchpost_model::Severity;

use crate::{Calendar, CalendarError, WorkDuration};

/// Durations of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyEntry {
    /// Acknowledge within.
    pub respond: WorkDuration,
    /// Resolve within.
    pub resolve: WorkDuration,
    /// Acknowledge within, for faults opened outside working time (if set).
    pub respond_off_hours: Option<WorkDuration>,
}

/// Durations per severity. Defaults follow the users' O&M rules: urgent
/// 1 h / 4 h around the clock; general 4 h / 1 workday; minor 1 workday /
/// 3 workdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityPolicy {
    /// 紧急.
    pub urgent: PolicyEntry,
    /// 一般.
    pub general: PolicyEntry,
    /// 轻微.
    pub minor: PolicyEntry,
}

impl Default for SeverityPolicy {
    fn default() -> Self {
        let h = |n: u64| WorkDuration::Wall(std::time::Duration::from_secs(n * 3600));
        let entry = |respond, resolve| PolicyEntry {
            respond,
            resolve,
            respond_off_hours: None,
        };
        SeverityPolicy {
            urgent: entry(h(1), h(4)),
            general: entry(h(4), WorkDuration::WorkDays(1)),
            minor: entry(WorkDuration::WorkDays(1), WorkDuration::WorkDays(3)),
        }
    }
}

/// A fault's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Respond (acknowledge) by.
    pub respond: Timestamp,
    /// Resolve by.
    pub resolve: Timestamp,
}

impl SeverityPolicy {
    /// The entry of `s`.
    pub fn of(&self, s: Severity) -> &PolicyEntry {
        match s {
            Severity::Urgent => &self.urgent,
            Severity::General => &self.general,
            Severity::Minor => &self.minor,
        }
    }

    /// Deadlines of a fault of severity `s` opened at `opened`.
    pub fn deadlines(
        &self,
        calendar: &Calendar,
        s: Severity,
        opened: Timestamp,
    ) -> Result<Deadlines, CalendarError> {
        let e = self.of(s);
        let respond = match e.respond_off_hours {
            Some(off) if !calendar.is_working_time(opened) => off,
            _ => e.respond,
        };
        Ok(Deadlines {
            respond: calendar.add(opened, respond)?,
            resolve: calendar.add(opened, e.resolve)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_off_hours() {
        let cal = Calendar::default();
        let p = SeverityPolicy::default();
        // Friday 16:00 Shanghai.
        let opened: Timestamp = "2026-11-20T08:00:00Z".parse().expect("ts");
        let u = p.deadlines(&cal, Severity::Urgent, opened).expect("deadlines");
        assert_eq!(u.respond, "2026-11-20T09:00:00Z".parse().expect("ts"));
        assert_eq!(u.resolve, "2026-11-20T12:00:00Z".parse().expect("ts"));
        // Minor: one workday (7 h) from Friday 16:00 → Monday 16:00.
        let m = p.deadlines(&cal, Severity::Minor, opened).expect("deadlines");
        assert_eq!(m.respond, "2026-11-23T08:00:00Z".parse().expect("ts"));

        let mut p = p;
        p.general.respond_off_hours = Some(WorkDuration::Wall(std::time::Duration::from_secs(3 * 3600)));
        // Saturday 10:00 Shanghai: off hours → 3 h.
        let sat: Timestamp = "2026-11-21T02:00:00Z".parse().expect("ts");
        assert_eq!(
            p.deadlines(&cal, Severity::General, sat).expect("d").respond,
            "2026-11-21T05:00:00Z".parse().expect("ts")
        );
        // Friday 10:00: working time → 4 h.
        let fri: Timestamp = "2026-11-20T02:00:00Z".parse().expect("ts");
        assert_eq!(
            p.deadlines(&cal, Severity::General, fri).expect("d").respond,
            "2026-11-20T06:00:00Z".parse().expect("ts")
        );
    }
}
