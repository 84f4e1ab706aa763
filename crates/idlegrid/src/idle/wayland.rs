//! Wayland input (compositors other than GNOME's): the `ext-idle-notify-v1` protocol, spoken directly
//! on the calling thread. The protocol only notifies: one notification with a short timeout says
//! `idled` after that much quiet and `resumed` on the next input, and the idle time is derived from it.
//!
//! What follows from that, and callers should know:
//! - the idle time reads zero for the first [`NOTIFY_TIMEOUT`] of quiet, and counts only from the
//!   moment the source connected (the compositor tells nothing of the time before);
//! - input wakes a wait at once only while the notification is idle. Work runs only after minutes of
//!   quiet, so it is idle whenever the monitor waits; a wait begun within [`NOTIFY_TIMEOUT`] of input
//!   returns true once the notification has failed to go idle, about a second later.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use wayland_client::backend::WaylandError;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_registry::WlRegistry, wl_seat::WlSeat};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::ext::idle_notify::v1::client::ext_idle_notification_v1::{
    self, ExtIdleNotificationV1,
};
use wayland_protocols::ext::idle_notify::v1::client::ext_idle_notifier_v1::ExtIdleNotifierV1;

use super::SignalError;
use super::input::{InputIdle, WAKE_SLICE, Wake};

const NAME: &str = "wayland";

/// The quiet after which the compositor says `idled`: short, because idle time reads zero until then,
/// and long enough that a person at work does not cause a stream of idled/resumed pairs.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_millis(1000);

/// Room for the compositor's timer when a wait concludes from a missing `idled` that input happened.
const TIMER_SLACK: Duration = Duration::from_millis(250);

pub struct WaylandInput {
    queue: EventQueue<State>,
    state: State,
    /// Kept so the compositor keeps notifying; it goes with the connection.
    _notification: ExtIdleNotificationV1,
}

#[derive(Default)]
struct State {
    /// When the quiet began: the `idled` event's arrival less the timeout. `None` while not idle.
    idle_since: Option<Instant>,
    /// A `resumed` event came since the last call.
    resumed: bool,
}

impl WaylandInput {
    /// Connects to the compositor named by `WAYLAND_DISPLAY`.
    pub fn connect() -> Result<WaylandInput, SignalError> {
        let connection = Connection::connect_to_env().map_err(unavailable)?;
        WaylandInput::start(connection)
    }

    /// Connects to the compositor socket at `socket` (tests use their own compositor).
    pub fn connect_to(socket: &Path) -> Result<WaylandInput, SignalError> {
        let stream = UnixStream::connect(socket)
            .map_err(|error| unavailable(format!("{}: {error}", socket.display())))?;
        let connection = Connection::from_socket(stream).map_err(unavailable)?;
        WaylandInput::start(connection)
    }

