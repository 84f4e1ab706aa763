//! The link between the app (tray and engine, one long-lived process) and its window (a process of its
//! own that lives only while the window is open, so no web engine stays in memory behind the tray).
//! It runs over [`crate::transport`] (a Unix socket, or a named pipe on Windows) at an address named
//! after the data folder: one app per data folder, and a second launch finds the first through it.
//! Messages are JSON, one a line.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// A message is far smaller than this; a longer line is a broken or hostile peer.
const LINE_LIMIT: usize = 16 * 1024 * 1024;

/// What a process connecting to the app says. The first message names what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToApp {
    /// A second launch: show the window (the connection ends after this).
    Open,
    /// The window: send it the news, and take its calls.
    Window,
    /// One of docs/desktop-ipc.md's commands, with the arguments the page gave it.
    Call {
        id: u64,
        command: String,
        args: Value,
    },
}

/// What the app says to its window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWindow {
    /// The answer to call `id`: a value, or the one-line sentence to show.
    Reply {
        id: u64,
        result: Result<Value, String>,
    },
    /// One of the contract's events, for the page.
    Event { name: String, payload: Value },
    /// Someone asked for the window: come to the front.
    Focus,
    /// Another window has the app already; this one closes.
    Close,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the link to the Idlegrid app broke: {0}")]
    Io(#[from] std::io::Error),
    #[error("the link to the Idlegrid app sent a line longer than {LINE_LIMIT} bytes")]
    TooLong,
    #[error("the link to the Idlegrid app sent something unreadable: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Reads the next message; None when the other side has gone.
pub async fn read<T, R>(reader: &mut R, line: &mut String) -> Result<Option<T>, LinkError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncBufRead + Unpin,
{
    line.clear();
    let mut limited = tokio::io::AsyncReadExt::take(reader, LINE_LIMIT as u64 + 1);
    if limited.read_line(line).await? == 0 {
        return Ok(None);
    }
    if line.len() > LINE_LIMIT {
        return Err(LinkError::TooLong);
    }
    Ok(Some(serde_json::from_str(line.trim_end())?))
}

pub async fn write<T: Serialize, W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &T,
) -> Result<(), LinkError> {
    writer.write_all(&line(message)?).await?;
    Ok(writer.flush().await?)
}

/// `message` as it crosses the link: its JSON and a newline.
pub fn line<T: Serialize>(message: &T) -> Result<Vec<u8>, LinkError> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_cross_as_lines_and_bad_lines_are_errors() {
        let mut buffer = Vec::new();
        let call = ToApp::Call {
            id: 7,
            command: "snooze".into(),
            args: serde_json::json!({ "minutes": 60 }),
        };
        write(&mut buffer, &call).await.unwrap();
        write(&mut buffer, &ToApp::Open).await.unwrap();
        buffer.extend_from_slice(b"{\"type\":\"nonsense\"}\n");
        let mut reader = tokio::io::BufReader::new(buffer.as_slice());
        let mut line = String::new();
        assert_eq!(
            read::<ToApp, _>(&mut reader, &mut line).await.unwrap(),
            Some(call)
        );
        assert_eq!(
            read::<ToApp, _>(&mut reader, &mut line).await.unwrap(),
            Some(ToApp::Open)
        );
        assert!(matches!(
            read::<ToApp, _>(&mut reader, &mut line).await,
            Err(LinkError::Malformed(_))
        ));
        assert_eq!(
            read::<ToApp, _>(&mut reader, &mut line).await.unwrap(),
            None
        );
    }
}
