//! The `idlegrid-desktop` program: everything is in the library (src-tauri/lib.rs).

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(error) = idlegrid_app::run() {
        // Logging may not be up yet; stderr always is.
        eprintln!("idlegrid-desktop: {error:#}");
        std::process::exit(1);
    }
}
