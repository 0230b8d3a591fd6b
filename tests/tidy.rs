//! The layout's rules, checked: what ARCHITECTURE.md says of the crates and
//! modules holds in the code. Each check names the file and what to change.
//!
//! - every dependency is declared once, in `[workspace.dependencies]`, and
//!   crates say `name.workspace = true`;
//! - crates depend only on the crates the map allows (agent ↔ collector
//!   never; ctl on the model and the calendar only), in Cargo.toml and in
//!   `use` lines;
//! - the SNMP library is named only in `sources/snmp/session.rs`;
//! - inside the collector, stages import only stages below them
//!   (http → ingest → journal → rules → store → faults → db → notify);
//! - every module under `crates/*/src` is in ARCHITECTURE.md's code map,
//!   under its crate;
//! - no source file is over 800 lines (tests apart) without a first-lines
//!   comment saying why (`Why this file is long:`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every crate folder under `crates/`.
fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    out.sort();
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A crate's folder name (`crates/<name>`).
fn folder_name(c: &Path) -> String {
    c.file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string()
}

fn manifest(path: &Path) -> toml::Table {
    read(path)
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (section, name, declaration) of every dependency of a manifest.
fn dependencies(m: &toml::Table) -> Vec<(String, String, toml::Value)> {
    let mut out = Vec::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = m.get(section).and_then(|v| v.as_table()) {
            for (name, decl) in t {
                out.push((section.to_string(), name.clone(), decl.clone()));
            }
        }
    }
    out
}

/// The problems of a set of manifests: dependencies not from the workspace.
fn not_from_workspace(manifests: &[(PathBuf, toml::Table)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, m) in manifests {
        for (section, name, decl) in dependencies(m) {
            let inherited = decl
                .as_table()
                .and_then(|t| t.get("workspace"))
                .and_then(|w| w.as_bool())
                == Some(true);
            if !inherited {
                problems.push(format!(
                    "{}: [{section}] {name} is declared here; declare it once in [workspace.dependencies] and write `{name}.workspace = true`",
                    path.display()
                ));
            }
        }
    }
    problems
}

/// Crates (package names) each crate folder may depend on among ours; a
/// folder not listed may depend on any of ours.
fn allowed_crates() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("proto", &[][..]),
        ("model", &[][..]),
        ("segment", &[][..]),
        ("pdf", &[][..]),
        ("backup", &[][..]),
        ("calendar", &["watchpost-model"][..]),
        (
            "agent",
            &["watchpost-model", "watchpost-proto", "watchpost-segment"][..],
        ),
        (
            "collector",
            &[
                "watchpost-model",
                "watchpost-proto",
                "watchpost-segment",
                "watchpost-calendar",
                "watchpost-pdf",
                "watchpost-backup",
            ][..],
        ),
        (
            "ctl",
            &["watchpost-model", "watchpost-calendar", "watchpost-backup"][..],
        ),
    ])
}

/// Our crates a folder's normal dependencies name beyond what it may.
fn forbidden_dependencies(folder: &str, m: &toml::Table) -> Vec<String> {
    let Some(allowed) = allowed_crates().get(folder).copied() else {
        return Vec::new();
    };
    dependencies(m)
        .into_iter()
        .filter(|(section, name, _)| {
            section != "dev-dependencies"
                && name.starts_with("watchpost-")
                && !allowed.contains(&name.as_str())
        })
        .map(|(_, name, _)| {
            format!("crates/{folder}/Cargo.toml: depends on {name}, which ARCHITECTURE.md does not allow")
        })
        .collect()
}

