//! The wire frame decoder, as a pool or provider meets a stranger's bytes: a little-endian `u32` length
//! and a postcard body, decoded as each of the four messages that arrive from the network.

#![no_main]

use idlegrid::JobLimits;
use idlegrid::job::check_manifest;
use idlegrid::protocol::{
    MAX_REPLY_FRAME, MAX_REQUEST_FRAME, OutputHeader, ProtocolError, SubmitReply, SubmitRequest,
    WorkReply, WorkRequest, decode_frame, encode_frame,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `data` as one frame of `T`: never a panic; an error is the one the header calls for; a message
/// that decodes encodes to a frame that decodes to the same message.
fn decode<T: Serialize + DeserializeOwned>(data: &[u8], cap: usize) -> Option<T> {
    match decode_frame::<T>(data, cap) {
        Ok((message, used)) => {
            assert!(used >= 4 && used <= data.len() && used - 4 <= cap);
            let frame = encode_frame(&message).expect("a decoded message encodes");
            let (again, used) = decode_frame::<T>(&frame, usize::MAX).expect("its frame decodes");
            assert_eq!(used, frame.len());
            assert_eq!(
                encode_frame(&again).unwrap(),
                frame,
                "the round trip changed it"
            );
            Some(message)
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            match data
                .first_chunk::<4>()
                .map(|h| u32::from_le_bytes(*h) as usize)
            {
                None => assert_eq!(error, ProtocolError::Truncated),
                Some(len) if len > cap => {
                    assert!(matches!(error, ProtocolError::TooLarge { .. }), "{error:?}");
                    assert!(error.to_string().contains("too large"));
                }
                Some(len) if data.len() - 4 < len => assert_eq!(error, ProtocolError::Truncated),
                Some(_) => assert!(matches!(error, ProtocolError::Malformed(_)), "{error:?}"),
            }
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = JobLimits::default();
    // What a pool does with a request before anything else: check the manifest it carries.
    if let Some(SubmitRequest::Job { manifest, .. }) =
        decode::<SubmitRequest>(data, MAX_REQUEST_FRAME)
    {
        let _ = manifest.blob_refs();
        let _ = check_manifest(&manifest, &limits);
    }
    let _ = decode::<WorkRequest>(data, MAX_REQUEST_FRAME);
    // What a provider does with a lease offer before it fetches anything.
    if let Some(WorkReply::Work {
        leases, deliveries, ..
    }) = decode::<WorkReply>(data, MAX_REPLY_FRAME)
    {
        for lease in &leases {
            let _ = OutputHeader::expected(&lease.manifest);
            let _ = lease.manifest.total_buffer_bytes();
            let _ = check_manifest(&lease.manifest, &limits);
        }
        for delivery in &deliveries {
            let _ = delivery.id();
        }
    }
    let _ = decode::<SubmitReply>(data, MAX_REPLY_FRAME);
});
