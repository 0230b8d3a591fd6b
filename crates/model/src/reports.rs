//! Reports' JSON shapes: a report is titled tables (so every format, HTML,
//! CSV, a terminal, renders the same figures), chart series and
//! footnotes, each text in Chinese and English.

use serde::{Deserialize, Serialize};

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// 简体中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Text {
    /// Both texts.
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// The text in `lang` (`zh` unless `en`).
    pub fn get(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.zh }
    }
}

/// One cell: a number, a text, or nothing (a figure that does not apply,
/// such as a mean of no faults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// A figure.
    Num(f64),
    /// A name, a time, a yes/no.
    Text(String),
    /// Not applicable.
    None,
}

impl Cell {
    /// As a CSV or terminal field (numbers with at most two decimals).
    pub fn text(&self) -> String {
        match self {
            Cell::Num(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
            Cell::Num(v) => format!("{:.2}", v),
            Cell::Text(s) => s.clone(),
            Cell::None => String::new(),
        }
    }

    /// The number, if it is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            Cell::Num(v) => Some(*v),
            _ => None,
        }
    }
}

/// A column: its id (CSV header, stable) and its title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Stable id (`mtta_mean_min`).
    pub id: String,
    /// Title.
    pub title: Text,
}

/// A titled table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportTable {
    /// Stable id (`faults_by_severity`): the CSV file's name.
    pub id: String,
    /// Title.
    pub title: Text,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl ReportTable {
    /// The row whose first cell is the text `key`.
    pub fn row(&self, key: &str) -> Option<&[Cell]> {
        self.rows
            .iter()
            .find(|r| matches!(r.first(), Some(Cell::Text(k)) if k == key))
            .map(Vec::as_slice)
    }

    /// The cell of column `column` in the row keyed `key`.
    pub fn cell(&self, key: &str, column: &str) -> Option<&Cell> {
        let i = self.columns.iter().position(|c| c.id == column)?;
        self.row(key)?.get(i)
    }
}

/// A chart: named series over labelled points (bars, one group per label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Stable id.
    pub id: String,
    /// Title.
    pub title: Text,
    /// The unit of the values.
    pub unit: Text,
    /// Point labels (days, hosts).
    pub labels: Vec<String>,
    /// `(series name, value per label)`; stacked when `stacked`.
    pub series: Vec<(Text, Vec<f64>)>,
    /// Series stack up instead of standing side by side.
    pub stacked: bool,
}

/// A generated report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// `monthly` or `daily`.
    pub kind: String,
    /// `2026-11` or `2026-12-01`.
    pub period: String,
    /// Title.
    pub title: Text,
    /// The calendar's time zone the period is read in.
    pub time_zone: String,
    /// When it was generated (RFC 3339).
    pub generated_at: String,
    /// One-line facts under the title (service hours, target, what is left out).
    pub facts: Vec<Text>,
    /// The tables.
    pub tables: Vec<ReportTable>,
    /// The charts.
    pub charts: Vec<Chart>,
    /// How each figure is computed.
    pub notes: Vec<Text>,
}

impl ReportData {
    /// The table `id`.
    pub fn table(&self, id: &str) -> Option<&ReportTable> {
        self.tables.iter().find(|t| t.id == id)
    }
}

/// A stored report file (`GET /api/v1/reports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReport {
    /// Row id.
    pub id: i64,
    /// `monthly` or `daily`.
    pub kind: String,
    /// The period.
    pub period: String,
    /// 1 for the first generation of this period and format, then 2, ...
    pub version: i64,
    /// `json`, `html`, `csv`.
    pub format: String,
    /// File name under the data directory's `reports/`.
    pub file: String,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// Bytes.
    pub bytes: i64,
    /// When (RFC 3339).
    pub generated_at: String,
    /// By whom (`schedule` for the scheduled ones).
    pub generated_by: String,
}
