//! GNOME input: Mutter's `org.gnome.Mutter.IdleMonitor` on the session bus, which GNOME serves on
//! Wayland and on X11 alike. Idle time comes from `GetIdletime`; waiting is event-driven through a
//! "user active" watch, which Mutter fires once, as the `WatchFired` signal, on the next input.
//!
//! While the monitor waits for input, one watch is kept armed (re-armed as soon as it fires), so input
//! between two calls is never missed. Each D-Bus call costs this process about half a millisecond of
//! CPU, so a monitor at rest makes as few as it can: a wait that ends without input proves none came
//! since the idle time was last asked, and the next reading adds the time since instead of asking;
//! Mutter restarting is heard of from the bus (`NameOwnerChanged`) instead of asked about after each
//! wait; while work is paused, a watch that fired is not armed again until the next wait, so a person
//! at the keyboard costs one call a second. The monitor's [`Wake`] ends a wait through the same
//! channel as the signals.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, Proxy, connection, fdo::DBusProxy, proxy};
use zbus::names::BusName;

use super::SignalError;
use super::input::{InputIdle, Wake};

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
    /// `WatchFired` signals, read off the connection by a small thread: zbus's blocking signal
    /// iterator has no timeout, a channel does. Wakes come the same way.
    fired: mpsc::Receiver<Fired>,
    /// For the monitor's [`Wake`], once it has hooked in.
    sender: mpsc::Sender<Fired>,
    wake_hooked: bool,
    /// The signal thread said the connection closed.
    closed: bool,
    /// The armed watch and the unique name of the Mutter that holds it (a restarted Mutter forgets it).
    armed: Option<(u32, String)>,
    /// A watch fired is armed again at once; false while the monitor does not wait.
    listening: bool,
    /// Mutter's name changed hands since its owner was last asked.
    owner_changed: bool,
    /// The idle time last asked of Mutter, and when.
    last_read: Option<(Duration, Instant)>,
    /// No input since `last_read`: a wait ended without the armed watch firing.
    quiet_since_read: bool,
}

