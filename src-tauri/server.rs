//! The app's end of the link: one connection per window or second launch. A second launch asks for
//! the window; a window gets the node's news and has its calls answered, each call as its own task so
//! a slow one (a benchmark, joining a pool) holds up nothing else.

use std::sync::Arc;

use tokio::io::{AsyncBufRead, BufReader};
use tokio::sync::mpsc;

use crate::calls::{self, AppState};
use crate::link::{self, LinkError, ToApp, ToWindow};
use crate::transport::{Listener, ServerStream};
use crate::window::OUTBOX;

/// Answers connections until the app ends.
pub async fn serve(mut listener: Listener, state: Arc<AppState>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    if let Err(error) = connection(stream, state).await {
                        tracing::warn!(%error, "a connection to the app ended badly");
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connection(stream: ServerStream, state: Arc<AppState>) -> Result<(), LinkError> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    match link::read::<ToApp, _>(&mut reader, &mut line).await? {
        Some(ToApp::Open) => {
            tracing::info!("launched again: opening the window");
            state.windows.open();
            Ok(())
        }
        Some(ToApp::Window) => {
            let (outbox, mut inbox) = mpsc::channel(OUTBOX);
            if !state.windows.attach(outbox.clone()) {
                state.windows.open();
                return link::write(&mut writer, &ToWindow::Close).await;
            }
            let sender = tokio::spawn(async move {
                while let Some(message) = inbox.recv().await {
                    if link::write(&mut writer, &message).await.is_err() {
                        return;
                    }
                }
            });
            let ended = calls_of_the_window(&mut reader, &mut line, &outbox, &state).await;
            state.windows.detach(&outbox);
            sender.abort();
            ended
        }
        // Something that does not say what it is gets nothing.
        Some(ToApp::Call { .. }) | None => Ok(()),
    }
}

async fn calls_of_the_window(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut String,
    outbox: &mpsc::Sender<ToWindow>,
    state: &Arc<AppState>,
) -> Result<(), LinkError> {
    while let Some(message) = link::read::<ToApp, _>(reader, line).await? {
        let ToApp::Call { id, command, args } = message else {
            continue;
        };
        let state = Arc::clone(state);
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let result = calls::call(&state, &command, args).await;
            // A reply waits for room: the window is waiting for it.
            let _window_gone = outbox.send(ToWindow::Reply { id, result }).await;
        });
    }
    Ok(())
}
