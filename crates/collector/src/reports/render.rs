//! A report's data as a standalone HTML page (Chinese first, English with
//! `lang = "en"`; charts as inline SVG, nothing fetched from elsewhere), as
//! CSV, one file per table (RFC 4180 quoting, the columns' stable ids as
//! the header), and as an Excel workbook (a sheet of facts and notes, then
//! one sheet per table, figures as numbers).

use std::fmt::Write;

use watchpost_model::reports::{Cell, Chart, ReportData, ReportTable};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 4] = ["#c62828", "#ef6c00", "#1565c0", "#2e7d32"];

/// A severity cell shown with its name in the language and a colour
/// (never colour alone).
fn cell_html(c: &Cell, lang: &str) -> String {
    match c {
        Cell::Text(s) => {
            let sev = match s.as_str() {
                "urgent" => Some(("紧急", "urgent", "sev-urgent")),
                "general" => Some(("一般", "general", "sev-general")),
                "minor" => Some(("轻微", "minor", "sev-minor")),
                "abnormal" => Some(("异常", "abnormal", "abnormal")),
                "normal" => Some(("正常", "normal", "normal")),
                "not recorded" => Some(("未检", "not recorded", "abnormal")),
                "yes" => Some(("是", "yes", "plain")),
                "no" => Some(("否", "no", "plain")),
                _ => None,
            };
            match sev {
                Some((zh, en, class)) => {
                    format!(
                        "<span class=\"{class}\">{}</span>",
                        if lang == "en" { en } else { zh }
                    )
                }
                None => esc(s),
            }
        }
        Cell::Num(_) => c.text(),
        Cell::None => "–".into(),
    }
}

fn table_html(t: &ReportTable, lang: &str, kind: &str, out: &mut String) {
    let _ = write!(
        out,
        "<section><h2 id=\"{}\">{}</h2>",
        esc(&t.id),
        esc(t.title.get(lang))
    );
    if t.rows.is_empty() {
        let none = match (lang == "en", kind == "daily") {
            (true, true) => "None this day.",
            (true, false) => "None this month.",
            (false, true) => "当日无。",
            (false, false) => "本月无。",
        };
        let _ = write!(out, "<p class=\"none\">{none}</p></section>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for c in &t.columns {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(c.title.get(lang)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            let class = if matches!(c, Cell::Num(_) | Cell::None) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", cell_html(c, lang));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
}

/// A bar chart as SVG: one group per label, stacked or side by side.
pub fn chart_svg(c: &Chart, lang: &str) -> String {
    let (w, h, left, bottom, top) = (760.0f64, 240.0f64, 48.0f64, 36.0f64, 18.0f64);
    let n = c.labels.len().max(1) as f64;
    let max = if c.stacked {
        (0..c.labels.len())
            .map(|i| {
                c.series
                    .iter()
                    .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    } else {
        c.series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max)
    };
    // Ticks at a round step (1, 2 or 5 times a power of ten), four or five of them.
    let raw = if max <= 0.0 { 1.0 } else { max / 4.0 };
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|k| k * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let step = if max > 0.0 && max <= 4.0 && step < 1.0 {
        1.0
    } else {
        step
    };
    let ticks = ((max / step).ceil() as i32).max(1);
    let max = step * f64::from(ticks);
    let plot_h = h - bottom - top;
    let slot = (w - left) / n;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"10\">",
        esc(c.title.get(lang))
    );
    for k in 0..=ticks {
        let v = step * f64::from(k);
        let y = top + plot_h - plot_h * v / max;
        let label = if step >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        };
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            left - 4.0,
            y + 3.0
        );
    }
    let groups = if c.stacked {
        1.0
    } else {
        c.series.len().max(1) as f64
    };
    for (i, label) in c.labels.iter().enumerate() {
        let x0 = left + slot * i as f64;
        let mut base = 0.0;
        for (j, (_, values)) in c.series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            let bh = plot_h * v / max;
            let bw = (slot * 0.8 / groups).max(1.0);
            let x = if c.stacked {
                x0 + slot * 0.1
            } else {
                x0 + slot * 0.1 + bw * j as f64
            };
            let y = top + plot_h - bh - if c.stacked { plot_h * base / max } else { 0.0 };
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {v:.2}</title></rect>",
                COLOURS[j % COLOURS.len()],
                esc(label),
                esc(c.series[j].0.get(lang))
            );
            base += v;
        }
        // At most about twelve labels under the bars.
        let every = c.labels.len().div_ceil(12).max(1);
        if i % every == 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x0 + slot / 2.0,
                h - bottom + 14.0,
                esc(label)
            );
        }
    }
    // The legend names every series: colour is never the only key.
    let mut lx = left;
    for (j, (name, _)) in c.series.iter().enumerate() {
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            h - 14.0,
            COLOURS[j % COLOURS.len()],
            lx + 14.0,
            h - 5.0,
            esc(name.get(lang))
        );
        lx += 30.0 + 8.0 * name.get(lang).chars().count() as f64;
    }
    let _ = write!(s, "<text x=\"2\" y=\"10\">{}</text></svg>", esc(c.unit.get(lang)));
    s
}

