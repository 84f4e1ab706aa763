//! The Linux input sources against real peers where one can run here, and the choice among them.
//!
//! - Mutter: a private D-Bus daemon (apt package `dbus-daemon`), on which the test serves a double of
//!   `org.gnome.Mutter.IdleMonitor` whose idle time and "user became active" it controls; the real
//!   `MutterInput` client talks to it over the bus.
//! - Wayland: a small compositor written here that speaks the Wayland wire protocol on a Unix socket
//!   and offers wl_seat and ext_idle_notifier_v1, so the test can send `idled` and `resumed` as input
//!   would.
//! - The order of sources: a table over what the session's environment says and which source answers.
//!
//! Two ignored tests run the real clients against real headless compositors, with real (injected)
//! pointer motion: Mutter 43 (apt `mutter`) and KWin 5.27 (apt `kwin-wayland`). They pass on Debian
//! bookworm; run them with `cargo test -p idlegrid --test idle -- --include-ignored input::`.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idlegrid::idle::SignalError;
use idlegrid::idle::input::{
    InputIdle, InputKind, InputPlan, MutterInput, SessionEnv, WAYLAND_NOTIFY_TIMEOUT, WaylandInput,
    choose_input, input_plan,
};

/// How soon input must stop GPU work; a wake must come well within it.
const WAKE_LIMIT: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// The order of sources

#[test]
fn plan_follows_the_session() {
    use InputKind::*;
    let table: &[(SessionEnv, &[InputKind], &[InputKind])] = &[
        // (environment, tried in order, skipped)
        (env(false, false), &[Mutter], &[Wayland, X11]),
        (env(false, true), &[Mutter, X11], &[Wayland]),
        (env(true, false), &[Mutter, Wayland], &[X11]),
        // Xwayland's DISPLAY sees only input to X11 windows: never a source for a Wayland session.
        (env(true, true), &[Mutter, Wayland], &[X11]),
    ];
    for (session, tried, skipped) in table {
        let plan = input_plan(session);
        assert_eq!(&plan.try_in_order, tried, "{session:?}");
        let skipped_kinds: Vec<InputKind> = plan.skipped.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(&skipped_kinds, skipped, "{session:?}");
    }
}

#[test]
fn choice_takes_the_first_source_that_answers() {
    use InputKind::*;
    // (environment, sources that answer, chosen or None)
    let table: &[(SessionEnv, &[InputKind], Option<InputKind>)] = &[
        // GNOME on Wayland or X11: Mutter, whatever else is there.
        (env(true, true), &[Mutter, Wayland], Some(Mutter)),
        (env(false, true), &[Mutter, X11], Some(Mutter)),
        // GNOME's bus service answers even with no display variables (a service started early).
        (env(false, false), &[Mutter], Some(Mutter)),
        // sway, KDE, Hyprland...: ext-idle-notify.
        (env(true, true), &[Wayland, X11], Some(Wayland)),
        // A plain X11 session.
        (env(false, true), &[X11], Some(X11)),
        // A Wayland compositor without ext-idle-notify: not Xwayland, but nothing.
        (env(true, true), &[X11], None),
        // Headless.
        (env(false, false), &[], None),
        // A variable set but nothing behind it.
        (env(true, false), &[], None),
    ];
    for (session, answering, chosen) in table {
        let mut asked = Vec::new();
        let result = choose_input(&input_plan(session), |kind| {
            asked.push(kind);
            if answering.contains(&kind) {
                Ok(kind)
            } else {
                Err(SignalError::Unavailable {
                    source_name: kind.name(),
                    reason: format!("{} said no", kind.name()),
                })
            }
        });
        match (result, chosen) {
            (Ok((kind, source)), Some(chosen)) => {
                assert_eq!((kind, source), (*chosen, *chosen), "{session:?}");
                // Nothing after the chosen one is even asked.
                assert_eq!(asked.last(), Some(chosen), "{session:?}");
            }
            (Err(SignalError::Unavailable { reason, .. }), None) => {
                // The reason names every source, tried or not, and why it was not used.
                for kind in [Mutter, Wayland, X11] {
                    assert!(reason.contains(kind.name()), "{reason}");
                }
                for kind in &asked {
                    assert!(
                        reason.contains(&format!("{} said no", kind.name())),
                        "{reason}"
                    );
                }
            }
            (result, chosen) => panic!("{session:?}: got {result:?}, wanted {chosen:?}"),
        }
    }
}

