//! Battery: whether this machine runs on its battery now (Linux reads `/sys/class/power_supply`,
//! Windows `GetSystemPowerStatus` through `idle::win32`).

#[cfg(target_os = "linux")]
use std::path::Path;

/// Linux reads sysfs, Windows asks the system. macOS would need IOKit, which is not a dependency
/// yet: there the answer is unknown.
pub(super) fn on_battery() -> Option<bool> {
    #[cfg(target_os = "linux")]
    return on_battery_in(Path::new("/sys/class/power_supply"));
    #[cfg(windows)]
    return crate::idle::win32::on_battery();
    #[cfg(not(any(target_os = "linux", windows)))]
    None
}

/// A power supply as `/sys/class/power_supply/<name>` describes it.
#[cfg(target_os = "linux")]
enum Supply {
    /// Mains, USB or wireless charging; `online` None where the file could not be read.
    External { online: Option<bool> },
    /// A battery that powers this machine; `status` None where unreadable.
    Battery { status: Option<String> },
    /// A UPS, or the battery of a mouse or headset (scope "Device"): not this machine's power.
    Other,
}

/// On battery: no external supply online and a battery discharging. No battery at all is a
/// desktop, never on battery. None only when the directory or a battery's status is unreadable.
#[cfg(target_os = "linux")]
fn on_battery_in(dir: &Path) -> Option<bool> {
    let supplies = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| read_supply(&entry.path()));
    on_battery_from(supplies)
}

#[cfg(target_os = "linux")]
fn read_supply(dir: &Path) -> Supply {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|text| text.trim().to_owned())
    };
    match read("type").as_deref() {
        Some(kind) if kind == "Mains" || kind == "Wireless" || kind.starts_with("USB") => {
            // 0 offline, 1 online, 2 online programmable (kernel ABI).
            let online = read("online").and_then(|text| text.parse::<u8>().ok());
            Supply::External {
                online: online.map(|value| value != 0),
            }
        }
        Some("Battery") if read("scope").as_deref() != Some("Device") => Supply::Battery {
            status: read("status"),
        },
        _ => Supply::Other,
    }
}

#[cfg(target_os = "linux")]
fn on_battery_from(supplies: impl IntoIterator<Item = Supply>) -> Option<bool> {
    let mut external_online = false;
    let mut statuses = Vec::new();
    for supply in supplies {
        match supply {
            Supply::External { online } => external_online |= online == Some(true),
            Supply::Battery { status } => statuses.push(status),
            Supply::Other => {}
        }
    }
    if external_online || statuses.is_empty() {
        return Some(false);
    }
    if statuses
        .iter()
        .flatten()
        .any(|status| status == "Discharging")
    {
        return Some(true);
    }
    // A battery that would not say might be the one discharging.
    statuses.iter().all(Option::is_some).then_some(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Writes `files` (name, content) into `dir/name`.
    fn supply(dir: &Path, name: &str, files: &[(&str, &str)]) {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).expect("create supply dir");
        for (file, content) in files {
            std::fs::write(path.join(file), format!("{content}\n")).expect("write supply file");
        }
    }

    fn laptop(ac_online: &str, battery_status: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        supply(
            dir.path(),
            "AC",
            &[("type", "Mains"), ("online", ac_online)],
        );
        supply(
            dir.path(),
            "BAT0",
            &[
                ("type", "Battery"),
                ("scope", "System"),
                ("status", battery_status),
            ],
        );
        dir
    }

    #[test]
    fn a_desktop_is_never_on_battery() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(on_battery_in(dir.path()), Some(false));
        // A wireless mouse's battery is not the machine's.
        supply(
            dir.path(),
            "hidpp_battery_0",
            &[
                ("type", "Battery"),
                ("scope", "Device"),
                ("status", "Discharging"),
            ],
        );
        assert_eq!(on_battery_in(dir.path()), Some(false));
    }

    #[test]
    fn a_laptop_on_mains_is_not_on_battery() {
        assert_eq!(on_battery_in(laptop("1", "Charging").path()), Some(false));
        assert_eq!(on_battery_in(laptop("1", "Full").path()), Some(false));
        // Mains online wins even when a weak charger lets the battery drain.
        assert_eq!(
            on_battery_in(laptop("1", "Discharging").path()),
            Some(false)
        );
    }

    #[test]
    fn a_discharging_laptop_is_on_battery() {
        assert_eq!(on_battery_in(laptop("0", "Discharging").path()), Some(true));
        // Powered over USB-C: the USB supply is what is online.
        let dir = laptop("0", "Discharging");
        supply(
            dir.path(),
            "ucsi-source-psy-USBC000:001",
            &[("type", "USB"), ("online", "1")],
        );
        assert_eq!(on_battery_in(dir.path()), Some(false));
        // No mains entry at all, battery discharging.
        let dir = tempfile::tempdir().expect("temp dir");
        supply(
            dir.path(),
            "BAT1",
            &[("type", "Battery"), ("status", "Discharging")],
        );
        assert_eq!(on_battery_in(dir.path()), Some(true));
    }

    #[test]
    fn an_unreadable_power_supply_is_unknown() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(on_battery_in(&dir.path().join("missing")), None);
        // A battery without a status, and no mains online: it might be discharging.
        supply(dir.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        supply(dir.path(), "BAT0", &[("type", "Battery")]);
        assert_eq!(on_battery_in(dir.path()), None);
    }
}
