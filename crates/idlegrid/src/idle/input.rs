//! Keyboard and mouse idle time, one source per platform, and the choice among them.
//!
//! A source answers "how long since the last input" and, where the platform can push events, wakes a
//! waiting thread the moment input arrives; sources without events are polled fast while work runs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::SignalError;

/// How often a source without events is asked while work runs.
pub const FAST_POLL: Duration = Duration::from_millis(10);

/// How long a source that cannot wait on a [`Wake`] goes without looking at it.
pub const WAKE_SLICE: Duration = Duration::from_millis(250);

/// Ends a wait for input early, from another thread: the monitor's new preferences or its stop. On
/// Linux it is also an eventfd, so sources that wait on a file descriptor wait on both at once, and
/// sources that wait on something else hook in; a monitor at rest then wakes only when something
/// happens.
pub struct Wake {
    set: AtomicBool,
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    hooks: Mutex<Vec<Box<dyn Fn() + Send>>>,
}

impl Wake {
    pub fn new() -> Wake {
        #[cfg(target_os = "linux")]
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .inspect_err(|error| tracing::debug!(%error, "no eventfd; waits are sliced instead"))
        .ok();
        Wake {
            set: AtomicBool::new(false),
            #[cfg(target_os = "linux")]
            fd,
            hooks: Mutex::new(Vec::new()),
        }
    }

    /// Ends the current wait, or the next one.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            // A full counter (2^64 - 2 sets unread) is readable all the same.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        for hook in crate::sync::lock(&self.hooks).iter() {
            hook();
        }
    }

    /// Runs `hook` at each [`Wake::set`] from now on: for a source whose wait a file descriptor
    /// cannot end (it then looks at [`Wake::is_set`] when woken).
    pub fn on_set(&self, hook: Box<dyn Fn() + Send>) {
        crate::sync::lock(&self.hooks).push(hook);
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Whether it was set, clearing it.
    pub fn take(&self) -> bool {
        let was = self.set.swap(false, Ordering::SeqCst);
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let mut count = [0u8; 8];
            // Non-blocking: nothing to read when it was not set.
            let _ = rustix::io::read(fd, &mut count);
        }
        was
    }

    /// Readable while set; None where no eventfd could be made.
    #[cfg(target_os = "linux")]
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.fd.as_ref().map(|fd| fd.as_fd())
    }
}

impl Default for Wake {
    fn default() -> Self {
        Wake::new()
    }
}

/// Time since the person last touched keyboard or mouse.
pub trait InputIdle: Send {
    /// A short name for logs ("x11", "mutter", "wayland", "windows", "macos").
    fn name(&self) -> &'static str;

    /// Time since the last keyboard or mouse input.
    fn idle_time(&mut self) -> Result<Duration, SignalError>;

    /// Blocks until input arrives (returns true) or `timeout` passes (false). The default polls
    /// [`InputIdle::idle_time`] every [`FAST_POLL`]; event-driven sources override it.
    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        let start = Instant::now();
        let mut last = self.idle_time()?;
        while start.elapsed() < timeout {
            std::thread::sleep(FAST_POLL.min(timeout.saturating_sub(start.elapsed())));
            let now = self.idle_time()?;
            if now < last {
                return Ok(true);
            }
            last = now;
        }
        Ok(false)
    }

    /// [`InputIdle::wait_for_input`] that also ends, with false, once `wake` is set. The default waits
    /// in slices of [`WAKE_SLICE`] and looks at `wake` between them; sources that wait on a file
    /// descriptor wait on the wake's as well, so nothing wakes them in vain.
    fn wait_for_input_or_wake(
        &mut self,
        timeout: Duration,
        wake: &Wake,
    ) -> Result<bool, SignalError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if wake.is_set() || left.is_zero() {
                return Ok(false);
            }
            if self.wait_for_input(left.min(WAKE_SLICE))? {
                return Ok(true);
            }
        }
    }

    /// The caller will not wait for a while (work is paused) and reads the idle time only now and
    /// then. A source the display server sends every input event to may ask it to stop until the next
    /// [`InputIdle::wait_for_input`]: while the person works, that is hundreds of events a second,
    /// each read and dropped.
    fn stop_listening(&mut self) {}
}

