//! Length-prefixed postcard frames over iroh streams, and the error codes a stream is ended with.

use iroh::endpoint::{RecvStream, SendStream, VarInt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a stream was ended; the peer sees the number as the reset or stop code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorCode {
    Malformed = 1,
    TooLarge = 2,
    NotAllowed = 3,
    Internal = 4,
    /// The peer asked too often; the reply (when there is one) says when to come back.
    RateLimited = 5,
    /// The peer sent its request (or the bytes after it) too slowly.
    TimedOut = 6,
}

impl ErrorCode {
    pub fn var_int(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a frame of {len} bytes is too large: the limit is {cap} bytes")]
    TooLarge { len: u64, cap: u64 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("the stream ended before the message did")]
    Truncated,
    #[error("the peer ended the stream (code {0})")]
    Reset(u64),
    #[error("connection lost: {0}")]
    Connection(String),
    #[error("{0}")]
    Refused(String),
    #[error("could not bind a network endpoint: {0}")]
    Bind(String),
    #[error("could not reach {peer}: {message}")]
    Connect { peer: String, message: String },
    #[error("the peer did not send {what} within {} s", .limit.as_secs_f64())]
    TimedOut {
        what: &'static str,
        limit: std::time::Duration,
    },
}

impl ProtocolError {
    /// The code to end the stream with when this error came from the peer's bytes.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::Malformed(_) | ProtocolError::Truncated => ErrorCode::Malformed,
            ProtocolError::TimedOut { .. } => ErrorCode::TimedOut,
            _ => ErrorCode::Internal,
        }
    }
}

impl From<iroh::endpoint::ReadExactError> for ProtocolError {
    fn from(error: iroh::endpoint::ReadExactError) -> Self {
        use iroh::endpoint::{ReadError, ReadExactError};
        match error {
            ReadExactError::FinishedEarly(_) => ProtocolError::Truncated,
            ReadExactError::ReadError(ReadError::Reset(code)) => {
                ProtocolError::Reset(code.into_inner())
            }
            ReadExactError::ReadError(other) => ProtocolError::Connection(other.to_string()),
        }
    }
}

impl From<iroh::endpoint::WriteError> for ProtocolError {
    fn from(error: iroh::endpoint::WriteError) -> Self {
        match error {
            iroh::endpoint::WriteError::Stopped(code) => ProtocolError::Reset(code.into_inner()),
            other => ProtocolError::Connection(other.to_string()),
        }
    }
}

impl From<iroh::endpoint::ClosedStream> for ProtocolError {
    fn from(error: iroh::endpoint::ClosedStream) -> Self {
        ProtocolError::Connection(error.to_string())
    }
}

impl From<iroh::endpoint::ConnectionError> for ProtocolError {
    fn from(error: iroh::endpoint::ConnectionError) -> Self {
        match error {
            iroh::endpoint::ConnectionError::ApplicationClosed(close) => {
                ProtocolError::Refused(String::from_utf8_lossy(&close.reason).into_owned())
            }
            other => ProtocolError::Connection(other.to_string()),
        }
    }
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(
    send: &mut SendStream,
    message: &T,
) -> Result<(), ProtocolError> {
    send.write_all(&encode_frame(message)?).await?;
    Ok(())
}

/// Reads one frame of at most `cap` bytes; the length is checked before the body is allocated.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut RecvStream,
    cap: usize,
) -> Result<T, ProtocolError> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header).await?;
    let len = frame_len(header, cap)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    decode_body(&body)
}

/// One whole frame: the little-endian `u32` length, then the postcard body.
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, ProtocolError> {
    // The length goes in front once the body is written after it.
    let mut frame = postcard::to_extend(message, vec![0u8; 4])
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let body = frame.len() - 4;
    let len = u32::try_from(body).map_err(|_| ProtocolError::TooLarge {
        len: body as u64,
        cap: u64::from(u32::MAX),
    })?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// The body length a frame's header announces, refused when over `cap`: callers check it before they
/// allocate the body.
pub fn frame_len(header: [u8; 4], cap: usize) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(header);
    match usize::try_from(len) {
        Ok(len) if len <= cap => Ok(len),
        _ => Err(ProtocolError::TooLarge {
            len: u64::from(len),
            cap: cap as u64,
        }),
    }
}

/// Decodes a frame's body (without its length).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    postcard::from_bytes(body).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Decodes the frame at the front of `bytes`, of at most `cap` bytes, as [`read_frame`] reads it from a
/// stream: the message and the number of bytes the frame took. Bytes after the frame (raw bulk bytes)
/// are left alone.
pub fn decode_frame<T: DeserializeOwned>(
    bytes: &[u8],
    cap: usize,
) -> Result<(T, usize), ProtocolError> {
    let header = bytes.first_chunk::<4>().ok_or(ProtocolError::Truncated)?;
    let len = frame_len(*header, cap)?;
    let body = bytes[4..].get(..len).ok_or(ProtocolError::Truncated)?;
    Ok((decode_body(body)?, 4 + len))
}

/// Reads exactly `len` raw bytes. Callers bound `len` by a checked manifest before calling.
pub async fn read_bytes(recv: &mut RecvStream, len: u64) -> Result<Vec<u8>, ProtocolError> {
    let len = usize::try_from(len).map_err(|_| ProtocolError::TooLarge {
        len,
        cap: usize::MAX as u64,
    })?;
    let mut bytes = vec![0u8; len];
    recv.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Ends both halves of a stream with `code`: the peer's reads and writes fail with it. The
/// connection and its other streams are untouched.
pub fn refuse(send: &mut SendStream, recv: &mut RecvStream, code: ErrorCode) {
    // Either half may already be closed by the peer; there is nothing more to tell it then.
    let _ = send.reset(code.var_int());
    let _ = recv.stop(code.var_int());
}
