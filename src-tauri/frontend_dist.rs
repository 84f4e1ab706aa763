// The window's files, which `tauri::generate_context!` embeds from the folder that tauri.conf.json
// names in `build.frontendDist` (ui/dist, which the window's Vite build writes and git ignores).
// Without that folder the macro panics in the middle of the window's compile ("The `frontendDist`
// configuration is set to "ui/dist" but this path doesn't exist"), and a folder without index.html
// builds a window that shows nothing. build.rs includes this file to check first, so that a build of a
// fresh clone ends with one line saying what to run; lib.rs includes it for its tests.

/// What builds the window's files, from the repository root.
const BUILD_THE_WINDOW: &str = "npm --prefix ui ci && npm --prefix ui run build";

/// Whether the window's files are built, for the package at `root` whose tauri.conf.json reads
/// `config`; if not, one line saying what is missing and what to run.
fn check_frontend_dist(root: &std::path::Path, config: &str) -> Result<(), String> {
    let config: serde_json::Value =
        serde_json::from_str(config).map_err(|error| format!("tauri.conf.json: {error}"))?;
    // A dev server's URL or a list of files is not a folder to check; without the setting, Tauri
    // embeds nothing.
    let Some(dist) = config["build"]["frontendDist"]
        .as_str()
        .filter(|dist| !dist.contains("://"))
    else {
        return Ok(());
    };
    if root.join(dist).join("index.html").is_file() {
        return Ok(());
    }
    Err(format!(
        "the window's files are not built ({dist}/index.html is missing): run `{BUILD_THE_WINDOW}` \
         (Node.js 20.19+; ./scripts/setup installs it), then build again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = include_str!("../tauri.conf.json");

    #[test]
    fn a_clone_without_the_windows_files_is_told_what_to_run() {
        let clone = tempfile::tempdir().unwrap();
        let message = check_frontend_dist(clone.path(), CONFIG).unwrap_err();
        assert_eq!(
            message,
            "the window's files are not built (ui/dist/index.html is missing): run \
             `npm --prefix ui ci && npm --prefix ui run build` (Node.js 20.19+; ./scripts/setup \
             installs it), then build again"
        );
        assert_eq!(message.lines().count(), 1);
    }

    #[test]
    fn an_empty_dist_folder_is_not_the_windows_files() {
        let clone = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(clone.path().join("ui/dist/assets")).unwrap();
        let message = check_frontend_dist(clone.path(), CONFIG).unwrap_err();
        assert!(
            message.contains("ui/dist/index.html is missing"),
            "{message}"
        );
    }

    #[test]
    fn built_window_files_pass() {
        let clone = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(clone.path().join("ui/dist")).unwrap();
        std::fs::write(clone.path().join("ui/dist/index.html"), "<!doctype html>").unwrap();
        assert_eq!(check_frontend_dist(clone.path(), CONFIG), Ok(()));
    }

    #[test]
    fn a_dev_server_needs_no_files() {
        let clone = tempfile::tempdir().unwrap();
        let config = r#"{"build": {"frontendDist": "http://localhost:5173"}}"#;
        assert_eq!(check_frontend_dist(clone.path(), config), Ok(()));
    }
}
