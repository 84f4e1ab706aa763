//! Windows and macOS input: the system's own "time since last input" (`GetLastInputInfo` read by
//! `win32`; `HIDIdleTime` through user-idle3). Neither pushes an event on input, so waiting is the
//! trait's polling every `FAST_POLL`, which is cheap: each reading is one system call.

use std::time::Duration;

use super::SignalError;
use super::input::InputIdle;

#[cfg(windows)]
const NAME: &str = "windows";
#[cfg(target_os = "macos")]
const NAME: &str = "macos";

pub struct PlatformInput;

impl PlatformInput {
    /// Reads once, so a system that cannot tell is found out here rather than in the monitor.
    pub fn connect() -> Result<PlatformInput, SignalError> {
        read().map_err(|error| SignalError::Unavailable {
            source_name: NAME,
            reason: error.to_string(),
        })?;
        Ok(PlatformInput)
    }
}

impl InputIdle for PlatformInput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        read().map_err(|error| SignalError::Failed {
            source_name: NAME,
            reason: error.to_string(),
        })
    }
}

#[cfg(windows)]
fn read() -> std::io::Result<Duration> {
    super::win32::input_idle()
}

#[cfg(target_os = "macos")]
fn read() -> Result<Duration, user_idle3::Error> {
    user_idle3::UserIdle::get_time().map(|idle| idle.duration())
}
