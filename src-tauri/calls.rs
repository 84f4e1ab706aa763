//! The commands of docs/desktop-ipc.md, each a call to the node. Errors reach the window as the one-line
//! sentence the node wrote. Commands are async so none runs on the thread that draws the window.

use std::path::PathBuf;

use idlegrid::node::{
    EarningsView, Hardware, Node, PayoutView, PoolView, Range, Score, Settings, Status,
};
use tauri::ipc::Invoke;
use tauri::{AppHandle, Manager, Runtime, State};
use tokio::sync::watch;

/// What the commands share: the node, and the folders the window may ask about.
pub struct AppState {
    pub node: Node,
    pub logs_dir: PathBuf,
    /// Where exports are saved.
    pub downloads_dir: PathBuf,
    /// Whether the window exists (the hardware feed runs only then).
    pub window_open: watch::Sender<bool>,
}

impl AppState {
    pub fn new(node: Node, logs_dir: PathBuf, downloads_dir: PathBuf) -> AppState {
        AppState {
            node,
            logs_dir,
            downloads_dir,
            window_open: watch::Sender::new(false),
        }
    }
}

/// Every command, by the name the window invokes; build.rs grants the same list.
pub const COMMANDS: &[&str] = &[
    "get_status",
    "set_sharing",
    "snooze",
    "resume",
    "get_earnings",
    "get_payouts",
    "save_csv",
    "get_hardware",
    "run_benchmark",
    "set_gpu_shared",
    "get_pools",
    "join_pool",
    "leave_pool",
    "block_pool",
    "start_local_pool",
    "get_settings",
    "set_settings",
    "open_logs_folder",
];

pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        get_status,
        set_sharing,
        snooze,
        resume,
        get_earnings,
        get_payouts,
        save_csv,
        get_hardware,
        run_benchmark,
        set_gpu_shared,
        get_pools,
        join_pool,
        leave_pool,
        block_pool,
        start_local_pool,
        get_settings,
        set_settings,
        open_logs_folder,
    ]
}

/// A command's answer: the value, or the sentence to show next to what caused the error.
type Reply<T> = Result<T, String>;

fn said<T, E: std::fmt::Display>(result: Result<T, E>) -> Reply<T> {
    result.map_err(|error| error.to_string())
}

#[tauri::command]
async fn get_status(state: State<'_, AppState>) -> Reply<Status> {
    Ok(state.node.status())
}

#[tauri::command]
async fn set_sharing(state: State<'_, AppState>, on: bool) -> Reply<Status> {
    said(state.node.set_sharing(on))
}

#[tauri::command]
async fn snooze(state: State<'_, AppState>, minutes: u64) -> Reply<Status> {
    said(state.node.snooze(minutes))
}

#[tauri::command]
async fn resume(state: State<'_, AppState>) -> Reply<Status> {
    said(state.node.resume())
}

#[tauri::command]
async fn get_earnings(state: State<'_, AppState>, range: Range) -> Reply<EarningsView> {
    Ok(state.node.earnings(range))
}

#[tauri::command]
async fn get_payouts(state: State<'_, AppState>) -> Reply<Vec<PayoutView>> {
    Ok(state.node.payouts())
}

#[tauri::command]
async fn save_csv(state: State<'_, AppState>, name: String, contents: String) -> Reply<String> {
    let path = said(state.node.save_csv(&state.downloads_dir, &name, &contents))?;
    Ok(path.display().to_string())
}

#[tauri::command]
async fn get_hardware(state: State<'_, AppState>) -> Reply<Hardware> {
    said(state.node.hardware().await)
}

#[tauri::command]
async fn run_benchmark(state: State<'_, AppState>, adapter: String) -> Reply<Score> {
    said(state.node.run_benchmark(&adapter).await)
}

#[tauri::command]
async fn set_gpu_shared(
    state: State<'_, AppState>,
    adapter: String,
    shared: bool,
) -> Reply<Hardware> {
    said(state.node.set_gpu_shared(&adapter, shared).await)
}

#[tauri::command]
async fn get_pools(state: State<'_, AppState>) -> Reply<Vec<PoolView>> {
    Ok(state.node.pools())
}

#[tauri::command]
async fn join_pool(
    state: State<'_, AppState>,
    ticket: String,
    name: Option<String>,
) -> Reply<PoolView> {
    said(state.node.join_pool(&ticket, name.as_deref()).await)
}

#[tauri::command]
async fn leave_pool(state: State<'_, AppState>, id: String) -> Reply<Vec<PoolView>> {
    said(state.node.leave_pool(&id).await)
}

#[tauri::command]
async fn block_pool(state: State<'_, AppState>, id: String) -> Reply<Vec<PoolView>> {
    said(state.node.block_pool(&id).await)
}

#[tauri::command]
async fn start_local_pool(state: State<'_, AppState>) -> Reply<PoolView> {
    said(state.node.start_local_pool().await)
}

#[tauri::command]
async fn get_settings(state: State<'_, AppState>) -> Reply<Settings> {
    Ok(state.node.settings())
}

#[tauri::command]
async fn set_settings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    settings: Settings,
) -> Reply<Settings> {
    let saved = said(state.node.set_settings(settings))?;
    apply_start_at_login(&app, saved.start_at_login);
    Ok(saved)
}

#[tauri::command]
async fn open_logs_folder<R: Runtime>(app: AppHandle<R>, state: State<'_, AppState>) -> Reply<()> {
    let opener = app
        .try_state::<tauri_plugin_opener::Opener<R>>()
        .ok_or("opening folders is not available here")?;
    let folder = state.logs_dir.display().to_string();
    said(opener.open_path(folder, None::<&str>))
}

/// Makes the system's start-at-login entry match the setting. Where the autostart plugin is absent
/// (tests) there is nothing to change.
pub fn apply_start_at_login<R: Runtime>(app: &AppHandle<R>, wanted: bool) {
    let Some(autostart) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return;
    };
    let result = match autostart.is_enabled() {
        Ok(enabled) if enabled == wanted => Ok(()),
        Ok(_) if wanted => autostart.enable(),
        Ok(_) => autostart.disable(),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => tracing::debug!(wanted, "start at login is as set"),
        Err(error) => tracing::warn!(%error, wanted, "cannot change start at login"),
    }
}
