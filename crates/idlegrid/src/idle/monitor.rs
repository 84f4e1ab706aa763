//! The monitor: reads the signals on its own thread, asks the policy, and publishes each new verdict.
//!
//! The machine is read every `tick` (1 s, as BOINC does). While work may run, the thread waits on the
//! input source, which wakes it the moment the person touches keyboard or mouse, so a pause is
//! published within milliseconds rather than at the next tick; while paused it waits on its commands
//! and tells the source it need not listen for input. Either wait lasts until the next tick, the
//! moment the person will have been away for the idle delay, or the end of a snooze, whichever comes
//! first, and a command (new preferences, a stop) ends it at once through a [`Wake`]. A wake-up costs
//! more than the reading it does (a context switch, on a virtual machine a timer exit too), so a
//! monitor at rest wakes about once a second; a schedule's boundary is seen at the next tick.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::input::{InputIdle, Wake};
use super::policy::{self, Now, Preferences, Verdict};
use super::system::{SystemSample, SystemSignals};
use super::{SignalError, Signals};

/// How long to wait before trying an input source that failed again.
const INPUT_RETRY: Duration = Duration::from_millis(250);

/// A wait for the moment the verdict changes (the idle delay reached, a snooze over) ends this much
/// after it, so the reading then is surely past it.
const MARGIN: Duration = Duration::from_millis(5);

#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// The adapter the verdicts are for (per-GPU rules, GPU signals).
    pub adapter: String,
    /// How often the whole machine is read.
    pub tick: Duration,
}

impl MonitorConfig {
    pub fn new(adapter: impl Into<String>) -> MonitorConfig {
        MonitorConfig {
            adapter: adapter.into(),
            tick: Duration::from_secs(1),
        }
    }
}

enum Command {
    Preferences(Box<Preferences>),
    Stop,
}

/// A running monitor; dropping it stops the thread.
pub struct IdleMonitor {
    verdicts: watch::Receiver<Verdict>,
    signals: watch::Receiver<Signals>,
    commands: mpsc::Sender<Command>,
    /// Set after each command, so a thread waiting on the input source sees it at once.
    wake: Arc<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl IdleMonitor {
    /// Starts watching. `input` is `None` on a machine with no input source (headless): the policy then
    /// decides on the other signals alone.
    pub fn spawn(
        input: Option<Box<dyn InputIdle>>,
        system: Box<dyn SystemSignals>,
        preferences: Preferences,
        config: MonitorConfig,
    ) -> IdleMonitor {
        let (commands, receiver) = mpsc::channel();
        let (verdict_tx, verdicts) = watch::channel(Verdict::Pause {
            reason: policy::Reason::Off,
        });
        let (signals_tx, signals) = watch::channel(Signals::default());
        let wake = Arc::new(Wake::new());
        let mut watcher = Watcher {
            wake: Arc::clone(&wake),
            input,
            system,
            preferences,
            config,
            commands: receiver,
            verdicts: verdict_tx,
            signals: signals_tx,
            sample: SystemSample::default(),
            next_sample: Instant::now(),
            input_idle: None,
            reported_input_error: false,
        };
        // The first verdict is there before `spawn` returns, so no one sees a made-up one.
        watcher.evaluate();
        let thread = std::thread::Builder::new()
            .name("idle-monitor".into())
            .spawn(move || watcher.run());
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                tracing::error!(%error, "cannot start the idle monitor; sharing stays paused");
                None
            }
        };
        IdleMonitor {
            verdicts,
            signals,
            commands,
            wake,
            thread,
        }
    }

    /// The current verdict and each new one.
    pub fn verdicts(&self) -> watch::Receiver<Verdict> {
        self.verdicts.clone()
    }

    /// The latest reading of the signals, for a hardware page.
    pub fn signals(&self) -> watch::Receiver<Signals> {
        self.signals.clone()
    }

    /// New preferences take effect at once (within a quarter of a second with a source that cannot
    /// be woken, such as the polled ones of Windows and macOS).
    pub fn set_preferences(&self, preferences: Preferences) {
        let _ = self
            .commands
            .send(Command::Preferences(Box::new(preferences)));
        self.wake.set();
    }
}

