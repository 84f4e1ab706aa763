//! The Idlegrid desktop app: a thin Tauri shell around the engine's [`idlegrid::node::Node`]. It owns
//! the tray, the window (created on demand and destroyed on close, so no web engine idles in memory
//! while only the tray is there), the commands and events of docs/desktop-ipc.md, desktop notices,
//! start at login and logging. Every decision is the node's; each command here is a line or two.

mod cli;
pub mod commands;
pub mod forward;
mod logging;
mod tray;
pub mod window;

use std::path::PathBuf;

use anyhow::Context as _;
use idlegrid::identity::default_data_dir;
use idlegrid::node::{JobRunner, Node, NodeOptions, find_examples};
use idlegrid::worker::WorkerConfig;
use tauri::{App, AppHandle, Builder, Manager, RunEvent, Runtime};

pub use commands::{AppState, COMMANDS};

/// Runs the app until the person quits it from the tray; or, started as `idlegrid-desktop worker`,
/// the GPU worker process its providers run jobs in (see `idlegrid::worker`).
pub fn run() -> anyhow::Result<()> {
    if cli::is_worker() {
        return Ok(idlegrid::worker::serve()?);
    }
    give_the_webview_a_language();
    let args = cli::Args::parse_or_exit();
    check_for_a_desktop()?;
    let logs = logging::logs_dir();
    let _flush_logs_on_exit = logging::init(&logs)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Idlegrid starting");
    let builder = Builder::default()
        // First: a second launch must find the first before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            window::open_or_log(app);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init());
    let app = attach(builder)
        .setup(move |app| Ok(setup(app, args, logs)?))
        .build(tauri::generate_context!())
        .context("cannot start the app")?;
    app.run(on_run_event);
    Ok(())
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

/// WebKitGTK takes `navigator.language` from LC_CTYPE. Under "C.UTF-8" (containers, CI, minimal
/// sessions) it reports "C", which every `Intl` formatter rejects, and the window's script stops
/// before it draws anything; plain "C" it reports as "en-US". Character classification is all that
/// changes for this process and its children, and both are ASCII-compatible.
fn give_the_webview_a_language() {
    let read = |name: &str| std::env::var(name).ok();
    if let Some((name, value)) = locale_fix(read) {
        // SAFETY: called first thing in `run`, before any thread of this process exists, so nothing
        // reads the environment while it changes.
        unsafe { std::env::set_var(name, value) };
    }
}

/// The variable to set, and its value, when the locale that decides LC_CTYPE is C with a codeset.
fn locale_fix(read: impl Fn(&str) -> Option<String>) -> Option<(&'static str, &'static str)> {
    let (name, value) = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .find_map(|name| Some((name, read(name).filter(|v| !v.is_empty())?)))?;
    let c_but_not_plain_c =
        value != "C" && matches!(value.split(['.', '@']).next(), Some("C" | "POSIX"));
    // LANG only sets a default; LC_CTYPE narrows the change to what WebKit reads.
    let name = if name == "LANG" { "LC_CTYPE" } else { name };
    c_but_not_plain_c.then_some((name, "C"))
}

/// The commands and window handling, on any runtime (the tests attach them to Tauri's mock one).
pub fn attach<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        .invoke_handler(commands::handler())
        .on_window_event(window::on_event)
}

fn setup(app: &mut App, args: cli::Args, logs: PathBuf) -> anyhow::Result<()> {
    let mut options = NodeOptions::new(args.data.unwrap_or_else(default_data_dir));
    options.examples_dir = examples_dir(app.handle());
    // Jobs run in a child process of this program, so a misbehaving shader or driver takes down only
    // that child.
    options.runner = JobRunner::Worker(Box::new(WorkerConfig::this_program()?));
    let node = tauri::async_runtime::block_on(Node::open(options))?;
    let downloads = dirs::download_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_else(std::env::temp_dir);
    app.manage(AppState::new(node.clone(), logs, downloads));
    commands::apply_start_at_login(app.handle(), node.settings().start_at_login);
    tray::create(app.handle(), &node.status())?;
    forward::spawn(app.handle(), &node);
    let handle = app.handle().clone();
    tauri::async_runtime::spawn(async move {
        stop_signal().await;
        tracing::info!("asked to stop");
        handle.exit(0);
    });
    if args.local_pool {
        tauri::async_runtime::spawn(async move {
            if let Err(error) = node.start_local_pool().await {
                tracing::warn!(%error, "could not start the local pool");
            }
        });
    }
    if !args.hidden {
        window::open(app.handle())?;
    }
    Ok(())
}

/// The demo's sample jobs: bundled with the app, or in the source tree it was built from.
fn examples_dir(app: &AppHandle) -> Option<PathBuf> {
    let bundled = app
        .path()
        .resource_dir()
        .ok()
        .map(|dir| dir.join("examples").join("jobs"))
        .filter(|dir| dir.is_dir());
    bundled.or_else(|| find_examples(&std::env::current_exe().ok()?))
}

/// Ctrl-C, or SIGTERM (a session ending): quit as from the tray, giving leases back.
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

fn on_run_event(app: &AppHandle, event: RunEvent) {
    match event {
        // The last window closed: the app lives on in the tray. Quit asks with a code.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            if let Some(state) = app.try_state::<AppState>() {
                tauri::async_runtime::block_on(state.node.shutdown());
            }
            tracing::info!("Idlegrid stopped");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::locale_fix;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn only_a_c_locale_with_a_codeset_is_changed() {
        assert_eq!(
            locale_fix(env(&[("LANG", "C.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(
            locale_fix(env(&[("LC_ALL", "C.utf8")])),
            Some(("LC_ALL", "C"))
        );
        assert_eq!(
            locale_fix(env(&[("LC_CTYPE", "POSIX"), ("LANG", "de_DE.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(locale_fix(env(&[("LANG", "C")])), None);
        assert_eq!(locale_fix(env(&[("LANG", "en_US.UTF-8")])), None);
        assert_eq!(
            locale_fix(env(&[("LC_ALL", "fr_FR.UTF-8"), ("LANG", "C.UTF-8")])),
            None
        );
        assert_eq!(
            locale_fix(env(&[("LC_ALL", ""), ("LANG", "C.UTF-8")])),
            Some(("LC_CTYPE", "C"))
        );
        assert_eq!(locale_fix(env(&[])), None);
    }
}
