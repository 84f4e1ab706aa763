//! Tauri's build step for the window (`idlegrid-window`): embeds tauri.conf.json, the icons and
//! ui/dist, and declares the app's commands, so that capabilities/ must grant each one to the window
//! by name (a command nobody granted cannot be called, even by a page that finds its way into the
//! webview).

/// The commands' names, from the table calls.rs makes the app's typed `Command` of.
macro_rules! commands {
    ($($name:literal => $variant:ident { $($field:ident: $ty:ty),* $(,)? }),* $(,)?) => {
        const COMMANDS: &[&str] = &[$($name),*];
    };
}

include!("src-tauri/commands.rs");

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    let attributes = tauri_build::Attributes::new().app_manifest(manifest);
    if let Err(error) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
