//! On-call rosters: teams, their members and contacts, rotations that hand
//! over daily or weekly at a local time, and overrides for dates (holiday
//! duty, 重大节假日保障) that take precedence. Answers "who is on duty at
//! time T". Pure computation over a checked roster; read once at start.
//!
//! ```toml
//! time_zone = "Asia/Shanghai"
//! [[team]]
//! name = "platform"
//! lead = "zhang"
//! managers = ["chen"]
//! members = [ { name = "li", phone = "13800000001", email = "li@example.gov.cn" },
//!             { name = "wang", phone = "13800000002" }, { name = "chen", phone = "13800000010" } ]
//! rotation = { every = "week", handover = "09:00", handover_day = "mon", start = "2026-01-05", order = ["li", "wang"] }
//! [[team.override]]
//! from = "2026-10-01 09:00"
//! to = "2026-10-08 09:00"
//! on_call = ["wang"]
//! reason = "国庆节保障"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use watchpost_model::api;

/// Why a roster could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid on-call roster {file}: {message}")]
pub struct RosterError {
    /// The file.
    pub file: String,
    /// What and where.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    time_zone: Option<String>,
    #[serde(default, rename = "team")]
    teams: Vec<RawTeam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: String,
    lead: Option<String>,
    #[serde(default)]
    managers: Vec<String>,
    members: Vec<api::Member>,
    rotation: RawRotation,
    #[serde(default, rename = "override")]
    overrides: Vec<RawOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    every: String,
    handover: String,
    handover_day: Option<String>,
    start: String,
    order: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    from: String,
    to: String,
    on_call: Vec<String>,
    reason: String,
}

#[derive(Debug, Clone)]
struct Override {
    from: Timestamp,
    to: Timestamp,
    on_call: Vec<String>,
    reason: String,
}

/// One team, checked.
#[derive(Debug, Clone)]
pub struct Team {
    /// Team name.
    pub name: String,
    /// Second escalation step.
    pub lead: Option<String>,
    /// Top escalation step.
    pub managers: Vec<String>,
    members: BTreeMap<String, api::Member>,
    /// First hand-over, as an instant.
    first_handover: Timestamp,
    /// Days per shift: 1 or 7.
    shift_days: i64,
    handover: Time,
    order: Vec<String>,
    overrides: Vec<Override>,
}

/// All teams.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    time_zone: Option<TimeZone>,
    /// Teams in file order.
    pub teams: Vec<Team>,
}

