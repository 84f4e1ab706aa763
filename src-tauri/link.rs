//! The link between the app (tray and engine, one long-lived process) and its window (a process of its
//! own that lives only while the window is open, so no web engine stays in memory behind the tray).
//! It is a local socket named after the data folder: one app per data folder, and a second launch
//! finds the first through it. Messages are JSON, one a line.

use std::path::{Path, PathBuf};

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

/// The app's socket for `data_dir`: in the per-user runtime folder, named after the folder's
/// canonical path (socket paths are limited to ~100 bytes, data folders are not).
pub fn socket_path(data_dir: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    let name = format!("{}.sock", &hash.to_hex()[..16]);
    runtime_dir().join(name)
}

/// `$XDG_RUNTIME_DIR/idlegrid` (private to the user by the system), or a folder of our own in the
/// temporary folder, made private.
pub fn runtime_dir() -> PathBuf {
    match dirs::runtime_dir() {
        Some(dir) => dir.join("idlegrid"),
        None => std::env::temp_dir().join(format!("idlegrid-{}", user_id())),
    }
}

/// Creates the runtime folder, readable by this user only.
pub fn make_runtime_dir() -> std::io::Result<PathBuf> {
    let dir = runtime_dir();
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

fn user_id() -> String {
    #[cfg(unix)]
    return rustix::process::getuid().as_raw().to_string();
    #[cfg(not(unix))]
    std::env::var("USERNAME").unwrap_or_else(|_| "user".into())
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

    #[test]
    fn one_socket_per_data_folder() {
        let a = socket_path(Path::new("/tmp/idlegrid-a"));
        let b = socket_path(Path::new("/tmp/idlegrid-b"));
        assert_ne!(a, b);
        assert_eq!(a, socket_path(Path::new("/tmp/idlegrid-a")));
        assert!(a.as_os_str().len() < 100, "{}", a.display());
    }
}
