//! The Idlegrid desktop app: the tray and the engine's [`idlegrid::node::Node`], in one long-lived
//! process with no web engine in it. The window is a program of its own (`idlegrid-window`, Tauri on
//! the system's web view), started when asked for and gone when closed; it reaches the node through
//! [`link`]. This process owns the tray, the node, the commands and events of docs/desktop-ipc.md,
//! desktop notices, start at login, one app per data folder, and logging. Every decision is the
//! node's; each command is a line or two.

mod autostart;
pub mod calls;
mod cli;
pub mod forward;
// build.rs's check that the window's files are built, here for its tests.
#[cfg(test)]
mod frontend_dist;
pub mod instance;
pub mod link;
pub mod locale;
mod logging;
pub mod server;
pub mod transport;
mod tray;
pub mod window;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use idlegrid::identity::default_data_dir;
use idlegrid::node::{JobRunner, Node, NodeOptions, find_examples};
use idlegrid::worker::WorkerConfig;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoop, EventLoopBuilder};
use tao::platform::run_return::EventLoopExtRunReturn as _;
use tray_icon::TrayIconEvent;
use tray_icon::menu::MenuEvent;

pub use calls::{AppState, COMMANDS};
pub use logging::logs_dir;
use tray::{Action, AppEvent, Tray};
use window::{WindowProgram, Windows};

/// Runs the app until the person quits it from the tray; or, started as `idlegrid-desktop worker`,
/// the GPU worker process its providers run jobs in (see `idlegrid::worker`). A launch for a data
/// folder whose app is running already asks that one to show its window (unless `--hidden`), and ends.
pub fn run() -> anyhow::Result<()> {
    if cli::is_worker() {
        return Ok(idlegrid::worker::serve()?);
    }
    let args = cli::Args::parse_or_exit();
    let data_dir = args.data.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let address = transport::address(&data_dir);
    let first = match instance::claim(&address).context("cannot claim the data folder")? {
        instance::Claim::First(first) => first,
        // Started in the tray only (at login, or by a window looking for its app): it is running.
        instance::Claim::Taken if args.hidden => return Ok(()),
        instance::Claim::Taken => {
            return instance::hand_over(&address)
                .context("Idlegrid is running for this data folder but does not answer");
        }
    };
    check_for_a_desktop()?;
    let gtk_gl_off = keep_gtk_off_opengl();
    let event_loop: EventLoop<AppEvent> = EventLoopBuilder::with_user_event().build();
    let logs = logging::logs_dir();
    let _flush_logs_on_exit = logging::init(&logs)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Idlegrid starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("idlegrid")
        .build()
        .context("cannot start the app's runtime")?;

    let mut options = NodeOptions::new(data_dir.clone());
    options.examples_dir = examples_dir();
    // Jobs run in a child process of this program, so a misbehaving shader or driver takes down only
    // that child.
    options.runner = JobRunner::Worker(Box::new(WorkerConfig::this_program()?));
    let node = runtime.block_on(Node::open(options))?;
    let mut window = WindowProgram::beside_this_program(&data_dir)?;
    if gtk_gl_off {
        window.env_remove.push(GDK_GL);
    }
    let state = Arc::new(AppState {
        windows: Windows::new(window),
        logs_dir: logs,
        downloads_dir: dirs::download_dir()
            .or_else(dirs::home_dir)
            .unwrap_or_else(std::env::temp_dir),
        node,
    });
    autostart::adopt(&state.node);
    start_tasks(&runtime, &state, &event_loop, first, args.local_pool)?;
    if !args.hidden {
        state.windows.open();
    }
    let mut stopped = false;
    run_event_loop(event_loop, &state, |state| {
        stop(&runtime, state, &mut stopped)
    });
    stop(&runtime, &state, &mut stopped);
    Ok(())
}

/// The node's news, the link's socket, the stop signal and the demo pool, on the runtime; the tray's
/// events, to the event loop.
fn start_tasks(
    runtime: &tokio::runtime::Runtime,
    state: &Arc<AppState>,
    event_loop: &EventLoop<AppEvent>,
    first: instance::First,
    local_pool: bool,
) -> anyhow::Result<()> {
    let _inside = runtime.enter();
    let proxy = event_loop.create_proxy();
    forward::spawn(state, move |status| {
        let _ended = proxy.send_event(AppEvent::Status(Box::new(status)));
    });
    let instance::First { lock, listener } = first;
    let listener = listener.listen().context("cannot listen for the window")?;
    let serving = Arc::clone(state);
    tokio::spawn(async move {
        // The folder's lock is kept until the app ends.
        let _lock = lock;
        server::serve(listener, serving).await;
    });
    let proxy = event_loop.create_proxy();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("asked to stop");
        let _ended = proxy.send_event(AppEvent::Quit);
    });
    if local_pool {
        let node = state.node.clone();
        tokio::spawn(async move {
            if let Err(error) = node.start_local_pool().await {
                tracing::warn!(%error, "could not start the local pool");
            }
        });
    }
    let proxy = event_loop.create_proxy();
    MenuEvent::set_event_handler(Some(move |event| {
        let _ended = proxy.send_event(AppEvent::Menu(event));
    }));
    let proxy = event_loop.create_proxy();
    TrayIconEvent::set_event_handler(Some(move |event| {
        let _ended = proxy.send_event(AppEvent::Icon(event));
    }));
    Ok(())
}