#[test]
fn an_empty_plan_says_so() {
    let plan = InputPlan {
        try_in_order: Vec::new(),
        skipped: Vec::new(),
    };
    let result = choose_input(&plan, Ok::<_, SignalError>);
    assert!(
        matches!(&result, Err(SignalError::Unavailable { reason, .. }) if reason.contains("no idle source")),
        "{result:?}"
    );
}

fn env(wayland: bool, x11: bool) -> SessionEnv {
    SessionEnv { wayland, x11 }
}

// ---------------------------------------------------------------------------------------------
// Mutter over D-Bus

const MUTTER_NAME: &str = "org.gnome.Mutter.IdleMonitor";
const MUTTER_PATH: &str = "/org/gnome/Mutter/IdleMonitor/Core";

/// A dbus-daemon of the test's own, on a socket in a temporary directory; killed on drop.
struct PrivateBus {
    daemon: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut daemon = Command::new("dbus-daemon")
            .arg("--session")
            .arg("--nofork")
            .arg("--print-address")
            .arg(format!(
                "--address=unix:path={}",
                dir.path().join("bus").display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need dbus-daemon (apt package dbus-daemon)");
        let stdout = daemon.stdout.take().expect("dbus-daemon's stdout");
        let mut address = String::new();
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("dbus-daemon prints its address");
        let address = address.trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        PrivateBus {
            daemon,
            address,
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[derive(Default)]
struct DoubleState {
    idle_ms: u64,
    next_id: u32,
    /// Armed watches and the unique name of the client that armed each.
    watches: Vec<(u32, String)>,
    removed: Vec<u32>,
}

/// What Mutter does, as far as this source uses it: a user-active watch fires once, as a signal
/// sent to the client that added it, on the next input.
struct IdleMonitorDouble {
    state: Arc<Mutex<DoubleState>>,
}

#[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
impl IdleMonitorDouble {
    #[zbus(name = "GetIdletime")]
    fn get_idletime(&self) -> u64 {
        lock(&self.state).idle_ms
    }

    #[zbus(name = "AddUserActiveWatch")]
    fn add_user_active_watch(&self, #[zbus(header)] header: zbus::message::Header<'_>) -> u32 {
        let mut state = lock(&self.state);
        state.next_id += 1;
        let id = state.next_id;
        let owner = header.sender().map(|s| s.to_string()).unwrap_or_default();
        state.watches.push((id, owner));
        id
    }

    #[zbus(name = "RemoveWatch")]
    fn remove_watch(&self, id: u32) {
        let mut state = lock(&self.state);
        state.watches.retain(|(watch, _)| *watch != id);
        state.removed.push(id);
    }
}

fn lock(state: &Mutex<DoubleState>) -> std::sync::MutexGuard<'_, DoubleState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The double, served on a bus under Mutter's name.
struct FakeMutter {
    connection: zbus::blocking::Connection,
    state: Arc<Mutex<DoubleState>>,
}

impl FakeMutter {
    fn serve(bus: &PrivateBus) -> FakeMutter {
        let state = Arc::new(Mutex::new(DoubleState {
            idle_ms: 0,
            next_id: 100,
            ..DoubleState::default()
        }));
        let connection = zbus::blocking::connection::Builder::address(bus.address.as_str())
            .and_then(|b| b.name(MUTTER_NAME))
            .and_then(|b| {
                b.serve_at(
                    MUTTER_PATH,
                    IdleMonitorDouble {
                        state: state.clone(),
                    },
                )
            })
            .and_then(|b| b.build())
            .expect("serve the Mutter double");
        FakeMutter { connection, state }
    }

    fn set_idle(&self, idle: Duration) {
        lock(&self.state).idle_ms = idle.as_millis() as u64;
    }

    /// Input: idle time restarts and every armed watch fires, once. Returns when the signals left.
    fn user_active(&self) -> Instant {
        let watches = {
            let mut state = lock(&self.state);
            state.idle_ms = 0;
            std::mem::take(&mut state.watches)
        };
        let sent = Instant::now();
        for (id, owner) in watches {
            self.connection
                .emit_signal(
                    Some(owner.as_str()),
                    MUTTER_PATH,
                    MUTTER_NAME,
                    "WatchFired",
                    &(id,),
                )
                .expect("emit WatchFired");
        }
        sent
    }

    fn armed(&self) -> usize {
        lock(&self.state).watches.len()
    }

    fn removed(&self) -> Vec<u32> {
        lock(&self.state).removed.clone()
    }
}

#[test]
fn mutter_reads_idle_time() {
    let bus = PrivateBus::start();
    let mutter = FakeMutter::serve(&bus);
    mutter.set_idle(Duration::from_millis(123_456));
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    assert_eq!(input.name(), "mutter");
    assert_eq!(
        input.idle_time().expect("idle time"),
        Duration::from_millis(123_456)
    );
    mutter.set_idle(Duration::from_millis(7));
    assert_eq!(
        input.idle_time().expect("idle time"),
        Duration::from_millis(7)
    );
}

#[test]
fn mutter_wait_wakes_on_input() {
    let bus = PrivateBus::start();
    let mutter = Arc::new(FakeMutter::serve(&bus));
    mutter.set_idle(Duration::from_secs(600));
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    assert_eq!(
        input.idle_time().expect("idle time"),
        Duration::from_secs(600)
    );
    for round in 0..3 {
        let fake = mutter.clone();
        let touch = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            fake.user_active()
        });
        let woke = input.wait_for_input(Duration::from_secs(5)).expect("wait");
        let woken_at = Instant::now();
        let sent = touch.join().expect("input thread");
        assert!(woke, "round {round}: input did not wake the wait");
        let latency = woken_at.saturating_duration_since(sent);
        assert!(
            latency < WAKE_LIMIT,
            "round {round}: woke {latency:?} after input"
        );
        assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
        mutter.set_idle(Duration::from_secs(600));
    }
}

#[test]
fn mutter_wait_times_out_without_input_and_keeps_one_watch() {
    let bus = PrivateBus::start();
    let mutter = FakeMutter::serve(&bus);
    mutter.set_idle(Duration::from_secs(600));
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    for _ in 0..3 {
        let start = Instant::now();
        let woke = input
            .wait_for_input(Duration::from_millis(200))
            .expect("wait");
        let waited = start.elapsed();
        assert!(!woke, "woke without input");
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
        input.idle_time().expect("idle time");
    }
    // One watch, armed across waits: none pile up, and none is added and removed per wait.
    assert_eq!(mutter.armed(), 1);
    assert!(mutter.removed().is_empty());
}

#[test]
fn mutter_sees_input_between_reading_and_waiting() {
    let bus = PrivateBus::start();
    let mutter = FakeMutter::serve(&bus);
    mutter.set_idle(Duration::from_secs(600));
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    input.idle_time().expect("idle time");
    // A key pressed after the monitor read the idle time but before it began to wait.
    mutter.user_active();
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    assert!(input.wait_for_input(Duration::from_secs(5)).expect("wait"));
    assert!(start.elapsed() < WAKE_LIMIT, "{:?}", start.elapsed());
    // And the watch is armed again for the next input.
    assert_eq!(mutter.armed(), 1);
}

#[test]
fn mutter_does_not_count_input_twice() {
    let bus = PrivateBus::start();
    let mutter = FakeMutter::serve(&bus);
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    // Input the monitor has already seen as a short idle time is not news to the next wait...
    mutter.user_active();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
    assert!(
        !input
            .wait_for_input(Duration::from_millis(200))
            .expect("wait")
    );
    // ...and the next input still is.
    mutter.user_active();
    assert!(input.wait_for_input(Duration::from_secs(5)).expect("wait"));
}

#[test]
fn mutter_survives_a_restart_of_mutter() {
    let bus = PrivateBus::start();
    let first = FakeMutter::serve(&bus);
    first.set_idle(Duration::from_secs(600));
    let mut input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    assert_eq!(first.armed(), 1);
    // GNOME on X11 can restart its compositor; the new one knows nothing of the old watch.
    drop(first);
    let second = FakeMutter::serve(&bus);
    second.set_idle(Duration::from_secs(600));
    assert!(
        !input
            .wait_for_input(Duration::from_millis(100))
            .expect("wait")
    );
    assert_eq!(
        second.armed(),
        1,
        "the watch was not armed again with the new Mutter"
    );
    second.user_active();
    assert!(input.wait_for_input(Duration::from_secs(5)).expect("wait"));
}

#[test]
fn mutter_removes_its_watch_when_dropped() {
    let bus = PrivateBus::start();
    let mutter = FakeMutter::serve(&bus);
    let input = MutterInput::connect_to(&bus.address).expect("connect to the double");
    assert_eq!(mutter.armed(), 1);
    drop(input);
    assert_eq!(mutter.armed(), 0);
    assert_eq!(mutter.removed().len(), 1);
}

#[test]
fn mutter_is_unavailable_without_mutter() {
    let bus = PrivateBus::start();
    let result = MutterInput::connect_to(&bus.address);
    assert!(
        matches!(&result, Err(SignalError::Unavailable { source_name: "mutter", reason }) if reason.contains(MUTTER_NAME)),
        "{:?}",
        result.err()
    );
}

#[test]
fn mutter_is_unavailable_without_a_bus() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let address = format!("unix:path={}", dir.path().join("no-bus").display());
    let result = MutterInput::connect_to(&address);
    assert!(
        matches!(
            result,
            Err(SignalError::Unavailable {
                source_name: "mutter",
                ..
            })
        ),
        "{:?}",
        result.err()
    );
}

/// The real client against real Mutter, headless, on the test's private bus. The input is Mutter's
/// own remote-desktop API (what GNOME's screen sharing uses), which moves the pointer as a device would.
#[test]
#[ignore = "needs mutter and dbus-daemon installed (about 90 apt packages)"]
fn mutter_against_headless_mutter() {
    let bus = PrivateBus::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("runtime dir mode");
    let mut compositor = Command::new("mutter")
        .args([
            "--headless",
            "--wayland",
            "--no-x11",
            "--virtual-monitor",
            "800x600",
        ])
        .args(["--wayland-display", "wayland-idle-test"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start mutter");
    let address = bus.address.clone();
    let result = std::panic::catch_unwind(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut input = loop {
            match MutterInput::connect_to(&address) {
                Ok(input) => break input,
                Err(error) => {
                    assert!(Instant::now() < deadline, "Mutter did not come up: {error}");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        // Nobody touches a headless seat: the idle time grows and a wait sees no input.
        let first = input.idle_time().expect("idle time");
        assert!(
            !input
                .wait_for_input(Duration::from_millis(300))
                .expect("wait")
        );
        let second = input.idle_time().expect("idle time");
        assert!(
            second >= first + Duration::from_millis(250),
            "{first:?} then {second:?}"
        );

        let mouse = RemoteDesktop::start(&address);
        for round in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            assert!(input.idle_time().expect("idle time") >= Duration::from_millis(250));
            let latency = std::thread::scope(|scope| {
                let moved = scope.spawn(|| {
                    std::thread::sleep(Duration::from_millis(100));
                    mouse.move_pointer()
                });
                let woke = input.wait_for_input(Duration::from_secs(5)).expect("wait");
                let woken_at = Instant::now();
                let sent = moved.join().expect("mouse thread");
                assert!(woke, "round {round}: the mouse did not wake the wait");
                woken_at.saturating_duration_since(sent)
            });
            assert!(
                latency < WAKE_LIMIT,
                "round {round}: woke {latency:?} after the mouse moved"
            );
            assert!(input.idle_time().expect("idle time") < Duration::from_millis(100));
        }
    });
    let _ = kill_group(compositor.id());
    let _ = compositor.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A remote-desktop session on Mutter, for moving its pointer.
struct RemoteDesktop {
    session: zbus::blocking::Proxy<'static>,
}

impl RemoteDesktop {
    fn start(address: &str) -> RemoteDesktop {
        let connection = zbus::blocking::connection::Builder::address(address)
            .and_then(|b| b.build())
            .expect("connect to the bus");
        let remote_desktop = zbus::blocking::Proxy::new(
            &connection,
            "org.gnome.Mutter.RemoteDesktop",
            "/org/gnome/Mutter/RemoteDesktop",
            "org.gnome.Mutter.RemoteDesktop",
        )
        .expect("remote desktop proxy");
        let path: zbus::zvariant::OwnedObjectPath = remote_desktop
            .call("CreateSession", &())
            .expect("create a remote-desktop session");
        let session = zbus::blocking::Proxy::new(
            &connection,
            "org.gnome.Mutter.RemoteDesktop",
            path,
            "org.gnome.Mutter.RemoteDesktop.Session",
        )
        .expect("session proxy");
        session
            .call::<_, _, ()>("Start", &())
            .expect("start the session");
        RemoteDesktop { session }
    }

    /// Moves the pointer by a few pixels; returns when Mutter took the request.
    fn move_pointer(&self) -> Instant {
        self.session
            .call::<_, _, ()>("NotifyPointerMotionRelative", &(5.0f64, 5.0f64))
            .expect("move the pointer");
        Instant::now()
    }
}

// ---------------------------------------------------------------------------------------------
// Wayland ext-idle-notify-v1

/// A compositor reduced to what this source needs, speaking the Wayland wire protocol: the registry
/// (wl_seat, and ext_idle_notifier_v1 at the version asked, or not at all), wl_display.sync, bind,
/// and the notifier's two requests. The test sends `idled` and `resumed` as input would make them.
struct FakeCompositor {
    socket: PathBuf,
    client: Arc<Mutex<Option<UnixStream>>>,
    notification: Arc<Mutex<Option<Notification>>>,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Notification {
    id: u32,
    /// 1: get_idle_notification, 2: get_input_idle_notification.
    request: u16,
    timeout_ms: u32,
}

impl FakeCompositor {
    /// `notifier`: the ext_idle_notifier_v1 version to offer, or `None` for a compositor without it.
    fn start(notifier: Option<u32>) -> FakeCompositor {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("wayland-test");
        let listener = UnixListener::bind(&socket).expect("bind the compositor socket");
        let client = Arc::new(Mutex::new(None));
        let notification = Arc::new(Mutex::new(None));
        let (client_slot, notification_slot) = (client.clone(), notification.clone());
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let Ok(writer) = stream.try_clone() else {
                return;
            };
            *client_slot.lock().expect("client slot") = Some(writer);
            serve_client(stream, notifier, &client_slot, &notification_slot);
        });
        FakeCompositor {
            socket,
            client,
            notification,
            _dir: dir,
        }
    }

    /// The notification the client asked for, once it has.
    fn notification(&self) -> Notification {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(notification) = *self.notification.lock().expect("notification slot") {
                return notification;
            }
            assert!(
                Instant::now() < deadline,
                "the client asked for no notification"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn idled(&self) {
        let id = self.notification().id;
        send(&self.client, id, 0, &[]);
    }

    /// Returns when the event left.
    fn resumed(&self) -> Instant {
        let id = self.notification().id;
        send(&self.client, id, 1, &[]);
        Instant::now()
    }

    /// The compositor goes away.
    fn hang_up(&self) {
        if let Some(stream) = self.client.lock().expect("client slot").take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn serve_client(
    mut stream: UnixStream,
    notifier: Option<u32>,
    client: &Mutex<Option<UnixStream>>,
    notification: &Mutex<Option<Notification>>,
) {
    // Object id to interface, for the objects the client made.
    let mut objects: HashMap<u32, String> = HashMap::from([(1, "wl_display".to_string())]);
    let mut globals = vec![(1u32, "wl_seat", 7u32)];
    if let Some(version) = notifier {
        globals.push((2, "ext_idle_notifier_v1", version));
    }
    loop {
        let mut header = [0u8; 8];
        if stream.read_exact(&mut header).is_err() {
            return;
        }
        let object = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let word = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
        let (size, opcode) = ((word >> 16) as usize, (word & 0xffff) as u16);
        let mut body = vec![0u8; size.saturating_sub(8)];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let mut args = Args(&body);
        match (objects.get(&object).map(String::as_str), opcode) {
            // wl_display.sync(callback): done, then the id is free again.
            (Some("wl_display"), 0) => {
                let callback = args.uint();
                send(client, callback, 0, &0u32.to_ne_bytes());
                send(client, 1, 1, &callback.to_ne_bytes());
            }
            // wl_display.get_registry(registry): the globals.
            (Some("wl_display"), 1) => {
                let registry = args.uint();
                objects.insert(registry, "wl_registry".into());
                for (name, interface, version) in &globals {
                    let mut event = name.to_ne_bytes().to_vec();
                    event.extend(string(interface));
                    event.extend(version.to_ne_bytes());
                    send(client, registry, 0, &event);
                }
            }
            // wl_registry.bind(name, interface, version, id).
            (Some("wl_registry"), 0) => {
                let _name = args.uint();
                let interface = args.string();
                let _version = args.uint();
                let id = args.uint();
                objects.insert(id, interface);
            }
            // ext_idle_notifier_v1.get_idle_notification / get_input_idle_notification.
            (Some("ext_idle_notifier_v1"), request @ (1 | 2)) => {
                let id = args.uint();
                let timeout_ms = args.uint();
                objects.insert(id, "ext_idle_notification_v1".into());
                *notification.lock().expect("notification slot") = Some(Notification {
                    id,
                    request,
                    timeout_ms,
                });
            }
            // Destroy requests and anything else: nothing to answer.
            _ => {}
        }
    }
}

/// Reads a request's arguments.
struct Args<'a>(&'a [u8]);

impl Args<'_> {
    fn uint(&mut self) -> u32 {
        let (head, rest) = self.0.split_at(4);
        self.0 = rest;
        u32::from_ne_bytes([head[0], head[1], head[2], head[3]])
    }

    fn string(&mut self) -> String {
        let len = self.uint() as usize;
        let padded = len.div_ceil(4) * 4;
        let (head, rest) = self.0.split_at(padded);
        self.0 = rest;
        String::from_utf8_lossy(&head[..len.saturating_sub(1)]).into_owned()
    }
}

/// A string argument: length with the NUL, the bytes, the NUL, padding to four bytes.
fn string(text: &str) -> Vec<u8> {
    let mut bytes = ((text.len() + 1) as u32).to_ne_bytes().to_vec();
    bytes.extend(text.as_bytes());
    bytes.push(0);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

/// A message on the wire: object, size and opcode, arguments.
fn message(object: u32, opcode: u16, args: &[u8]) -> Vec<u8> {
    let size = 8 + args.len();
    let mut message = object.to_ne_bytes().to_vec();
    message.extend((((size as u32) << 16) | u32::from(opcode)).to_ne_bytes());
    message.extend(args);
    message
}

/// An event from the fake compositor.
fn send(client: &Mutex<Option<UnixStream>>, object: u32, opcode: u16, args: &[u8]) {
    if let Some(stream) = client.lock().expect("client slot").as_mut() {
        // A client already gone is the test's business to notice, not the compositor's.
        let _ = stream.write_all(&message(object, opcode, args));
    }
}

fn assert_close(actual: Duration, expected: Duration, tolerance: Duration) {
    assert!(
        actual >= expected && actual < expected + tolerance,
        "{actual:?}, expected {expected:?} (+{tolerance:?})"
    );
}

#[test]
fn wayland_asks_for_input_idleness_and_derives_idle_time() {
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    assert_eq!(input.name(), "wayland");
    let notification = compositor.notification();
    // Version 2's request, which ignores idle inhibitors: input alone counts.
    assert_eq!(notification.request, 2);
    assert_eq!(
        Duration::from_millis(u64::from(notification.timeout_ms)),
        WAYLAND_NOTIFY_TIMEOUT
    );
    // Not idle yet: input within the last timeout, as far as anyone can tell.
    assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
    compositor.idled();
    std::thread::sleep(Duration::from_millis(20));
    let tolerance = Duration::from_millis(150);
    assert_close(
        input.idle_time().expect("idle time"),
        WAYLAND_NOTIFY_TIMEOUT,
        tolerance,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_close(
        input.idle_time().expect("idle time"),
        WAYLAND_NOTIFY_TIMEOUT + Duration::from_millis(300),
        tolerance,
    );
    compositor.resumed();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
}

#[test]
fn wayland_falls_back_to_version_1() {
    let compositor = FakeCompositor::start(Some(1));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    assert_eq!(compositor.notification().request, 1);
    assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
}

#[test]
fn wayland_wait_wakes_on_input() {
    let compositor = Arc::new(FakeCompositor::start(Some(2)));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    for round in 0..3 {
        compositor.idled();
        std::thread::sleep(Duration::from_millis(20));
        assert!(input.idle_time().expect("idle time") >= WAYLAND_NOTIFY_TIMEOUT);
        let fake = compositor.clone();
        let touch = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            fake.resumed()
        });
        let woke = input.wait_for_input(Duration::from_secs(5)).expect("wait");
        let woken_at = Instant::now();
        let sent = touch.join().expect("input thread");
        assert!(woke, "round {round}: input did not wake the wait");
        let latency = woken_at.saturating_duration_since(sent);
        assert!(
            latency < WAKE_LIMIT,
            "round {round}: woke {latency:?} after input"
        );
        assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
    }
}

#[test]
fn wayland_wait_times_out_without_input() {
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    compositor.idled();
    for _ in 0..3 {
        let start = Instant::now();
        assert!(
            !input
                .wait_for_input(Duration::from_millis(200))
                .expect("wait")
        );
        assert_close(
            start.elapsed(),
            Duration::from_millis(200),
            Duration::from_millis(100),
        );
    }
}

#[test]
fn wayland_sees_input_between_reading_and_waiting() {
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    compositor.idled();
    std::thread::sleep(Duration::from_millis(20));
    input.idle_time().expect("idle time");
    compositor.resumed();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    assert!(input.wait_for_input(Duration::from_secs(5)).expect("wait"));
    assert!(start.elapsed() < WAKE_LIMIT, "{:?}", start.elapsed());
}

#[test]
fn wayland_does_not_count_input_twice() {
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    compositor.idled();
    compositor.resumed();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
    assert!(
        !input
            .wait_for_input(Duration::from_millis(200))
            .expect("wait")
    );
}

#[test]
fn wayland_wait_begun_while_active() {
    // Not idle when the wait begins and never idle after: the person kept at it.
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    let start = Instant::now();
    assert!(input.wait_for_input(Duration::from_secs(5)).expect("wait"));
    let waited = start.elapsed();
    assert!(
        waited >= WAYLAND_NOTIFY_TIMEOUT && waited < WAYLAND_NOTIFY_TIMEOUT * 2,
        "{waited:?}"
    );

    // Not idle when the wait begins, idle soon after, no input: the wait runs its course.
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    compositor.notification();
    let quiet = std::thread::spawn({
        let client = compositor.client.clone();
        let id = compositor.notification().id;
        move || {
            std::thread::sleep(Duration::from_millis(300));
            send(&client, id, 0, &[]);
        }
    });
    let start = Instant::now();
    assert!(!input.wait_for_input(Duration::from_secs(2)).expect("wait"));
    assert_close(
        start.elapsed(),
        Duration::from_secs(2),
        Duration::from_millis(100),
    );
    quiet.join().expect("idle thread");
}

#[test]
fn wayland_reports_a_compositor_gone() {
    let compositor = FakeCompositor::start(Some(2));
    let mut input = WaylandInput::connect_to(&compositor.socket).expect("connect");
    compositor.hang_up();
    std::thread::sleep(Duration::from_millis(20));
    let result = input.wait_for_input(Duration::from_secs(1));
    assert!(
        matches!(
            result,
            Err(SignalError::Failed {
                source_name: "wayland",
                ..
            })
        ),
        "{result:?}"
    );
    let result = input.idle_time();
    assert!(
        matches!(
            result,
            Err(SignalError::Failed {
                source_name: "wayland",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn wayland_is_unavailable_without_ext_idle_notify() {
    let compositor = FakeCompositor::start(None);
    let result = WaylandInput::connect_to(&compositor.socket);
    assert!(
        matches!(&result, Err(SignalError::Unavailable { source_name: "wayland", reason }) if reason.contains("ext-idle-notify")),
        "{:?}",
        result.err()
    );
}

#[test]
fn wayland_is_unavailable_without_a_compositor() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let result = WaylandInput::connect_to(&dir.path().join("wayland-0"));
    assert!(
        matches!(
            result,
            Err(SignalError::Unavailable {
                source_name: "wayland",
                ..
            })
        ),
        "{:?}",
        result.err()
    );
}

/// The real client against a real compositor: KWin (Plasma 5.27 and later offers ext-idle-notify-v1),
/// headless, on its own D-Bus and runtime dir. A headless seat has no devices; the input is
/// KWin's own fake-input protocol (what KDE Connect uses), spoken raw by [`FakeInputClient`].
#[test]
#[ignore = "needs kwin-wayland and dbus-daemon installed (about 170 apt packages)"]
fn wayland_against_headless_kwin() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("runtime dir mode");
    // KWin's binary carries a file capability, which a container may refuse to grant; a copy without
    // it runs anywhere (KWin checks that its file is named kwin_wayland).
    let kwin = dir.path().join("kwin_wayland");
    std::fs::copy(which("kwin_wayland"), &kwin).expect("copy kwin_wayland");
    let bus = PrivateBus::start();
    let mut compositor = Command::new(&kwin)
        .args([
            "--virtual",
            "--no-lockscreen",
            "--socket",
            "wayland-idle-test",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("XDG_RUNTIME_DIR", &runtime)
        // Lets the test's client bind org_kde_kwin_fake_input, which KWin keeps for trusted programs.
        .env("KWIN_WAYLAND_NO_PERMISSION_CHECKS", "1")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start kwin_wayland");
    let socket = runtime.join("wayland-idle-test");
    let result = std::panic::catch_unwind(move || {
        let socket = socket.as_path();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut input = loop {
            match WaylandInput::connect_to(socket) {
                Ok(input) => break input,
                Err(error) => {
                    assert!(Instant::now() < deadline, "KWin did not come up: {error}");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        assert_eq!(input.idle_time().expect("idle time"), Duration::ZERO);
        std::thread::sleep(WAYLAND_NOTIFY_TIMEOUT + Duration::from_millis(500));
        let first = input.idle_time().expect("idle time");
        assert!(first >= WAYLAND_NOTIFY_TIMEOUT, "{first:?}");
        // Nobody touches a headless seat: a wait sees no input, and the idle time keeps growing.
        assert!(
            !input
                .wait_for_input(Duration::from_millis(300))
                .expect("wait")
        );
        let second = input.idle_time().expect("idle time");
        assert!(
            second >= first + Duration::from_millis(300),
            "{first:?} then {second:?}"
        );

        // The mouse moves: the wait wakes, and the idle time starts again.
        let mut mouse = FakeInputClient::connect(socket);
        for round in 0..3 {
            std::thread::sleep(WAYLAND_NOTIFY_TIMEOUT + Duration::from_millis(300));
            assert!(input.idle_time().expect("idle time") >= WAYLAND_NOTIFY_TIMEOUT);
            let moved = std::thread::scope(|scope| {
                let moved = scope.spawn(|| {
                    std::thread::sleep(Duration::from_millis(100));
                    mouse.move_pointer()
                });
                let woke = input.wait_for_input(Duration::from_secs(5)).expect("wait");
                let woken_at = Instant::now();
                let sent = moved.join().expect("mouse thread");
                assert!(woke, "round {round}: the mouse did not wake the wait");
                woken_at.saturating_duration_since(sent)
            });
            assert!(
                moved < WAKE_LIMIT,
                "round {round}: woke {moved:?} after the mouse moved"
            );
            assert!(input.idle_time().expect("idle time") < WAYLAND_NOTIFY_TIMEOUT);
        }
    });
    // The whole group: KWin and any helper it started.
    let _ = kill_group(compositor.id());
    let _ = compositor.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A Wayland client that moves KWin's pointer through `org_kde_kwin_fake_input`.
struct FakeInputClient {
    stream: UnixStream,
    fake_input: u32,
}

impl FakeInputClient {
    fn connect(socket: &Path) -> FakeInputClient {
        let mut stream = UnixStream::connect(socket).expect("connect to KWin");
        let (registry, callback, fake_input) = (2u32, 3u32, 4u32);
        raw_request(&mut stream, 1, 1, &registry.to_ne_bytes());
        raw_request(&mut stream, 1, 0, &callback.to_ne_bytes());
        // Globals until the sync's callback is done.
        let mut found = None;
        loop {
            let mut header = [0u8; 8];
            stream.read_exact(&mut header).expect("read from KWin");
            let object = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
            let word = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
            let mut body = vec![0u8; ((word >> 16) as usize).saturating_sub(8)];
            stream.read_exact(&mut body).expect("read from KWin");
            let mut args = Args(&body);
            if object == callback {
                break;
            }
            if object == registry && word & 0xffff == 0 {
                let name = args.uint();
                if args.string() == "org_kde_kwin_fake_input" {
                    found = Some(name);
                }
            }
        }
        let name = found.expect("KWin offers org_kde_kwin_fake_input");
        let mut bind = name.to_ne_bytes().to_vec();
        bind.extend(string("org_kde_kwin_fake_input"));
        bind.extend(1u32.to_ne_bytes());
        bind.extend(fake_input.to_ne_bytes());
        raw_request(&mut stream, registry, 0, &bind);
        let mut authenticate = string("idlegrid tests");
        authenticate.extend(string("simulated input"));
        raw_request(&mut stream, fake_input, 0, &authenticate);
        FakeInputClient { stream, fake_input }
    }

    /// Moves the pointer by a few pixels; returns when the request left.
    fn move_pointer(&mut self) -> Instant {
        // wl_fixed: 24.8 fixed point.
        let mut motion = (5i32 * 256).to_ne_bytes().to_vec();
        motion.extend((5i32 * 256).to_ne_bytes());
        raw_request(&mut self.stream, self.fake_input, 1, &motion);
        Instant::now()
    }
}

fn raw_request(stream: &mut UnixStream, object: u32, opcode: u16, args: &[u8]) {
    stream
        .write_all(&message(object, opcode, args))
        .expect("write to KWin");
}

/// Ends the process group a test started for a compositor (it and any helper it spawned).
fn kill_group(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg("--")
        .arg(format!("-{pid}"))
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

/// Where `program` is on the PATH.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| Path::new(path).is_file())
        .unwrap_or_else(|| panic!("{program} is not installed"))
}
