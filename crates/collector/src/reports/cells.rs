//! Cells, columns and tables as every report builds them, and times shown
//! in the calendar's zone.

use jiff::Timestamp;
use watchpost_model::reports::{Cell, Column, ReportTable, Text};

/// An RFC 3339 time as ms.
pub fn ms(t: &str) -> Option<i64> {
    t.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

/// A column.
pub fn col(id: &str, zh: &str, en: &str) -> Column {
    Column {
        id: id.into(),
        title: Text::new(zh, en),
    }
}

/// An empty table.
pub fn table(id: &str, zh: &str, en: &str, columns: Vec<Column>) -> ReportTable {
    ReportTable {
        id: id.into(),
        title: Text::new(zh, en),
        columns,
        rows: Vec::new(),
    }
}

/// A figure, to two decimals.
pub fn num(v: f64) -> Cell {
    Cell::Num((v * 100.0).round() / 100.0)
}

/// A figure or nothing.
pub fn opt(v: Option<f64>) -> Cell {
    v.map_or(Cell::None, num)
}

/// A text.
pub fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// `2026-12-01 18:00:05` in `tz`.
pub fn local(tz: &jiff::tz::TimeZone, ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// An RFC 3339 time shown in `tz`.
pub fn local_of(tz: &jiff::tz::TimeZone, rfc: &str) -> String {
    ms(rfc).map_or_else(|| rfc.to_string(), |m| local(tz, m))
}
