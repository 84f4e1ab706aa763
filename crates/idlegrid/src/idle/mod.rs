//! Idleness: whether this machine may work for a pool right now, and why not.
//!
//! Signals (`input`, `system`) sit behind traits with one real implementation per platform and test
//! doubles; the `policy` is a pure function of signals, preferences and the time; the `monitor` runs
//! the signals on a thread and publishes each verdict, waking at once on input while work runs so the
//! GPU is given back within a blink.

pub mod input;
pub mod monitor;
#[cfg(target_os = "linux")]
mod mutter;
#[cfg(any(windows, target_os = "macos"))]
mod platform;
pub mod policy;
pub mod system;
#[cfg(target_os = "linux")]
mod wayland;
#[cfg(any(windows, test))]
mod win32;
#[cfg(target_os = "linux")]
pub mod x11;

pub use input::{InputIdle, Wake, detect_input};
pub use monitor::{IdleMonitor, MonitorConfig};
pub use policy::{
    GpuRule, Mode, Now, Pace, Preferences, Reason, Schedule, Verdict, Window, decide,
};
pub use system::{GpuSignals, HostSignals, SystemSample, SystemSignals};

/// A signal that could not be read. The monitor logs it once and carries on without that signal.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("{source_name} is not available here: {reason}")]
    Unavailable {
        source_name: &'static str,
        reason: String,
    },
    #[error("{source_name} failed: {reason}")]
    Failed {
        source_name: &'static str,
        reason: String,
    },
}

// Only Linux's signal sources (X11, Wayland, GNOME) build their errors this way.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl SignalError {
    pub(crate) fn unavailable(source_name: &'static str, reason: impl ToString) -> SignalError {
        SignalError::Unavailable {
            source_name,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn failed(source_name: &'static str, reason: impl ToString) -> SignalError {
        SignalError::Failed {
            source_name,
            reason: reason.to_string(),
        }
    }
}

/// Waits until `fd` can be read, `wake` (if any) can be read, or `timeout` passes; true when `fd` is
/// readable. An interrupted wait counts as not yet readable: callers loop.
#[cfg(target_os = "linux")]
pub(crate) fn wait_readable_or(
    fd: std::os::fd::BorrowedFd<'_>,
    wake: Option<std::os::fd::BorrowedFd<'_>>,
    timeout: std::time::Duration,
) -> Result<bool, String> {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [
        PollFd::new(&fd, PollFlags::IN),
        PollFd::new(wake.as_ref().unwrap_or(&fd), PollFlags::IN),
    ];
    let count = if wake.is_some() { 2 } else { 1 };
    let timeout = rustix::event::Timespec::try_from(timeout).map_err(|e| e.to_string())?;
    match rustix::event::poll(&mut fds[..count], Some(&timeout)) {
        // A hung-up or failed connection counts as readable: reading it then tells what happened.
        Ok(_) => Ok(fds[0]
            .revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

/// Everything the policy looks at, read at one moment. `None` means "could not tell": the policy never
/// pauses for a signal it cannot read. The monitor publishes a reading at each evaluation: once a tick
/// (a second), and at once on new preferences or, while sharing, on input; so a published
/// `input_idle` is up to a second old.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Signals {
    /// Time since the last keyboard or mouse input.
    pub input_idle: Option<std::time::Duration>,
    #[serde(flatten)]
    pub system: SystemSample,
}

/// Test helpers shared by the sources' tests.
#[cfg(all(test, target_os = "linux"))]
pub(crate) mod testing {
    use std::io::BufRead;
    use std::process::{Child, Command, Stdio};

    /// A dbus-daemon of the test's own (Debian package dbus-daemon) on a socket in a temporary
    /// directory, killed on drop.
    pub(crate) struct PrivateBus {
        daemon: Child,
        pub(crate) address: String,
        _dir: tempfile::TempDir,
    }

    impl PrivateBus {
        pub(crate) fn start() -> PrivateBus {
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut daemon = Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--print-address"])
                .arg(format!(
                    "--address=unix:path={}",
                    dir.path().join("bus").display()
                ))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon");
            let mut address = String::new();
            std::io::BufReader::new(daemon.stdout.take().expect("piped"))
                .read_line(&mut address)
                .expect("dbus-daemon prints its address");
            PrivateBus {
                daemon,
                address: address.trim().to_owned(),
                _dir: dir,
            }
        }
    }

    impl Drop for PrivateBus {
        fn drop(&mut self) {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
    }
}
