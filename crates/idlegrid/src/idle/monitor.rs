//! The monitor: reads the signals on its own thread, asks the policy, and publishes each new verdict.
//!
//! The machine is read every `tick` (1 s, as BOINC does). While work runs, the thread instead waits on
//! the input source, which wakes it the moment the person touches keyboard or mouse, so a pause is
//! published within milliseconds rather than at the next tick.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::input::InputIdle;
use super::policy::{self, Now, Preferences, Verdict};
use super::system::{SystemSample, SystemSignals};
use super::{SignalError, Signals};

/// The longest the thread goes without looking at new preferences or a stop.
const SLICE: Duration = Duration::from_millis(250);

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
        let mut watcher = Watcher {
            input,
            system,
            preferences,
            config,
            commands: receiver,
            verdicts: verdict_tx,
            signals: signals_tx,
            sample: SystemSample::default(),
            next_sample: Instant::now(),
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

    /// New preferences take effect within a quarter of a second.
    pub fn set_preferences(&self, preferences: Preferences) {
        let _ = self
            .commands
            .send(Command::Preferences(Box::new(preferences)));
    }
}

impl Drop for IdleMonitor {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Watcher {
    input: Option<Box<dyn InputIdle>>,
    system: Box<dyn SystemSignals>,
    preferences: Preferences,
    config: MonitorConfig,
    commands: mpsc::Receiver<Command>,
    verdicts: watch::Sender<Verdict>,
    signals: watch::Sender<Signals>,
    sample: SystemSample,
    next_sample: Instant,
    reported_input_error: bool,
}

impl Watcher {
    fn run(&mut self) {
        loop {
            let verdict = self.evaluate();
            let slice = self
                .next_sample
                .saturating_duration_since(Instant::now())
                .min(SLICE);
            // Err(true): the monitor's handle is gone.
            let command = if verdict.is_run() {
                self.wait_for_input(slice);
                self.commands
                    .try_recv()
                    .map_err(|e| e == mpsc::TryRecvError::Disconnected)
            } else {
                self.commands
                    .recv_timeout(slice)
                    .map_err(|e| e == mpsc::RecvTimeoutError::Disconnected)
            };
            match command {
                Ok(Command::Stop) | Err(true) => return,
                Ok(Command::Preferences(preferences)) => self.preferences = *preferences,
                Err(false) => {}
            }
        }
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
            std::thread::sleep(timeout);
            return;
        };
        if let Err(error) = input.wait_for_input(timeout) {
            report_once(&mut self.reported_input_error, &error);
            std::thread::sleep(timeout);
        }
    }
}

fn report_once(reported: &mut bool, error: &SignalError) {
    if !std::mem::replace(reported, true) {
        tracing::warn!(%error, "cannot read keyboard and mouse idle time; deciding without it");
    }
}