    fn start(connection: Connection) -> Result<WaylandInput, SignalError> {
        let (globals, mut queue) =
            registry_queue_init::<State>(&connection).map_err(unavailable)?;
        let handle = queue.handle();
        let notifier: ExtIdleNotifierV1 = globals.bind(&handle, 1..=2, ()).map_err(|error| {
            unavailable(format!(
                "the compositor does not offer ext-idle-notify-v1 ({error})"
            ))
        })?;
        let seat: WlSeat = globals
            .bind(&handle, 1..=1, ())
            .map_err(|error| unavailable(format!("the compositor has no seat ({error})")))?;
        let timeout = u32::try_from(NOTIFY_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        // Version 2 counts input alone; version 1 also stays "active" while something inhibits idling
        // (a video playing), which only makes this source more cautious.
        let notification = if notifier.version() >= 2 {
            notifier.get_input_idle_notification(timeout, &seat, &handle, ())
        } else {
            notifier.get_idle_notification(timeout, &seat, &handle, ())
        };
        let mut state = State::default();
        // Makes the compositor answer, so a refusal shows here rather than in the first reading.
        queue.roundtrip(&mut state).map_err(unavailable)?;
        Ok(WaylandInput {
            queue,
            state,
            _notification: notification,
        })
    }

    /// Reads and handles the compositor's events, waiting up to `wait` for the first (or for `wake`).
    fn read_events(&mut self, wait: Duration, wake: Option<&Wake>) -> Result<(), SignalError> {
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(failed)?;
        match self.queue.flush() {
            // A full socket empties as the compositor reads; the next call flushes the rest.
            Ok(()) => {}
            Err(WaylandError::Io(error)) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(failed(error)),
        }
        // `None`: events are already queued, and dispatching them is all there is to do.
        if let Some(guard) = self.queue.prepare_read() {
            let wake_fd = wake.and_then(Wake::fd);
            // Without an eventfd the wake is looked at between slices.
            let wait = match (wake, wake_fd) {
                (Some(_), None) => wait.min(WAKE_SLICE),
                _ => wait,
            };
            let readable =
                super::wait_readable_or(guard.connection_fd(), wake_fd, wait).map_err(failed)?;
            if readable {
                match guard.read() {
                    Ok(_) => {}
                    Err(WaylandError::Io(error))
                        if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(failed(error)),
                }
            }
        }
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(failed)?;
        Ok(())
    }
}

impl InputIdle for WaylandInput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        // Also keeps the socket read, so the compositor never finds it full.
        self.read_events(Duration::ZERO, None)?;
        self.state.resumed = false;
        Ok(self
            .state
            .idle_since
            .map_or(Duration::ZERO, |since| since.elapsed()))
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
}

impl WaylandInput {
    /// Waits for input, or until `wake` is set or `timeout` passes.
    fn wait(&mut self, timeout: Duration, wake: Option<&Wake>) -> Result<bool, SignalError> {
        let start = Instant::now();
        let deadline = start + timeout;
        self.read_events(Duration::ZERO, None)?;
        // Not idle now means input within the last NOTIFY_TIMEOUT; no event will tell of more input,
        // but a notification still not idle a timeout from now proves input during the wait.
        let mut proof = self
            .state
            .idle_since
            .is_none()
            .then(|| start + NOTIFY_TIMEOUT + TIMER_SLACK);
        loop {
            if std::mem::take(&mut self.state.resumed) {
                return Ok(true);
            }
            let now = Instant::now();
            if self.state.idle_since.is_some() {
                proof = None;
            } else if proof.is_some_and(|proof| now >= proof) {
                return Ok(true);
            }
            if now >= deadline || wake.is_some_and(Wake::is_set) {
                return Ok(false);
            }
            let until = proof.map_or(deadline, |proof| proof.min(deadline));
            self.read_events(until.saturating_duration_since(now), wake)?;
        }
    }
}

impl Dispatch<ExtIdleNotificationV1, ()> for State {
    fn event(
        state: &mut State,
        _: &ExtIdleNotificationV1,
        event: ext_idle_notification_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<State>,
    ) {
        match event {
            ext_idle_notification_v1::Event::Idled => {
                let now = Instant::now();
                state.idle_since = Some(now.checked_sub(NOTIFY_TIMEOUT).unwrap_or(now));
            }
            ext_idle_notification_v1::Event::Resumed => {
                state.idle_since = None;
                state.resumed = true;
            }
            // Events of later protocol versions this code does not know.
            _ => {}
        }
    }
}

/// Globals coming and going after start do not matter: the seat and notifier are bound.
impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut State,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<State>,
    ) {
    }
}

/// The seat's name and capabilities do not matter: the notification covers all its devices.
impl Dispatch<WlSeat, ()> for State {
    fn event(
        _: &mut State,
        _: &WlSeat,
        _: wayland_client::protocol::wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<State>,
    ) {
    }
}

/// The notifier sends no events.
impl Dispatch<ExtIdleNotifierV1, ()> for State {
    fn event(
        _: &mut State,
        _: &ExtIdleNotifierV1,
        _: wayland_protocols::ext::idle_notify::v1::client::ext_idle_notifier_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<State>,
    ) {
    }
}

fn unavailable(error: impl ToString) -> SignalError {
    SignalError::unavailable(NAME, error)
}

fn failed(error: impl ToString) -> SignalError {
    SignalError::failed(NAME, error)
}