impl Drop for IdleMonitor {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        self.wake.set();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Watcher {
    wake: Arc<Wake>,
    input: Option<Box<dyn InputIdle>>,
    system: Box<dyn SystemSignals>,
    preferences: Preferences,
    config: MonitorConfig,
    commands: mpsc::Receiver<Command>,
    verdicts: watch::Sender<Verdict>,
    signals: watch::Sender<Signals>,
    sample: SystemSample,
    next_sample: Instant,
    /// The last input idle time read, and when.
    input_idle: Option<(Duration, Instant)>,
    reported_input_error: bool,
}

impl Watcher {
    fn run(&mut self) {
        loop {
            let verdict = self.evaluate();
            let wait = self.until_next_change();
            let first = if verdict.is_run() && self.input.is_some() {
                // Input ends the wait at once, so that work gives the GPU back within a blink.
                self.wait_for_input(wait);
                None
            } else {
                if let Some(input) = self.input.as_mut() {
                    input.stop_listening();
                }
                match self.commands.recv_timeout(wait) {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            };
            // Taken before the commands are read: one sent after this sets it again, and the next
            // wait ends at once for it.
            self.wake.take();
            let pending = std::iter::from_fn(|| match self.commands.try_recv() {
                Ok(command) => Some(Ok(command)),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Err(())),
            });
            let mut preferences = None;
            for command in first.into_iter().map(Ok).chain(pending) {
                match command {
                    Ok(Command::Preferences(new)) => preferences = Some(new),
                    // Stopped, or the monitor's handle is gone.
                    Ok(Command::Stop) | Err(()) => return,
                }
            }
            if let Some(new) = preferences {
                self.preferences = *new;
                // Exclusive programs just named are looked for now, not a tick later.
                self.next_sample = Instant::now();
            }
        }
    }

    /// How long the verdict surely stays as it is, commands aside: until the next tick, the moment the
    /// person will have been away for the idle delay (input only ever makes that later), or the end
    /// of a snooze. The time of day (a schedule) is looked at each tick.
    fn until_next_change(&self) -> Duration {
        let now = Instant::now();
        let mut wait = self.next_sample.saturating_duration_since(now);
        if let Some((idle, read_at)) = self.input_idle {
            let away_at = read_at + self.preferences.idle_after.saturating_sub(idle);
            if away_at > now {
                wait = wait.min(away_at - now + MARGIN);
            }
        }
        if let Some(until_ms) = self.preferences.snoozed_until_ms {
            let left_ms = until_ms.saturating_sub(Now::system().unix_ms);
            if left_ms > 0 {
                wait = wait.min(Duration::from_millis(left_ms) + MARGIN);
            }
        }
        wait
    }

    /// Reads the signals (the machine only when its tick is due), decides, and publishes a change.
    fn evaluate(&mut self) -> Verdict {
        if Instant::now() >= self.next_sample {
            self.sample = self.system.sample(&self.preferences.exclusive_programs);
            self.next_sample = Instant::now() + self.config.tick;
        }
        let input_idle = self.input.as_mut().and_then(|input| {
            input
                .idle_time()
                .map_err(|error| report_once(&mut self.reported_input_error, &error))
                .ok()
        });
        self.input_idle = input_idle.map(|idle| (idle, Instant::now()));
        let signals = Signals {
            input_idle,
            system: self.sample.clone(),
        };
        let previous = self.verdicts.borrow().clone();
        let verdict = policy::decide(
            &signals,
            &self.preferences,
            &self.config.adapter,
            Now::system(),
            &previous,
        );
        self.signals.send_replace(signals);
        if verdict != previous {
            // A pause's countdown changes the verdict every tick; the log wants only new sentences.
            if verdict.to_string() != previous.to_string() {
                tracing::info!(adapter = %self.config.adapter, "{verdict}");
            }
            self.verdicts.send_replace(verdict.clone());
        }
        verdict
    }

    fn wait_for_input(&mut self, timeout: Duration) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if let Err(error) = input.wait_for_input_or_wake(timeout, &self.wake) {
            report_once(&mut self.reported_input_error, &error);
            std::thread::sleep(timeout.min(INPUT_RETRY));
        }
    }
}

