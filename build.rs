//! Tauri's build step for the app: embeds tauri.conf.json, the icons and ui/dist, and declares the
//! app's commands, so that capabilities/ must grant each one to the window by name (a command nobody
//! granted cannot be called, even by a page that finds its way into the webview).

/// Every command of docs/desktop-ipc.md; src-tauri/commands.rs registers the same list.
const COMMANDS: &[&str] = &[
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

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    let attributes = tauri_build::Attributes::new().app_manifest(manifest);
    if let Err(error) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