enum Fired {
    Watch(u32),
    Wake,
    /// Mutter left the bus or came (back).
    OwnerChanged,
    /// The connection closed; the signal thread has ended.
    Closed,
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
        let thread_sender = sender.clone();
        std::thread::Builder::new()
            .name("idlegrid-mutter".into())
            .spawn(move || {
                // Ends when the connection closes (see Drop) or the source is gone.
                for message in signals {
                    // A malformed signal is not input we can trust; skip it.
                    let Ok(id) = message.body().deserialize::<u32>() else {
                        continue;
                    };
                    if thread_sender.send(Fired::Watch(id)).is_err() {
                        return;
                    }
                }
                let _ = thread_sender.send(Fired::Closed);
            })
            .map_err(unavailable)?;
        let owners = bus
            .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
            .map_err(unavailable)?;
        let owner_sender = sender.clone();
        std::thread::Builder::new()
            .name("idlegrid-mutter-owner".into())
            .spawn(move || {
                for _ in owners {
                    if owner_sender.send(Fired::OwnerChanged).is_err() {
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
            sender,
            wake_hooked: false,
            closed: false,
            armed: None,
            listening: true,
            owner_changed: false,
            last_read: None,
            quiet_since_read: false,
        };
        // One real call, so a Mutter that owns the name but not the interface is refused here.
        input.read_idle_time().map_err(|error| match error {
            SignalError::Failed { reason, .. } => unavailable(reason),
            other => other,
        })?;
        input.arm()?;
        Ok(input)
    }

    fn read_idle_time(&mut self) -> Result<Duration, SignalError> {
        let ms: u64 = self.idle_monitor.call("GetIdletime", &()).map_err(failed)?;
        let idle = Duration::from_millis(ms);
        self.last_read = Some((idle, Instant::now()));
        self.quiet_since_read = false;
        Ok(idle)
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
            if self.closed {
                return Err(closed());
            }
            match self.fired.try_recv() {
                Ok(Fired::Watch(id)) if self.is_armed(id) => {
                    self.armed = None;
                    self.quiet_since_read = false;
                    return Ok(true);
                }
                // A stale id (a watch armed by an earlier Mutter, or one another client owns), or a
                // wake that came while nobody waited.
                Ok(Fired::Watch(_) | Fired::Wake) => {}
                Ok(Fired::OwnerChanged) => self.heard_owner_change(),
                Ok(Fired::Closed) => self.closed = true,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(closed()),
            }
        }
    }

    /// A new Mutter knows nothing of our watch; one that left cannot fire it.
    fn heard_owner_change(&mut self) {
        self.owner_changed = true;
        self.quiet_since_read = false;
    }

    /// Waits for the armed watch to fire, or until `wake` is set or `timeout` passes.
    fn wait(&mut self, timeout: Duration, wake: Option<&Wake>) -> Result<bool, SignalError> {
        let deadline = Instant::now() + timeout;
        if self.take_fired()? {
            self.arm()?;
            return Ok(true);
        }
        if !std::mem::replace(&mut self.listening, true) && self.armed.is_none() {
            // Input between the last reading and this watch fires nothing: compare readings.
            self.arm()?;
            let before = self.last_read.map(|(idle, _)| idle);
            let now = self.read_idle_time()?;
            if before.is_some_and(|before| now < before) {
                return Ok(true);
            }
        }
        self.arm()?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.fired.recv_timeout(left) {
                Ok(Fired::Watch(id)) if self.is_armed(id) => {
                    self.armed = None;
                    // Armed again before returning, so the next input is seen too.
                    self.arm()?;
                    return Ok(true);
                }
                Ok(Fired::Watch(_)) => {}
                Ok(Fired::Wake) => {
                    if wake.is_some_and(Wake::is_set) {
                        return Ok(self.quiet_wait_ended());
                    }
                }
                Ok(Fired::OwnerChanged) => self.heard_owner_change(),
                Ok(Fired::Closed) => {
                    self.closed = true;
                    return Err(closed());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The watch stays armed for the next wait, unless Mutter restarted (GNOME on X11
                    // can) and took it along.
                    if std::mem::take(&mut self.owner_changed)
                        && let Some((_, owner)) = &self.armed
                        && *owner != self.owner()?
                    {
                        self.armed = None;
                        self.arm()?;
                        return Ok(false);
                    }
                    return Ok(self.quiet_wait_ended());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(closed()),
            }
        }
    }

    /// A wait ended without input, the watch armed all along: nothing came since the last reading.
    fn quiet_wait_ended(&mut self) -> bool {
        self.quiet_since_read = self.armed.is_some() && !self.owner_changed;
        false
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
        self.take_fired()?;
        if let Some((idle, read_at)) = self.last_read
            && self.quiet_since_read
            && self.armed.is_some()
        {
            return Ok(idle + read_at.elapsed());
        }
        // A watch that fired is used up: arm a new one before reading, so that input after this
        // reading is caught by the next wait.
        if self.listening {
            self.arm()?;
        }
        self.read_idle_time()
    }

    fn stop_listening(&mut self) {
        self.listening = false;
    }

    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        self.wait(timeout, None)
    }

    fn wait_for_input_or_wake(
        &mut self,
        timeout: Duration,
        wake: &Wake,
    ) -> Result<bool, SignalError> {
        if !std::mem::replace(&mut self.wake_hooked, true) {
            let sender = self.sender.clone();
            wake.on_set(Box::new(move || {
                let _ = sender.send(Fired::Wake);
            }));
        }
        self.wait(timeout, Some(wake))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::idle::testing::PrivateBus;

    /// What the double has been asked, and its idle time.
    #[derive(Default)]
    struct Calls {
        idle_ms: u64,
        reads: usize,
        arms: usize,
        /// Armed watches and their owners.
        watches: Vec<(u32, String)>,
    }

    /// Mutter's idle monitor as far as this source uses it.
    struct Double(Arc<Mutex<Calls>>);

    #[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
    impl Double {
        #[zbus(name = "GetIdletime")]
        fn get_idletime(&self) -> u64 {
            let mut calls = crate::sync::lock(&self.0);
            calls.reads += 1;
            calls.idle_ms
        }

        #[zbus(name = "AddUserActiveWatch")]
        fn add_user_active_watch(&self, #[zbus(header)] header: zbus::message::Header<'_>) -> u32 {
            let mut calls = crate::sync::lock(&self.0);
            calls.arms += 1;
            let id = 100 + calls.arms as u32;
            let owner = header.sender().map(|s| s.to_string()).unwrap_or_default();
            calls.watches.push((id, owner));
            id
        }

        #[zbus(name = "RemoveWatch")]
        fn remove_watch(&self, id: u32) {
            crate::sync::lock(&self.0)
                .watches
                .retain(|(watch, _)| *watch != id);
        }
    }

    /// The double, served on a bus.
    struct Fake {
        connection: zbus::blocking::Connection,
        calls: Arc<Mutex<Calls>>,
    }

    impl Fake {
        /// Input: the idle time restarts and every armed watch fires.
        fn touch(&self) {
            let fired = {
                let mut calls = crate::sync::lock(&self.calls);
                calls.idle_ms = 0;
                std::mem::take(&mut calls.watches)
            };
            for (id, owner) in fired {
                self.connection
                    .emit_signal(Some(owner.as_str()), PATH, INTERFACE, "WatchFired", &(id,))
                    .expect("emit WatchFired");
            }
        }

        /// GetIdletime and AddUserActiveWatch calls so far.
        fn counts(&self) -> (usize, usize) {
            let calls = crate::sync::lock(&self.calls);
            (calls.reads, calls.arms)
        }
    }

    /// The double on a private bus, and a source connected to it.
    fn serve(idle: Duration) -> (PrivateBus, Fake, MutterInput) {
        let bus = PrivateBus::start();
        let calls = Arc::new(Mutex::new(Calls {
            idle_ms: idle.as_millis() as u64,
            ..Calls::default()
        }));
        let connection = zbus::blocking::connection::Builder::address(bus.address.as_str())
            .and_then(|b| b.name(BUS_NAME))
            .and_then(|b| b.serve_at(PATH, Double(Arc::clone(&calls))))
            .and_then(|b| b.build())
            .expect("serve the double");
        let input = MutterInput::connect_to(&bus.address).expect("connects");
        (bus, Fake { connection, calls }, input)
    }

    /// Touches after a tenth of a second, while `wait` runs; what `wait` returned.
    fn touch_during(fake: &Fake, wait: impl FnOnce() -> bool) -> bool {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                fake.touch();
            });
            wait()
        })
    }

    #[test]
    fn a_wake_ends_a_wait_and_input_still_does() {
        let (_bus, fake, mut input) = serve(Duration::from_secs(3600));
        let wake = Arc::new(Wake::new());
        let setter = Arc::clone(&wake);
        let started = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                setter.set();
            });
            let woke = input.wait_for_input_or_wake(Duration::from_secs(30), &wake);
            assert!(!woke.expect("waits"));
        });
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wake ended it"
        );
        assert!(wake.take());

        // A wake already taken does not end the next wait.
        wake.set();
        wake.take();
        let started = Instant::now();
        let woke = input.wait_for_input_or_wake(Duration::from_millis(300), &wake);
        assert!(!woke.expect("waits"));
        assert!(started.elapsed() >= Duration::from_millis(250));

        // Input fires the armed watch.
        let woke = touch_during(&fake, || {
            input
                .wait_for_input_or_wake(Duration::from_secs(30), &wake)
                .expect("waits")
        });
        assert!(woke, "input");
    }

    #[test]
    fn after_a_quiet_wait_the_idle_time_is_not_asked() {
        let (_bus, fake, mut input) = serve(Duration::from_secs(3600));
        let first = input.idle_time().expect("idle time");
        assert!(
            !input
                .wait_for_input(Duration::from_millis(200))
                .expect("waits")
        );
        let (reads, arms) = fake.counts();
        let second = input.idle_time().expect("idle time");
        assert!(
            second >= first + Duration::from_millis(200),
            "{first:?} then {second:?}"
        );
        assert_eq!(fake.counts(), (reads, arms), "no call");
        // After input it is asked again.
        fake.touch();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
        assert_eq!(fake.counts().0, reads + 1);
    }

    #[test]
    fn while_paused_a_fired_watch_waits_for_the_next_wait_to_be_armed() {
        let (_bus, fake, mut input) = serve(Duration::from_secs(3600));
        input.stop_listening();
        fake.touch();
        std::thread::sleep(Duration::from_millis(50));
        input.idle_time().expect("idle time");
        input.idle_time().expect("idle time");
        let (reads, arms) = fake.counts();
        assert_eq!(arms, 1, "only the watch armed when connecting");
        // Input between the last reading and the next wait, with no watch to fire: the readings tell.
        crate::sync::lock(&fake.calls).idle_ms = 5_000;
        input.idle_time().expect("idle time");
        fake.touch();
        let started = Instant::now();
        assert!(input.wait_for_input(Duration::from_secs(5)).expect("waits"));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(fake.counts(), (reads + 2, arms + 1));
        // Listening again: the next input wakes a wait as ever.
        let woke = touch_during(&fake, || {
            input.wait_for_input(Duration::from_secs(5)).expect("waits")
        });
        assert!(woke);
    }
}
