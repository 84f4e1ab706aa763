//! GNOME input: Mutter's `org.gnome.Mutter.IdleMonitor` on the session bus, which GNOME serves on
//! Wayland and on X11 alike. Idle time comes from `GetIdletime`; waiting is event-driven through a
//! "user active" watch, which Mutter fires once, as the `WatchFired` signal, on the next input.
//!
//! One watch is kept armed at all times (re-armed as soon as it fires), so input between two calls is
//! never missed and a wait that times out costs no D-Bus traffic; the monitor calls this source every
//! quarter second while work runs.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy, connection, fdo::DBusProxy, proxy};
use zbus::names::BusName;

use super::SignalError;
use super::input::InputIdle;

const NAME: &str = "mutter";
const BUS_NAME: &str = "org.gnome.Mutter.IdleMonitor";
const PATH: &str = "/org/gnome/Mutter/IdleMonitor/Core";
const INTERFACE: &str = "org.gnome.Mutter.IdleMonitor";

/// A stuck compositor must not stall the monitor thread for ever: a call gives up after this.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub struct MutterInput {
    connection: Connection,
    idle_monitor: Proxy<'static>,
    bus: DBusProxy<'static>,
    bus_name: BusName<'static>,
    /// Ids from `WatchFired` signals, read off the connection by a small thread: zbus's blocking
    /// signal iterator has no timeout, a channel does.
    fired: mpsc::Receiver<u32>,
    /// The armed watch and the unique name of the Mutter that holds it (a restarted Mutter forgets it).
    armed: Option<(u32, String)>,
}

impl MutterInput {
    /// Connects to the session bus.
    pub fn connect() -> Result<MutterInput, SignalError> {
        let builder = connection::Builder::session().map_err(unavailable)?;
        MutterInput::start(builder)
    }

    /// Connects to the bus at `address` (a D-Bus address such as `unix:path=/run/user/1000/bus`);
    /// tests use a private bus.
    pub fn connect_to(address: &str) -> Result<MutterInput, SignalError> {
        let builder = connection::Builder::address(address).map_err(unavailable)?;
        MutterInput::start(builder)
    }

    fn start(builder: connection::Builder<'_>) -> Result<MutterInput, SignalError> {
        let connection = builder
            .method_timeout(CALL_TIMEOUT)
            .build()
            .map_err(unavailable)?;
        let bus = DBusProxy::new(&connection).map_err(unavailable)?;
        let bus_name = BusName::from_static_str(BUS_NAME).map_err(unavailable)?;
        // Asked first, so that a desktop without Mutter is told apart from a Mutter that fails.
        if !bus.name_has_owner(bus_name.clone()).map_err(unavailable)? {
            return Err(unavailable(format!("{BUS_NAME} is not on the session bus")));
        }
        let idle_monitor = proxy::Builder::<Proxy<'static>>::new(&connection)
            .destination(BUS_NAME)
            .and_then(|b| b.path(PATH))
            .and_then(|b| b.interface(INTERFACE))
            // The interface has no properties; caching would only cost a call and a match rule.
            .map(|b| b.cache_properties(zbus::proxy::CacheProperties::No))
            .and_then(|b| b.build())
            .map_err(unavailable)?;
        // Subscribed before any watch is added, so no firing can slip past.
        let signals = idle_monitor
            .receive_signal("WatchFired")
            .map_err(unavailable)?;
        let (sender, fired) = mpsc::channel();
        std::thread::Builder::new()
            .name("idlegrid-mutter".into())
            .spawn(move || {
                // Ends when the connection closes (see Drop) or the source is gone.
                for message in signals {
                    // A malformed signal is not input we can trust; skip it.
                    let Ok(id) = message.body().deserialize::<u32>() else {
                        continue;
                    };
                    if sender.send(id).is_err() {
                        return;
                    }
                }
            })
            .map_err(unavailable)?;
        let mut input = MutterInput {
            connection,
            idle_monitor,
            bus,
            bus_name,
            fired,
            armed: None,
        };
        // One real call, so a Mutter that owns the name but not the interface is refused here.
        input.read_idle_time().map_err(|error| match error {
            SignalError::Failed { reason, .. } => unavailable(reason),
            other => other,
        })?;
        input.arm()?;
        Ok(input)
    }

    fn read_idle_time(&self) -> Result<Duration, SignalError> {
        let ms: u64 = self.idle_monitor.call("GetIdletime", &()).map_err(failed)?;
        Ok(Duration::from_millis(ms))
    }

    /// Arms a watch unless one is armed.
    fn arm(&mut self) -> Result<(), SignalError> {
        if self.armed.is_none() {
            let owner = self.owner()?;
            let id: u32 = self
                .idle_monitor
                .call("AddUserActiveWatch", &())
                .map_err(failed)?;
            self.armed = Some((id, owner));
        }
        Ok(())
    }

    fn owner(&self) -> Result<String, SignalError> {
        let owner = self
            .bus
            .get_name_owner(self.bus_name.clone())
            .map_err(failed)?;
        Ok(owner.to_string())
    }

    /// Takes a firing of the armed watch off the channel without blocking: whether input came since
    /// the watch was armed.
    fn take_fired(&mut self) -> Result<bool, SignalError> {
        loop {
            match self.fired.try_recv() {
                Ok(id) if self.is_armed(id) => {
                    self.armed = None;
                    return Ok(true);
                }
                // A stale id: a watch armed by an earlier Mutter, or one another client owns.
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(closed()),
            }
        }
    }

    fn is_armed(&self, id: u32) -> bool {
        self.armed.as_ref().is_some_and(|(armed, _)| *armed == id)
    }
}

impl InputIdle for MutterInput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        // A watch that fired is used up: arm a new one before reading, so that input after this
        // reading is caught by the next wait.
        self.take_fired()?;
        self.arm()?;
        self.read_idle_time()
    }

    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        let deadline = Instant::now() + timeout;
        if self.take_fired()? {
            self.arm()?;
            return Ok(true);
        }
        self.arm()?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.fired.recv_timeout(left) {
                Ok(id) if self.is_armed(id) => {
                    self.armed = None;
                    // Armed again before returning, so the next input is seen too.
                    self.arm()?;
                    return Ok(true);
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The watch stays armed for the next wait, unless Mutter restarted (GNOME on X11
                    // can) and took it along.
                    if let Some((_, owner)) = &self.armed
                        && *owner != self.owner()?
                    {
                        self.armed = None;
                        self.arm()?;
                    }
                    return Ok(false);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(closed()),
            }
        }
    }
}

impl Drop for MutterInput {
    fn drop(&mut self) {
        // Mutter also drops a client's watches when it leaves the bus; removing ours is politeness.
        if let Some((id, _)) = self.armed.take() {
            let removed: zbus::Result<()> = self.idle_monitor.call("RemoveWatch", &(id,));
            if let Err(error) = removed {
                tracing::debug!(%error, "could not remove the Mutter idle watch");
            }
        }
        // Closing ends the signal thread's iterator, and with it the thread.
        if let Err(error) = self.connection.clone().close() {
            tracing::debug!(%error, "could not close the D-Bus connection");
        }
    }
}

fn closed() -> SignalError {
    failed("the D-Bus connection closed")
}

fn unavailable(error: impl ToString) -> SignalError {
    SignalError::unavailable(NAME, error)
}

fn failed(error: impl ToString) -> SignalError {
    SignalError::failed(NAME, error)
}
