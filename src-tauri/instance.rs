//! One app per data folder: the first launch holds a lock beside the link's socket and listens on
//! it; a later launch for the same folder finds the lock taken and asks the first to show its window.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::link::{self, ToApp};

/// How long a second launch waits for the first to be listening (it may be starting too).
const HAND_OVER_WAIT: Duration = Duration::from_secs(10);

/// This launch is the app: the lock (held until exit) and the listening socket.
pub struct First {
    _lock: File,
    pub listener: std::os::unix::net::UnixListener,
    pub socket: PathBuf,
}

pub enum Claim {
    First(First),
    /// Another launch is the app for this folder.
    Taken,
}

/// Takes the folder's lock and socket, or finds them taken.
pub fn claim(socket: &Path) -> std::io::Result<Claim> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(socket.with_extension("lock"))?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(Claim::Taken),
        Err(error) => return Err(error.into()),
    }
    // Whoever held the lock before us is gone; its socket file is stale.
    match std::fs::remove_file(socket) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(socket)?;
    Ok(Claim::First(First {
        _lock: lock,
        listener,
        socket: socket.to_path_buf(),
    }))
}

/// Asks the app listening on `socket` to open its window.
pub fn hand_over(socket: &Path) -> std::io::Result<()> {
    let mut stream = connect(socket, HAND_OVER_WAIT)?;
    stream.write_all(&link::line(&ToApp::Open).map_err(std::io::Error::other)?)
}

/// Connects to the app's socket, retrying while it is not there yet.
pub fn connect(socket: &Path, wait: Duration) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + wait;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for First {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_finds_the_first_and_hands_over() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("app.sock");
        let Claim::First(first) = claim(&socket).unwrap() else {
            panic!("the first claim was refused");
        };
        assert!(matches!(claim(&socket).unwrap(), Claim::Taken));
        hand_over(&socket).unwrap();
        let (stream, _) = first.listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut line).unwrap();
        assert_eq!(serde_json::from_str::<ToApp>(&line).unwrap(), ToApp::Open);
        drop(first);
        assert!(!socket.exists());
        assert!(matches!(claim(&socket).unwrap(), Claim::First(_)));
    }
}
