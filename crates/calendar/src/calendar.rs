//! A working calendar, read from TOML:
//!
//! ```toml
//! time_zone = "Asia/Shanghai"
//! working_days = ["mon", "tue", "wed", "thu", "fri"]
//! working_hours = ["09:00-12:00", "13:30-17:30"]
//! [[holiday]]
//! name = "国庆节"
//! from = "2026-10-01"
//! to = "2026-10-07"
//! [[workday]]            # make-up working day on a weekend (调休)
//! name = "国庆节调休"
//! date = "2026-10-10"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::WorkDuration;

/// Days searched for working time before a calendar is declared to have none.
const MAX_DAYS: usize = 3 * 366;

/// Why a calendar could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The file could not be read.
    #[error("cannot read calendar {file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// Syntax, unknown key or bad value.
    #[error("invalid calendar {file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What and where.
        message: String,
    },
    /// No working time within the search horizon.
    #[error("calendar {calendar} has no working time within {MAX_DAYS} days of {start}")]
    NoWorkingTime {
        /// The calendar (its file).
        calendar: String,
        /// Counting from.
        start: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "default_time_zone")]
    time_zone: String,
    #[serde(default = "default_days")]
    working_days: Vec<String>,
    #[serde(default = "default_hours")]
    working_hours: Vec<toml::Spanned<String>>,
    #[serde(default, rename = "holiday")]
    holidays: Vec<toml::Spanned<RawHoliday>>,
    #[serde(default, rename = "workday")]
    workdays: Vec<toml::Spanned<RawWorkday>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    from: String,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkday {
    name: String,
    date: String,
}

fn default_time_zone() -> String {
    "Asia/Shanghai".into()
}
fn default_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec()
}
fn default_hours() -> Vec<toml::Spanned<String>> {
    ["09:00-12:00", "13:30-17:30"]
        .map(|h| toml::Spanned::new(0..0, h.to_string()))
        .to_vec()
}