fn parse_local(tz: &TimeZone, s: &str, what: &str) -> Result<Timestamp, String> {
    let dt: DateTime = s
        .trim()
        .replace(' ', "T")
        .parse()
        .map_err(|_| format!("{what}: {s:?} is not a local time like \"2026-10-01 09:00\""))?;
    dt.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{what}: {e}"))
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl Roster {
    /// Reads a roster; times in it are local to its `time_zone`, or to `default_tz`.
    pub fn load(path: &Path, default_tz: &TimeZone) -> Result<Roster, RosterError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RosterError {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Roster::parse(&text, &file, default_tz)
    }

    /// Checks roster text (`file` names it in errors).
    pub fn parse(text: &str, file: &str, default_tz: &TimeZone) -> Result<Roster, RosterError> {
        let err = |message: String| RosterError {
            file: file.to_string(),
            message,
        };
        let raw: RawRoster = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        let tz = match &raw.time_zone {
            Some(name) => {
                TimeZone::get(name).map_err(|_| err(format!("time_zone: unknown time zone {name:?}")))?
            }
            None => default_tz.clone(),
        };
        let mut teams = Vec::new();
        for t in raw.teams {
            let p = format!("team {:?}", t.name);
            if teams.iter().any(|x: &Team| x.name == t.name) {
                return Err(err(format!("{p} is defined twice")));
            }
            let mut members = BTreeMap::new();
            for m in t.members {
                if members.insert(m.name.clone(), m.clone()).is_some() {
                    return Err(err(format!("{p}: member {:?} is listed twice", m.name)));
                }
            }
            let known = |who: &str, role: &str| {
                if members.contains_key(who) {
                    Ok(())
                } else {
                    Err(err(format!("{p}: {role} {who:?} is not a member of the team")))
                }
            };
            for who in &t.rotation.order {
                known(who, "rotation.order names")?;
            }
            if t.rotation.order.is_empty() {
                return Err(err(format!("{p}: rotation.order is empty")));
            }
            if let Some(l) = &t.lead {
                known(l, "lead")?;
            }
            for m in &t.managers {
                known(m, "managers names")?;
            }
            let shift_days = match t.rotation.every.as_str() {
                "day" => 1,
                "week" => 7,
                other => {
                    return Err(err(format!(
                        "{p}: rotation.every {other:?} must be \"day\" or \"week\""
                    )));
                }
            };
            let handover = t
                .rotation
                .handover
                .split_once(':')
                .and_then(|(h, m)| Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok())
                .ok_or_else(|| {
                    err(format!(
                        "{p}: rotation.handover {:?} is not HH:MM",
                        t.rotation.handover
                    ))
                })?;
            let mut start: Date = t.rotation.start.parse().map_err(|_| {
                err(format!(
                    "{p}: rotation.start {:?} is not a date (YYYY-MM-DD)",
                    t.rotation.start
                ))
            })?;
            match (&t.rotation.handover_day, shift_days) {
                (Some(d), 7) => {
                    let wd = weekday(d)
                        .ok_or_else(|| err(format!("{p}: rotation.handover_day {d:?} is not mon..sun")))?;
                    while start.weekday() != wd {
                        start = start.tomorrow().map_err(|e| err(e.to_string()))?;
                    }
                }
                (Some(_), _) => {
                    return Err(err(format!(
                        "{p}: rotation.handover_day applies to weekly rotations only"
                    )));
                }
                (None, _) => {}
            }
            let first_handover = start
                .to_datetime(handover)
                .to_zoned(tz.clone())
                .map_err(|e| err(e.to_string()))?
                .timestamp();
            let mut overrides = Vec::new();
            for o in t.overrides {
                let what = format!("{p}: override {:?}", o.reason);
                let from = parse_local(&tz, &o.from, &what).map_err(err)?;
                let to = parse_local(&tz, &o.to, &what).map_err(err)?;
                if to <= from {
                    return Err(err(format!("{what}: ends before it starts")));
                }
                for who in &o.on_call {
                    known(who, "override names")?;
                }
                overrides.push(Override {
                    from,
                    to,
                    on_call: o.on_call,
                    reason: o.reason,
                });
            }
            teams.push(Team {
                name: t.name,
                lead: t.lead,
                managers: t.managers,
                members,
                first_handover,
                shift_days,
                handover,
                order: t.rotation.order,
                overrides,
            });
        }
        Ok(Roster {
            time_zone: Some(tz),
            teams,
        })
    }

    /// Who is on duty in every team at `at`.
    pub fn on_duty(&self, at: Timestamp) -> Vec<api::OnCall> {
        let tz = self.time_zone.clone().unwrap_or(TimeZone::UTC);
        self.teams.iter().map(|t| t.on_duty(at, &tz)).collect()
    }
}

impl Team {
    /// Every member, by name.
    pub fn members(&self) -> impl Iterator<Item = &api::Member> {
        self.members.values()
    }

    fn on_duty(&self, at: Timestamp, tz: &TimeZone) -> api::OnCall {
        let people = |names: &[String]| {
            names
                .iter()
                .filter_map(|n| self.members.get(n).cloned())
                .collect::<Vec<_>>()
        };
        let mut answer = api::OnCall {
            team: self.name.clone(),
            on_duty: Vec::new(),
            reason: String::new(),
            until: None,
            lead: self.lead.as_ref().and_then(|l| self.members.get(l).cloned()),
            managers: people(&self.managers),
        };
        if let Some(o) = self.overrides.iter().find(|o| o.from <= at && at < o.to) {
            answer.on_duty = people(&o.on_call);
            answer.reason = format!("override: {}", o.reason);
            answer.until = Some(o.to.to_string());
            return answer;
        }
        if at < self.first_handover {
            answer.reason = format!("the rotation starts at {}", self.first_handover);
            return answer;
        }
        // Count hand-overs in local calendar days, so a shift is a day or a
        // week of the team's clock whatever the offset does.
        let local = at.to_zoned(tz.clone());
        let first = self.first_handover.to_zoned(tz.clone());
        let mut days = first
            .date()
            .until(local.date())
            .map(|s| i64::from(s.get_days()))
            .unwrap_or(0);
        if local.time() < self.handover {
            days -= 1;
        }
        let shift = days.div_euclid(self.shift_days);
        let who = &self.order[(shift as usize) % self.order.len()];
        answer.on_duty = people(std::slice::from_ref(who));
        answer.reason = format!(
            "rotation: every {}",
            if self.shift_days == 1 { "day" } else { "week" }
        );
        let next_start_days = (shift + 1) * self.shift_days;
        answer.until = first
            .date()
            .checked_add(next_start_days.days())
            .ok()
            .and_then(|d| d.to_datetime(self.handover).to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp().to_string());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSTER: &str = r#"
time_zone = "Asia/Shanghai"

[[team]]
name = "platform"
lead = "zhang"
managers = ["chen"]
members = [ { name = "li", phone = "13800000001", email = "li@example.gov.cn" },
            { name = "wang", phone = "13800000002" },
            { name = "zhao", phone = "13800000003" },
            { name = "zhang", phone = "13800000009" }, { name = "chen", phone = "13800000010" } ]
rotation = { every = "week", handover = "09:00", handover_day = "mon", start = "2026-01-01", order = ["li", "wang", "zhao"] }

[[team.override]]
from = "2026-10-01 09:00"
to = "2026-10-08 09:00"
on_call = ["zhao", "zhang"]
reason = "国庆节保障"

[[team]]
name = "network"
members = [ { name = "sun" }, { name = "zhou" } ]
rotation = { every = "day", handover = "08:30", start = "2026-11-01", order = ["sun", "zhou"] }
"#;

    fn roster() -> Roster {
        Roster::parse(ROSTER, "oncall.toml", &TimeZone::UTC).expect("valid")
    }

    fn names(r: &Roster, at: &str) -> Vec<Vec<String>> {
        let at: Timestamp = at.parse().expect("ts");
        r.on_duty(at)
            .iter()
            .map(|o| o.on_duty.iter().map(|m| m.name.clone()).collect())
            .collect()
    }

    #[test]
    fn weekly_and_daily_rotations_hand_over_at_local_time() {
        let r = roster();
        // 2026-01-01 is a Thursday: the weekly rotation starts Monday 5 Jan 09:00 (+08:00).
        assert_eq!(
            names(&r, "2026-01-05T00:59:00Z")[0],
            Vec::<String>::new(),
            "before the first hand-over"
        );
        assert_eq!(names(&r, "2026-01-05T01:00:00Z")[0], ["li"]);
        assert_eq!(
            names(&r, "2026-01-12T00:59:00Z")[0],
            ["li"],
            "Monday 08:59: still li"
        );
        assert_eq!(names(&r, "2026-01-12T01:00:00Z")[0], ["wang"]);
        assert_eq!(names(&r, "2026-01-19T01:00:00Z")[0], ["zhao"]);
        assert_eq!(names(&r, "2026-01-26T01:00:00Z")[0], ["li"], "wraps around");
        // Daily at 08:30 Shanghai (00:30Z).
        assert_eq!(names(&r, "2026-11-01T00:30:00Z")[1], ["sun"]);
        assert_eq!(names(&r, "2026-11-02T00:29:00Z")[1], ["sun"]);
        assert_eq!(names(&r, "2026-11-02T00:30:00Z")[1], ["zhou"]);
        let at: Timestamp = "2026-11-02T00:30:00Z".parse().expect("ts");
        assert_eq!(r.on_duty(at)[1].until.as_deref(), Some("2026-11-03T00:30:00Z"));
    }

    #[test]
    fn holiday_override_wins_and_carries_contacts() {
        let r = roster();
        let at: Timestamp = "2026-10-03T12:00:00Z".parse().expect("ts");
        let o = &r.on_duty(at)[0];
        let who: Vec<&str> = o.on_duty.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(who, ["zhao", "zhang"]);
        assert!(o.reason.contains("国庆节保障"));
        assert_eq!(o.on_duty[0].phone.as_deref(), Some("13800000003"));
        assert_eq!(o.lead.as_ref().map(|l| l.name.as_str()), Some("zhang"));
        assert_eq!(o.managers[0].name, "chen");
        assert_eq!(o.managers[0].phone.as_deref(), Some("13800000010"));
        assert_ne!(
            names(&r, "2026-10-08T01:00:00Z")[0],
            ["zhao", "zhang"],
            "the override ends at 09:00 on 8 Oct"
        );
    }

    #[test]
    fn refuses_bad_rosters() {
        let e = |t: &str| {
            Roster::parse(t, "bad.toml", &TimeZone::UTC)
                .expect_err("invalid")
                .to_string()
        };
        let base = "[[team]]\nname = \"t\"\nmembers = [ { name = \"a\" } ]\n";
        assert!(e(&format!("{base}rotation = {{ every = \"month\", handover = \"09:00\", start = \"2026-01-01\", order = [\"a\"] }}\n")).contains("month"));
        assert!(e(&format!("{base}rotation = {{ every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"b\"] }}\n")).contains("\"b\" is not a member"));
        assert!(e(&format!("{base}rotation = {{ every = \"day\", handover = \"9h\", start = \"2026-01-01\", order = [\"a\"] }}\n")).contains("HH:MM"));
        assert!(e(&format!("{base}rotation = {{ every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"a\"], shift = 1 }}\n")).contains("shift"));
        let with_override = format!(
            "{base}rotation = {{ every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"a\"] }}\n[[team.override]]\nfrom = \"2026-10-02 09:00\"\nto = \"2026-10-01 09:00\"\non_call = [\"a\"]\nreason = \"x\"\n"
        );
        assert!(e(&with_override).contains("ends before"));
    }
}
