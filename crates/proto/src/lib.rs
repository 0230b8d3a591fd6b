//! The wire protocol between `watchpost-agent` and `watchpost-collector`,
//! generated from `proto/watchpost/v1/ingest.proto`. Nothing else lives here:
//! every other crate depends on this one, and it depends on none of ours.

#![allow(missing_docs, clippy::all)]

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("watchpost.v1");

    /// The protocol version this crate speaks (`Hello.protocol_version`).
    pub const PROTOCOL_VERSION: u32 = 1;
}
