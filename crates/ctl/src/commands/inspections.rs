//! `inspections`: the day's checklist, recording, signing, reviewing.

use watchpost_model::inspections::{CheckBody, InspectionDay, SignBody};

use crate::args::InspectionsCmd;
use crate::client::Client;
use crate::format::{actor, when};
use crate::table::Table;

#[allow(clippy::print_stdout)]
fn print_day(d: &InspectionDay) {
    println!(
        "{}: {} due, {} recorded, {} abnormal",
        d.date, d.due, d.done, d.abnormal
    );
    match (&d.signed, &d.reviewed) {
        (None, _) => println!(
            "not signed yet: `watchpostctl inspections sign {}` once every item is recorded",
            d.date
        ),
        (Some(s), None) => println!("signed by {} at {}; not reviewed yet", s.by, when(&s.at)),
        (Some(s), Some(r)) => println!(
            "signed by {} at {}; reviewed by {} at {}{}",
            s.by,
            when(&s.at),
            r.by,
            when(&r.at),
            if r.remark.is_empty() {
                String::new()
            } else {
                format!(": {}", r.remark)
            }
        ),
    }
    let mut t = Table::new(&["ITEM", "WHAT", "SCOPE", "RESULT", "REMARK", "BY", "AT", "FAULT"]);
    for i in &d.items {
        let e = i.entry.as_ref();
        t.row(vec![
            i.item.id.clone(),
            i.item.name.clone(),
            i.item.scope.clone(),
            e.map_or_else(
                || "(to do)".into(),
                |e| {
                    format!(
                        "{}{}",
                        e.result.as_str(),
                        if e.amendment { " (amended)" } else { "" }
                    )
                },
            ),
            e.map_or_else(|| "-".into(), |e| e.remark.clone()),
            e.map_or_else(|| "-".into(), |e| e.by.clone()),
            e.map_or_else(|| "-".into(), |e| when(&e.at)),
            e.and_then(|e| e.fault_id)
                .map_or_else(|| "-".into(), |f| f.to_string()),
        ]);
    }
    print!("{}", t.render());
    let amendments: Vec<_> = d.entries.iter().filter(|e| e.amendment).collect();
    if !amendments.is_empty() {
        println!("amendments after signing:");
        for e in amendments {
            println!(
                "  {} {} -> {} ({}): {} [why: {}]",
                when(&e.at),
                e.item,
                e.result.as_str(),
                e.by,
                e.remark,
                e.why.as_deref().unwrap_or("")
            );
        }
    }
}

/// `inspections ...`.
#[allow(clippy::print_stdout)]
pub async fn run(
    client: &Client,
    json: bool,
    by: Option<String>,
    command: InspectionsCmd,
) -> anyhow::Result<()> {
    let day: InspectionDay = match command {
        InspectionsCmd::Today { date } => {
            let q: Vec<(String, String)> = date.map(|d| ("date".to_string(), d)).into_iter().collect();
            client.get("/api/v1/inspections", &q).await?
        }
        InspectionsCmd::Check {
            item,
            result,
            remark,
            date,
            why,
            open_fault,
        } => {
            let body = CheckBody {
                item,
                result,
                remark,
                date,
                why,
                open_fault,
                by: Some(actor(by)?),
            };
            client.post("/api/v1/inspections/checks", &body).await?
        }
        InspectionsCmd::Sign { date, remark } => {
            let body = SignBody {
                remark,
                by: Some(actor(by)?),
            };
            client
                .post(&format!("/api/v1/inspections/{date}/sign"), &body)
                .await?
        }
        InspectionsCmd::Review { date, remark } => {
            let body = SignBody {
                remark,
                by: Some(actor(by)?),
            };
            client
                .post(&format!("/api/v1/inspections/{date}/review"), &body)
                .await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&day)?);
    } else {
        print_day(&day);
    }
    Ok(())
}
