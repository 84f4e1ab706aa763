//! The app's commands and events over its real link, against a real node in a temporary folder: a
//! client speaks to the app's socket as the window does; each command answers in the contract's
//! shape, errors arrive as one-line strings, the node's news arrives as events, a second launch
//! opens the window (or brings it to the front), and capabilities/ grant exactly the commands the
//! app answers. Unix only: its stand-in window is a blocking socket client and `/bin/sh`; on Windows,
//! windows.rs runs the app itself and speaks to it over its pipe.
#![cfg(unix)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use idlegrid::identity::KeyStore;
use idlegrid::node::{JobRunner, Node, NodeOptions};
use idlegrid::worker::WorkerConfig;
use idlegrid_app::link::{self, ToApp, ToWindow};
use idlegrid_app::window::{WindowProgram, Windows};
use idlegrid_app::{AppState, COMMANDS, forward, server, transport};
use serde_json::{Value, json};

struct Harness {
    runtime: tokio::runtime::Runtime,
    state: Arc<AppState>,
    socket: PathBuf,
    /// Where the stand-in window program notes each start.
    window_starts: PathBuf,
    window: Window,
    _dir: tempfile::TempDir,
}

/// Who waits for the answer to each call, by id.
type Waiting = Arc<Mutex<HashMap<u64, mpsc::Sender<Result<Value, String>>>>>;

/// A client that speaks to the app as the window does.
struct Window {
    stream: UnixStream,
    next_id: u64,
    replies: Waiting,
    events: Arc<Mutex<HashMap<String, mpsc::Sender<Value>>>>,
    other: mpsc::Receiver<ToWindow>,
}

impl Window {
    fn connect(socket: &Path) -> Window {
        let stream = UnixStream::connect(socket).unwrap();
        let replies: Waiting = Arc::default();
        let events: Arc<Mutex<HashMap<String, mpsc::Sender<Value>>>> = Arc::default();
        let (other_tx, other) = mpsc::channel();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let (r, e) = (Arc::clone(&replies), Arc::clone(&events));
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                match serde_json::from_str::<ToWindow>(&line).unwrap() {
                    ToWindow::Reply { id, result } => {
                        if let Some(tx) = r.lock().unwrap().remove(&id) {
                            let _ = tx.send(result);
                        }
                    }
                    ToWindow::Event { name, payload } => {
                        if let Some(tx) = e.lock().unwrap().get(&name) {
                            let _ = tx.send(payload);
                        }
                    }
                    message => {
                        let _ = other_tx.send(message);
                    }
                }
            }
        });
        let mut window = Window {
            stream,
            next_id: 1,
            replies,
            events,
            other,
        };
        window.send(&ToApp::Window);
        window
    }

    fn send(&mut self, message: &ToApp) {
        self.stream
            .write_all(&link::line(message).unwrap())
            .unwrap();
    }
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut options = NodeOptions::new(dir.path().join("data"));
    options.key_store = KeyStore::FileOnly;
    options.detect_input = false;
    options.examples_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jobs"));
    options.demo_interval = Duration::from_millis(100);
    // Jobs run as they do in the app: in `idlegrid-desktop worker`.
    options.runner = JobRunner::Worker(Box::new(WorkerConfig::program(env!(
        "CARGO_BIN_EXE_idlegrid-desktop"
    ))));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let node = runtime.block_on(Node::open(options)).unwrap();
    // The window program is a stand-in that notes each start (the real one needs a display; the
    // end-to-end test starts it).
    let window_starts = dir.path().join("window-starts");
    let program = WindowProgram {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            format!("echo started >> '{}'", window_starts.display()).into(),
        ],
        env_remove: Vec::new(),
    };
    let state = Arc::new(AppState {
        node,
        windows: Windows::new(program),
        logs_dir: dir.path().join("logs"),
        downloads_dir: dir.path().join("downloads"),
    });
    let socket = transport::address(dir.path());
    {
        let _inside = runtime.enter();
        forward::spawn(&state, |_status| {});
        let listener = transport::bind(&socket).unwrap().listen().unwrap();
        runtime.spawn(server::serve(listener, Arc::clone(&state)));
    }
    let window = Window::connect(&socket);
    let h = Harness {
        runtime,
        state,
        socket,
        window_starts,
        window,
        _dir: dir,
    };
    // Attached once the app has read the window's first line.
    h.wait_until_window_open(true);
    h
}

