//! Templates of fault summaries (rules) and notification messages
//! (notify): `"{host} {mountpoint} is {value}% full"`. Placeholders are
//! `{host}`, `{value}`, `{rule}`, `{metric}`, `{severity}` and any label of
//! the series; `{{` and `}}` are literal braces. A placeholder with
//! nothing to fill is left as written, so the gap shows.

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template; the error names the problem and its position.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, ch)) if ch.is_ascii_alphanumeric() || ch == '_' => name.push(ch),
                            Some((_, ch)) => {
                                return Err(format!("unexpected {ch:?} in placeholder at byte {i}"));
                            }
                            None => return Err(format!("unclosed '{{' at byte {i}")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("empty placeholder at byte {i}"));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => return Err(format!("unmatched '}}' at byte {i} (write '}}}}' for a brace)")),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Renders with `lookup(name)` filling each placeholder.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(name) => match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                },
            }
        }
        out
    }
}

/// Formats a value for people: integers without decimals, others with two.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_keeps_unknown() {
        let t = Template::parse("{host} {mountpoint} is {value}% full {{ok}} {nope}").expect("valid");
        let out = t.render(|n| match n {
            "host" => Some("db1".into()),
            "mountpoint" => Some("/data".into()),
            "value" => Some(format_value(93.456)),
            _ => None,
        });
        assert_eq!(out, "db1 /data is 93.46% full {ok} {nope}");
    }

    #[test]
    fn refuses_bad() {
        assert!(Template::parse("{host").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("{a b}").is_err());
        assert_eq!(format_value(90.0), "90");
    }
}
