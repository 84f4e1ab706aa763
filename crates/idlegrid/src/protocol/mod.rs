//! The wire: ALPNs, framing and the messages the three roles exchange, plus the endpoint they all
//! bind. Nothing here knows about SQLite or GPUs.
//!
//! Every request opens its own bi-directional stream: one request frame, then the reply frames. A frame
//! is a little-endian `u32` length and a postcard body; the length is checked against the cap of the
//! message expected *before* anything is allocated, and a bad frame ends that stream with an error code
//! while the connection and its other streams carry on. Bulk bytes (blobs, outputs) follow a frame raw,
//! with their length fixed in advance by a hash-named manifest, so they are never buffered twice.

mod endpoint;
mod frame;
mod messages;
mod relays;

pub use endpoint::{Bind, bind_endpoint, endpoint_builder, endpoint_builder_with, ticket_addr};
pub use frame::{
    ErrorCode, ProtocolError, decode_body, decode_frame, encode_frame, frame_len, read_bytes,
    read_frame, refuse, write_frame,
};
pub use messages::*;
pub use relays::{Network, RelayChoice, RelayError, Relays, is_loopback_relay, production_relays};

/// Providers asking for work, fetching inputs and returning results.
pub const WORK_ALPN: &[u8] = b"idlegrid/work/3";
/// Submitters sending jobs and following them.
pub const SUBMIT_ALPN: &[u8] = b"idlegrid/submit/3";
/// The submit protocol before [`Blocker`]s: pools still serve it (without `Blocked` frames), and
/// clients offer it too, so either side may be the older one.
pub const SUBMIT_ALPN_2: &[u8] = b"idlegrid/submit/2";

/// Caps on one frame of each kind, in bytes. A manifest holds the shader (at most 256 KiB by
/// default) and small inline inputs; everything large travels as a blob outside frames.
pub const MAX_REQUEST_FRAME: usize = 1 << 20;
pub const MAX_REPLY_FRAME: usize = 8 << 20;
