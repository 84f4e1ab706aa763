//! The link's transport, the one part of the link between the app and its window that differs by
//! platform: a Unix socket in the per-user runtime folder (Linux, macOS), a named pipe open to this
//! user only (Windows). There is one address per data folder. Above this edge the link's JSON lines,
//! the app's server, a second launch's hand-over and the window's bridge are the same everywhere.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

pub use platform::{Bound, ClientStream, Connection, Listener, ServerStream};

/// Where the app for `data_dir` listens: named after the folder's canonical path (socket paths are
/// limited to ~100 bytes, data folders are not).
pub fn address(data_dir: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    platform::address(&hash.to_hex()[..16])
}

/// Makes what must exist before anything is kept beside `address` (on Unix the private runtime
/// folder), so the single-instance lock there can be taken before the address is bound.
pub fn prepare(address: &Path) -> io::Result<()> {
    platform::prepare(address)
}

/// Takes `address` for this process. The caller holds the data folder's single-instance lock, so
/// whatever is left at the address belongs to an app that is gone.
pub fn bind(address: &Path) -> io::Result<Bound> {
    platform::bind(address)
}

/// Connects to the app at `address`, retrying while nobody listens there yet (it may be starting) or,
/// on Windows, while its pipe is busy with another client.
pub fn connect(address: &Path, wait: Duration) -> io::Result<Connection> {
    let deadline = Instant::now() + wait;
    loop {
        match platform::connect(address) {
            Ok(connection) => return Ok(connection),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn one_address_per_data_folder() {
        let a = address(Path::new("/tmp/idlegrid-a"));
        let b = address(Path::new("/tmp/idlegrid-b"));
        assert_ne!(a, b);
        assert_eq!(a, address(Path::new("/tmp/idlegrid-a")));
        assert!(a.as_os_str().len() < 100, "{}", a.display());
    }

    /// The app's side listens, the window's side connects from a plain thread (as the window program
    /// does before its runtime starts), and bytes cross both ways, twice in a row.
    #[test]
    fn a_client_reaches_the_listener_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let address = address(dir.path());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut listener = {
            let _inside = runtime.enter();
            bind(&address).unwrap().listen().unwrap()
        };
        let serving = runtime.spawn(async move {
            for answer in [b"one\n", b"two\n"] {
                let mut stream = listener.accept().await.unwrap();
                let mut asked = [0u8; 4];
                stream.read_exact(&mut asked).await.unwrap();
                assert_eq!(&asked, b"ask\n");
                stream.write_all(answer).await.unwrap();
            }
        });
        for expected in [b"one\n", b"two\n"] {
            let connection = connect(&address, Duration::from_secs(10)).unwrap();
            let answer = runtime.block_on(async move {
                let mut stream = connection.into_async().unwrap();
                stream.write_all(b"ask\n").await.unwrap();
                let mut answer = [0u8; 4];
                stream.read_exact(&mut answer).await.unwrap();
                answer
            });
            assert_eq!(&answer, expected);
        }
        runtime.block_on(serving).unwrap();
    }

    #[test]
    fn connecting_where_nobody_listens_fails_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let error = connect(&address(dir.path()), Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ),
            "{error:?}"
        );
    }
}
