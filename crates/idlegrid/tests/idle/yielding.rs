//! Yielding the GPU: the executor stops between passes, the monitor turns signals into verdicts, and
//! a provider on a real pool gives its lease back the moment it is paused, resumes when allowed, and
//! gives its GPU device back after a while paused. Input here comes from test doubles; x11.rs
//! drives real X11 input.

use crate::common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::idle::*;
use common::net::*;
use common::*;
use idlegrid::client::{Client, own_submitter_key};
use idlegrid::gpu::RunControl;
use idlegrid::idle::{
    IdleMonitor, InputIdle, Mode, MonitorConfig, Preferences, Reason, SignalError, SystemSample,
    Verdict,
};
use idlegrid::job::JobError;
use idlegrid::provider::{ProviderConfig, ProviderState};
use iroh::SecretKey;

#[test]
fn a_cancelled_run_stops_after_the_pass_on_the_gpu_and_the_next_runs_whole() {
    let mut executor = executor();
    let job = example("hashchain");
    let control = RunControl::default();
    control.cancel();
    let error = executor.run_with(&job, &control).unwrap_err();
    assert!(matches!(error, JobError::Cancelled(_)), "{error}");
    assert_eq!(error.to_string(), "cancelled: stopped after pass 1 of 64");

    let output = executor.run(&job).unwrap();
    assert_hashchain(&output.outputs, 64);
    assert_eq!(
        executor.stats().devices_opened,
        1,
        "a cancel keeps the device"
    );
}

#[test]
fn a_gentle_run_gives_the_same_answer_and_a_released_device_is_reopened() {
    let mut executor = executor();
    let control = RunControl::default();
    control.set_gentle(true);
    let output = executor.run_with(&example("hashchain"), &control).unwrap();
    assert_hashchain(&output.outputs, 64);

    assert!(executor.has_device());
    assert!(executor.release_device());
    assert!(!executor.has_device());
    assert!(!executor.release_device(), "nothing left to release");
    assert_hashchain(&executor.run(&example("hashchain")).unwrap().outputs, 64);
    assert_eq!(executor.stats().devices_opened, 2);
}

/// Keyboard and mouse as a test drives them: an idle time it sets, and touches it sends.
struct ScriptedInput {
    idle: Arc<Mutex<Duration>>,
    touches: mpsc::Receiver<()>,
}

impl InputIdle for ScriptedInput {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn idle_time(&mut self) -> Result<Duration, SignalError> {
        Ok(*self.idle.lock().unwrap())
    }

    fn wait_for_input(&mut self, timeout: Duration) -> Result<bool, SignalError> {
        Ok(self.touches.recv_timeout(timeout).is_ok())
    }
}

struct Scripted {
    monitor: IdleMonitor,
    idle: Arc<Mutex<Duration>>,
    touch: mpsc::Sender<()>,
    machine: Arc<Mutex<SystemSample>>,
}

impl Scripted {
    fn start(preferences: Preferences) -> Scripted {
        let idle = Arc::new(Mutex::new(Duration::from_secs(600)));
        let machine = Arc::new(Mutex::new(SystemSample::default()));
        let (touch, touches) = mpsc::channel();
        let input = ScriptedInput {
            idle: Arc::clone(&idle),
            touches,
        };
        let monitor = IdleMonitor::spawn(
            Some(Box::new(input)),
            Box::new(ScriptedMachine(Arc::clone(&machine))),
            preferences,
            MonitorConfig {
                adapter: "test GPU".into(),
                tick: Duration::from_millis(50),
            },
        );
        Scripted {
            monitor,
            idle,
            touch,
            machine,
        }
    }

    /// The person touches the mouse.
    fn touch(&self) {
        *self.idle.lock().unwrap() = Duration::ZERO;
        self.touch.send(()).unwrap();
    }
}

#[tokio::test]
async fn the_monitor_pauses_on_input_resumes_after_the_idle_delay_and_follows_preferences() {
    let preferences = Preferences {
        idle_after: Duration::from_secs(2),
        ..Preferences::default()
    };
    let scripted = Scripted::start(preferences.clone());
    let mut verdicts = scripted.monitor.verdicts();
    assert_eq!(*verdicts.borrow(), Verdict::RUN, "away for ten minutes");

    scripted.touch();
    let paused = verdict_becomes(&mut verdicts, |v| !v.is_run()).await;
    assert_eq!(
        paused,
        Verdict::Pause {
            reason: Reason::UserActive { resumes_in_s: 2 }
        }
    );
    assert_eq!(paused.to_string(), "Paused: you are using the computer");

    *scripted.idle.lock().unwrap() = Duration::from_secs(3);
    verdict_becomes(&mut verdicts, Verdict::is_run).await;

    scripted.machine.lock().unwrap().other_cpu_percent = Some(80.0);
    let busy = verdict_becomes(&mut verdicts, |v| !v.is_run()).await;
    assert_eq!(
        busy.to_string(),
        "Paused: other programs are using 80% of the CPU"
    );
    scripted.machine.lock().unwrap().other_cpu_percent = Some(3.0);
    verdict_becomes(&mut verdicts, Verdict::is_run).await;

    scripted.monitor.set_preferences(Preferences {
        mode: Mode::Off,
        ..preferences
    });
    let off = verdict_becomes(&mut verdicts, |v| !v.is_run()).await;
    assert_eq!(off.to_string(), "Paused: sharing is off");
    assert_eq!(
        scripted.monitor.signals().borrow().system.other_cpu_percent,
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_provider_gives_its_lease_back_at_once_then_finishes_the_job_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pool_key = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), pool_key.clone(), test_config()).await;
    let mut provider = start_provider_with(
        &pool.ticket(),
        &dir.path().join("provider"),
        ProviderConfig {
            release_after: Duration::from_millis(300),
            ..provider_config()
        },
        Verdict::RUN,
    );
    let client = Client::connect(&pool.ticket(), own_submitter_key(&pool_key))
        .await
        .unwrap();
    // Four times the example's chains: passes long enough to pause in the middle of the job.
    let handle = client.submit(&hashchain(16384)).await.unwrap();
    let job = handle.id();

    state_becomes(&mut provider.status, |s| {
        matches!(s, ProviderState::Working { .. })
    })
    .await;
    let away = Verdict::Pause {
        reason: Reason::UserActive { resumes_in_s: 180 },
    };
    provider.verdict.send(away).unwrap();
    let paused = state_becomes(&mut provider.status, |s| {
        matches!(s, ProviderState::Paused { .. })
    })
    .await;
    assert_eq!(paused.to_string(), "Paused: you are using the computer");
    assert!(
        lease_returned(&pool.pool, &job).await,
        "the pool never saw the lease come back"
    );
    assert!(pool.pool.receipts().unwrap().is_empty());

    // Paused past `release_after`, the GPU goes back to the system.
    let released = state_becomes(&mut provider.status, |s| {
        matches!(
            s,
            ProviderState::Paused {
                gpu_released: true,
                ..
            }
        )
    })
    .await;
    assert!(matches!(released, ProviderState::Paused { .. }));
    assert_eq!(
        pool.pool.progress(&job).unwrap().progress.running,
        0,
        "a paused provider takes no work"
    );

    provider.verdict.send(Verdict::RUN).unwrap();
    let outputs = handle.wait().await.unwrap();
    assert_hashchain(&outputs, 64);
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1, "paid once, for the finished run");
    assert_eq!(receipts[0].body.provider, provider.key.public());
    client.close().await;
    stop_all(vec![provider]).await;
    pool.shutdown().await;
}