impl Harness {
    fn invoke(&mut self, command: &str, args: Value) -> Result<Value, Value> {
        let id = self.window.next_id;
        self.window.next_id += 1;
        let (tx, rx) = mpsc::channel();
        self.window.replies.lock().unwrap().insert(id, tx);
        self.window.send(&ToApp::Call {
            id,
            command: command.into(),
            args,
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the app did not answer")
            .map_err(Value::String)
    }

    fn ok(&mut self, command: &str, args: Value) -> Value {
        self.invoke(command, args)
            .unwrap_or_else(|error| panic!("{command} failed: {error}"))
    }

    /// Collects the payloads of `event` as they come.
    fn listen(&self, event: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.window.events.lock().unwrap().insert(event.into(), tx);
        rx
    }

    /// Waits until the app sees a window attached (or not).
    fn wait_until_window_open(&self, wanted: bool) {
        let mut open = self.state.windows.open.subscribe();
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), open.wait_for(|&o| o == wanted))
                .await
                .expect("the app did not see the window come or go")
                .map(drop)
                .unwrap();
        });
    }

    fn shutdown(self) {
        self.runtime.block_on(self.state.node.shutdown());
    }
}

/// The first payload `wanted` accepts, within `limit`.
fn wait_for(rx: &mpsc::Receiver<Value>, limit: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let payload = rx.recv_timeout(left).expect("the event did not come");
        if wanted(&payload) {
            return payload;
        }
    }
}

/// Asks the app to open its window, as a second launch does.
fn launch_again(socket: &Path) {
    idlegrid_app::instance::hand_over(socket).unwrap();
}

#[test]
fn status_and_sharing_commands_answer_in_the_contract_shape() {
    let mut h = harness();
    let status = h.ok("get_status", json!({}));
    for key in [
        "kind",
        "reason",
        "since_ms",
        "sharing",
        "snoozed_until_ms",
        "job",
        "rate_per_hour",
        "today",
        "balance",
    ] {
        assert!(status.get(key).is_some(), "status lacks {key}: {status}");
    }
    assert_eq!(status["today"], "0");
    let off = h.ok("set_sharing", json!({ "on": false }));
    assert_eq!(
        (off["kind"].as_str(), off["sharing"].as_bool()),
        (Some("off"), Some(false))
    );
    let on = h.ok("set_sharing", json!({ "on": true }));
    assert_eq!(on["sharing"], true);
    let snoozed = h.ok("snooze", json!({ "minutes": 60 }));
    assert!(snoozed["snoozed_until_ms"].as_u64().is_some());
    let error = h.invoke("snooze", json!({ "minutes": 0 })).unwrap_err();
    assert!(error.as_str().unwrap().contains("1 minute"), "{error}");
    assert_eq!(h.ok("resume", json!({}))["snoozed_until_ms"], Value::Null);
    h.shutdown();
}

