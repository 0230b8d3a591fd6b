//! Our own files read back after a crash: the shared segment framing
//! (`watchpost-segment`) on any bytes, then the agent's spool segments and
//! the collector's journal segments on top of it. Damaged bytes are cut or
//! skipped, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let mut whole = 0usize;
    let damage = watchpost_segment::read(bytes, 1 << 20, |_, body| {
        whole += body.len() + 1 + watchpost_segment::HEADER_BYTES;
        Ok(())
    });
    // What was read whole ends where the damage starts.
    if let Some(d) = damage {
        assert_eq!(d.offset, whole);
    } else {
        assert_eq!(bytes.len(), whole);
    }
    let _ = watchpost_agent::spool::check_segment(bytes);
    let _ = watchpost_collector::journal::check_segment(bytes);
});
