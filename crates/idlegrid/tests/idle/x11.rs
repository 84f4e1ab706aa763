//! The X11 idle signal against a real X server (Xvfb) with real input sent by xdotool, and a provider
//! on a real pool that pauses, returns its lease and resumes as that input comes and goes.

#![cfg(target_os = "linux")]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::idle::*;
use common::net::*;
use common::xvfb::Xvfb;
use common::*;
use idlegrid::client::{Client, own_submitter_key};
use idlegrid::idle::x11::X11Input;
use idlegrid::idle::{IdleMonitor, InputIdle, MonitorConfig, Preferences, SystemSample};
use idlegrid::protocol::JobState;
use idlegrid::provider::ProviderState;
use iroh::SecretKey;

#[test]
fn idle_time_grows_without_input_and_starts_again_at_real_input() {
    let x = Xvfb::start();
    let mut input = X11Input::connect_to(Some(&x.display)).unwrap();
    x.xdotool(&["mousemove_relative", "5", "5"]);
    std::thread::sleep(Duration::from_millis(400));
    let before = input.idle_time().unwrap();
    assert!(before >= Duration::from_millis(300), "{before:?}");

    // Relative moves go through XTEST like a real mouse; `xdotool mousemove X Y` warps the pointer,
    // which X rightly does not count as a person.
    x.xdotool(&["mousemove_relative", "20", "10"]);
    let after_mouse = input.idle_time().unwrap();
    assert!(after_mouse < before, "{after_mouse:?} after {before:?}");

    std::thread::sleep(Duration::from_millis(400));
    x.xdotool(&["key", "a"]);
    let after_key = input.idle_time().unwrap();
    assert!(
        after_key < Duration::from_millis(300),
        "a key press counts as input: {after_key:?}"
    );
}

#[test]
fn a_thread_waiting_for_input_wakes_at_a_key_press_and_not_otherwise() {
    let x = Xvfb::start();
    let mut input = X11Input::connect_to(Some(&x.display)).unwrap();
    assert!(
        !input.wait_for_input(Duration::from_millis(300)).unwrap(),
        "nobody touched anything"
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            x.xdotool(&["key", "space"]);
        });
        assert!(input.wait_for_input(Duration::from_secs(20)).unwrap());
    });
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            x.xdotool(&["mousemove_relative", "3", "3"]);
        });
        assert!(input.wait_for_input(Duration::from_secs(20)).unwrap());
    });
}

#[test]
fn no_x_server_is_a_clear_error() {
    let error = X11Input::connect_to(Some(":987")).err().unwrap();
    assert!(
        error.to_string().contains("x11 is not available here"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_pauses_at_the_mouse_returns_its_lease_and_resumes_after_the_idle_delay() {
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let pool_key = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), pool_key.clone(), test_config()).await;
    // The machine is quiet: this test is about the person, not about other programs.
    let monitor = IdleMonitor::spawn(
        Some(Box::new(X11Input::connect_to(Some(&x.display)).unwrap())),
        Box::new(ScriptedMachine(Arc::new(Mutex::new(
            SystemSample::default(),
        )))),
        Preferences {
            idle_after: Duration::from_secs(1),
            ..Preferences::default()
        },
        MonitorConfig::new(executor().adapter_info().name.clone()),
    );
    let mut verdicts = monitor.verdicts();
    verdict_becomes(&mut verdicts, |v| v.is_run()).await;

    let mut provider = start_provider(&pool.ticket(), &dir.path().join("provider"));
    let forwarding = forward_verdicts(verdicts, provider.verdict.clone());
    let client = Client::connect(&pool.ticket(), own_submitter_key(&pool_key))
        .await
        .unwrap();
    let handle = client.submit(&hashchain(16384)).await.unwrap();
    let job = handle.id();
    state_becomes(&mut provider.status, |s| {
        matches!(s, ProviderState::Working { .. })
    })
    .await;

    x.xdotool(&["mousemove_relative", "30", "20"]);
    let paused = state_becomes(&mut provider.status, |s| {
        matches!(s, ProviderState::Paused { .. })
    })
    .await;
    assert_eq!(paused.to_string(), "Paused: you are using the computer");
    assert!(
        lease_returned(&pool.pool, &job).await,
        "the pool never saw the lease come back"
    );

    // One idle second later it works again, and finishes.
    let outputs = tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .expect("the job never finished")
        .unwrap();
    assert_hashchain(&outputs, 64);
    assert_eq!(pool.pool.receipts().unwrap().len(), 1);
    forwarding.abort();
    client.close().await;
    stop_all(vec![provider]).await;
    pool.shutdown().await;
}

/// The provider in `common::net` listens on its own channel; this copies the monitor's verdicts onto it.
fn forward_verdicts(
    mut from: tokio::sync::watch::Receiver<idlegrid::idle::Verdict>,
    to: tokio::sync::watch::Sender<idlegrid::idle::Verdict>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let verdict = from.borrow_and_update().clone();
            if to.send(verdict).is_err() || from.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Real input every 100 ms until dropped.
struct Typing {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Typing {
    fn start(display: &str) -> Typing {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let display = display.to_owned();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::process::Command::new("xdotool")
                    .args(["key", "shift"])
                    .env("DISPLAY", &display)
                    .status();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Typing {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Typing {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idlegrid_provide_with_the_idle_policy_waits_for_the_person_to_leave() {
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let pool_key = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), pool_key.clone(), test_config()).await;
    let typing = Typing::start(&x.display);
    let log = dir.path().join("provider.log");
    let mut provider = idlegrid_command()
        .args(["provide", "--pool", &pool.ticket(), "--data"])
        .arg(dir.path().join("provider"))
        // Other programs' CPU is not what this test is about (tests run side by side).
        .args([
            "--policy",
            "idle",
            "--idle-after",
            "1",
            "--max-other-cpu",
            "100",
        ])
        .env("IDLEGRID_KEYSTORE", "file")
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = Client::connect(&pool.ticket(), own_submitter_key(&pool_key))
        .await
        .unwrap();
    let handle = client.submit(&example("hashchain")).await.unwrap();
    let job = handle.id();
    let log_says = |text: &str| std::fs::read_to_string(&log).unwrap().contains(text);
    assert!(
        eventually(Duration::from_secs(60), || log_says(
            "Paused: you are using the computer"
        ))
        .await,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(
        pool.pool.progress(&job).unwrap().progress.state,
        JobState::Queued,
        "nothing leased while the person types"
    );

    drop(typing);
    let outputs = tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .expect("the job never ran after the person left")
        .unwrap();
    assert_hashchain(&outputs, 64);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("from X11"), "{log_text}");
    assert!(log_text.contains("Sharing"), "{log_text}");
    let _ = provider.kill();
    let _ = provider.wait();
    client.close().await;
    pool.shutdown().await;
}