/// The line of byte `offset` of `text` (1-based), as `line N: `; nothing
/// for a default that is in no file.
fn at_line(text: &str, span: std::ops::Range<usize>) -> String {
    if span == (0..0) {
        return String::new();
    }
    let line = text[..span.start.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1;
    format!("line {line}: ")
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A checked working calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    time_zone: TimeZone,
    time_zone_name: String,
    /// Monday first.
    weekdays: [bool; 7],
    hours: Vec<(Time, Time)>,
    holidays: BTreeMap<Date, String>,
    workdays: BTreeMap<Date, String>,
}

fn parse_time(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok()
}

fn parse_date(what: &str, s: &str) -> Result<Date, String> {
    s.parse::<Date>()
        .map_err(|_| format!("{what}: {s:?} is not a date (YYYY-MM-DD)"))
}

impl Default for Calendar {
    /// Asia/Shanghai, Monday to Friday, 09:00–12:00 and 13:30–17:30, no holidays.
    fn default() -> Self {
        Calendar::parse("", "built-in calendar").expect("the built-in calendar is valid")
    }
}

impl Calendar {
    /// Reads a calendar file. An empty one is an error, not the default
    /// calendar: a file that lost its content must not pass unnoticed.
    pub fn load(path: &Path) -> Result<Calendar, CalendarError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CalendarError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(CalendarError::Invalid {
                file,
                message: "the file is empty: give working_days, working_hours and holidays, or leave collector.calendar out for the built-in calendar".into(),
            });
        }
        Calendar::parse(&text, &file)
    }

    /// Checks calendar text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Calendar, CalendarError> {
        let invalid = |message: String| CalendarError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: RawCalendar =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        let _ = raw.description;
        let time_zone = TimeZone::get(&raw.time_zone).map_err(|_| {
            invalid(format!(
                "time_zone: unknown time zone {:?} (use an IANA name such as \"Asia/Shanghai\")",
                raw.time_zone
            ))
        })?;
        let mut weekdays = [false; 7];
        for d in &raw.working_days {
            let i = DAY_NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(d))
                .ok_or_else(|| {
                    invalid(format!(
                        "working_days: {d:?} is not one of mon, tue, wed, thu, fri, sat, sun"
                    ))
                })?;
            weekdays[i] = true;
        }
        let mut hours = Vec::new();
        for spanned in &raw.working_hours {
            let (h, line) = (spanned.get_ref(), at_line(text, spanned.span()));
            let parsed = h
                .split_once('-')
                .and_then(|(a, b)| Some((parse_time(a)?, parse_time(b)?)));
            let (a, b) = parsed
                .ok_or_else(|| invalid(format!("{line}working_hours: {h:?} is not \"HH:MM-HH:MM\"")))?;
            if a >= b {
                return Err(invalid(format!(
                    "{line}working_hours: {h:?} ends before it starts"
                )));
            }
            hours.push((a, b, h.clone(), line));
        }
        hours.sort_by_key(|h| (h.0, h.1));
        if let Some(w) = hours.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(invalid(format!(
                "{}working_hours: {:?} and {:?} overlap",
                w[1].3, w[0].2, w[1].2
            )));
        }
        let hours: Vec<(Time, Time)> = hours.into_iter().map(|(a, b, _, _)| (a, b)).collect();
        if hours.is_empty() || !weekdays.iter().any(|d| *d) {
            return Err(invalid(
                "a calendar needs at least one working day and one period of working hours".into(),
            ));
        }
        let mut holidays = BTreeMap::new();
        for spanned in &raw.holidays {
            let (h, line) = (spanned.get_ref(), at_line(text, spanned.span()));
            let what = format!("{line}holiday {:?}", h.name);
            let from = parse_date(&what, &h.from).map_err(invalid)?;
            let to = match &h.to {
                Some(t) => parse_date(&what, t).map_err(invalid)?,
                None => from,
            };
            if to < from {
                return Err(invalid(format!("{what}: ends ({to}) before it starts ({from})")));
            }
            if to.since(from).map_or(true, |span| span.get_days() > 60) {
                return Err(invalid(format!("{what}: longer than 60 days; check the dates")));
            }
            let mut d = from;
            while d <= to {
                holidays.insert(d, h.name.clone());
                d = d.tomorrow().map_err(|e| invalid(e.to_string()))?;
            }
        }
        let mut workdays = BTreeMap::new();
        for spanned in &raw.workdays {
            let (w, line) = (spanned.get_ref(), at_line(text, spanned.span()));
            let d = parse_date(&format!("{line}workday {:?}", w.name), &w.date).map_err(invalid)?;
            if let Some(h) = holidays.get(&d) {
                return Err(invalid(format!(
                    "{line}{d} is both a holiday ({h}) and a make-up working day ({})",
                    w.name
                )));
            }
            workdays.insert(d, w.name.clone());
        }
        Ok(Calendar {
            name: file.to_string(),
            time_zone,
            time_zone_name: raw.time_zone,
            weekdays,
            hours,
            holidays,
            workdays,
        })
    }

    /// Where it came from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IANA time zone name.
    pub fn time_zone_name(&self) -> &str {
        &self.time_zone_name
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// Whether `date` is a working day: a make-up working day always is, a
    /// holiday never is, otherwise its weekday decides.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.workdays.contains_key(&date) {
            return true;
        }
        if self.holidays.contains_key(&date) {
            return false;
        }
        self.weekdays[date.weekday().to_monday_zero_offset() as usize]
    }

    /// The first day its holidays and make-up days speak for: 1 January
    /// of the earliest year they list; `None` for a calendar without them
    /// (weekdays alone, valid for any year).
    pub fn covered_from(&self) -> Option<Date> {
        let first = [self.holidays.keys().next(), self.workdays.keys().next()]
            .into_iter()
            .flatten()
            .min()?;
        Date::new(first.year(), 1, 1).ok()
    }

    /// The holiday `date` falls on, if any.
    pub fn holiday(&self, date: Date) -> Option<&str> {
        self.holidays.get(&date).map(String::as_str)
    }

    fn periods(&self, date: Date) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let tz = &self.time_zone;
        self.hours.iter().filter_map(move |(a, b)| {
            let a = date.to_datetime(*a).to_zoned(tz.clone()).ok()?.timestamp();
            let b = date.to_datetime(*b).to_zoned(tz.clone()).ok()?.timestamp();
            Some((a, b))
        })
    }

    /// Whether `at` falls inside working hours of a working day.
    pub fn is_working_time(&self, at: Timestamp) -> bool {
        let date = at.to_zoned(self.time_zone.clone()).date();
        self.is_working_day(date) && self.periods(date).any(|(a, b)| a <= at && at < b)
    }

    /// Working time in one working day.
    pub fn workday_length(&self) -> SignedDuration {
        let minutes = |t: &Time| i64::from(t.hour()) * 60 + i64::from(t.minute());
        SignedDuration::from_mins(self.hours.iter().map(|(a, b)| minutes(b) - minutes(a)).sum())
    }

    fn no_working_time(&self, start: Timestamp) -> CalendarError {
        CalendarError::NoWorkingTime {
            calendar: self.name.clone(),
            start: start.to_string(),
        }
    }

    /// `start` plus `d`: wall-clock as is, working time counted only inside
    /// working hours of working days.
    pub fn add(&self, start: Timestamp, d: WorkDuration) -> Result<Timestamp, CalendarError> {
        let work = match d {
            WorkDuration::Wall(w) => {
                let w = SignedDuration::try_from(w).map_err(|_| self.no_working_time(start))?;
                return start.checked_add(w).map_err(|_| self.no_working_time(start));
            }
            WorkDuration::WorkMinutes(m) => SignedDuration::from_mins(i64::from(m)),
            WorkDuration::WorkDayThousandths(t) => {
                SignedDuration::from_secs(self.workday_length().as_secs() * i64::from(t) / 1000)
            }
        };
        let mut remaining = work;
        let mut date = start.to_zoned(self.time_zone.clone()).date();
        for _ in 0..MAX_DAYS {
            if self.is_working_day(date) {
                for (a, b) in self.periods(date) {
                    let from = a.max(start);
                    if from >= b {
                        continue;
                    }
                    let available = b.duration_since(from);
                    if remaining <= available {
                        return from
                            .checked_add(remaining)
                            .map_err(|_| self.no_working_time(start));
                    }
                    remaining -= available;
                }
            }
            date = date.tomorrow().map_err(|_| self.no_working_time(start))?;
        }
        Err(self.no_working_time(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN_2026_OCTOBER: &str = r#"
time_zone = "Asia/Shanghai"
working_days = ["mon", "tue", "wed", "thu", "fri"]
working_hours = ["09:00-12:00", "13:30-17:30"]

[[holiday]]
name = "国庆节、中秋节"
from = "2026-10-01"
to = "2026-10-07"

[[workday]]
name = "国庆节调休"
date = "2026-10-10"
"#;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn cal() -> Calendar {
        Calendar::parse(CN_2026_OCTOBER, "test.toml").expect("valid")
    }

    #[test]
    fn working_days_weekends_holidays_and_make_up_days() {
        let c = cal();
        let d = |s: &str| s.parse::<Date>().expect("date");
        assert!(c.is_working_day(d("2026-09-30")), "Wednesday");
        assert!(!c.is_working_day(d("2026-10-01")), "National Day");
        assert!(!c.is_working_day(d("2026-10-05")), "a Monday inside the holiday");
        assert!(c.is_working_day(d("2026-10-10")), "make-up Saturday");
        assert!(!c.is_working_day(d("2026-10-11")), "Sunday");
        assert_eq!(c.holiday(d("2026-10-03")), Some("国庆节、中秋节"));
    }

    #[test]
    fn split_hours_and_time_zone() {
        let c = cal();
        assert_eq!(c.workday_length(), SignedDuration::from_hours(7));
        // 09:30 in Shanghai is 01:30 UTC.
        assert!(c.is_working_time(at("2026-09-29T01:30:00Z")));
        // 12:30 Shanghai: lunch.
        assert!(!c.is_working_time(at("2026-09-29T04:30:00Z")));
        // 4 working hours from 11:00: 1 h before lunch, 3 h after → 16:30.
        let due = c
            .add(at("2026-09-29T03:00:00Z"), WorkDuration::WorkMinutes(240))
            .expect("due");
        assert_eq!(due, at("2026-09-29T08:30:00Z"));
    }

    #[test]
    fn a_workday_before_the_national_day_holiday() {
        let c = cal();
        // Opened Wednesday 30 Sep 16:00 Shanghai (08:00Z): 1.5 h of work left that
        // day, then the holiday until 7 Oct; the other 5.5 h are 09:00–12:00 and
        // 13:30–16:00 on Thursday 8 Oct.
        let due = c
            .add(at("2026-09-30T08:00:00Z"), WorkDuration::work_days(1))
            .expect("due");
        assert_eq!(due, at("2026-10-08T08:00:00Z"));
        // Three workdays: 8 Oct 16:00 → 9 Oct 16:00 → make-up Sat 10 Oct 16:00.
        let due = c
            .add(at("2026-09-30T08:00:00Z"), WorkDuration::work_days(3))
            .expect("due");
        assert_eq!(due, at("2026-10-10T08:00:00Z"));
    }

    #[test]
    fn opened_outside_hours_starts_counting_at_the_next_working_period() {
        let c = cal();
        // Saturday 3 Oct 02:00 Shanghai, in the holiday: one work hour → 8 Oct 10:00.
        let due = c
            .add(at("2026-10-02T18:00:00Z"), WorkDuration::WorkMinutes(60))
            .expect("due");
        assert_eq!(due, at("2026-10-08T02:00:00Z"));
        // A full day ending exactly at the close of business stays on that day.
        let due = c
            .add(at("2026-09-29T01:00:00Z"), WorkDuration::work_days(1))
            .expect("due");
        assert_eq!(due, at("2026-09-29T09:30:00Z"));
    }

    #[test]
    fn wall_clock_ignores_the_calendar() {
        let c = cal();
        let due = c
            .add(
                at("2026-10-01T00:00:00Z"),
                WorkDuration::Wall(std::time::Duration::from_secs(3600)),
            )
            .expect("due");
        assert_eq!(due, at("2026-10-01T01:00:00Z"));
    }

    #[test]
    fn another_time_zone() {
        let c = Calendar::parse(
            "time_zone = \"Europe/Berlin\"\nworking_hours = [\"08:00-16:00\"]\n",
            "berlin.toml",
        )
        .expect("valid");
        // Monday 30 Mar 2026 (summer time, UTC+2) 15:00 local = 13:00Z; 2 work hours → Tuesday 09:00 local.
        let due = c
            .add(at("2026-03-30T13:00:00Z"), WorkDuration::WorkMinutes(120))
            .expect("due");
        assert_eq!(due, at("2026-03-31T07:00:00Z"));
    }

    #[test]
    fn refuses_bad_calendars() {
        let e = |t: &str| Calendar::parse(t, "bad.toml").expect_err("invalid").to_string();
        assert!(e("time_zone = \"Mars/Olympus\"\n").contains("unknown time zone"));
        assert!(e("working_days = [\"funday\"]\n").contains("funday"));
        assert!(e("working_hours = [\"17:00-09:00\"]\n").contains("ends before"));
        let overlap = e("working_hours = [\"09:00-12:00\",\n  \"11:00-13:00\"]\n");
        assert!(
            overlap.contains("bad.toml")
                && overlap.contains("line 2")
                && overlap.contains("\"09:00-12:00\" and \"11:00-13:00\" overlap"),
            "{overlap}"
        );
        assert!(e("working_hours = [\"9am-5pm\"]\n").contains("HH:MM"));
        let date = e("\n[[holiday]]\nname = \"x\"\nfrom = \"2026-13-01\"\n");
        assert!(date.contains("line 2") && date.contains("not a date"), "{date}");
        assert!(e("[[holiday]]\nname = \"x\"\nfrom = \"2026-10-01\"\n[[workday]]\nname = \"y\"\ndate = \"2026-10-01\"\n").contains("both"));
        let unknown = e("[[holiday]]\nname = \"x\"\nfrom = \"2026-10-01\"\nuntil = \"2026-10-02\"\n");
        assert!(
            unknown.contains("line 4") && unknown.contains("until"),
            "{unknown}"
        );
        assert!(e("working_days = []\n").contains("at least one"));
    }

    #[test]
    fn an_empty_file_is_an_error_and_no_working_time_names_the_calendar() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "# nothing yet\n\n").expect("write");
        let e = Calendar::load(&empty).expect_err("empty").to_string();
        assert!(e.contains("empty.toml") && e.contains("the file is empty"), "{e}");
        let all_off = dir.path().join("off.toml");
        let holidays: String = (0..19)
            .map(|i| {
                format!(
                    "[[holiday]]\nname = \"h{i}\"\nfrom = \"{}\"\nto = \"{}\"\n",
                    jiff::civil::date(2026, 1, 1)
                        .checked_add(jiff::Span::new().days(i * 61))
                        .expect("d"),
                    jiff::civil::date(2026, 1, 1)
                        .checked_add(jiff::Span::new().days(i * 61 + 60))
                        .expect("d"),
                )
            })
            .collect();
        std::fs::write(&all_off, holidays).expect("write");
        let cal = Calendar::load(&all_off).expect("valid");
        let e = cal
            .add(at("2026-01-02T01:00:00Z"), WorkDuration::work_days(1))
            .expect_err("no working time")
            .to_string();
        assert!(e.contains("off.toml") && e.contains("no working time"), "{e}");
    }
}
