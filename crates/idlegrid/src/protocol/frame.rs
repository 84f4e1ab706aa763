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
}

impl ErrorCode {
    pub fn var_int(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a frame of {len} bytes is over the limit of {cap} bytes")]
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
}

impl ProtocolError {
    /// The code to end the stream with when this error came from the peer's bytes.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::Malformed(_) | ProtocolError::Truncated => ErrorCode::Malformed,
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
    let body =
        postcard::to_allocvec(message).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| ProtocolError::TooLarge {
        len: body.len() as u64,
        cap: u64::from(u32::MAX),
    })?;
    send.write_all(&len.to_le_bytes()).await?;
    send.write_all(&body).await?;
    Ok(())
}

/// Reads one frame of at most `cap` bytes; the length is checked before the body is allocated.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut RecvStream,
    cap: usize,
) -> Result<T, ProtocolError> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len);
    if len as usize > cap {
        return Err(ProtocolError::TooLarge {
            len: u64::from(len),
            cap: cap as u64,
        });
    }
    let mut body = vec![0u8; len as usize];
    recv.read_exact(&mut body).await?;
    postcard::from_bytes(&body).map_err(|e| ProtocolError::Malformed(e.to_string()))
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
