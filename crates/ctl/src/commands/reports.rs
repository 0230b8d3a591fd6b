//! `report`: the daily inspection record, the monthly service statistics
//! and stored reports.

use std::io::Write;

use anyhow::Context;
use watchpost_model::reports::{ReportData, StoredReport};

use crate::args::{ReportCmd, ReportOut};
use crate::client::Client;
use crate::format::{emit, when};
use crate::table::Table;

fn write_out(path: Option<&std::path::Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display())),
        None => std::io::stdout().write_all(bytes).context("standard output"),
    }
}

/// Every table of `data`, as terminal tables.
#[allow(clippy::print_stdout)]
fn print_report(data: &ReportData, lang: &str) {
    println!("{}", data.title.get(lang));
    for f in &data.facts {
        println!("  {}", f.get(lang));
    }
    for t in &data.tables {
        println!();
        println!("{}", t.title.get(lang));
        if t.rows.is_empty() {
            println!("  -");
            continue;
        }
        let titles: Vec<String> = t.columns.iter().map(|c| c.title.get(lang).to_string()).collect();
        let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
        let mut table = Table::new(&refs);
        for r in &t.rows {
            table.row(
                r.iter()
                    .map(|c| if c.text().is_empty() { "-".into() } else { c.text() })
                    .collect(),
            );
        }
        print!("{}", table.render());
    }
    println!();
    for (i, n) in data.notes.iter().enumerate() {
        println!("[{}] {}", i + 1, n.get(lang));
    }
}

/// Generates a `kind` report for `period` and prints or writes it.
#[allow(clippy::print_stdout)]
async fn fetch(
    client: &Client,
    json: bool,
    kind: &str,
    period: Option<(&str, String)>,
    out: ReportOut,
) -> anyhow::Result<()> {
    let ReportOut { format, lang, output } = out;
    let mut q: Vec<(String, String)> = Vec::new();
    if let Some((k, v)) = period {
        q.push((k.into(), v));
    }
    if let Some(l) = &lang {
        q.push(("lang".into(), l.clone()));
    }
    let wire = if format == "text" { "json" } else { format.as_str() };
    if !["json", "html", "pdf", "csv", "xlsx"].contains(&wire) {
        anyhow::bail!("--format {format:?}: expected text, json, html, pdf, csv or xlsx");
    }
    q.push(("format".into(), wire.to_string()));
    let bytes = client.get_bytes(&format!("/api/v1/reports/{kind}"), &q).await?;
    match format.as_str() {
        "text" if !json => {
            let data: ReportData = serde_json::from_slice(&bytes).context("the report's data")?;
            print_report(&data, lang.as_deref().unwrap_or("zh"));
            Ok(())
        }
        "csv" => {
            let files: Vec<StoredReport> = serde_json::from_slice(&bytes).context("the stored files")?;
            let dir = output.unwrap_or_else(|| std::path::PathBuf::from("."));
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
            for f in &files {
                let body = client
                    .get_bytes(&format!("/api/v1/reports/{}", f.id), &[])
                    .await?;
                let path = dir.join(&f.file);
                std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        _ => write_out(output.as_deref(), &bytes),
    }
}

/// `report ...`.
#[allow(clippy::print_stdout)]
pub async fn run(client: &Client, json: bool, command: ReportCmd) -> anyhow::Result<()> {
    match command {
        ReportCmd::Monthly { month, out } => {
            fetch(client, json, "monthly", month.map(|m| ("month", m)), out).await
        }
        ReportCmd::Daily { date, out } => fetch(client, json, "daily", date.map(|d| ("date", d)), out).await,
        ReportCmd::List { period } => {
            let mut q = Vec::new();
            if let Some(p) = period {
                q.push(("period".to_string(), p));
            }
            let list: Vec<StoredReport> = client.get("/api/v1/reports", &q).await?;
            emit(json, &list, || {
                let mut t = Table::new(&[
                    "ID",
                    "KIND",
                    "PERIOD",
                    "VERSION",
                    "FORMAT",
                    "GENERATED",
                    "BY",
                    "BYTES",
                    "SHA-256",
                ]);
                for r in &list {
                    t.row(vec![
                        r.id.to_string(),
                        r.kind.clone(),
                        r.period.clone(),
                        r.version.to_string(),
                        r.format.clone(),
                        when(&r.generated_at),
                        r.generated_by.clone(),
                        r.bytes.to_string(),
                        r.sha256[..16.min(r.sha256.len())].to_string(),
                    ]);
                }
                t
            })
        }
        ReportCmd::Get { id, output } => {
            let bytes = client.get_bytes(&format!("/api/v1/reports/{id}"), &[]).await?;
            write_out(output.as_deref(), &bytes)
        }
    }
}