/// Our crates a folder's sources name (`watchpost_x::`) beyond what it
/// may (`itself`: its own package, which its binary uses).
fn forbidden_uses(folder: &str, itself: &str, files: &[(PathBuf, String)]) -> Vec<String> {
    let Some(allowed) = allowed_crates().get(folder).copied() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("watchpost_") {
                let name: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let package = name.replace('_', "-");
                let ours = [
                    "watchpost-agent",
                    "watchpost-collector",
                    "watchpost-model",
                    "watchpost-proto",
                    "watchpost-calendar",
                    "watchpost-segment",
                ];
                if ours.contains(&package.as_str())
                    && package != itself
                    && !allowed.contains(&package.as_str())
                {
                    problems.push(format!(
                        "{}:{}: names {name}, which crates/{folder} must not depend on",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    problems
}

/// Files other than `allowed` that name the SNMP library.
fn snmp_library_named(files: &[(PathBuf, String)], allowed: &Path) -> Vec<String> {
    files
        .iter()
        .filter(|(p, _)| p != allowed)
        .flat_map(|(p, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains("async_snmp") || line.contains("async-snmp"))
                .map(move |(n, _)| {
                    format!(
                        "{}:{}: names the SNMP library; only sources/snmp/session.rs may (add what you need to its Session or TrapReceiver)",
                        p.display(),
                        n + 1
                    )
                })
        })
        .collect()
}

/// The collector's pipeline, top to bottom: a stage may import only the
/// stages after it. Modules not listed are shared leaves or sit beside a
/// stage (they are checked by the code map, not here).
/// The hot store sits below the rules although samples reach it first: the
/// rules read its windows.
const PIPELINE: &[&str] = &[
    "http",
    "reports",
    "ingest",
    "agents",
    "remote_write",
    "journal",
    "history",
    "rules",
    "store",
    "faults",
    "db",
    "notify",
];

/// Imports of a stage above it, in the collector's sources.
fn upward_imports(src: &Path, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, text) in files {
        let rel = path.strip_prefix(src).unwrap_or(path);
        let stage = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs"));
        let Some(me) = stage.and_then(|s| PIPELINE.iter().position(|p| *p == s)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue; // a doc link is not an import
            }
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(other) = PIPELINE.iter().position(|p| *p == name)
                    && other < me
                {
                    problems.push(format!(
                        "{}:{}: the {} stage imports {name}, a stage above it (order: {})",
                        path.display(),
                        n + 1,
                        PIPELINE[me],
                        PIPELINE.join(" → ")
                    ));
                }
            }
        }
    }
    problems
}

/// The code-map section of `folder` in ARCHITECTURE.md: from its
/// `### \`crates/<folder>\`` heading to the next heading.
fn code_map_section<'a>(map: &'a str, folder: &str) -> Option<&'a str> {
    let heading = format!("### `crates/{folder}`");
    let start = map.find(&heading)?;
    let rest = &map[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Modules of `src` missing from the code-map `section`: each file as
/// `path.rs`, each folder module as `path/`, backticked.
fn modules_missing(folder: &str, src: &Path, section: Option<&str>) -> Vec<String> {
    let Some(section) = section else {
        return vec![format!(
            "ARCHITECTURE.md: no code-map section \"### `crates/{folder}`\""
        )];
    };
    let mut problems = Vec::new();
    for file in rust_files(src) {
        let rel = file
            .strip_prefix(src)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let name = match rel.strip_suffix("mod.rs") {
            Some(dir) => dir.to_string(),
            None => rel.clone(),
        };
        if !section.contains(&format!("`{name}`")) {
            problems.push(format!(
                "ARCHITECTURE.md: crates/{folder}/src/{rel} is not in the code map under crates/{folder} (write `{name}` there and what it holds)"
            ));
        }
    }
    problems
}

/// Lines of a file before its unit tests.
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

/// Source files over `limit` lines without a reason at their top.
fn too_long(files: &[(PathBuf, String)], limit: usize) -> Vec<String> {
    files
        .iter()
        .filter(|(p, _)| !p.ends_with("tests.rs"))
        .filter(|(_, text)| code_lines(text) > limit)
        .filter(|(_, text)| {
            !text
                .lines()
                .take(30)
                .any(|l| l.contains("Why this file is long:"))
        })
        .map(|(p, text)| {
            format!(
                "{}: {} lines; split it, or say at its top why not (`//! Why this file is long: ...`)",
                p.display(),
                code_lines(text)
            )
        })
        .collect()
}

fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    rust_files(dir)
        .into_iter()
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect()
}