/// The report as one HTML page.
pub fn html(r: &ReportData, lang: &str) -> String {
    let html_lang = if lang == "en" { "en" } else { "zh-CN" };
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{html_lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>",
        esc(r.title.get(lang))
    );
    let _ = write!(out, "<h1>{}</h1><ul class=\"facts\">", esc(r.title.get(lang)));
    let (zone, generated) = if lang == "en" {
        ("Time zone", "Generated")
    } else {
        ("时区", "生成时间")
    };
    let _ = write!(
        out,
        "<li>{zone}: {}</li><li>{generated}: {}</li>",
        esc(&r.time_zone),
        esc(&r.generated_at)
    );
    for f in &r.facts {
        let _ = write!(out, "<li>{}</li>", esc(f.get(lang)));
    }
    out.push_str("</ul>");
    for c in &r.charts {
        let body = if c.labels.is_empty() {
            format!(
                "<p class=\"none\">{}</p>",
                if lang == "en" {
                    "None this month."
                } else {
                    "本月无。"
                }
            )
        } else {
            chart_svg(c, lang)
        };
        let _ = write!(
            out,
            "<section><h2>{}</h2>{body}</section>",
            esc(c.title.get(lang))
        );
    }
    for t in &r.tables {
        table_html(t, lang, &r.kind, &mut out);
    }
    let _ = write!(
        out,
        "<section><h2>{}</h2><ol class=\"notes\">",
        if lang == "en" {
            "How each figure is computed"
        } else {
            "计算方法"
        }
    );
    for n in &r.notes {
        let _ = write!(out, "<li>{}</li>", esc(n.get(lang)));
    }
    out.push_str("</ol></section></main></body></html>\n");
    out
}

