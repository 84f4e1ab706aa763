//! The `idlegrid-window` program: the Idlegrid window, a Tauri web view over ui/dist, and nothing
//! else. Every command the page invokes goes over the link to the app (the tray process, which owns
//! the node) and the app's news comes back as events. It lives as long as the window: closing the
//! window ends this process and its web engine, and the app quitting closes the window. Started
//! by the app; started by hand, it starts the app for its data folder if that is not running.

// No console window behind the window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod bridge;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use idlegrid::identity::default_data_dir;
use idlegrid_app::transport;
use tauri::{Manager as _, WebviewUrl, WebviewWindowBuilder};

/// How long the app may take to be listening after this program started it.
const APP_START_WAIT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(name = "idlegrid-window", version, about = "The Idlegrid window")]
struct Args {
    /// The data folder of the app to show (default: the platform's data dir)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

fn main() {
    idlegrid_app::locale::give_the_webview_a_language();
    if let Err(error) = run() {
        // Logging may not be up yet; stderr always is.
        eprintln!("idlegrid-window: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = args.data.unwrap_or_else(default_data_dir);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let connection = connect_to_the_app(&data_dir)?;
    let app = bridge::attach(tauri::Builder::default())
        .setup(move |app| {
            bridge::start(app.handle(), connection);
            open(app.handle())?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("cannot start the window")?;
    app.run(|_, _| {});
    Ok(())
}

/// The link to the app for `data_dir`; the app is started (in the tray) if it is not running.
fn connect_to_the_app(data_dir: &std::path::Path) -> anyhow::Result<transport::Connection> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let address = transport::address(data_dir);
    // An app that is starting (at login, say) gets a moment to listen before another is started.
    if let Ok(connection) = transport::connect(&address, Duration::from_secs(1)) {
        return Ok(connection);
    }
    let exe = std::env::current_exe()?;
    let app = exe.with_file_name(format!("idlegrid-desktop{}", std::env::consts::EXE_SUFFIX));
    tracing::info!(app = %app.display(), "starting the Idlegrid app");
    let mut command = std::process::Command::new(&app);
    command.arg("--hidden").arg("--data").arg(data_dir);
    // Its own process group: it outlives this window, and a Ctrl-C meant for the window.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    #[cfg(windows)]
    std::os::windows::process::CommandExt::creation_flags(
        &mut command,
        windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP,
    );
    command
        .spawn()
        .with_context(|| format!("cannot start {}", app.display()))?;
    transport::connect(&address, APP_START_WAIT)
        .with_context(|| format!("the Idlegrid app did not answer at {}", address.display()))
}

/// The window itself, as big as its pages want and never smaller than 400×600.
fn open<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> tauri::Result<()> {
    WebviewWindowBuilder::new(app, bridge::MAIN, WebviewUrl::App("index.html".into()))
        .title("Idlegrid")
        .inner_size(860.0, 620.0)
        .min_inner_size(400.0, 600.0)
        .build()?;
    tracing::info!("window opened");
    Ok(())
}

/// Comes to the front when the app asks (someone opened Idlegrid again).
fn focus<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window(bridge::MAIN) {
        let shown = window
            .unminimize()
            .and_then(|()| window.show())
            .and_then(|()| window.set_focus());
        if let Err(error) = shown {
            tracing::warn!(%error, "cannot bring the window to the front");
        }
    }
}
