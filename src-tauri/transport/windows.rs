//! The link over a named pipe, `\\.\pipe\idlegrid-<hash>`, open to this user only: its security
//! descriptor allows the current user's SID and nobody else (see [`idlegrid::owner_only`]), remote
//! clients are refused, and the window connects at identification level, so a pipe someone else
//! made under this name cannot act as this user.

use std::fs::OpenOptions;
use std::io;
use std::os::windows::fs::OpenOptionsExt as _;
use std::os::windows::io::IntoRawHandle as _;
use std::path::{Path, PathBuf};

use tokio::net::windows::named_pipe::{NamedPipeClient, NamedPipeServer, ServerOptions};
use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_OVERLAPPED, SECURITY_IDENTIFICATION};

use idlegrid::owner_only::OwnerOnly;

pub type ServerStream = NamedPipeServer;
pub type ClientStream = NamedPipeClient;

pub fn address(name: &str) -> PathBuf {
    PathBuf::from(format!(r"\\.\pipe\idlegrid-{name}"))
}

/// The pipe's name and descriptor; its first instance is made on the runtime (tokio's pipes are
/// registered with it when made).
pub struct Bound {
    address: PathBuf,
    descriptor: OwnerOnly,
}

/// The pipe on the app's runtime: always one instance waiting for the next client, so a client
/// never finds the name missing while the app runs.
pub struct Listener {
    address: PathBuf,
    descriptor: OwnerOnly,
    waiting: NamedPipeServer,
}

/// A connection made from a plain thread; it joins a runtime with [`Connection::into_async`].
#[derive(Debug)]
pub struct Connection(std::fs::File);

/// A pipe needs no folder.
pub fn prepare(_address: &Path) -> io::Result<()> {
    Ok(())
}

pub fn bind(address: &Path) -> io::Result<Bound> {
    Ok(Bound {
        address: address.to_path_buf(),
        descriptor: OwnerOnly::new()?,
    })
}

impl Bound {
    /// Makes the pipe's first instance on the current runtime. It fails if a pipe of this name
    /// exists already (made by someone else: ours is gone with the app that held the lock).
    pub fn listen(self) -> io::Result<Listener> {
        let waiting = instance(&self.address, &self.descriptor, true)?;
        Ok(Listener {
            address: self.address,
            descriptor: self.descriptor,
            waiting,
        })
    }
}

impl Listener {
    pub async fn accept(&mut self) -> io::Result<ServerStream> {
        let connected = self.waiting.connect().await;
        // A fresh instance either way: a failed one is not reused.
        let next = instance(&self.address, &self.descriptor, false)?;
        let current = std::mem::replace(&mut self.waiting, next);
        connected.map(|()| current)
    }
}

fn instance(address: &Path, descriptor: &OwnerOnly, first: bool) -> io::Result<NamedPipeServer> {
    let mut attributes = descriptor.attributes();
    // SAFETY: `attributes` and the descriptor it points to outlive the call.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(address, (&raw mut attributes).cast())
    }
}

pub fn connect(address: &Path) -> io::Result<Connection> {
    OpenOptions::new()
        .read(true)
        .write(true)
        // Overlapped, as tokio's pipes are: the handle is only ever used through tokio.
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .security_qos_flags(SECURITY_IDENTIFICATION)
        .open(address)
        .map(Connection)
}

impl Connection {
    /// The connection on the current runtime.
    pub fn into_async(self) -> io::Result<ClientStream> {
        // SAFETY: an open pipe client handle made for overlapped I/O, whose ownership moves here.
        unsafe { NamedPipeClient::from_raw_handle(self.0.into_raw_handle()) }
    }
}
