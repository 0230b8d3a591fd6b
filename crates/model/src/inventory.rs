//! The equipment list (设备清单) as the API gives it and the CSV import
//! takes it: one item per host, disk, network device, chassis or module
//! agents see, and per thing people enter (patch panels, cameras, KVMs),
//! each with an append-only history of what changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One item of the equipment list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InventoryItem {
    /// `"<agent>:<key>"` for what an agent reports, `"import:<name>"` for
    /// what people enter.
    pub id: String,
    /// The agent that reports it; empty for imported items.
    pub agent: String,
    /// The host its agent runs on, or the host a person gave.
    pub host: String,
    /// The id of the item it is part of; empty for a top-level item.
    pub parent: String,
    /// server, disk, network-device, chassis, module, or what an import says.
    pub kind: String,
    pub name: String,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    /// BIOS, firmware or software revision.
    pub firmware: String,
    /// Room and rack, from the agent's (or the device's) labels or the import.
    pub room: String,
    pub rack: String,
    /// Other facts: cpu_model, cpu_cores, memory_bytes, os, kernel, addresses, size_bytes...
    pub details: BTreeMap<String, String>,
    /// `agent` or `import`.
    pub source: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// When it stopped being reported (or was dropped from an import).
    pub removed_ms: Option<i64>,
}

/// One change on an item's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEvent {
    pub item: String,
    pub at_ms: i64,
    /// added, changed, removed, returned.
    pub change: String,
    /// The field that changed (serial, model, firmware, a detail), or empty.
    pub field: String,
    pub old: String,
    pub new: String,
    /// Who: the agent, or the person who imported.
    pub actor: String,
    /// The fault a rule opened for it.
    pub fault_id: Option<i64>,
}

/// The CSV columns, in order; `name` is required, the rest may be empty.
pub const CSV_COLUMNS: [&str; 10] = [
    "name", "kind", "vendor", "model", "serial", "firmware", "room", "rack", "host", "notes",
];

/// Fields whose change is worth a fault when a rule asks for one.
pub const WATCHED_FIELDS: [&str; 3] = ["serial", "model", "firmware"];

/// Reads an import: a header naming [`CSV_COLUMNS`] (any order, `name`
/// required, unknown columns refused) and one item per line. Errors name
/// the line and the column.
pub fn parse_csv(text: &str) -> Result<Vec<InventoryItem>, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("the CSV is empty: its first line names the columns (name,kind,vendor,...)".into());
    };
    let header = split_csv(header.trim_start_matches('\u{feff}')).map_err(|e| format!("line 1: {e}"))?;
    let mut columns = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let h = h.trim().to_lowercase();
        if !CSV_COLUMNS.contains(&h.as_str()) {
            return Err(format!(
                "line 1, column {}: unknown column {h:?} (known: {})",
                i + 1,
                CSV_COLUMNS.join(", ")
            ));
        }
        if columns.contains(&h) {
            return Err(format!("line 1, column {}: column {h:?} appears twice", i + 1));
        }
        columns.push(h);
    }
    if !columns.iter().any(|c| c == "name") {
        return Err("line 1: the header has no `name` column".into());
    }
    let mut items: Vec<InventoryItem> = Vec::new();
    for (n, line) in lines {
        let at = n + 1;
        let cells = split_csv(line).map_err(|e| format!("line {at}: {e}"))?;
        if cells.len() > columns.len() {
            return Err(format!(
                "line {at}: {} cells but the header names {} columns",
                cells.len(),
                columns.len()
            ));
        }
        let mut item = InventoryItem {
            source: "import".into(),
            ..Default::default()
        };
        for (c, v) in columns.iter().zip(cells.iter().map(|v| v.trim().to_string())) {
            if v.chars().count() > 256 {
                return Err(format!("line {at}, column {c}: longer than 256 characters"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!("line {at}, column {c}: holds a control character"));
            }
            match c.as_str() {
                "name" => item.name = v,
                "kind" => item.kind = v,
                "vendor" => item.vendor = v,
                "model" => item.model = v,
                "serial" => item.serial = v,
                "firmware" => item.firmware = v,
                "room" => item.room = v,
                "rack" => item.rack = v,
                "host" => item.host = v,
                _ => {
                    if !v.is_empty() {
                        item.details.insert(c.clone(), v);
                    }
                }
            }
        }
        if item.name.is_empty() {
            return Err(format!("line {at}, column name: empty; every item needs a name"));
        }
        if item.kind.is_empty() {
            item.kind = "other".into();
        }
        item.id = format!("import:{}", item.name);
        if items.iter().any(|i| i.id == item.id) {
            return Err(format!("line {at}, column name: {:?} appears twice", item.name));
        }
        items.push(item);
    }
    Ok(items)
}

/// One CSV line's cells: commas separate, double quotes quote, `""` is a quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (false, ',') => cells.push(std::mem::take(&mut cell)),
            (_, c) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell is not closed".into());
    }
    cells.push(cell);
    Ok(cells)
}

/// One CSV cell, quoted when it must be.
pub fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// The list as CSV: the import's columns plus the agent's facts.
pub fn to_csv(items: &[InventoryItem]) -> String {
    let mut out = String::from(
        "id,kind,name,vendor,model,serial,firmware,room,rack,host,parent,source,details,first_seen_ms,last_seen_ms,removed_ms\n",
    );
    for i in items {
        let details: Vec<String> = i.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cells = [
            i.id.as_str(),
            &i.kind,
            &i.name,
            &i.vendor,
            &i.model,
            &i.serial,
            &i.firmware,
            &i.room,
            &i.rack,
            &i.host,
            &i.parent,
            &i.source,
            &details.join("; "),
            &i.first_seen_ms.to_string(),
            &i.last_seen_ms.to_string(),
            &i.removed_ms.map(|r| r.to_string()).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_import_and_names_bad_cells() {
        let items = parse_csv(
            "\u{feff}name,kind,room,rack,serial,notes\n\
             PP-A01,patch panel,A-201,A01,,48 ports\n\
             \"cam, door 1\",camera,A-201,,HK2051\"9\",\n\n",
        )
        .expect("valid");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "import:PP-A01");
        assert_eq!(
            items[0].details.get("notes").map(String::as_str),
            Some("48 ports")
        );
        assert_eq!(items[1].name, "cam, door 1");
        assert_eq!(items[1].serial, "HK2051\"9\"");
        assert!(
            parse_csv("name,colour\nx,red\n")
                .expect_err("unknown")
                .contains("line 1, column 2")
        );
        assert!(parse_csv("kind\nx\n").expect_err("no name").contains("no `name`"));
        let e = parse_csv("name,kind\nA,x\n,camera\n").expect_err("empty name");
        assert!(e.contains("line 3, column name"), "{e}");
        let e = parse_csv("name\nA\nA\n").expect_err("twice");
        assert!(e.contains("line 3"), "{e}");
        assert!(parse_csv("name\n\"open\n").expect_err("quote").contains("line 2"));
    }

    #[test]
    fn csv_round_trips_awkward_cells() {
        let item = InventoryItem {
            id: "a:host".into(),
            name: "x, \"y\"".into(),
            ..Default::default()
        };
        let csv = to_csv(&[item]);
        assert!(
            csv.lines().nth(1).expect("row").contains("\"x, \"\"y\"\"\""),
            "{csv}"
        );
    }
}
