//! Plain-text tables with columns sized to their widest cell, measured in
//! terminal columns: a Chinese character takes two, so `国庆节保障` lines up.

use unicode_width::UnicodeWidthStr;

/// A table being built.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders with two spaces between columns; the last column is not padded.
    pub fn render(&self) -> String {
        let width = |s: &str| UnicodeWidthStr::width(s);
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(c));
                }
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let last = r.len().saturating_sub(1);
            for (i, c) in r.iter().enumerate() {
                out.push_str(c);
                if i < last {
                    out.push_str(&" ".repeat(widths[i] - width(c) + 2));
                }
            }
            out.push('\n');
        }
        if self.rows.is_empty() {
            out.push_str("(none)\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["long".into(), "x".into()]);
        assert_eq!(t.render(), "A     B\nlong  x\n");
        assert_eq!(Table::new(&["A"]).render(), "A\n(none)\n");
    }

    #[test]
    fn chinese_text_takes_two_columns_a_character() {
        let mut t = Table::new(&["TEAM", "WHY"]);
        t.row(vec!["ops".into(), "rotation".into()]);
        t.row(vec!["国庆节保障".into(), "holiday".into()]);
        assert_eq!(
            t.render(),
            "TEAM        WHY\nops         rotation\n国庆节保障  holiday\n"
        );
    }
}