const CSS: &str = "body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;margin:0;color:#222}\
main{max-width:1000px;margin:auto;padding:1rem}h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}\
.sev-urgent{color:#b71c1c;font-weight:bold}.abnormal{color:#b71c1c;font-weight:bold}.normal{color:#2e7d32}.sev-general{color:#e65100}.sev-minor{color:#1565c0}\
.notes li,.facts li{margin:.2rem 0}.none{color:#666}section{overflow-x:auto}";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One table as CSV: a header of the columns' ids, then the rows.
pub fn csv(t: &ReportTable) -> String {
    let mut out = String::new();
    let header: Vec<String> = t.columns.iter().map(|c| csv_field(&c.id)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in &t.rows {
        let row: Vec<String> = r.iter().map(|c| csv_field(&c.text())).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The report as an Excel workbook.
pub fn xlsx(r: &ReportData, lang: &str) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let bold = Format::new().set_bold();
    let mut wb = Workbook::new();
    let first = wb.add_worksheet();
    first
        .set_name(if lang == "en" { "Report" } else { "报告" })
        .map_err(e)?;
    first.set_column_width(0, 100).map_err(e)?;
    first
        .write_string_with_format(0, 0, r.title.get(lang), &bold)
        .map_err(e)?;
    let mut row = 1;
    for f in &r.facts {
        first.write_string(row, 0, f.get(lang)).map_err(e)?;
        row += 1;
    }
    row += 1;
    let notes = if lang == "en" {
        "How each figure is computed"
    } else {
        "计算方法"
    };
    first.write_string_with_format(row, 0, notes, &bold).map_err(e)?;
    for n in &r.notes {
        row += 1;
        first.write_string(row, 0, n.get(lang)).map_err(e)?;
    }
    for t in &r.tables {
        let ws = wb.add_worksheet();
        // Sheet names: at most 31 characters, unique (table ids are).
        let name: String = t.id.chars().take(31).collect();
        ws.set_name(&name).map_err(e)?;
        ws.write_string_with_format(0, 0, t.title.get(lang), &bold)
            .map_err(e)?;
        for (c, col) in t.columns.iter().enumerate() {
            ws.write_string_with_format(1, c as u16, col.title.get(lang), &bold)
                .map_err(e)?;
            ws.set_column_width(c as u16, 16).map_err(e)?;
        }
        for (i, cells) in t.rows.iter().enumerate() {
            let r = i as u32 + 2;
            for (c, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Num(v) => ws.write_number(r, c as u16, *v).map(|_| ()),
                    Cell::Text(s) => ws.write_string(r, c as u16, s).map(|_| ()),
                    Cell::None => Ok(()),
                }
                .map_err(e)?;
            }
        }
    }
    wb.save_to_buffer().map_err(e)
}

/// The system's CJK font, loaded once it is found (an error is not kept:
/// fonts installed later are found by the next report).
static FONTS: std::sync::OnceLock<watchpost_pdf::Fonts> = std::sync::OnceLock::new();

fn fonts() -> Result<&'static watchpost_pdf::Fonts, String> {
    if let Some(f) = FONTS.get() {
        return Ok(f);
    }
    let found = watchpost_pdf::Fonts::find()?;
    Ok(FONTS.get_or_init(|| found))
}

/// The report as a PDF in `lang`: the tables, the charts drawn as bars,
/// the notes; Chinese text in the system's CJK font (an error naming the
/// packages to install when there is none).
pub fn pdf(data: &ReportData, lang: &str) -> Result<Vec<u8>, String> {
    let fonts = fonts()?;
    let options = serde_json::json!({ "lang": lang, "fonts": fonts.families });
    let files = [
        ("data.json", serde_json::to_vec(data).map_err(|e| e.to_string())?),
        (
            "options.json",
            serde_json::to_vec(&options).map_err(|e| e.to_string())?,
        ),
    ];
    watchpost_pdf::typeset(include_str!("report.typ"), &files, fonts, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchpost_model::reports::{Column, Text};

    #[test]
    fn csv_quotes_and_html_escapes() {
        let t = ReportTable {
            id: "t".into(),
            title: Text::new("表", "table"),
            columns: vec![
                Column {
                    id: "a".into(),
                    title: Text::new("甲", "a"),
                },
                Column {
                    id: "b".into(),
                    title: Text::new("乙", "b"),
                },
            ],
            rows: vec![
                vec![Cell::Text("x, \"y\"".into()), Cell::Num(2.5)],
                vec![Cell::Text("urgent".into()), Cell::None],
            ],
        };
        assert_eq!(csv(&t), "a,b\r\n\"x, \"\"y\"\"\",2.50\r\nurgent,\r\n");
        let mut h = String::new();
        table_html(&t, "zh", "monthly", &mut h);
        assert!(h.contains("x, &quot;y&quot;"), "{h}");
        assert!(h.contains("<span class=\"sev-urgent\">紧急</span>"), "{h}");
    }
}
