//! Start at login: the system's entry (an XDG autostart file on Linux, a launch agent on macOS, the
//! current user's Run key on Windows) that starts the app in the tray only, kept in line with the
//! setting.

use auto_launch::{AutoLaunch, AutoLaunchBuilder, WindowsEnableMode};
use idlegrid::node::{Node, Settings};

/// What the entry is called in the system's list of programs started at login.
const NAME: &str = "Idlegrid";

/// Makes the entry match `wanted`; a failure is logged, the setting stays saved.
pub fn apply(wanted: bool) {
    match entry(NAME).and_then(|entry| set(&entry, wanted)) {
        Ok(()) => tracing::debug!(wanted, "start at login is as set"),
        Err(error) => tracing::warn!(%error, wanted, "cannot change start at login"),
    }
}

/// At start, the setting takes the entry's state. The entry is where start at login lives, and others
/// change it too: the Windows installer's choice, Task Manager, the desktop's own autostart settings.
/// The app changes both together, so they differ only after such a change, which it keeps rather than
/// undoes (a fresh install's first start would otherwise remove the entry its installer just made).
pub fn adopt(node: &Node) {
    let saved = node.settings();
    let start_at_login = match entry(NAME).and_then(|entry| entry.is_enabled()) {
        Ok(enabled) if enabled == saved.start_at_login => return,
        Ok(enabled) => enabled,
        Err(error) => {
            tracing::warn!(%error, "cannot read start at login");
            return;
        }
    };
    match node.set_settings(Settings {
        start_at_login,
        ..saved
    }) {
        Ok(_) => tracing::info!(start_at_login, "start at login was changed outside the app"),
        Err(error) => tracing::warn!(%error, start_at_login, "cannot save start at login"),
    }
}

fn set(entry: &AutoLaunch, wanted: bool) -> auto_launch::Result<()> {
    match entry.is_enabled()? {
        enabled if enabled == wanted => Ok(()),
        _ if wanted => entry.enable(),
        _ => entry.disable(),
    }
}

fn entry(name: &str) -> auto_launch::Result<AutoLaunch> {
    // An AppImage is started through its image, not the path it is mounted at for this run.
    let program = std::env::var_os("APPIMAGE")
        .map(std::path::PathBuf::from)
        .map_or_else(std::env::current_exe, Ok)?;
    // The Run key's value is a command line, and the program's folder may have spaces in it
    // (`C:\Users\Ada Lovelace\AppData\Local\Programs\Idlegrid`).
    let program = if cfg!(windows) {
        format!("\"{}\"", program.display())
    } else {
        program.display().to_string()
    };
    AutoLaunchBuilder::new()
        .set_app_name(name)
        .set_app_path(&program)
        .set_args(&["--hidden"])
        // The app is installed per user, without admin rights: its entry is the user's (HKCU), not
        // the machine's, which the crate's default tries first.
        .set_windows_enable_mode(WindowsEnableMode::CurrentUser)
        .build()
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;

    const RUN: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";

    /// The value of `name` in `hive`'s Run key, as `reg query` reads it back.
    fn run_value(hive: &str, name: &str) -> Option<String> {
        let output = std::process::Command::new("reg")
            .args(["query", &format!(r"{hive}\{RUN}"), "/v", name])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(name))?;
        let (_, value) = line.split_once("REG_SZ")?;
        Some(value.trim().to_owned())
    }

    #[test]
    fn the_current_users_run_key_starts_this_program_in_the_tray_until_turned_off() {
        // A name of its own, so a real entry in this prefix is left alone.
        let name = format!("Idlegrid test {}", std::process::id());
        let entry = entry(&name).unwrap();
        set(&entry, true).unwrap();
        let program = std::env::current_exe().unwrap();
        assert_eq!(
            run_value("HKCU", &name),
            Some(format!("\"{}\" --hidden", program.display()))
        );
        assert_eq!(run_value("HKLM", &name), None);
        assert!(entry.is_enabled().unwrap());
        set(&entry, false).unwrap();
        assert_eq!(run_value("HKCU", &name), None);
        assert!(!entry.is_enabled().unwrap());
    }
}
