//! One app per data folder: the first launch holds the folder's lock and listens at the link's
//! address; a later launch for the same folder finds the lock taken and asks the first to show its
//! window. The lock is `flock` on a file beside the socket (Unix) or a named mutex (Windows): either
//! way the system lets go of it when the process ends, however it ends.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use crate::link::{self, ToApp};
use crate::transport;

/// How long a second launch waits for the first to be listening (it may be starting too), and then
/// for it to take the message.
const HAND_OVER_WAIT: Duration = Duration::from_secs(10);

/// This launch is the app: the lock (keep it until exit) and the bound address.
pub struct First {
    pub lock: Lock,
    pub listener: transport::Bound,
}

pub enum Claim {
    First(First),
    /// Another launch is the app for this folder.
    Taken,
}

/// Takes the folder's lock and address, or finds them taken.
pub fn claim(address: &Path) -> io::Result<Claim> {
    transport::prepare(address)?;
    let Some(lock) = Lock::take(address)? else {
        return Ok(Claim::Taken);
    };
    Ok(Claim::First(First {
        lock,
        listener: transport::bind(address)?,
    }))
}

/// Asks the app listening at `address` to open its window, and waits until it has taken the message
/// (it hangs up then).
pub fn hand_over(address: &Path) -> io::Result<()> {
    let connection = transport::connect(address, HAND_OVER_WAIT)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut stream = connection.into_async()?;
        link::write(&mut stream, &ToApp::Open)
            .await
            .map_err(io::Error::other)?;
        match tokio::time::timeout(HAND_OVER_WAIT, stream.read(&mut [0; 1])).await {
            Ok(_hung_up) => Ok(()),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the app did not take the message",
            )),
        }
    })
}

/// Held while the app runs; the system releases it when the process ends.
pub struct Lock {
    _handle: LockHandle,
}

#[cfg(unix)]
type LockHandle = std::fs::File;

#[cfg(unix)]
impl Lock {
    fn take(address: &Path) -> io::Result<Option<Lock>> {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(address.with_extension("lock"))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Lock { _handle: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(windows)]
type LockHandle = std::os::windows::io::OwnedHandle;

#[cfg(windows)]
impl Lock {
    /// A mutex named after the address in this session's namespace; it exists while a handle to it
    /// is open, so owning it is not needed, only having made it.
    fn take(address: &Path) -> io::Result<Option<Lock>> {
        use std::os::windows::io::FromRawHandle as _;
        use windows_sys::Win32::Foundation::{ERROR_ALREADY_EXISTS, GetLastError};
        use windows_sys::Win32::System::Threading::CreateMutexW;

        use idlegrid::owner_only::{OwnerOnly, wide};

        let name = address.file_name().unwrap_or(address.as_os_str());
        let name = wide(std::ffi::OsString::from(format!(r"Local\{}", name.display())).as_os_str());
        let descriptor = OwnerOnly::new()?;
        let attributes = descriptor.attributes();
        // SAFETY: `attributes` and `name` outlive the call.
        let handle = unsafe { CreateMutexW(&attributes, 0, name.as_ptr()) };
        // Read before anything else can change it.
        // SAFETY: no precondition.
        let error = unsafe { GetLastError() };
        if handle.is_null() {
            return Err(io::Error::from_raw_os_error(error as i32));
        }
        // SAFETY: a handle just opened, owned from here on (closed on drop).
        let handle = unsafe { std::os::windows::io::OwnedHandle::from_raw_handle(handle) };
        if error == ERROR_ALREADY_EXISTS {
            return Ok(None);
        }
        Ok(Some(Lock { _handle: handle }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_finds_the_first_and_hands_over() {
        let dir = tempfile::tempdir().unwrap();
        let address = transport::address(dir.path());
        let Claim::First(first) = claim(&address).unwrap() else {
            panic!("the first claim was refused");
        };
        assert!(matches!(claim(&address).unwrap(), Claim::Taken));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut listener = {
            let _inside = runtime.enter();
            first.listener.listen().unwrap()
        };
        let heard = runtime.spawn(async move {
            let stream = listener.accept().await.unwrap();
            let mut reader = tokio::io::BufReader::new(stream);
            let mut line = String::new();
            let message = link::read::<ToApp, _>(&mut reader, &mut line).await;
            (message.unwrap(), listener)
        });
        hand_over(&address).unwrap();
        let (message, listener) = runtime.block_on(heard).unwrap();
        assert_eq!(message, Some(ToApp::Open));
        drop((first.lock, listener));
        #[cfg(unix)]
        assert!(!address.exists());
        assert!(matches!(claim(&address).unwrap(), Claim::First(_)));
    }
}