#[test]
fn earnings_payouts_and_export_commands() {
    let mut h = harness();
    for (range, buckets, bucket_ms) in [
        ("24h", 24, 3_600_000u64),
        ("7d", 28, 21_600_000),
        ("30d", 30, 86_400_000),
    ] {
        let view = h.ok("get_earnings", json!({ "range": range }));
        assert_eq!(view["range"], range);
        assert_eq!(view["bucket_ms"], bucket_ms);
        assert_eq!(view["buckets"].as_array().unwrap().len(), buckets);
        assert_eq!(
            (view["total"].as_str(), view["balance"].as_str()),
            (Some("0"), Some("0"))
        );
    }
    assert!(h.invoke("get_earnings", json!({ "range": "1y" })).is_err());
    assert_eq!(h.ok("get_payouts", json!({})), json!([]));
    let csv = "date,pool,amount,receipts,signature_verified,reference\n";
    let path = h.ok(
        "save_csv",
        json!({ "name": "payouts.csv", "contents": csv }),
    );
    let path = Path::new(path.as_str().unwrap());
    assert_eq!(std::fs::read_to_string(path).unwrap(), csv);
    let refused = h.invoke("save_csv", json!({ "name": "../escape", "contents": csv }));
    assert!(
        refused
            .unwrap_err()
            .as_str()
            .unwrap()
            .contains("plain file name")
    );
    // Nothing is opened for a payout the ledger does not hold.
    let unknown = h
        .invoke("open_explorer", json!({ "id": "nope" }))
        .unwrap_err();
    assert_eq!(
        unknown.as_str(),
        Some("cannot show the transaction: no payout nope")
    );
    h.shutdown();
}

#[test]
fn settings_and_hardware_commands() {
    let mut h = harness();
    let mut settings = h.ok("get_settings", json!({}));
    assert_eq!(settings["preferences"]["mode"], "when_idle");
    assert_eq!(settings["preferences"]["idle_after"], 180);
    settings["preferences"]["idle_after"] = json!(60);
    settings["notices"]["payouts"] = json!(false);
    assert_eq!(
        h.ok("set_settings", json!({ "settings": settings.clone() })),
        settings
    );
    assert_eq!(h.ok("get_settings", json!({})), settings);
    settings["preferences"]["max_other_cpu_percent"] = json!(400);
    let error = h
        .invoke("set_settings", json!({ "settings": settings }))
        .unwrap_err();
    assert!(error.as_str().unwrap().contains("CPU limit"), "{error}");

    let hardware = h.ok("get_hardware", json!({}));
    let adapter = hardware["gpus"][0]["adapter"]
        .as_str()
        .expect("a GPU adapter")
        .to_owned();
    assert!(hardware["memory"]["total_bytes"].as_u64().unwrap() > 0);
    let switched = h.ok(
        "set_gpu_shared",
        json!({ "adapter": adapter, "shared": false }),
    );
    assert_eq!(switched["gpus"][0]["shared"], false);
    h.shutdown();
}

#[test]
fn pool_commands_and_their_events() {
    let mut h = harness();
    let pools_events = h.listen("pools");
    let status_events = h.listen("status");
    let earned_events = h.listen("earned");
    assert_eq!(h.ok("get_pools", json!({})), json!([]));
    let bad = h
        .invoke("join_pool", json!({ "ticket": "hello", "name": null }))
        .unwrap_err();
    assert!(
        bad.as_str().unwrap().starts_with("not a pool ticket"),
        "{bad}"
    );
    let unknown = h
        .invoke("leave_pool", json!({ "id": "nobody" }))
        .unwrap_err();
    assert!(
        unknown.as_str().unwrap().starts_with("no such pool"),
        "{unknown}"
    );

    let local = h.ok("start_local_pool", json!({}));
    assert_eq!(
        (local["name"].as_str(), local["local"].as_bool()),
        (Some("Local pool"), Some(true))
    );
    let id = local["id"].as_str().unwrap().to_owned();
    let listed = wait_for(&pools_events, Duration::from_secs(10), |p| {
        p[0]["id"] == id.as_str()
    });
    assert_eq!(listed[0]["name"], "Local pool");
    wait_for(&status_events, Duration::from_secs(60), |s| {
        s["kind"] == "working"
    });
    let earned = wait_for(&earned_events, Duration::from_secs(60), |_| true);
    assert_eq!(earned["pool_id"], id.as_str());
    assert!(earned["amount"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);

    let blocked = h.ok("block_pool", json!({ "id": id }));
    assert_eq!(
        (
            blocked[0]["blocked"].as_bool(),
            blocked[0]["state"].as_str()
        ),
        (Some(true), Some("blocked"))
    );
    h.shutdown();
}

#[test]
fn hardware_is_pushed_only_while_a_window_is_attached() {
    let h = harness();
    let hardware = h.listen("hardware");
    let pushed = wait_for(&hardware, Duration::from_secs(30), |_| true);
    assert!(
        pushed["gpus"][0]["adapter"].is_string() && pushed["cpu"]["cores"].as_u64().unwrap() > 0
    );
    // The GPUs were listed in a worker process: no GPU driver was loaded into the app, which would
    // keep it (for a software GPU, all of LLVM) for the rest of the day.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        !maps.contains("libvulkan"),
        "the app loaded the Vulkan loader"
    );
    wait_for(&hardware, Duration::from_secs(5), |_| true);
    // The window goes: the feed stops, and the app knows no window is open.
    let stream = h.window.stream.try_clone().unwrap();
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    h.wait_until_window_open(false);
    // One reading may have been under way; after that, silence.
    let _ = hardware.recv_timeout(Duration::from_millis(500));
    assert!(hardware.recv_timeout(Duration::from_secs(3)).is_err());
    h.shutdown();
}

