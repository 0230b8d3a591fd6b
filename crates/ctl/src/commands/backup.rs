//! `backup`: take one on the collector, list them, verify one here.

use watchpost_model::api::{Backup, BackupBody};
use watchpost_model::format_size;

use crate::args::BackupCmd;
use crate::client::Client;
use crate::format::{emit, when};
use crate::table::Table;

/// `backup ...`.
#[allow(clippy::print_stdout)]
pub async fn run(client: &Client, json: bool, command: BackupCmd) -> anyhow::Result<()> {
    match command {
        BackupCmd::Create { dir } => {
            let b: Backup = client.post("/api/v1/backups", &BackupBody { dir }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                println!(
                    "backup taken: {} ({} files, {})",
                    b.path,
                    b.files,
                    format_size(b.bytes)
                );
            }
            Ok(())
        }
        BackupCmd::List => {
            let list: Vec<Backup> = client.get("/api/v1/backups", &[]).await?;
            emit(json, &list, || {
                let mut t = Table::new(&["BACKUP", "TAKEN", "FILES", "SIZE", "PROBLEM"]);
                for b in &list {
                    t.row(vec![
                        b.path.clone(),
                        b.created_at.as_deref().map_or_else(|| "-".into(), when),
                        b.files.to_string(),
                        format_size(b.bytes),
                        b.problem.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t
            })
        }
        BackupCmd::Verify { dir } => {
            let m =
                watchpost_backup::verify(&dir).map_err(|e| anyhow::anyhow!("the backup is not good: {e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                let dbs = m.files.iter().filter(|f| f.sqlite).count();
                println!(
                    "{}: good. Taken {} by watchpost {}; {} files, {}; every SHA-256 matches, {} databases pass their integrity check",
                    dir.display(),
                    when(&m.created_at),
                    m.version,
                    m.files.len(),
                    format_size(m.bytes()),
                    dbs
                );
            }
            Ok(())
        }
    }
}
