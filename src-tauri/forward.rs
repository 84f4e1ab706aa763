//! The node's news, forwarded: the status to the tray and the window (at most 4 a second), the
//! node's events to the window, its notices to the desktop, and the hardware every 2 seconds while a
//! window is attached.

use std::sync::Arc;
use std::time::Duration;

use idlegrid::node::{NodeEvent, Status, WindowEvent};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::calls::AppState;
use crate::link::ToWindow;

/// At most 4 status events a second, however fast a job reports.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const HARDWARE_INTERVAL: Duration = Duration::from_secs(2);

/// Starts the forwarding tasks on the current runtime; `tray` gets every status shown.
pub fn spawn(state: &Arc<AppState>, tray: impl Fn(Status) + Send + 'static) {
    let node = &state.node;
    tokio::spawn(status(Arc::clone(state), node.status_updates(), tray));
    tokio::spawn(events(Arc::clone(state), node.events()));
    tokio::spawn(hardware(Arc::clone(state), state.windows.open.subscribe()));
}

async fn status(state: Arc<AppState>, mut updates: watch::Receiver<Status>, tray: impl Fn(Status)) {
    loop {
        let status = updates.borrow_and_update().clone();
        to_window(&state, || WindowEvent::Status(status.clone()));
        tray(status);
        // Changes during the pause are folded into the next one.
        tokio::time::sleep(STATUS_INTERVAL).await;
        if updates.changed().await.is_err() {
            return;
        }
    }
}

async fn events(state: Arc<AppState>, mut events: broadcast::Receiver<NodeEvent>) {
    loop {
        match events.recv().await {
            Ok(NodeEvent::Earned(earned)) => to_window(&state, || WindowEvent::Earned(earned)),
            Ok(NodeEvent::Paid(payout)) => to_window(&state, || WindowEvent::Paid(*payout)),
            Ok(NodeEvent::Problem(problem)) => to_window(&state, || WindowEvent::Problem(problem)),
            Ok(NodeEvent::Checked(check)) => to_window(&state, || WindowEvent::Checked(check)),
            Ok(NodeEvent::Pools(pools)) => to_window(&state, || WindowEvent::Pools(pools)),
            Ok(NodeEvent::Notice { title, body }) => notify(title, body),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind the node's events");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn hardware(state: Arc<AppState>, mut open: watch::Receiver<bool>) {
    loop {
        if open.wait_for(|&open| open).await.is_err() {
            return;
        }
        while *open.borrow_and_update() {
            match state.node.hardware().await {
                Ok(hardware) => to_window(&state, || WindowEvent::Hardware(hardware)),
                Err(error) => tracing::warn!(%error, "cannot read the hardware"),
            }
            tokio::select! {
                () = tokio::time::sleep(HARDWARE_INTERVAL) => {}
                _ = open.changed() => {}
            }
        }
    }
}

fn to_window(state: &AppState, event: impl FnOnce() -> WindowEvent) {
    // Most of the day no window is open: nothing to make or serialize.
    if !*state.windows.open.borrow() {
        return;
    }
    // The link carries the event's name beside its payload, as the window emits them.
    match serde_json::to_value(event()) {
        Ok(Value::Object(mut event)) => match (event.remove("name"), event.remove("payload")) {
            (Some(Value::String(name)), Some(payload)) => {
                state.windows.send(ToWindow::Event { name, payload });
            }
            _ => tracing::warn!("an event without its name or payload"),
        },
        Ok(_) => tracing::warn!("an event that is not an object"),
        Err(error) => tracing::warn!(%error, "cannot send an event to the window"),
    }
}

/// A desktop notice; the node has already applied the person's notice settings. Showing one is a
/// blocking call to the notification service.
fn notify(title: String, body: String) {
    tokio::task::spawn_blocking(move || {
        let shown = notify_rust::Notification::new()
            .appname("Idlegrid")
            .summary(&title)
            .body(&body)
            .show();
        if let Err(error) = shown {
            tracing::warn!(%error, "cannot show a desktop notice");
        }
    });
}
