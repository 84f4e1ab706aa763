//! The window's end of the link: the page's commands are sent to the app and answered when the app
//! replies; the app's events are emitted to the page. The app's reply is passed on as it is: the
//! page sees the same values and one-line errors it would from a command run here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use idlegrid::sync::lock;
use idlegrid_app::COMMANDS;
use idlegrid_app::link::{self, ToApp, ToWindow};
use idlegrid_app::transport;
use serde_json::Value;
use tauri::ipc::{Invoke, InvokeBody, InvokeError};
use tauri::{AppHandle, Builder, Emitter as _, Manager as _, Runtime};
use tokio::io::BufReader;
use tokio::sync::{mpsc, oneshot};

pub const MAIN: &str = "main";

/// Calls sent and not yet answered, by id; and the way to the app.
pub struct Bridge {
    outbox: mpsc::UnboundedSender<ToApp>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    next_id: AtomicU64,
}

impl Bridge {
    /// Sends `command` to the app and waits for its answer.
    pub async fn call(&self, command: String, args: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).insert(id, answer);
        if self.outbox.send(ToApp::Call { id, command, args }).is_err() {
            lock(&self.waiting).remove(&id);
            return Err(GONE.into());
        }
        answered.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    fn answer(&self, id: u64, result: Result<Value, String>) {
        if let Some(waiting) = lock(&self.waiting).remove(&id) {
            let _page_gone = waiting.send(result);
        }
    }
}

const GONE: &str = "the Idlegrid app has quit";

/// The command handler, on any runtime (the tests use Tauri's mock one).
pub fn attach<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(|invoke: Invoke<R>| {
        let command = invoke.message.command().to_owned();
        if !COMMANDS.contains(&command.as_str()) {
            return false;
        }
        let Some(bridge) = invoke.message.webview_ref().try_state::<Arc<Bridge>>() else {
            invoke.resolver.reject(GONE);
            return true;
        };
        let bridge = Arc::clone(&bridge);
        let args = match invoke.message.payload() {
            InvokeBody::Json(args) => args.clone(),
            InvokeBody::Raw(_) => {
                invoke
                    .resolver
                    .reject("the command's arguments must be JSON");
                return true;
            }
        };
        invoke.resolver.respond_async(async move {
            bridge.call(command, args).await.map_err(InvokeError::from)
        });
        true
    })
}

/// Says this is the window on `connection`, and starts passing messages both ways. When the app
/// goes, so does the window.
pub fn start<R: Runtime>(app: &AppHandle<R>, connection: transport::Connection) {
    let (outbox, mut to_app) = mpsc::unbounded_channel();
    let bridge = Arc::new(Bridge {
        outbox,
        waiting: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    app.manage(Arc::clone(&bridge));
    // The link's first message says what this connection is.
    let _ = bridge.outbox.send(ToApp::Window);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let stream = match connection.into_async() {
            Ok(stream) => stream,
            Err(error) => return gone(&app, &error.to_string()),
        };
        let (reader, mut writer) = tokio::io::split(stream);
        tauri::async_runtime::spawn(async move {
            while let Some(message) = to_app.recv().await {
                if link::write(&mut writer, &message).await.is_err() {
                    return;
                }
            }
        });
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        loop {
            match link::read::<ToWindow, _>(&mut reader, &mut line).await {
                Ok(Some(message)) => {
                    if !take(&app, &bridge, message) {
                        return;
                    }
                }
                Ok(None) => return gone(&app, "the app has quit"),
                Err(error) => return gone(&app, &error.to_string()),
            }
        }
    });
}

/// Acts on one message from the app; false when the window is to close.
fn take<R: Runtime>(app: &AppHandle<R>, bridge: &Bridge, message: ToWindow) -> bool {
    match message {
        ToWindow::Reply { id, result } => bridge.answer(id, result),
        ToWindow::Event { name, payload } => {
            if let Err(error) = app.emit(&name, payload) {
                tracing::warn!(%error, name, "cannot pass an event to the page");
            }
        }
        ToWindow::Focus => crate::focus(app),
        ToWindow::Close => {
            tracing::info!("the app has a window already");
            app.exit(0);
            return false;
        }
    }
    true
}

