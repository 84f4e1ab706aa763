//! Start at login: the system's entry (an XDG autostart file on Linux, a launch agent on macOS, the
//! Run key on Windows) that starts the app in the tray only, kept in line with the setting.

use auto_launch::{AutoLaunch, AutoLaunchBuilder};

/// What the entry is called in the system's list of programs started at login.
const NAME: &str = "Idlegrid";

/// Makes the entry match `wanted`; a failure is logged, the setting stays saved.
pub fn apply(wanted: bool) {
    let result = entry().and_then(|entry| match entry.is_enabled()? {
        enabled if enabled == wanted => Ok(()),
        _ if wanted => entry.enable(),
        _ => entry.disable(),
    });
    match result {
        Ok(()) => tracing::debug!(wanted, "start at login is as set"),
        Err(error) => tracing::warn!(%error, wanted, "cannot change start at login"),
    }
}

fn entry() -> auto_launch::Result<AutoLaunch> {
    // An AppImage is started through its image, not the path it is mounted at for this run.
    let program = std::env::var_os("APPIMAGE")
        .map(std::path::PathBuf::from)
        .map_or_else(std::env::current_exe, Ok)?;
    AutoLaunchBuilder::new()
        .set_app_name(NAME)
        .set_app_path(&program.display().to_string())
        .set_args(&["--hidden"])
        .build()
}