fn report_once(reported: &mut bool, error: &SignalError) {
    if !std::mem::replace(reported, true) {
        tracing::warn!(%error, "cannot read keyboard and mouse idle time; deciding without it");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::idle::policy::{Mode, Reason};

    /// Keyboard and mouse left alone since `since - idle`; counts the readings.
    struct Quiet {
        idle: Duration,
        since: Instant,
        readings: Arc<AtomicUsize>,
    }

    impl InputIdle for Quiet {
        fn name(&self) -> &'static str {
            "quiet"
        }

        fn idle_time(&mut self) -> Result<Duration, SignalError> {
            self.readings.fetch_add(1, Ordering::SeqCst);
            Ok(self.idle + self.since.elapsed())
        }

        fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
            std::thread::sleep(timeout);
            Ok(false)
        }
    }

    struct Machine(Arc<Mutex<usize>>);

    impl SystemSignals for Machine {
        fn sample(&mut self, _exclusive: &[String]) -> SystemSample {
            *crate::sync::lock(&self.0) += 1;
            SystemSample::default()
        }
    }

    fn spawn(idle: Duration, preferences: Preferences, tick: Duration) -> (IdleMonitor, Counts) {
        let counts = Counts::default();
        let input = Quiet {
            idle,
            since: Instant::now(),
            readings: Arc::clone(&counts.readings),
        };
        let monitor = IdleMonitor::spawn(
            Some(Box::new(input)),
            Box::new(Machine(Arc::clone(&counts.samples))),
            preferences,
            MonitorConfig {
                adapter: "test GPU".into(),
                tick,
            },
        );
        (monitor, counts)
    }

    #[derive(Default)]
    struct Counts {
        readings: Arc<AtomicUsize>,
        samples: Arc<Mutex<usize>>,
    }

    fn wait_for(monitor: &IdleMonitor, within: Duration, wanted: impl Fn(&Verdict) -> bool) {
        let start = Instant::now();
        while !wanted(&monitor.verdicts().borrow()) {
            assert!(
                start.elapsed() < within,
                "still {} after {within:?}",
                *monitor.verdicts().borrow()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn commands_do_not_wait_for_the_tick() {
        let hour = Duration::from_secs(3600);
        let (monitor, counts) = spawn(hour, Preferences::default(), hour);
        assert!(monitor.verdicts().borrow().is_run());
        // Sharing, waiting on the input source: a source that cannot be woken is looked at between
        // slices of a quarter second.
        monitor.set_preferences(Preferences {
            mode: Mode::Off,
            ..Preferences::default()
        });
        wait_for(&monitor, Duration::from_secs(2), |v| !v.is_run());
        // Paused, waiting on the commands: at once.
        monitor.set_preferences(Preferences::default());
        wait_for(&monitor, Duration::from_secs(2), Verdict::is_run);
        // New preferences are read against a fresh sample (exclusive programs may be new).
        assert!(*crate::sync::lock(&counts.samples) >= 3);
        let started = Instant::now();
        drop(monitor);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stops within a slice"
        );
    }

    #[test]
    fn work_starts_the_moment_the_idle_delay_is_reached() {
        let preferences = Preferences {
            idle_after: Duration::from_secs(2),
            ..Preferences::default()
        };
        let hour = Duration::from_secs(3600);
        let (monitor, _) = spawn(Duration::from_millis(1_700), preferences, hour);
        assert_eq!(
            *monitor.verdicts().borrow(),
            Verdict::Pause {
                reason: Reason::UserActive { resumes_in_s: 1 }
            }
        );
        let started = Instant::now();
        wait_for(&monitor, Duration::from_secs(2), Verdict::is_run);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_millis(1_500), "{waited:?}");
    }

    #[test]
    fn a_monitor_at_rest_wakes_once_a_tick() {
        // At the keyboard (paused) for 1.9 s with a tick of 0.6 s: readings at the start and at three
        // ticks (a quarter-second slice would make it eight or more).
        let (monitor, counts) = spawn(
            Duration::ZERO,
            Preferences::default(),
            Duration::from_millis(600),
        );
        std::thread::sleep(Duration::from_millis(1_900));
        drop(monitor);
        let readings = counts.readings.load(Ordering::SeqCst);
        let samples = *crate::sync::lock(&counts.samples);
        assert!((2..=6).contains(&readings), "{readings} readings of input");
        assert!(
            (2..=5).contains(&samples),
            "{samples} samples of the machine"
        );
    }
}
