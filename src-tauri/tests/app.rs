//! The app's commands and events through Tauri's IPC, on the mock runtime, against a real node in a
//! temporary folder: each command answers in the contract's shape, errors arrive as one-line strings,
//! the node's news arrives as events, and build.rs and capabilities/ grant exactly the commands the
//! app registers.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use idlegrid::identity::KeyStore;
use idlegrid::node::{JobRunner, Node, NodeOptions};
use idlegrid::worker::WorkerConfig;
use idlegrid_app::{AppState, COMMANDS};
use serde_json::{Value, json};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, Manager, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    node: Node,
    _dir: tempfile::TempDir,
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
    let node = tauri::async_runtime::block_on(Node::open(options)).unwrap();
    let app = idlegrid_app::attach(mock_builder())
        .build(mock_context(noop_assets()))
        .unwrap();
    let state = AppState::new(
        node.clone(),
        dir.path().join("logs"),
        dir.path().join("downloads"),
    );
    app.manage(state);
    idlegrid_app::forward::spawn(app.handle(), &node);
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Harness {
        app,
        window,
        node,
        _dir: dir,
    }
}

impl Harness {
    fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: command.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.into(),
        };
        get_ipc_response(&self.window, request).map(|body| body.deserialize().unwrap())
    }

    fn ok(&self, command: &str, args: Value) -> Value {
        self.invoke(command, args)
            .unwrap_or_else(|error| panic!("{command} failed: {error}"))
    }

    /// Collects the payloads of `event` as they come.
    fn listen(&self, event: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.app.listen(event, move |e| {
            let _ = tx.send(serde_json::from_str(e.payload()).unwrap());
        });
        rx
    }

    fn shutdown(self) {
        tauri::async_runtime::block_on(self.node.shutdown());
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

#[test]
fn status_and_sharing_commands_answer_in_the_contract_shape() {
    let h = harness();
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
    let h = harness();
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
    h.shutdown();
}

#[test]
fn settings_and_hardware_commands() {
    let h = harness();
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
    let h = harness();
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
fn hardware_is_pushed_only_while_the_window_exists() {
    let h = harness();
    let hardware = h.listen("hardware");
    assert!(hardware.recv_timeout(Duration::from_secs(3)).is_err());
    h.app.state::<AppState>().window_open.send_replace(true);
    let pushed = wait_for(&hardware, Duration::from_secs(10), |_| true);
    assert!(pushed["gpus"].is_array() && pushed["cpu"]["cores"].as_u64().unwrap() > 0);
    wait_for(&hardware, Duration::from_secs(5), |_| true);
    h.app.state::<AppState>().window_open.send_replace(false);
    // One reading may have been under way; after that, silence.
    let _ = hardware.recv_timeout(Duration::from_millis(500));
    assert!(hardware.recv_timeout(Duration::from_secs(3)).is_err());
    h.shutdown();
}

#[test]
fn every_command_is_registered_built_and_granted() {
    let h = harness();
    let build_rs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs")).unwrap();
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
    assert_eq!(COMMANDS.len(), 18);
    for command in COMMANDS {
        assert!(
            build_rs.contains(&format!("\"{command}\"")),
            "build.rs lacks {command}"
        );
        let permission = format!("allow-{}", command.replace('_', "-"));
        assert!(
            granted.contains(&permission.as_str()),
            "capabilities lack {permission}"
        );
        // A missing argument, not an unknown command: the handler knows the name.
        if let Err(error) = h.invoke(command, json!({ "__probe": true })) {
            let error = error.to_string();
            assert!(!error.contains("not found"), "{command}: {error}");
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