/// Gives the leases back and closes the node, once.
fn stop(runtime: &tokio::runtime::Runtime, state: &AppState, stopped: &mut bool) {
    if !std::mem::replace(stopped, true) {
        runtime.block_on(state.node.shutdown());
        tracing::info!("Idlegrid stopped");
    }
}

/// The main thread's loop: the tray and its menu, until Quit. `on_end` runs when the loop ends,
/// which on Windows is also when the session ends (logging off, shutting down): the process is
/// ended right after it.
fn run_event_loop(
    mut event_loop: EventLoop<AppEvent>,
    state: &AppState,
    mut on_end: impl FnMut(&AppState),
) {
    let mut tray: Option<Tray> = None;
    event_loop.run_return(|event, _, flow| {
        *flow = ControlFlow::Wait;
        match event {
            Event::LoopDestroyed => on_end(state),
            // Tray icons need the loop running (macOS, Windows).
            Event::NewEvents(StartCause::Init) => match Tray::create(&state.node.status()) {
                Ok(created) => tray = Some(created),
                Err(error) => {
                    // Without a tray the app would be invisible: show the window instead.
                    tracing::warn!(%error, "no tray here; opening the window");
                    state.windows.open();
                }
            },
            Event::UserEvent(AppEvent::Status(status)) => {
                if let Some(tray) = tray.as_mut() {
                    tray.show(&status);
                }
            }
            Event::UserEvent(AppEvent::Menu(event)) => {
                match tray::on_menu(&state.node, event.id.as_ref()) {
                    Action::OpenWindow => state.windows.open(),
                    Action::Quit => *flow = ControlFlow::Exit,
                    Action::Nothing => {}
                }
                if let Some(tray) = tray.as_mut() {
                    tray.redraw(&state.node.status());
                }
            }
            Event::UserEvent(AppEvent::Icon(event)) if tray::is_open_click(&event) => {
                state.windows.open();
            }
            Event::UserEvent(AppEvent::Quit) => *flow = ControlFlow::Exit,
            _ => {}
        }
    });
}

const GDK_GL: &str = "GDK_GL";

/// GTK opens the OpenGL driver at start to choose its visuals (Mesa's, LLVM and all: ~50 MB in this
/// process) unless told not to; the tray draws nothing with OpenGL. Returns whether it was told here,
/// so the window, which may want OpenGL, does not inherit it.
fn keep_gtk_off_opengl() -> bool {
    if !cfg!(target_os = "linux") || std::env::var_os(GDK_GL).is_some() {
        return false;
    }
    // SAFETY: called before this process starts any thread, so nothing reads the environment while
    // it changes.
    unsafe { std::env::set_var(GDK_GL, "disable") };
    true
}

/// GTK panics without a display; a person on a server gets one line saying what to use instead.
fn check_for_a_desktop() -> anyhow::Result<()> {
    let has = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if cfg!(target_os = "linux") && !has("DISPLAY") && !has("WAYLAND_DISPLAY") {
        anyhow::bail!(
            "no desktop session here (neither DISPLAY nor WAYLAND_DISPLAY is set); \
             on a machine without one, `idlegrid provide --pool TICKET` shares its GPU"
        );
    }
    Ok(())
}

/// The demo's sample jobs: bundled with the app (Debian package and AppImage: `../lib/Idlegrid`,
/// macOS: `../Resources`, Windows: beside the program), or in the source tree it was built from.
fn examples_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let bundled = [
        dir.join("../lib/Idlegrid"),
        dir.join("../Resources"),
        dir.to_path_buf(),
    ];
    bundled
        .iter()
        .map(|root| root.join("examples").join("jobs"))
        .find(|jobs| jobs.is_dir())
        .or_else(|| find_examples(&exe))
}

/// Ctrl-C, or SIGTERM (a session ending): quit as from the tray, giving leases back. (Windows ends
/// a session through the event loop instead: see `run_event_loop`.)
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling here: never asked to stop this way.
        std::future::pending::<()>().await;
    }
}
