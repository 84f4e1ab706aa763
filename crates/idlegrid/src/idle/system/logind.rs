//! Session lock (Linux): logind's LockedHint over the system bus.
//!
//! logind announces each change of LockedHint (PropertiesChanged), so the value is kept from those
//! announcements and reading it costs no call; a call each second cost about half a millisecond of
//! CPU here, most of the whole sample. Once a minute it is read afresh anyway: a cache would never
//! tell that the bus or logind went away.

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
/// How often the lock hint is read from logind rather than from its announcements.
const READ_AFRESH_AFTER: Duration = Duration::from_secs(60);
const LOGIND: &str = "org.freedesktop.login1";

pub(super) struct Logind {
    /// The bus logind is on; None for the system bus.
    address: Option<String>,
    state: State,
    /// Whether the current outage has been logged.
    reported: bool,
}

enum State {
    Waiting(Instant),
    /// Connecting happens on its own thread: a bus that accepts the connection but never
    /// answers would otherwise hang the sample, and zbus has no timeout for connecting.
    Connecting(Receiver<zbus::Result<Session>>),
    Ready(Session),
}

/// The person's session, seen twice.
struct Session {
    /// Kept up to date by logind's announcements.
    announced: Proxy<'static>,
    /// Asks logind.
    asked: Proxy<'static>,
    asked_at: Instant,
}

impl Logind {
    pub(super) fn new() -> Logind {
        Logind::on_bus(None)
    }

    /// logind on the bus at `address` (tests serve their own); None for the system bus.
    pub(super) fn on_bus(address: Option<String>) -> Logind {
        Logind {
            state: connect_in_background(address.clone()),
            address,
            reported: false,
        }
    }

    /// The session's LockedHint; None while connecting or where logind is not reachable.
    pub(super) fn locked(&mut self) -> Option<bool> {
        self.advance();
        let State::Ready(session) = &mut self.state else {
            return None;
        };
        let read = if session.asked_at.elapsed() >= READ_AFRESH_AFTER {
            session.asked_at = Instant::now();
            session.asked.get_property::<bool>("LockedHint")
        } else {
            session.announced.get_property::<bool>("LockedHint")
        };
        match read {
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
            State::Waiting(at) if Instant::now() >= *at => {
                self.state = connect_in_background(self.address.clone())
            }
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

fn connect_in_background(address: Option<String>) -> State {
    let (sender, answer) = mpsc::channel();
    // Where no thread can start, the sender goes with it: the receiver then reports Disconnected
    // and the usual retry follows.
    let _ = std::thread::Builder::new()
        .name("idlegrid-logind".into())
        .spawn(move || {
            // The sampler may be gone by now; then nobody needs the answer.
            let _ = sender.send(session(address.as_deref()));
        });
    State::Connecting(answer)
}

/// The person's graphical session. Started from a terminal or as a user service, Idlegrid may not
/// sit in that session itself, so the user's "Display" session comes first; "auto" (the caller's
/// own session) is the fallback for users without one.
fn session(address: Option<&str>) -> zbus::Result<Session> {
    let builder = match address {
        Some(address) => zbus::blocking::connection::Builder::address(address)?,
        None => zbus::blocking::connection::Builder::system()?,
    };
    let connection = builder.method_timeout(CALL_TIMEOUT).build()?;
    let path = match display_session(&connection) {
        Some(path) => path,
        None => OwnedObjectPath::try_from("/org/freedesktop/login1/session/auto")?,
    };
    const INTERFACE: &str = "org.freedesktop.login1.Session";
    // Building with a cache subscribes to the announcements and reads every property once, which
    // also proves the session answers before the sampler relies on it.
    let announced = proxy(&connection, path.clone(), INTERFACE, CacheProperties::Yes)?;
    let asked = proxy(&connection, path, INTERFACE, CacheProperties::No)?;
    Ok(Session {
        announced,
        asked,
        asked_at: Instant::now(),
    })
}

fn display_session(connection: &Connection) -> Option<OwnedObjectPath> {
    let user_path = OwnedObjectPath::try_from("/org/freedesktop/login1/user/self").ok()?;
    let user = proxy(
        connection,
        user_path,
        "org.freedesktop.login1.User",
        CacheProperties::No,
    )
    .ok()?;
    let (_id, path): (String, OwnedObjectPath) = user.get_property("Display").ok()?;
    // "/" means the user has no graphical session.
    (path.as_str() != "/").then_some(path)
}

fn proxy(
    connection: &Connection,
    path: OwnedObjectPath,
    interface: &'static str,
    cache: CacheProperties,
) -> zbus::Result<Proxy<'static>> {
    zbus::blocking::proxy::Builder::new(connection)
        .destination(LOGIND)?
        .path(path)?
        .interface(interface)?
        .cache_properties(cache)
        .build()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::idle::testing::PrivateBus;

    /// logind's session as far as this reads it; counts how often logind is asked.
    struct FakeSession {
        locked: Arc<AtomicBool>,
        asked: Arc<AtomicUsize>,
    }

    #[zbus::interface(name = "org.freedesktop.login1.Session")]
    impl FakeSession {
        #[zbus(property, name = "LockedHint")]
        fn locked_hint(&self) -> bool {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.locked.load(Ordering::SeqCst)
        }
    }

    fn locked_within(logind: &mut Logind, wanted: bool) {
        let start = Instant::now();
        while logind.locked() != Some(wanted) {
            assert!(start.elapsed() < Duration::from_secs(10), "never {wanted}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_lock_is_read_from_announcements_without_asking_each_time() {
        let bus = PrivateBus::start();
        let (locked, asked) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
        let path = "/org/freedesktop/login1/session/auto";
        let served = zbus::blocking::connection::Builder::address(bus.address.as_str())
            .and_then(|b| b.name(LOGIND))
            .and_then(|b| {
                b.serve_at(
                    path,
                    FakeSession {
                        locked: Arc::clone(&locked),
                        asked: Arc::clone(&asked),
                    },
                )
            })
            .and_then(|b| b.build())
            .expect("serve the stand-in");
        let mut logind = Logind::on_bus(Some(bus.address.clone()));
        locked_within(&mut logind, false);
        let asked_once = asked.load(Ordering::SeqCst);
        for _ in 0..50 {
            assert_eq!(logind.locked(), Some(false));
        }
        assert_eq!(
            asked.load(Ordering::SeqCst),
            asked_once,
            "read from the cache"
        );

        // The screen locks: logind announces it.
        locked.store(true, Ordering::SeqCst);
        let session = served
            .object_server()
            .interface::<_, FakeSession>(path)
            .expect("the session is served");
        zbus::block_on(session.get().locked_hint_changed(session.signal_emitter()))
            .expect("announce");
        locked_within(&mut logind, true);

        // Once a minute logind is asked all the same: a bus gone is then noticed, where the cache
        // would go on saying what it last heard.
        drop(served);
        drop(bus);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(logind.locked(), Some(true));
        if let State::Ready(session) = &mut logind.state {
            session.asked_at -= READ_AFRESH_AFTER;
        }
        assert_eq!(logind.locked(), None);
        assert!(matches!(logind.state, State::Waiting(_)));
    }
}
