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
    }
}

fn set_open<R: Runtime>(app: &AppHandle<R>, open: bool) {
    if let Some(state) = app.try_state::<AppState>() {
        state.window_open.send_replace(open);
    }
}