/// The best input source this session offers, or why there is none (a headless machine: the policy
/// then treats input as unknown and decides on the other signals).
pub fn detect_input() -> Result<Box<dyn InputIdle>, SignalError> {
    let plan = input_plan(&SessionEnv::from_env());
    let (kind, source) = choose_input(&plan, connect)?;
    tracing::info!(
        source = kind.name(),
        "keyboard and mouse idle time from {kind:?}"
    );
    Ok(source)
}

// The sources, for tests and for callers that want one in particular.
#[cfg(target_os = "linux")]
pub use super::mutter::MutterInput;
#[cfg(any(windows, target_os = "macos"))]
pub use super::platform::PlatformInput;
#[cfg(target_os = "linux")]
pub use super::wayland::{NOTIFY_TIMEOUT as WAYLAND_NOTIFY_TIMEOUT, WaylandInput};

/// The kinds of input source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// GNOME, on Wayland or X11: Mutter's idle monitor on the session bus.
    Mutter,
    /// Other Wayland compositors: ext-idle-notify-v1.
    Wayland,
    /// An X11 session: XScreenSaver and XInput 2.
    X11,
    /// Windows or macOS: the system's last-input time.
    Platform,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Mutter => "mutter",
            InputKind::Wayland => "wayland",
            InputKind::X11 => "x11",
            InputKind::Platform => "platform",
        }
    }
}

/// What the session's environment says about its display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionEnv {
    /// `WAYLAND_DISPLAY` (or `WAYLAND_SOCKET`) is set.
    pub wayland: bool,
    /// `DISPLAY` is set.
    pub x11: bool,
}

impl SessionEnv {
    pub fn from_env() -> SessionEnv {
        let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
        SessionEnv {
            wayland: set("WAYLAND_DISPLAY") || set("WAYLAND_SOCKET"),
            x11: set("DISPLAY"),
        }
    }
}

/// The sources to try, best first, and those not tried with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPlan {
    pub try_in_order: Vec<InputKind>,
    pub skipped: Vec<(InputKind, &'static str)>,
}

/// Which sources to try in a session like `env`, on this platform.
///
/// On Linux, Mutter comes first whatever the environment says: it is asked on the session bus, and it
/// alone knows GNOME's input on Wayland (GNOME offers no ext-idle-notify). X11 is left out of a
/// Wayland session: `DISPLAY` there is Xwayland, which sees only input to X11 windows, so it would
/// report a person typing in any other window as idle.
pub fn input_plan(env: &SessionEnv) -> InputPlan {
    let mut plan = InputPlan {
        try_in_order: Vec::new(),
        skipped: Vec::new(),
    };
    if cfg!(target_os = "linux") {
        plan.try_in_order.push(InputKind::Mutter);
        if env.wayland {
            plan.try_in_order.push(InputKind::Wayland);
        } else {
            plan.skipped
                .push((InputKind::Wayland, "WAYLAND_DISPLAY is not set"));
        }
        match (env.x11, env.wayland) {
            (true, false) => plan.try_in_order.push(InputKind::X11),
            (true, true) => plan.skipped.push((
                InputKind::X11,
                "DISPLAY is Xwayland in a Wayland session, which sees only input to X11 windows",
            )),
            (false, _) => plan.skipped.push((InputKind::X11, "DISPLAY is not set")),
        }
    } else if cfg!(any(windows, target_os = "macos")) {
        plan.try_in_order.push(InputKind::Platform);
    }
    plan
}