#[test]
fn a_second_launch_brings_the_window_forward_or_starts_one() {
    let h = harness();
    launch_again(&h.socket);
    assert_eq!(
        h.window.other.recv_timeout(Duration::from_secs(5)).unwrap(),
        ToWindow::Focus
    );
    // A second window is told to close, and the first comes forward.
    let second = Window::connect(&h.socket);
    assert_eq!(
        second.other.recv_timeout(Duration::from_secs(5)).unwrap(),
        ToWindow::Close
    );
    assert_eq!(
        h.window.other.recv_timeout(Duration::from_secs(5)).unwrap(),
        ToWindow::Focus
    );
    // With no window attached, the window program is started, once however often it is asked.
    h.window.stream.shutdown(std::net::Shutdown::Both).unwrap();
    h.wait_until_window_open(false);
    launch_again(&h.socket);
    launch_again(&h.socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !h.window_starts.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let starts = std::fs::read_to_string(&h.window_starts).unwrap();
    assert_eq!(starts.lines().count(), 1, "{starts}");
    h.shutdown();
}

#[test]
fn unknown_commands_and_bad_arguments_are_one_line_errors() {
    let mut h = harness();
    let unknown = h.invoke("format_disk", json!({})).unwrap_err();
    assert_eq!(unknown, "there is no command \"format_disk\"");
    let bad = h
        .invoke("snooze", json!({ "minutes": "soon" }))
        .unwrap_err();
    let bad = bad.as_str().unwrap();
    assert!(
        bad.starts_with("bad arguments") && !bad.contains('\n'),
        "{bad}"
    );
    h.shutdown();
}

#[test]
fn every_command_is_answered_and_granted() {
    // build.rs declares the same list (it includes the table of src-tauri/commands.rs).
    let mut h = harness();
    let capability: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities/default.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let granted: Vec<&str> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(COMMANDS.len(), 19);
    for command in COMMANDS {
        let permission = format!("allow-{}", command.replace('_', "-"));
        assert!(
            granted.contains(&permission.as_str()),
            "capabilities lack {permission}"
        );
        // A missing argument, not an unknown command: the app knows the name. (The logs folder
        // would open in a file manager.)
        if *command == "open_logs_folder" {
            continue;
        }
        if let Err(error) = h.invoke(command, json!({ "__probe": true })) {
            let error = error.to_string();
            assert!(!error.contains("no command"), "{command}: {error}");
        }
    }
    assert_eq!(granted.len(), COMMANDS.len() + 1);
    h.shutdown();
}

#[test]
fn without_a_desktop_the_app_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_idlegrid-desktop"))
        .arg("--data")
        .arg(dir.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("idlegrid-desktop: no desktop session here"),
        "{stderr}"
    );
}
