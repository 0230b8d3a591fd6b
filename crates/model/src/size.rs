//! Sizes as people write them in config files (`"256MiB"`, `"1GiB"`,
//! `"500MB"`, `"65536"`) and as summaries print them (`"3.2 MiB"`).

/// Parses a size such as `256MiB`, `1GiB`, `500MB` or `65536` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size; expected e.g. \"256MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "{text:?}: unknown unit {u:?}; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `bytes` in binary units with one decimal: `512 B`, `3.2 MiB`, `1.0 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size(" 2 GiB "), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert!(
            parse_size("5 parsecs")
                .expect_err("unit")
                .contains("unknown unit")
        );
        assert!(parse_size("MiB").expect_err("digits").contains("not a size"));
        assert!(
            parse_size("99999999999TiB")
                .expect_err("overflow")
                .contains("too large")
        );
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(3 << 20 | 200 << 10), "3.2 MiB");
        assert_eq!(format_size(1 << 30), "1.0 GiB");
    }
}
