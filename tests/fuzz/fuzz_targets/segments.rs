//! Our own files read back after a crash: the agent's spool segments and
//! the collector's journal segments. Damaged bytes are cut or skipped,
//! never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = watchpost_agent::spool::check_segment(bytes);
    let _ = watchpost_collector::journal::check_segment(bytes);
});
