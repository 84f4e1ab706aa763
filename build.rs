//! Tauri's build step for the window (`idlegrid-window`): embeds tauri.conf.json, the icons and
//! ui/dist, and declares the app's commands, so that capabilities/ must grant each one to the window
//! by name (a command nobody granted cannot be called, even by a page that finds its way into the
//! webview). First it checks that ui/dist is built, which a fresh clone's is not.

/// The commands' names, from the table calls.rs makes the app's typed `Command` of.
macro_rules! commands {
    ($($name:literal => $variant:ident { $($field:ident: $ty:ty),* $(,)? }),* $(,)?) => {
        const COMMANDS: &[&str] = &[$($name),*];
    };
}

include!("src-tauri/commands.rs");
include!("src-tauri/frontend_dist.rs");

fn main() {
    // Only a build that embeds the window's files needs them: `cargo tauri dev` leaves this feature
    // out and loads the Vite dev server instead.
    if std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some() {
        let root =
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
        let checked = std::fs::read_to_string(root.join("tauri.conf.json"))
            .map_err(|error| format!("tauri.conf.json: {error}"))
            .and_then(|config| check_frontend_dist(&root, &config));
        if let Err(message) = checked {
            println!("cargo::error={message}");
            return;
        }
    }
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    let attributes = tauri_build::Attributes::new().app_manifest(manifest);
    if let Err(error) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
