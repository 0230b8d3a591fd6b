//! The manual inspection checklist (`collector.inspections`): what no
//! sensor sees (the UPS panel, air conditioning, fire extinguishers, doors
//! and access control, video surveillance, cabling labels), each item with
//! its scope and the days it is due.
//!
//! ```toml
//! [[item]]
//! id = "ups-panel"
//! name = "UPS 面板无告警，电池指示正常"
//! room = "A-201"            # or group = "system=社保" (hosts with that label)
//! days = "daily"            # daily | working | non-working | "mon,thu" | "month:1,15"
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use watchpost_calendar::Calendar;
use watchpost_model::inspections::InspectionItem;

/// When an item is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Every day.
    Daily,
    /// The calendar's working days (make-up days included, holidays not).
    Working,
    /// Weekends and holidays.
    NonWorking,
    /// These weekdays.
    Weekdays(BTreeSet<i8>),
    /// These days of the month (the monthly check, 按月巡检).
    MonthDays(BTreeSet<i8>),
}

impl Due {
    fn parse(s: &str) -> Result<Due, String> {
        let s = s.trim();
        Ok(match s {
            "daily" => Due::Daily,
            "working" => Due::Working,
            "non-working" => Due::NonWorking,
            _ => {
                if let Some(days) = s.strip_prefix("month:") {
                    let mut set = BTreeSet::new();
                    for d in days.split(',') {
                        let n: i8 = d
                            .trim()
                            .parse()
                            .ok()
                            .filter(|n| (1..=31).contains(n))
                            .ok_or_else(|| format!("{d:?} in {s:?} is not a day of the month (1 to 31)"))?;
                        set.insert(n);
                    }
                    Due::MonthDays(set)
                } else {
                    let mut set = BTreeSet::new();
                    for d in s.split(',') {
                        let day = match d.trim() {
                            "mon" => Weekday::Monday,
                            "tue" => Weekday::Tuesday,
                            "wed" => Weekday::Wednesday,
                            "thu" => Weekday::Thursday,
                            "fri" => Weekday::Friday,
                            "sat" => Weekday::Saturday,
                            "sun" => Weekday::Sunday,
                            o => {
                                return Err(format!(
                                    "{o:?} in {s:?}: expected daily, working, non-working, weekdays such as \"mon,thu\", or days of the month such as \"month:1,15\""
                                ));
                            }
                        };
                        set.insert(day.to_monday_one_offset());
                    }
                    Due::Weekdays(set)
                }
            }
        })
    }

    /// Whether it is due on `date`. A month day past the month's end (31 in
    /// November) falls on the month's last day.
    pub fn on(&self, date: Date, calendar: &Calendar) -> bool {
        match self {
            Due::Daily => true,
            Due::Working => calendar.is_working_day(date),
            Due::NonWorking => !calendar.is_working_day(date),
            Due::Weekdays(w) => w.contains(&date.weekday().to_monday_one_offset()),
            Due::MonthDays(d) => {
                let last = date.last_of_month().day();
                d.iter().any(|&n| n.min(last) == date.day())
            }
        }
    }
}

/// A checked item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// As the API shows it.
    pub item: InspectionItem,
    /// When it is due.
    pub due: Due,
}

/// The checked checklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checklist {
    /// Items in declaration order.
    pub items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    item: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    name: String,
    room: Option<String>,
    group: Option<String>,
    days: Option<String>,
}

impl Checklist {
    /// Reads and checks a checklist file.
    pub fn load(path: &Path) -> Result<Checklist, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks checklist text.
    pub fn parse(text: &str) -> Result<Checklist, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let mut items = Vec::new();
        let mut ids = BTreeSet::new();
        for (n, r) in raw.item.into_iter().enumerate() {
            let at = format!("item {} ({:?})", n + 1, r.id);
            let id = r.id.trim().to_string();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(format!(
                    "{at}: id must be letters, digits, '-', '_' or '.' (it is typed on the command line)"
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(format!("{at}: id {id:?} is declared twice"));
            }
            if r.name.trim().is_empty() {
                return Err(format!("{at}: name is empty"));
            }
            let scope = match (r.room, r.group) {
                (Some(room), None) if !room.trim().is_empty() => format!("room:{}", room.trim()),
                (None, Some(group)) => {
                    let (k, v) = group.split_once('=').ok_or_else(|| {
                        format!("{at}: group = {group:?}: expected LABEL=VALUE, e.g. \"system=社保\"")
                    })?;
                    watchpost_model::names::check_label_name(k.trim())
                        .map_err(|e| format!("{at}: group: {e}"))?;
                    format!("group:{}={}", k.trim(), v.trim())
                }
                _ => return Err(format!("{at}: give exactly one of room or group (its scope)")),
            };
            let days = r.days.unwrap_or_else(|| "daily".into());
            let due = Due::parse(&days).map_err(|e| format!("{at}: days: {e}"))?;
            items.push(Item {
                item: InspectionItem {
                    id,
                    name: r.name.trim().to_string(),
                    scope,
                    days,
                },
                due,
            });
        }
        Ok(Checklist { items })
    }

    /// The item `id`.
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.item.id == id)
    }

    /// The items due on `date`.
    pub fn due_on<'a>(&'a self, date: Date, calendar: &'a Calendar) -> impl Iterator<Item = &'a Item> + 'a {
        self.items.iter().filter(move |i| i.due.on(date, calendar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[item]]
id = "ups-panel"
name = "UPS 面板"
room = "A-201"

[[item]]
id = "fire"
name = "灭火器压力"
room = "A-201"
days = "month:1,31"

[[item]]
id = "labels"
name = "线缆标签"
group = "system=社保"
days = "mon,thu"

[[item]]
id = "doors"
name = "门禁"
room = "A-201"
days = "working"
"#;

    #[test]
    fn items_are_due_on_their_days() {
        let c = Checklist::parse(FILE).expect("parses");
        let cal = Calendar::default();
        let due = |d: &str| -> Vec<String> {
            c.due_on(d.parse().expect("date"), &cal)
                .map(|i| i.item.id.clone())
                .collect()
        };
        // 2026-11-30 is a Monday, and the last of November (31 → 30).
        assert_eq!(due("2026-11-30"), ["ups-panel", "fire", "labels", "doors"]);
        assert_eq!(due("2026-12-01"), ["ups-panel", "fire", "doors"]);
        // Saturday: not a working day in the default calendar.
        assert_eq!(due("2026-12-05"), ["ups-panel"]);
        assert_eq!(
            c.get("labels").map(|i| i.item.scope.as_str()),
            Some("group:system=社保")
        );
    }

    #[test]
    fn bad_items_are_refused_by_name() {
        let err = |t: &str| Checklist::parse(t).expect_err("refused");
        assert!(
            err("[[item]]\nid = \"a\"\nname = \"x\"\nroom = \"A\"\n[[item]]\nid = \"a\"\nname = \"y\"\nroom = \"A\"\n")
                .contains("declared twice")
        );
        assert!(err("[[item]]\nid = \"a\"\nname = \"x\"\n").contains("exactly one of room or group"));
        let e = err("[[item]]\nid = \"a\"\nname = \"x\"\nroom = \"A\"\ndays = \"friday\"\n");
        assert!(e.contains("item 1 (\"a\"): days: \"friday\""), "{e}");
        assert!(err("[[item]]\nid = \"a b\"\nname = \"x\"\nroom = \"A\"\n").contains("id must be"));
        assert!(
            err("[[item]]\nid = \"a\"\nname = \"x\"\nroom = \"A\"\ndays = \"month:32\"\n")
                .contains("not a day of the month")
        );
    }
}
