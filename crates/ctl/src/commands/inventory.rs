//! `inventory [--csv] [history ITEM | import FILE]`.

use watchpost_model::inventory::{InventoryEvent, InventoryItem};

use crate::args::InventoryCmd;
use crate::client::Client;
use crate::format::{emit, when_exact};
use crate::table::Table;

/// Which items `inventory` lists.
pub struct Filter {
    pub kind: Option<String>,
    pub host: Option<String>,
    pub removed: bool,
}

/// A cell, `-` when empty.
fn dash(v: &str) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.to_string()
    }
}

fn at(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| when_exact(&t.to_string()))
}

/// `inventory ...`.
#[allow(clippy::print_stdout)]
pub async fn run(
    client: &Client,
    json: bool,
    by: Option<String>,
    command: Option<InventoryCmd>,
    csv: bool,
    filter: Filter,
) -> anyhow::Result<()> {
    match command {
        None => {
            let mut query = Vec::new();
            for (k, v) in [("kind", filter.kind), ("host", filter.host)] {
                if let Some(v) = v {
                    query.push((k.to_string(), v));
                }
            }
            if filter.removed {
                query.push(("removed".to_string(), "true".to_string()));
            }
            if csv {
                query.push(("format".to_string(), "csv".to_string()));
                let bytes = client.get_bytes("/api/v1/inventory", &query).await?;
                print!("{}", String::from_utf8_lossy(&bytes));
                return Ok(());
            }
            let items: Vec<InventoryItem> = client.get("/api/v1/inventory", &query).await?;
            emit(json, &items, || {
                let mut t = Table::new(&[
                    "ID",
                    "KIND",
                    "NAME",
                    "VENDOR",
                    "MODEL",
                    "SERIAL",
                    "FIRMWARE",
                    "ROOM/RACK",
                    "LAST SEEN",
                ]);
                for i in &items {
                    let place = match (i.room.as_str(), i.rack.as_str()) {
                        ("", "") => "-".to_string(),
                        (room, "") => room.to_string(),
                        (room, rack) => format!("{room}/{rack}"),
                    };
                    let seen = match i.removed_ms {
                        Some(r) => format!("removed {}", at(r)),
                        None => at(i.last_seen_ms),
                    };
                    t.row(vec![
                        i.id.clone(),
                        i.kind.clone(),
                        i.name.clone(),
                        dash(&i.vendor),
                        dash(&i.model),
                        dash(&i.serial),
                        dash(&i.firmware),
                        place,
                        seen,
                    ]);
                }
                t
            })
        }
        Some(InventoryCmd::History { item }) => {
            let query: Vec<(String, String)> = item.into_iter().map(|i| ("item".to_string(), i)).collect();
            let events: Vec<InventoryEvent> = client.get("/api/v1/inventory/history", &query).await?;
            emit(json, &events, || {
                let mut t = Table::new(&["AT", "ITEM", "CHANGE", "FIELD", "FROM", "TO", "BY", "FAULT"]);
                for e in &events {
                    t.row(vec![
                        at(e.at_ms),
                        e.item.clone(),
                        e.change.clone(),
                        dash(&e.field),
                        dash(&e.old),
                        dash(&e.new),
                        e.actor.clone(),
                        e.fault_id.map_or_else(|| "-".to_string(), |f| f.to_string()),
                    ]);
                }
                t
            })
        }
        Some(InventoryCmd::Import { file, replace }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let mut query = Vec::new();
            if replace {
                query.push(("replace".to_string(), "true".to_string()));
            }
            if let Some(by) = by {
                query.push(("by".to_string(), by));
            }
            let answer: serde_json::Value = client
                .post_text(
                    "/api/v1/inventory/import",
                    &query,
                    text,
                    "text/csv; charset=utf-8",
                )
                .await?;
            if json {
                println!("{answer}");
            } else {
                println!(
                    "imported {} item(s) from {}",
                    answer["imported"].as_u64().unwrap_or(0),
                    file.display()
                );
            }
            Ok(())
        }
    }
}
