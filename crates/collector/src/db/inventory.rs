//! The equipment list in SQLite: the writes the fault stage makes through
//! `FaultRecords` (inside its transaction) and the reads the API makes.

use rusqlite::{Connection, params};
use watchpost_model::inventory::{InventoryEvent, InventoryItem};

use super::{Database, DbError};

const COLUMNS: &str = "id, agent_id, host, parent, kind, name, vendor, model, serial, firmware, room, rack, \
     details, source, first_seen_ms, last_seen_ms, removed_ms";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InventoryItem> {
    let details: String = r.get(12)?;
    Ok(InventoryItem {
        id: r.get(0)?,
        agent: r.get(1)?,
        host: r.get(2)?,
        parent: r.get(3)?,
        kind: r.get(4)?,
        name: r.get(5)?,
        vendor: r.get(6)?,
        model: r.get(7)?,
        serial: r.get(8)?,
        firmware: r.get(9)?,
        room: r.get(10)?,
        rack: r.get(11)?,
        details: serde_json::from_str(&details).unwrap_or_default(),
        source: r.get(13)?,
        first_seen_ms: r.get(14)?,
        last_seen_ms: r.get(15)?,
        removed_ms: r.get(16)?,
    })
}

pub(super) fn items(conn: &Connection, agent: &str, scope: &str) -> rusqlite::Result<Vec<InventoryItem>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM inventory WHERE agent_id = ?1 AND scope = ?2 ORDER BY id"
    ))?
    .query_map(params![agent, scope], item_from_row)?
    .collect()
}

pub(super) fn put(conn: &Connection, scope: &str, i: &InventoryItem) -> rusqlite::Result<()> {
    let details = serde_json::to_string(&i.details).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO inventory (id, agent_id, scope, host, parent, kind, name, vendor, model, serial, firmware,
             room, rack, details, source, first_seen_ms, last_seen_ms, removed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (id) DO UPDATE SET agent_id = ?2, scope = ?3, host = ?4, parent = ?5, kind = ?6, name = ?7,
             vendor = ?8, model = ?9, serial = ?10, firmware = ?11, room = ?12, rack = ?13, details = ?14,
             source = ?15, last_seen_ms = ?17, removed_ms = ?18",
    )?
    .execute(params![
        i.id,
        i.agent,
        scope,
        i.host,
        i.parent,
        i.kind,
        i.name,
        i.vendor,
        i.model,
        i.serial,
        i.firmware,
        i.room,
        i.rack,
        details,
        i.source,
        i.first_seen_ms,
        i.last_seen_ms,
        i.removed_ms
    ])?;
    Ok(())
}

pub(super) fn event(conn: &Connection, e: &InventoryEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO inventory_events (item_id, at_ms, change, field, old, new, actor, fault_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.item, e.at_ms, e.change, e.field, e.old, e.new, e.actor, e.fault_id
    ])?;
    Ok(())
}

impl Database {
    /// The equipment list, by id; removed items only when `removed`.
    pub async fn inventory(&self, removed: bool) -> Result<Vec<InventoryItem>, DbError> {
        self.read(move |conn| {
            let filter = if removed { "" } else { "WHERE removed_ms IS NULL" };
            conn.prepare(&format!("SELECT {COLUMNS} FROM inventory {filter} ORDER BY id"))?
                .query_map([], item_from_row)?
                .collect()
        })
        .await
    }

    /// The history of item `id` (all items when `None`), oldest first.
    pub async fn inventory_history(&self, id: Option<String>) -> Result<Vec<InventoryEvent>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT item_id, at_ms, change, field, old, new, actor, fault_id FROM inventory_events
                 WHERE ?1 IS NULL OR item_id = ?1 ORDER BY id",
            )?;
            stmt.query_map([id], |r| {
                Ok(InventoryEvent {
                    item: r.get(0)?,
                    at_ms: r.get(1)?,
                    change: r.get(2)?,
                    field: r.get(3)?,
                    old: r.get(4)?,
                    new: r.get(5)?,
                    actor: r.get(6)?,
                    fault_id: r.get(7)?,
                })
            })?
            .collect()
        })
        .await
    }
}