/// Tries the plan's sources in order with `connect` and returns the first that answers, or
/// `Unavailable` saying what each attempt and each skipped source came to.
pub fn choose_input<T>(
    plan: &InputPlan,
    mut connect: impl FnMut(InputKind) -> Result<T, SignalError>,
) -> Result<(InputKind, T), SignalError> {
    let mut why_not = Vec::new();
    for &kind in &plan.try_in_order {
        match connect(kind) {
            Ok(source) => return Ok((kind, source)),
            Err(error) => {
                tracing::debug!(source = kind.name(), %error, "input source not usable");
                let reason = match error {
                    SignalError::Unavailable { reason, .. }
                    | SignalError::Failed { reason, .. } => reason,
                };
                why_not.push(format!("{}: {reason}", kind.name()));
            }
        }
    }
    for (kind, reason) in &plan.skipped {
        why_not.push(format!("{}: {reason}", kind.name()));
    }
    if why_not.is_empty() {
        why_not.push("no idle source for this platform".into());
    }
    Err(SignalError::Unavailable {
        source_name: "input",
        reason: why_not.join("; "),
    })
}

/// Connects the real source of `kind`.
fn connect(kind: InputKind) -> Result<Box<dyn InputIdle>, SignalError> {
    fn boxed<S: InputIdle + 'static>(
        source: Result<S, SignalError>,
    ) -> Result<Box<dyn InputIdle>, SignalError> {
        source.map(|source| Box::new(source) as Box<dyn InputIdle>)
    }
    match kind {
        #[cfg(target_os = "linux")]
        InputKind::Mutter => boxed(super::mutter::MutterInput::connect()),
        #[cfg(target_os = "linux")]
        InputKind::Wayland => boxed(super::wayland::WaylandInput::connect()),
        #[cfg(target_os = "linux")]
        InputKind::X11 => boxed(super::x11::X11Input::connect()),
        #[cfg(any(windows, target_os = "macos"))]
        InputKind::Platform => boxed(super::platform::PlatformInput::connect()),
        // Each platform builds only its own sources; the plan never names the others.
        #[allow(unreachable_patterns)]
        _ => Err(SignalError::Unavailable {
            source_name: "input",
            reason: format!("{} is not built for this platform", kind.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Nobody ever touches anything; a wait is a sleep.
    struct Untouched;

    impl InputIdle for Untouched {
        fn name(&self) -> &'static str {
            "untouched"
        }

        fn idle_time(&mut self) -> Result<Duration, SignalError> {
            Ok(Duration::from_secs(3600))
        }

        fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
            std::thread::sleep(timeout);
            Ok(false)
        }
    }

    #[test]
    fn a_wake_ends_a_wait_from_another_thread() {
        let wake = Arc::new(Wake::new());
        let setter = Arc::clone(&wake);
        let started = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                setter.set();
            });
            let woke = Untouched.wait_for_input_or_wake(Duration::from_secs(30), &wake);
            assert!(!woke.expect("waits"), "a wake is not input");
        });
        // Within a slice of the set.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(wake.is_set());
        assert!(wake.take());
        assert!(!wake.take(), "taken once");
        // Set before the wait: the wait does not start.
        wake.set();
        let started = Instant::now();
        assert!(
            !Untouched
                .wait_for_input_or_wake(Duration::from_secs(30), &wake)
                .expect("waits")
        );
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_wakes_descriptor_reads_while_it_is_set() {
        let wake = Wake::new();
        let fd = wake.fd().expect("eventfd on Linux");
        let readable = |fd| super::super::wait_readable_or(fd, None, Duration::ZERO);
        assert_eq!(readable(fd), Ok(false));
        wake.set();
        wake.set();
        assert_eq!(readable(fd), Ok(true));
        assert!(wake.take());
        assert_eq!(readable(fd), Ok(false));
    }

    #[test]
    fn hooks_run_at_each_set() {
        let wake = Wake::new();
        let (sender, hooked) = std::sync::mpsc::channel();
        wake.on_set(Box::new(move || {
            let _ = sender.send(());
        }));
        wake.set();
        wake.set();
        assert_eq!(hooked.try_iter().count(), 2);
    }
}
