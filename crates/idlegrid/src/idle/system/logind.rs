//! Session lock (Linux): logind's LockedHint over the system bus.

use std::fmt::Display;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy};
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

/// logind answers in milliseconds; a bus that takes longer is stuck, and the sample must go on.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// Where there is no system bus or no logind (containers, CI), asking every second is waste.
const RETRY_AFTER: Duration = Duration::from_secs(60);
const LOGIND: &str = "org.freedesktop.login1";

pub(super) struct Logind {
    state: State,
    /// Whether the current outage has been logged.
    reported: bool,
}

enum State {
    Waiting(Instant),
    /// Connecting happens on its own thread: a bus that accepts the connection but never
    /// answers would otherwise hang the sample, and zbus has no timeout for connecting.
    Connecting(Receiver<zbus::Result<Proxy<'static>>>),
    Ready(Proxy<'static>),
}

impl Logind {
    pub(super) fn new() -> Logind {
        Logind {
            state: connect_in_background(),
            reported: false,
        }
    }

    /// The session's LockedHint; None while connecting or where logind is not reachable.
    pub(super) fn locked(&mut self) -> Option<bool> {
        self.advance();
        let State::Ready(session) = &self.state else {
            return None;
        };
        match session.get_property::<bool>("LockedHint") {
            Ok(locked) => {
                self.reported = false;
                Some(locked)
            }
            Err(error) => {
                self.wait(error);
                None
            }
        }
    }

    fn advance(&mut self) {
        match &self.state {
            State::Waiting(at) if Instant::now() >= *at => self.state = connect_in_background(),
            State::Connecting(answer) => match answer.try_recv() {
                Ok(Ok(session)) => self.state = State::Ready(session),
                Ok(Err(error)) => self.wait(error),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.wait("the connecting thread ended"),
            },
            State::Waiting(_) | State::Ready(_) => {}
        }
    }

    /// Logs the outage once, and tries again after [`RETRY_AFTER`].
    fn wait(&mut self, error: impl Display) {
        if !self.reported {
            tracing::debug!(%error, "logind is not reachable; the session lock is unknown");
            self.reported = true;
        }
        self.state = State::Waiting(Instant::now() + RETRY_AFTER);
    }
}

fn connect_in_background() -> State {
    let (sender, answer) = mpsc::channel();
    // Where no thread can start, the sender goes with it: the receiver then reports Disconnected
    // and the usual retry follows.
    let _ = std::thread::Builder::new()
        .name("idlegrid-logind".into())
        .spawn(move || {
            // The sampler may be gone by now; then nobody needs the answer.
            let _ = sender.send(session_proxy());
        });
    State::Connecting(answer)
}

/// The person's graphical session. Started from a terminal or as a user service, Idlegrid may not
/// sit in that session itself, so the user's "Display" session comes first; "auto" (the caller's
/// own session) is the fallback for users without one.
fn session_proxy() -> zbus::Result<Proxy<'static>> {
    let connection = zbus::blocking::connection::Builder::system()?
        .method_timeout(CALL_TIMEOUT)
        .build()?;
    let path = match display_session(&connection) {
        Some(path) => path,
        None => OwnedObjectPath::try_from("/org/freedesktop/login1/session/auto")?,
    };
    let session = proxy(&connection, path, "org.freedesktop.login1.Session")?;
    // Proves the session answers before the sampler relies on it.
    session.get_property::<bool>("LockedHint")?;
    Ok(session)
}

fn display_session(connection: &Connection) -> Option<OwnedObjectPath> {
    let user_path = OwnedObjectPath::try_from("/org/freedesktop/login1/user/self").ok()?;
    let user = proxy(connection, user_path, "org.freedesktop.login1.User").ok()?;
    let (_id, path): (String, OwnedObjectPath) = user.get_property("Display").ok()?;
    // "/" means the user has no graphical session.
    (path.as_str() != "/").then_some(path)
}

/// Properties are read afresh on each call: caching would add a signal subscription for one bool.
fn proxy(
    connection: &Connection,
    path: OwnedObjectPath,
    interface: &'static str,
) -> zbus::Result<Proxy<'static>> {
    zbus::blocking::proxy::Builder::new(connection)
        .destination(LOGIND)?
        .path(path)?
        .interface(interface)?
        .cache_properties(CacheProperties::No)
        .build()
}
