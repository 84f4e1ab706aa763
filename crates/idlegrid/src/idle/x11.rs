//! X11 input: idle time from the XScreenSaver extension, and XInput 2 raw events on the root window
//! so a waiting thread wakes the moment a key or the mouse moves, whichever window has focus.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::screensaver::ConnectionExt as _;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use super::SignalError;
use super::input::InputIdle;

const NAME: &str = "x11";

/// Keyboard and mouse idle time on one X display.
pub struct X11Input {
    connection: RustConnection,
    root: Window,
    /// False where the server lacks XInput 2: then input is polled.
    raw_events: bool,
}

impl X11Input {
    /// Connects to `$DISPLAY`.
    pub fn connect() -> Result<X11Input, SignalError> {
        X11Input::connect_to(None)
    }

    /// Connects to `display` (":0"), or to `$DISPLAY` when `None`.
    pub fn connect_to(display: Option<&str>) -> Result<X11Input, SignalError> {
        let (connection, screen) = x11rb::connect(display).map_err(unavailable)?;
        let root = connection.setup().roots[screen].root;
        if connection
            .extension_information(x11rb::protocol::screensaver::X11_EXTENSION_NAME)
            .map_err(unavailable)?
            .is_none()
        {
            return Err(unavailable(
                "the X server has no MIT-SCREEN-SAVER extension",
            ));
        }
        let raw_events = select_raw_input(&connection, root).is_ok();
        if !raw_events {
            tracing::info!("no XInput 2 on this X server; polling for input instead");
        }
        Ok(X11Input {
            connection,
            root,
            raw_events,
        })
    }

    /// Drops queued input events; returns whether there were any.
    fn drain(&self) -> Result<bool, SignalError> {
        let mut any = false;
        while self.connection.poll_for_event().map_err(failed)?.is_some() {
            any = true;
        }
        Ok(any)
    }
}

fn select_raw_input(connection: &RustConnection, root: Window) -> Result<(), SignalError> {
    connection
        .xinput_xi_query_version(2, 0)
        .map_err(failed)?
        .reply()
        .map_err(failed)?;
    let mask = xinput::XIEventMask::RAW_KEY_PRESS
        | xinput::XIEventMask::RAW_BUTTON_PRESS
        | xinput::XIEventMask::RAW_MOTION
        | xinput::XIEventMask::RAW_TOUCH_BEGIN;
    connection
        .xinput_xi_select_events(
            root,
            &[xinput::EventMask {
                deviceid: xinput::Device::ALL.into(),
                mask: vec![mask],
            }],
        )
        .map_err(failed)?
        .check()
        .map_err(failed)?;
    Ok(())
}

impl InputIdle for X11Input {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        // Events not waited for still have to be read, or they pile up in the socket.
        self.drain()?;
        let info = self
            .connection
            .screensaver_query_info(self.root)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        Ok(Duration::from_millis(u64::from(info.ms_since_user_input)))
    }

    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        if !self.raw_events {
            return poll_idle_time(self, timeout);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.drain()? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            super::wait_readable(self.connection.stream().as_fd(), left).map_err(failed)?;
        }
    }
}

/// The trait's polling, for servers without XInput 2.
fn poll_idle_time(input: &mut X11Input, timeout: Duration) -> Result<bool, SignalError> {
    struct Polled<'a>(&'a mut X11Input);
    impl InputIdle for Polled<'_> {
        fn name(&self) -> &'static str {
            NAME
        }
        fn idle_time(&mut self) -> Result<Duration, SignalError> {
            self.0.idle_time()
        }
    }
    Polled(input).wait_for_input(timeout)
}

fn unavailable(error: impl ToString) -> SignalError {
    SignalError::unavailable(NAME, error)
}

fn failed(error: impl ToString) -> SignalError {
    SignalError::failed(NAME, error)
}