fn gone<R: Runtime>(app: &AppHandle<R>, why: &str) {
    tracing::info!(why, "closing the window: the link to the app ended");
    app.exit(0);
}

#[cfg(test)]
mod tests {
    //! The page's side through this bridge on Tauri's mock runtime, against the app's real end of
    //! the link with a real node in a temporary folder.

    use std::sync::mpsc;
    use std::time::Duration;

    use idlegrid::identity::KeyStore;
    use idlegrid::node::{Node, NodeOptions};
    use idlegrid_app::window::{WindowProgram, Windows};
    use idlegrid_app::{AppState, forward, server};
    use serde_json::json;
    use tauri::test::{
        INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
    };
    use tauri::webview::InvokeRequest;
    use tauri::{App, Listener as _, WebviewWindow, WebviewWindowBuilder};

    use super::*;

    struct Page {
        app: App<MockRuntime>,
        window: WebviewWindow<MockRuntime>,
        state: Arc<AppState>,
        _dir: tempfile::TempDir,
    }

    fn page() -> Page {
        let dir = tempfile::tempdir().unwrap();
        let mut options = NodeOptions::new(dir.path().join("data"));
        options.key_store = KeyStore::FileOnly;
        options.detect_input = false;
        let node = tauri::async_runtime::block_on(Node::open(options)).unwrap();
        let state = Arc::new(AppState {
            node,
            windows: Windows::new(WindowProgram {
                program: "true".into(),
                args: Vec::new(),
                env_remove: Vec::new(),
            }),
            logs_dir: dir.path().join("logs"),
            downloads_dir: dir.path().join("downloads"),
        });
        let address = transport::address(dir.path());
        let serving = Arc::clone(&state);
        let listening = address.clone();
        tauri::async_runtime::block_on(async move {
            forward::spawn(&serving, |_| {});
            let listener = transport::bind(&listening).unwrap().listen().unwrap();
            tokio::spawn(server::serve(listener, serving));
        });
        let app = attach(mock_builder())
            .build(mock_context(noop_assets()))
            .unwrap();
        let connection = transport::connect(&address, Duration::from_secs(10)).unwrap();
        start(app.handle(), connection);
        let window = WebviewWindowBuilder::new(&app, MAIN, Default::default())
            .build()
            .unwrap();
        Page {
            app,
            window,
            state,
            _dir: dir,
        }
    }

    impl Page {
        fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
            let request = InvokeRequest {
                cmd: command.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.into(),
            };
            get_ipc_response(&self.window, request).map(|body| body.deserialize().unwrap())
        }
    }

    #[test]
    fn the_page_calls_the_app_and_hears_its_news() {
        let page = page();
        let (tx, statuses) = mpsc::channel();
        page.app.listen("status", move |event| {
            let _ = tx.send(serde_json::from_str::<Value>(event.payload()).unwrap());
        });
        let status = page.invoke("get_status", json!({})).unwrap();
        assert_eq!(status["sharing"], true);
        let off = page.invoke("set_sharing", json!({ "on": false })).unwrap();
        assert_eq!(
            (off["kind"].as_str(), off["sharing"].as_bool()),
            (Some("off"), Some(false))
        );
        // The app's error sentence reaches the page as it is.
        let refused = page.invoke("snooze", json!({ "minutes": 0 })).unwrap_err();
        assert!(refused.as_str().unwrap().contains("1 minute"), "{refused}");
        // The news of the change comes as an event.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let status = statuses.recv_timeout(left).expect("no status event");
            if status["kind"] == "off" {
                break;
            }
        }
        // A name outside the contract is not passed on.
        let unknown = page.invoke("format_disk", json!({})).unwrap_err();
        assert!(unknown.as_str().unwrap().contains("not found"), "{unknown}");
        tauri::async_runtime::block_on(page.state.node.shutdown());
    }
}
