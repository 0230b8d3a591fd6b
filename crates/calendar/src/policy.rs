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
    /// A cap on the response deadline of faults opened in `off_hours`
    /// (the users' "on non-working days, respond within 3 hours"): the
    /// earlier of the normal deadline and opening plus this. It never
    /// loosens a deadline.
    pub respond_off_hours: Option<WorkDuration>,
    /// When the cap applies.
    pub off_hours: OffHours,
}

/// When `respond_off_hours` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffHours {
    /// On weekends and holidays that are not make-up working days, judged
    /// in the calendar's zone (`off_hours = "non_working_day"`, the default).
    #[default]
    NonWorkingDay,
    /// Also evenings and early mornings of working days
    /// (`off_hours = "outside_working_hours"`).
    OutsideWorkingHours,
}

impl OffHours {
    /// Parses the config value.
    pub fn parse(s: &str) -> Result<OffHours, String> {
        match s {
            "non_working_day" => Ok(OffHours::NonWorkingDay),
            "outside_working_hours" => Ok(OffHours::OutsideWorkingHours),
            o => Err(format!(
                "{o:?}: expected \"non_working_day\" or \"outside_working_hours\""
            )),
        }
    }

    /// Whether `at` is in this scope on `calendar`.
    pub fn covers(self, calendar: &Calendar, at: Timestamp) -> bool {
        match self {
            OffHours::NonWorkingDay => {
                !calendar.is_working_day(at.to_zoned(calendar.time_zone().clone()).date())
            }
            OffHours::OutsideWorkingHours => !calendar.is_working_time(at),
        }
    }
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
            off_hours: OffHours::default(),
        };
        SeverityPolicy {
            urgent: entry(h(1), h(4)),
            general: entry(h(4), WorkDuration::work_days(1)),
            minor: entry(WorkDuration::work_days(1), WorkDuration::work_days(3)),
        }
    }
}

/// The `[severity.urgent]`, `[severity.general]` and `[severity.minor]`
/// tables as a collector config writes them; [`PolicyConfig::check`] turns
/// them into a policy, with errors naming the key. Shared by the collector
/// and `watchpostctl deadline --config`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    urgent: Option<RawEntry>,
    general: Option<RawEntry>,
    minor: Option<RawEntry>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    respond: WorkDuration,
    resolve: WorkDuration,
    respond_off_hours: Option<WorkDuration>,
    off_hours: Option<String>,
}

impl PolicyConfig {
    /// The policy: the defaults, with each table given replacing its
    /// severity's entry.
    pub fn check(self) -> Result<SeverityPolicy, String> {
        let mut policy = SeverityPolicy::default();
        for (name, raw, slot) in [
            ("urgent", self.urgent, &mut policy.urgent),
            ("general", self.general, &mut policy.general),
            ("minor", self.minor, &mut policy.minor),
        ] {
            let Some(d) = raw else { continue };
            if let (WorkDuration::Wall(respond), WorkDuration::Wall(resolve)) = (d.respond, d.resolve)
                && respond > resolve
            {
                return Err(format!(
                    "key severity.{name}: respond ({}) is later than resolve ({})",
                    d.respond, d.resolve
                ));
            }
            let off_hours = match &d.off_hours {
                Some(o) => OffHours::parse(o).map_err(|e| format!("key severity.{name}.off_hours: {e}"))?,
                None => OffHours::default(),
            };
            if d.off_hours.is_some() && d.respond_off_hours.is_none() {
                return Err(format!(
                    "key severity.{name}.off_hours: it scopes respond_off_hours, which is not set"
                ));
            }
            *slot = PolicyEntry {
                respond: d.respond,
                resolve: d.resolve,
                respond_off_hours: d.respond_off_hours,
                off_hours,
            };
        }
        Ok(policy)
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
        let mut respond = calendar.add(opened, e.respond)?;
        if let Some(cap) = e.respond_off_hours
            && e.off_hours.covers(calendar, opened)
        {
            respond = respond.min(calendar.add(opened, cap)?);
        }
        Ok(Deadlines {
            respond,
            resolve: calendar.add(opened, e.resolve)?,
        })
    }

    /// How the response deadline of `s` opened at `opened` was reached,
    /// in words: `4h`, or `3h (capped: opened on a non-working day; 4h
    /// otherwise)`, or `1h (the 3h cap of non-working days is later)`.
    pub fn explain_respond(&self, calendar: &Calendar, s: Severity, opened: Timestamp) -> String {
        let e = self.of(s);
        let Some(cap) = e
            .respond_off_hours
            .filter(|_| e.off_hours.covers(calendar, opened))
        else {
            return e.respond.to_string();
        };
        let when = match e.off_hours {
            OffHours::NonWorkingDay => "opened on a non-working day",
            OffHours::OutsideWorkingHours => "opened outside working hours",
        };
        match (calendar.add(opened, e.respond), calendar.add(opened, cap)) {
            (Ok(normal), Ok(capped)) if capped < normal => {
                format!("{cap} (capped: {when}; {} otherwise)", e.respond)
            }
            _ => format!("{} (the {cap} cap applies too, {when}, but is later)", e.respond),
        }
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
        let three = Some(WorkDuration::Wall(std::time::Duration::from_secs(3 * 3600)));
        p.general.respond_off_hours = three;
        p.urgent.respond_off_hours = three;
        p.minor.respond_off_hours = three;
        let respond = |p: &SeverityPolicy, s, at: &str| {
            p.deadlines(&cal, s, at.parse().expect("ts"))
                .expect("d")
                .respond
                .to_string()
        };
        // Saturday 10:00 Shanghai, a non-working day: general 4 h is capped at 3 h.
        assert_eq!(
            respond(&p, Severity::General, "2026-11-21T02:00:00Z"),
            "2026-11-21T05:00:00Z"
        );
        // Urgent keeps its 1 h: the cap never loosens.
        assert_eq!(
            respond(&p, Severity::Urgent, "2026-11-21T02:00:00Z"),
            "2026-11-21T03:00:00Z"
        );
        // Minor (1 workday, Monday) is capped at Saturday 13:00.
        assert_eq!(
            respond(&p, Severity::Minor, "2026-11-21T02:00:00Z"),
            "2026-11-21T05:00:00Z"
        );
        // Friday 10:00: a working day → 4 h.
        assert_eq!(
            respond(&p, Severity::General, "2026-11-20T02:00:00Z"),
            "2026-11-20T06:00:00Z"
        );
        // Tuesday 20:00, a working day's evening: the default scope leaves
        // its normal 4 h; "outside_working_hours" caps it at 3 h.
        assert_eq!(
            respond(&p, Severity::General, "2026-11-17T12:00:00Z"),
            "2026-11-17T16:00:00Z"
        );
        p.general.off_hours = OffHours::OutsideWorkingHours;
        assert_eq!(
            respond(&p, Severity::General, "2026-11-17T12:00:00Z"),
            "2026-11-17T15:00:00Z"
        );
        assert_eq!(
            p.explain_respond(
                &cal,
                Severity::Urgent,
                "2026-11-21T02:00:00Z".parse().expect("ts")
            ),
            "1h (the 3h cap applies too, opened on a non-working day, but is later)"
        );
        assert_eq!(
            p.explain_respond(&cal, Severity::Minor, "2026-11-21T02:00:00Z".parse().expect("ts")),
            "3h (capped: opened on a non-working day; 1 workday otherwise)"
        );
        assert_eq!(
            OffHours::parse("weekends").map_err(|e| e.contains("non_working_day")),
            Err(true)
        );
    }
}
