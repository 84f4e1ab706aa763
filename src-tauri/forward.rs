//! The node's news, forwarded: the status to the window (at most 4 a second) and the tray, the
//! node's events to the window, its notices to the desktop, and the hardware every 2 seconds while the
//! window exists.

use std::time::Duration;

use idlegrid::node::{Node, NodeEvent, Status};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::{broadcast, watch};

use crate::commands::AppState;

/// At most 4 status events a second, however fast a job reports.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const HARDWARE_INTERVAL: Duration = Duration::from_secs(2);

/// Starts the forwarding tasks; they end with the app.
pub fn spawn<R: Runtime>(app: &AppHandle<R>, node: &Node) {
    tauri::async_runtime::spawn(status(app.clone(), node.status_updates()));
    tauri::async_runtime::spawn(events(app.clone(), node.events()));
    if let Some(state) = app.try_state::<AppState>() {
        let open = state.window_open.subscribe();
        tauri::async_runtime::spawn(hardware(app.clone(), node.clone(), open));
    }
}

async fn status<R: Runtime>(app: AppHandle<R>, mut updates: watch::Receiver<Status>) {
    loop {
        let status = updates.borrow_and_update().clone();
        emit(&app, "status", &status);
        crate::tray::show(&app, &status);
        // Changes during the pause are folded into the next one.
        tokio::time::sleep(STATUS_INTERVAL).await;
        if updates.changed().await.is_err() {
            return;
        }
    }
}

async fn events<R: Runtime>(app: AppHandle<R>, mut events: broadcast::Receiver<NodeEvent>) {
    loop {
        match events.recv().await {
            Ok(NodeEvent::Earned(earned)) => emit(&app, "earned", &earned),
            Ok(NodeEvent::Paid(payout)) => emit(&app, "paid", &payout),
            Ok(NodeEvent::Problem(problem)) => emit(&app, "problem", &problem),
            Ok(NodeEvent::Pools(pools)) => emit(&app, "pools", &pools),
            Ok(NodeEvent::Notice { title, body }) => notify(&app, &title, &body),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind the node's events");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn hardware<R: Runtime>(app: AppHandle<R>, node: Node, mut open: watch::Receiver<bool>) {
    loop {
        if open.wait_for(|&open| open).await.is_err() {
            return;
        }
        while *open.borrow_and_update() {
            match node.hardware().await {
                Ok(hardware) => emit(&app, "hardware", &hardware),
                Err(error) => tracing::warn!(%error, "cannot read the hardware"),
            }
            tokio::select! {
                () = tokio::time::sleep(HARDWARE_INTERVAL) => {}
                _ = open.changed() => {}
            }
        }
    }
}

fn emit<R: Runtime, T: serde::Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: &T) {
    if let Err(error) = app.emit(event, payload) {
        tracing::warn!(%error, event, "cannot send an event to the window");
    }
}

/// A desktop notice; the node has already applied the person's notice settings.
fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    let Some(notices) = app.try_state::<tauri_plugin_notification::Notification<R>>() else {
        return;
    };
    if let Err(error) = notices.builder().title(title).body(body).show() {
        tracing::warn!(%error, "cannot show a desktop notice");
    }
}
