//! Rule files: any text either loads or gives errors; it never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    match watchpost_collector::rules::RuleSet::parse(text, "fuzz.toml") {
        Ok(set) => {
            for r in &set.rules {
                assert!(!r.name.is_empty());
            }
        }
        Err(errors) => {
            // Every error says where.
            for e in errors {
                assert!(e.to_string().contains("fuzz.toml"), "{e}");
            }
        }
    }
});
