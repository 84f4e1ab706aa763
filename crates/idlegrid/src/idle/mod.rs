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
#[cfg(target_os = "linux")]
pub mod x11;

pub use input::{InputIdle, detect_input};
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

/// Waits until `fd` can be read or `timeout` passes; true when readable. An interrupted wait counts as
/// not yet readable: callers loop.
#[cfg(target_os = "linux")]
pub(crate) fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: std::time::Duration,
) -> Result<bool, String> {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec::try_from(timeout).map_err(|e| e.to_string())?;
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(ready) => Ok(ready > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

/// Everything the policy looks at, read at one moment. `None` means "could not tell": the policy never
/// pauses for a signal it cannot read.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Signals {
    /// Time since the last keyboard or mouse input.
    pub input_idle: Option<std::time::Duration>,
    #[serde(flatten)]
    pub system: SystemSample,
}
