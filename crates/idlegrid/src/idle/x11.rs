//! X11 input: idle time from the XScreenSaver extension, and XInput 2 raw events on the root window
//! so a waiting thread wakes the moment a key or the mouse moves, whichever window has focus. The raw
//! events are asked for only while someone waits: the rest of the time every motion of the mouse
//! would be sent here only to be dropped.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::screensaver::ConnectionExt as _;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use super::SignalError;
use super::input::{InputIdle, WAKE_SLICE, Wake};

const NAME: &str = "x11";

/// Keyboard and mouse idle time on one X display.
pub struct X11Input {
    connection: RustConnection,
    root: Window,
    /// False where the server lacks XInput 2: then input is polled.
    raw_events: bool,
    /// Raw events are selected now.
    listening: bool,
    /// The idle time last read, to notice input that came before the raw events were selected.
    last_idle: Option<Duration>,
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
        let raw_events = query_xinput2(&connection)
            .and_then(|()| select_raw_input(&connection, root, raw_input()))
            .is_ok();
        if !raw_events {
            tracing::info!("no XInput 2 on this X server; polling for input instead");
        }
        Ok(X11Input {
            connection,
            root,
            raw_events,
            listening: raw_events,
            last_idle: None,
        })
    }

    /// Selects raw events if they are not; true when input came since the last idle reading, which
    /// no event will tell of.
    fn listen(&mut self) -> Result<bool, SignalError> {
        if self.listening {
            return Ok(false);
        }
        select_raw_input(&self.connection, self.root, raw_input())?;
        self.listening = true;
        let before = self.last_idle;
        let now = self.idle_time()?;
        Ok(before.is_some_and(|before| now < before))
    }

    /// Waits for a raw input event, or until `wake` is set or `timeout` passes.
    fn wait(&mut self, timeout: Duration, wake: Option<&Wake>) -> Result<bool, SignalError> {
        if !self.raw_events {
            return match wake {
                Some(wake) => Polled(self).wait_for_input_or_wake(timeout, wake),
                None => Polled(self).wait_for_input(timeout),
            };
        }
        if self.listen()? {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.drain()? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || wake.is_some_and(Wake::is_set) {
                return Ok(false);
            }
            let wake_fd = wake.and_then(Wake::fd);
            // Without an eventfd the wake is looked at between slices.
            let left = match (wake, wake_fd) {
                (Some(_), None) => left.min(WAKE_SLICE),
                _ => left,
            };
            super::wait_readable_or(self.connection.stream().as_fd(), wake_fd, left)
                .map_err(failed)?;
        }
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

/// Key presses, buttons, motion and touches: anything a person does.
fn raw_input() -> xinput::XIEventMask {
    xinput::XIEventMask::RAW_KEY_PRESS
        | xinput::XIEventMask::RAW_BUTTON_PRESS
        | xinput::XIEventMask::RAW_MOTION
        | xinput::XIEventMask::RAW_TOUCH_BEGIN
}

/// Tells the server this client speaks XInput 2, which it must before selecting XInput 2 events.
fn query_xinput2(connection: &RustConnection) -> Result<(), SignalError> {
    connection
        .xinput_xi_query_version(2, 0)
        .map_err(failed)?
        .reply()
        .map_err(failed)?;
    Ok(())
}

/// Selects `mask` of raw events on the root window; an empty mask stops them.
fn select_raw_input(
    connection: &RustConnection,
    root: Window,
    mask: xinput::XIEventMask,
) -> Result<(), SignalError> {
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
        let idle = Duration::from_millis(u64::from(info.ms_since_user_input));
        self.last_idle = Some(idle);
        Ok(idle)
    }

    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        self.wait(timeout, None)
    }

    fn wait_for_input_or_wake(
        &mut self,
        timeout: Duration,
        wake: &Wake,
    ) -> Result<bool, SignalError> {
        self.wait(timeout, Some(wake))
    }

    fn stop_listening(&mut self) {
        if !std::mem::replace(&mut self.listening, false) {
            return;
        }
        // Asked once: events that still come are drained with each reading, and the next wait
        // selects them again anyway.
        if let Err(error) = select_raw_input(&self.connection, self.root, 0u32.into()) {
            tracing::debug!(%error, "cannot stop X11 raw input events");
        }
    }
}

/// The trait's polling, for servers without XInput 2.
struct Polled<'a>(&'a mut X11Input);

impl InputIdle for Polled<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        self.0.idle_time()
    }
}

fn unavailable(error: impl ToString) -> SignalError {
    SignalError::unavailable(NAME, error)
}

fn failed(error: impl ToString) -> SignalError {
    SignalError::failed(NAME, error)
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// A private Xvfb (Debian package xvfb; scripts/setup installs it), stopped on drop.
    struct Xvfb(Child, String);

    impl Xvfb {
        fn start() -> Xvfb {
            let mut child = Command::new("Xvfb")
                .args(["-displayfd", "1", "-nolisten", "tcp"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("piped");
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("Xvfb prints its display");
            let display = format!(":{}", line.trim());
            Xvfb(child, display)
        }

        /// Real input through XTEST (Debian package xdotool).
        fn move_pointer(&self) {
            let status = Command::new("xdotool")
                .args(["mousemove_relative", "4", "4"])
                .env("DISPLAY", &self.1)
                .status()
                .expect("xdotool");
            assert!(status.success());
        }
    }

    impl Drop for Xvfb {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn raw_events_stop_between_waits_and_input_meanwhile_still_wakes_the_next() {
        let x = Xvfb::start();
        let mut input = X11Input::connect_to(Some(&x.1)).expect("connects");
        assert!(input.raw_events && input.listening);
        input.stop_listening();
        assert!(!input.listening);
        // Not listening, input is not sent here, yet the idle time still sees it.
        std::thread::sleep(Duration::from_millis(50));
        input.idle_time().expect("idle time");
        x.move_pointer();
        assert!(
            !input.drain().expect("drain"),
            "no events while not listening"
        );
        // The next wait listens again and knows at once of the input it missed.
        let started = Instant::now();
        assert!(input.wait_for_input(Duration::from_secs(10)).expect("wait"));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(input.listening);
        // Quiet: the wait runs its course; then input wakes it as before.
        assert!(
            !input
                .wait_for_input(Duration::from_millis(300))
                .expect("wait")
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                x.move_pointer();
            });
            assert!(input.wait_for_input(Duration::from_secs(20)).expect("wait"));
        });
        // One move may come as several raw events, the last after the wait above ended (seen on a
        // loaded machine): let them all arrive before the wait below, which must see no input.
        while input
            .wait_for_input(Duration::from_millis(300))
            .expect("wait")
        {}
        // A wake ends a long wait at once, and is not input.
        let wake = std::sync::Arc::new(Wake::new());
        let setter = std::sync::Arc::clone(&wake);
        let started = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                setter.set();
            });
            let woke = input.wait_for_input_or_wake(Duration::from_secs(30), &wake);
            assert!(!woke.expect("wait"));
        });
        assert!(started.elapsed() < Duration::from_secs(5));
        // Stopping and starting again without input in between reports none.
        input.stop_listening();
        std::thread::sleep(Duration::from_millis(50));
        input.idle_time().expect("idle time");
        assert!(
            !input
                .wait_for_input(Duration::from_millis(300))
                .expect("wait")
        );
    }
}
