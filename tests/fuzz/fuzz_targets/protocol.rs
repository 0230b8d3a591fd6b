//! The protocol decoding path: any bytes on the stream decode to a message
//! or an error, never a panic or an unbounded allocation.
#![no_main]

use prost::Message;
use watchpost_proto::v1::{AgentMessage, CollectorMessage};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(m) = AgentMessage::decode(bytes) {
        // What decodes re-encodes, at the length it announces, and that
        // decodes again. (Not compared for equality: a NaN value is not
        // equal to itself, and a map's entries come back in any order.)
        let again = m.encode_to_vec();
        assert_eq!(again.len(), m.encoded_len());
        AgentMessage::decode(again.as_slice()).expect("our own encoding decodes");
    }
    let _ = CollectorMessage::decode(bytes);
});
