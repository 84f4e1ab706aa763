//! The link over a Unix socket: a file in `$XDG_RUNTIME_DIR/idlegrid` (private to the user by the
//! system), or in a folder of our own in the temporary folder, made private.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub type ServerStream = tokio::net::UnixStream;
pub type ClientStream = tokio::net::UnixStream;

pub fn address(name: &str) -> PathBuf {
    runtime_dir().join(format!("{name}.sock"))
}

/// A socket bound and listening, not yet on a runtime (the app binds before it starts one).
pub struct Bound {
    listener: std::os::unix::net::UnixListener,
    file: SocketFile,
}

/// The socket on the app's runtime.
pub struct Listener {
    listener: tokio::net::UnixListener,
    _file: SocketFile,
}

/// A connection made from a plain thread; it joins a runtime with [`Connection::into_async`].
#[derive(Debug)]
pub struct Connection(UnixStream);

/// Removes the socket's file when the app stops listening, so nothing connects to a dead socket.
struct SocketFile(PathBuf);

pub fn prepare(address: &Path) -> io::Result<()> {
    if address.parent() == Some(runtime_dir().as_path()) {
        make_runtime_dir()?;
    }
    Ok(())
}

pub fn bind(address: &Path) -> io::Result<Bound> {
    prepare(address)?;
    match std::fs::remove_file(address) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    Ok(Bound {
        listener: std::os::unix::net::UnixListener::bind(address)?,
        file: SocketFile(address.to_path_buf()),
    })
}

impl Bound {
    /// Moves the socket onto the current runtime.
    pub fn listen(self) -> io::Result<Listener> {
        self.listener.set_nonblocking(true)?;
        Ok(Listener {
            listener: tokio::net::UnixListener::from_std(self.listener)?,
            _file: self.file,
        })
    }
}

impl Listener {
    pub async fn accept(&mut self) -> io::Result<ServerStream> {
        Ok(self.listener.accept().await?.0)
    }
}

pub fn connect(address: &Path) -> io::Result<Connection> {
    UnixStream::connect(address).map(Connection)
}

impl Connection {
    /// The connection on the current runtime.
    pub fn into_async(self) -> io::Result<ClientStream> {
        self.0.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(self.0)
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn runtime_dir() -> PathBuf {
    match dirs::runtime_dir() {
        Some(dir) => dir.join("idlegrid"),
        None => {
            std::env::temp_dir().join(format!("idlegrid-{}", rustix::process::getuid().as_raw()))
        }
    }
}

/// Creates the runtime folder, readable by this user only.
fn make_runtime_dir() -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = runtime_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
}
