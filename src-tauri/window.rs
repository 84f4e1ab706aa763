//! The window: created when asked for (tray, second launch, start without --hidden) and destroyed
//! when closed, webview and all, so that only the tray stays in memory. Whether it exists is published
//! for the hardware feed, which runs only while someone can see it.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder, Window, WindowEvent};

use crate::commands::AppState;

pub const MAIN: &str = "main";

/// Shows the window, creating it if there is none.
pub fn open<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(MAIN) {
        window.unminimize()?;
        window.show()?;
        return window.set_focus();
    }
    WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App("index.html".into()))
        .title("Idlegrid")
        .inner_size(860.0, 620.0)
        .min_inner_size(400.0, 600.0)
        .build()?;
    set_open(app, true);
    tracing::info!("window opened");
    Ok(())
}

pub fn open_or_log<R: Runtime>(app: &AppHandle<R>) {
    if let Err(error) = open(app) {
        tracing::warn!(%error, "cannot open the window");
    }
}

/// Closing is Tauri's default: the window and its webview are destroyed. Nothing is hidden.
pub fn on_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if window.label() == MAIN && matches!(event, WindowEvent::Destroyed) {
        set_open(window.app_handle(), false);
        tracing::info!("window closed; Idlegrid goes on in the tray");
        #[cfg(target_os = "linux")]
        std::thread::spawn(end_network_process);
    }
}

/// WebKitGTK keeps a web context's network process alive after its last view has gone (and Tauri
/// keeps the context, tauri#14626), so a tray app would carry it for days. With no window there is
/// nothing for it to do: it is ended, and WebKit starts a fresh one with the next window.
#[cfg(target_os = "linux")]
fn end_network_process() {
    // The web process goes first; the network process is only idle once it has.
    std::thread::sleep(std::time::Duration::from_secs(1));
    for pid in webkit_children("WebKitNetwork") {
        let ended = rustix::process::Pid::from_raw(pid)
            .map(|pid| rustix::process::kill_process(pid, rustix::process::Signal::TERM));
        tracing::info!(pid, ended = ?ended, "ended WebKit's idle network process");
    }
}

/// Our child processes whose name starts with `prefix`.
#[cfg(target_os = "linux")]
fn webkit_children(prefix: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (name) state ppid ...": the name may hold spaces, so split at the last ')'.
            let Some((head, tail)) = stat.rsplit_once(')') else {
                return false;
            };
            let name = head.split_once('(').map_or("", |(_, name)| name);
            name.starts_with(prefix) && tail.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

fn set_open<R: Runtime>(app: &AppHandle<R>, open: bool) {
    if let Some(state) = app.try_state::<AppState>() {
        state.window_open.send_replace(open);
    }
}
