//! Agent and collector config text: loads or explains, never panics.
//! Inputs that name files are skipped: reading arbitrary paths (a FIFO,
//! /dev/zero) is the operator's choice, not a parser's bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    if text.contains('/') || text.contains("file") || text.contains("dir") || text.contains(".toml") {
        return;
    }
    let _ = watchpost_agent::AgentConfig::parse(text);
    let base = std::path::Path::new("/nonexistent-watchpost-fuzz");
    let _ = watchpost_collector::CollectorConfig::parse(text, base);
});
