//! The textfile source: every `*.prom` file in a directory, one sample per
//! line as `metric{label="value",...} number`, read each round. Lets an
//! operator's scripts (backup age, RAID state, licence days left) feed
//! rules without code. `#` lines are comments. A bad line is logged with
//! its file and line number and skipped; the rest of the file still counts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use watchpost_model::names::{self, HOST_LABEL};

use crate::series::{Round, SeriesRegistry};

/// One parsed line.
#[derive(Debug, PartialEq)]
pub struct TextSample {
    pub metric: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses one line; `Ok(None)` for blanks and comments.
pub fn parse_line(line: &str) -> Result<Option<TextSample>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let metric = &line[..name_end];
    names::check_metric_name(metric).map_err(|e| e.to_string())?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut consumed = None;
        loop {
            while chars
                .next_if(|(_, c)| c.is_ascii_whitespace() || *c == ',')
                .is_some()
            {}
            match chars.peek() {
                Some((i, '}')) => {
                    consumed = Some(i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut name = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_ascii_whitespace()) {
                name.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('=') || chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {name:?}: expected =\"value\""));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            names::check_label_name(&name).map_err(|e| e.to_string())?;
            names::check_label_value(&value).map_err(|e| e.to_string())?;
            if name == HOST_LABEL {
                return Err("label \"host\" is set by the collector".into());
            }
            labels.push((name, value));
        }
        let Some(end) = consumed else {
            return Err("missing '}'".into());
        };
        rest = &after[end..];
    }
    let value_text = rest.split_ascii_whitespace().next().ok_or("missing value")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("value {v:?} is not a number"))?,
    };
    labels.sort();
    Ok(Some(TextSample {
        metric: metric.to_string(),
        labels,
        value,
    }))
}

/// Reads a textfile directory each round.
pub struct TextfileSource {
    dir: PathBuf,
    ids: HashMap<String, u32>,
    key: String,
}

impl TextfileSource {
    /// A source over `dir`.
    pub fn new(dir: &Path) -> TextfileSource {
        TextfileSource {
            dir: dir.to_path_buf(),
            ids: HashMap::new(),
            key: String::new(),
        }
    }

    /// Appends the samples of every `*.prom` file to `round`.
    pub fn collect(&mut self, registry: &mut SeriesRegistry, round: &mut Round) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            tracing::debug!(dir = %self.dir.display(), "textfile directory unreadable");
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "prom"))
            .collect();
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                match parse_line(line) {
                    Ok(Some(s)) => {
                        self.key.clear();
                        self.key.push_str(&s.metric);
                        for (k, v) in &s.labels {
                            self.key.push('\0');
                            self.key.push_str(k);
                            self.key.push('\0');
                            self.key.push_str(v);
                        }
                        let id = match self.ids.get(self.key.as_str()) {
                            Some(id) => *id,
                            None => {
                                let l: Vec<(&str, &str)> =
                                    s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                                let id = registry.define(&s.metric, &l);
                                self.ids.insert(self.key.clone(), id);
                                id
                            }
                        };
                        round.samples.push((id, s.value));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file = %file.display(), line = n + 1, error = %e, "skipping bad textfile line");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(parse_line("# comment"), Ok(None));
        assert_eq!(
            parse_line("backup_age_seconds 3600"),
            Ok(Some(TextSample {
                metric: "backup_age_seconds".into(),
                labels: vec![],
                value: 3600.0
            }))
        );
        let s = parse_line(r#"raid_ok{array="md0", note="a \"b\""} 1"#)
            .expect("ok")
            .expect("sample");
        assert_eq!(
            s.labels,
            vec![("array".into(), "md0".into()), ("note".into(), "a \"b\"".into())]
        );
        assert_eq!(s.value, 1.0);
    }

    #[test]
    fn refuses_bad_lines() {
        assert!(parse_line("9bad 1").is_err());
        assert!(parse_line("m{a=1} 1").is_err());
        assert!(parse_line("m{a=\"1\" 1").is_err());
        assert!(parse_line("m{host=\"x\"} 1").is_err());
        assert!(parse_line("m abc").is_err());
        assert!(parse_line("m").is_err());
    }
}