fn assert_none(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_dependency_comes_from_the_workspace() {
    let mut manifests = vec![(root().join("Cargo.toml"), manifest(&root().join("Cargo.toml")))];
    for c in crates() {
        let path = c.join("Cargo.toml");
        let m = manifest(&path);
        manifests.push((path, m));
    }
    assert_none("dependencies", not_from_workspace(&manifests));
}

#[test]
fn crates_depend_only_on_what_the_map_allows() {
    let mut problems = Vec::new();
    for c in crates() {
        let folder = folder_name(&c);
        let m = manifest(&c.join("Cargo.toml"));
        let itself = m
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string();
        problems.extend(forbidden_dependencies(&folder, &m));
        problems.extend(forbidden_uses(&folder, &itself, &sources(&c.join("src"))));
    }
    assert_none("crate dependencies", problems);
}

#[test]
fn only_the_snmp_session_names_the_snmp_library() {
    let allowed = root().join("crates/agent/src/sources/snmp/session.rs");
    let mut files = sources(&root().join("crates"));
    files.extend(sources(&root().join("tests")));
    files.retain(|(p, _)| !p.ends_with("tests/tidy.rs"));
    assert_none("SNMP library", snmp_library_named(&files, &allowed));
}

#[test]
fn collector_stages_import_only_stages_below_them() {
    let src = root().join("crates/collector/src");
    assert_none("collector layering", upward_imports(&src, &sources(&src)));
}

#[test]
fn every_module_is_in_the_code_map() {
    let map = read(&root().join("ARCHITECTURE.md"));
    let mut problems = Vec::new();
    for c in crates() {
        let folder = folder_name(&c);
        problems.extend(modules_missing(
            &folder,
            &c.join("src"),
            code_map_section(&map, &folder),
        ));
    }
    assert_none("code map", problems);
}

#[test]
fn no_source_file_is_over_800_lines_without_saying_why() {
    let mut files = sources(&root().join("crates"));
    files.retain(|(p, _)| p.components().any(|c| c.as_os_str() == "src"));
    assert_none("long files", too_long(&files, 800));
}

/// The checks can fail: each is given a tree that breaks its rule.
#[test]
fn each_check_fails_on_a_broken_invariant() {
    let m: toml::Table = "[dependencies]\nserde = \"1\"\ntokio.workspace = true\n"
        .parse()
        .expect("toml");
    let p = not_from_workspace(&[(PathBuf::from("crates/x/Cargo.toml"), m)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("serde"), "{p:?}");

    let m: toml::Table = "[dependencies]\nwatchpost-collector.workspace = true\n[dev-dependencies]\nwatchpost-collector.workspace = true\n"
        .parse()
        .expect("toml");
    assert_eq!(forbidden_dependencies("agent", &m).len(), 1);
    assert_eq!(forbidden_dependencies("ctl", &m).len(), 1);
    let src = vec![(
        PathBuf::from("crates/ctl/src/x.rs"),
        "use watchpost_model::Severity;\nuse watchpost_collector::db;\n".to_string(),
    )];
    let p = forbidden_uses("ctl", "watchpostctl", &src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("x.rs:2"), "{p:?}");

    let files = vec![
        (PathBuf::from("a/session.rs"), "use async_snmp::Oid;".to_string()),
        (
            PathBuf::from("a/traps.rs"),
            "let r = async_snmp::x();".to_string(),
        ),
    ];
    assert_eq!(snmp_library_named(&files, Path::new("a/session.rs")).len(), 1);

    let src = Path::new("/c/src");
    let files = vec![
        (
            src.join("db/mod.rs"),
            "use crate::faults::Transition;\n//! see [`crate::faults`]\nuse crate::notify::Kind;".to_string(),
        ),
        (
            src.join("faults/mod.rs"),
            "use crate::db::FaultRecords;".to_string(),
        ),
    ];
    let p = upward_imports(src, &files);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("db/mod.rs:1"), "{p:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("faults")).expect("mkdir");
    for f in ["lib.rs", "time.rs", "faults/mod.rs", "faults/event.rs"] {
        std::fs::write(dir.path().join(f), "").expect("write");
    }
    let p = modules_missing("collector", dir.path(), Some("`time.rs` and `faults/`"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("faults/event.rs"), "{p:?}");
    assert_eq!(modules_missing("x", dir.path(), None).len(), 1);
    let map = "## Code map\n### `crates/collector` — c\n`time.rs`\n### `crates/agent`\n`x.rs`\n";
    assert_eq!(code_map_section(map, "collector"), Some(" — c\n`time.rs`"));

    let long = "fn a() {}\n".repeat(801);
    let reasoned = format!("//! Why this file is long: one table.\n{long}");
    let tested = format!("{}#[cfg(test)]\n{long}", "fn a() {}\n".repeat(10));
    let files = vec![
        (PathBuf::from("long.rs"), long),
        (PathBuf::from("reasoned.rs"), reasoned),
        (PathBuf::from("tested.rs"), tested),
    ];
    let p = too_long(&files, 800);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("long.rs"), "{p:?}");
}
