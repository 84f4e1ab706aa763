//! Windows' idle signals: time since the last input (`GetLastInputInfo`), whether the session is
//! locked (the session's lock state from Terminal Services, else the name of the desktop that gets
//! input), and whether the machine runs on its battery (`GetSystemPowerStatus`).
//!
//! What the answers mean is decided by pure functions, tested on every platform; the system calls
//! below them are Windows-only and each reads one value.

use std::time::Duration;

/// Time since the last input, from `GetLastInputInfo`'s tick and the tick count read after it. Both
/// are milliseconds since boot in a u32 that wraps every 49.7 days, so the difference is taken
/// wrapping; an input stamped after `now` (read in between, or a clock the system moved) is no idle
/// time at all, never the 49 days a plain wrapped subtraction would give.
pub(crate) fn idle_since(last_input_tick: u32, now_tick: u32) -> Duration {
    let elapsed = now_tick.wrapping_sub(last_input_tick);
    // Half the range: anything further "back" is an input just after `now`, wrapped around.
    if elapsed > u32::MAX / 2 {
        Duration::ZERO
    } else {
        Duration::from_millis(u64::from(elapsed))
    }
}

/// `WTS_SESSIONSTATE_LOCK` and `WTS_SESSIONSTATE_UNLOCK` (Windows 8 and later; Windows 7 had them
/// the other way round, and is not supported).
const SESSION_LOCKED: i32 = 0;
const SESSION_UNLOCKED: i32 = 1;
/// The desktop a person's session works on; the lock screen, the sign-in screen and the secure
/// desktop of elevation prompts are "Winlogon", a password screen saver "Screen-saver".
const WORKING_DESKTOP: &str = "Default";

/// Whether the session is locked, from what Windows said: the session's lock flag where it gave one,
/// else which desktop receives input. None where it said neither.
pub(crate) fn locked_from(session_flags: Option<i32>, input_desktop: Option<&str>) -> Option<bool> {
    match session_flags {
        Some(SESSION_LOCKED) => Some(true),
        Some(SESSION_UNLOCKED) => Some(false),
        _ => input_desktop.map(|name| !name.eq_ignore_ascii_case(WORKING_DESKTOP)),
    }
}

/// `SYSTEM_POWER_STATUS` as far as it matters here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PowerStatus {
    /// 0 offline, 1 online, 255 unknown.
    pub ac_line_status: u8,
    /// Bit flags: 8 charging, 128 no system battery; 255 unknown.
    pub battery_flag: u8,
}

const AC_OFFLINE: u8 = 0;
const AC_ONLINE: u8 = 1;
const NO_SYSTEM_BATTERY: u8 = 128;
const UNKNOWN: u8 = 255;

/// On battery: mains offline. Mains online, or no battery at all (a desktop), is not; an unknown mains
/// state is unknown unless the machine has no battery.
pub(crate) fn on_battery_from(status: PowerStatus) -> Option<bool> {
    let no_battery = status.battery_flag != UNKNOWN && status.battery_flag & NO_SYSTEM_BATTERY != 0;
    match status.ac_line_status {
        _ if no_battery => Some(false),
        AC_ONLINE => Some(false),
        AC_OFFLINE => Some(true),
        _ => None,
    }
}

#[cfg(windows)]
pub(crate) use calls::{input_idle, on_battery, session_locked};

#[cfg(windows)]
mod calls {
    use std::io;
    use std::time::Duration;

    use windows_sys::Win32::System::Power::{GetSystemPowerStatus, SYSTEM_POWER_STATUS};
    use windows_sys::Win32::System::RemoteDesktop::{
        WTS_CURRENT_SERVER_HANDLE, WTS_CURRENT_SESSION, WTSFreeMemory, WTSINFOEXW,
        WTSQuerySessionInformationW, WTSSessionInfoEx,
    };
    use windows_sys::Win32::System::StationsAndDesktops::{
        CloseDesktop, DESKTOP_READOBJECTS, GetUserObjectInformationW, OpenInputDesktop, UOI_NAME,
    };
    use windows_sys::Win32::System::SystemInformation::GetTickCount;
    use windows_sys::Win32::UI::Input::KeyboardAndMouse::{GetLastInputInfo, LASTINPUTINFO};

    use super::{PowerStatus, idle_since, locked_from, on_battery_from};

    /// Time since the last keyboard or mouse input in this session.
    pub(crate) fn input_idle() -> io::Result<Duration> {
        let mut info = LASTINPUTINFO {
            cbSize: size_of::<LASTINPUTINFO>() as u32,
            dwTime: 0,
        };
        // SAFETY: `info` is a LASTINPUTINFO with its size set, as the call requires.
        if unsafe { GetLastInputInfo(&mut info) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // Read after the input's tick, so an input in between cannot be "in the future".
        // SAFETY: no arguments.
        let now = unsafe { GetTickCount() };
        Ok(idle_since(info.dwTime, now))
    }

    /// Whether this session is locked; None where Windows would not say.
    pub(crate) fn session_locked() -> Option<bool> {
        let flags = session_flags();
        // The desktop is asked only where the session's flag is missing.
        let desktop = if flags.is_none() {
            input_desktop_name()
        } else {
            None
        };
        locked_from(flags, desktop.as_deref())
    }

    /// The session's lock flag (`WTSINFOEX_LEVEL1_W::SessionFlags`).
    fn session_flags() -> Option<i32> {
        let mut buffer: *mut u16 = std::ptr::null_mut();
        let mut bytes = 0u32;
        // SAFETY: out-pointers are valid; the buffer is freed with WTSFreeMemory below.
        let ok = unsafe {
            WTSQuerySessionInformationW(
                WTS_CURRENT_SERVER_HANDLE,
                WTS_CURRENT_SESSION,
                WTSSessionInfoEx,
                &mut buffer,
                &mut bytes,
            )
        };
        if ok == 0 || buffer.is_null() {
            return None;
        }
        let flags = if bytes as usize >= size_of::<WTSINFOEXW>() {
            // SAFETY: the system wrote a WTSINFOEXW of `bytes` bytes; level 1 is the only level,
            // and its union member is the one written.
            let info = unsafe { &*buffer.cast::<WTSINFOEXW>() };
            (info.Level == 1).then_some(unsafe { info.Data.WTSInfoExLevel1.SessionFlags })
        } else {
            None
        };
        // SAFETY: allocated by WTSQuerySessionInformationW, freed once.
        unsafe { WTSFreeMemory(buffer.cast()) };
        flags
    }

    /// The name of the desktop that receives input ("Default" while the person works).
    fn input_desktop_name() -> Option<String> {
        // SAFETY: a plain open; the handle is closed below.
        let desktop = unsafe { OpenInputDesktop(0, 0, DESKTOP_READOBJECTS) };
        if desktop.is_null() {
            return None;
        }
        let mut name = [0u16; 64];
        let mut needed = 0u32;
        // SAFETY: `name` is writable for the length given.
        let ok = unsafe {
            GetUserObjectInformationW(
                desktop,
                UOI_NAME,
                name.as_mut_ptr().cast(),
                (name.len() * 2) as u32,
                &mut needed,
            )
        };
        // SAFETY: opened above, closed once.
        unsafe { CloseDesktop(desktop) };
        (ok != 0).then(|| {
            let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            String::from_utf16_lossy(&name[..len])
        })
    }

    /// Whether the machine runs on its battery; None where Windows would not say.
    pub(crate) fn on_battery() -> Option<bool> {
        let mut status = SYSTEM_POWER_STATUS::default();
        // SAFETY: `status` is writable.
        if unsafe { GetSystemPowerStatus(&mut status) } == 0 {
            return None;
        }
        on_battery_from(PowerStatus {
            ac_line_status: status.ACLineStatus,
            battery_flag: status.BatteryFlag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_is_the_tick_difference_across_the_wrap() {
        assert_eq!(idle_since(1_000, 4_500), Duration::from_millis(3_500));
        assert_eq!(idle_since(5, 5), Duration::ZERO);
        // 49.7 days after boot the tick count wraps to 0; 300 ms before that is 300 ms ago.
        assert_eq!(idle_since(u32::MAX - 99, 200), Duration::from_millis(300));
    }

    #[test]
    fn an_input_after_the_tick_was_read_is_no_idle_time() {
        // The input's tick is 3 ms after `now`: a plain wrapped subtraction says 49.7 days idle, which
        // would start work the moment the person touched the mouse.
        assert_eq!(idle_since(1_003, 1_000), Duration::ZERO);
        assert_eq!(idle_since(2, u32::MAX - 1), Duration::ZERO);
    }

    #[test]
    fn the_session_flag_decides_and_the_desktop_only_without_it() {
        assert_eq!(locked_from(Some(0), Some("Default")), Some(true));
        assert_eq!(locked_from(Some(1), Some("Winlogon")), Some(false));
        // WTS_SESSIONSTATE_UNKNOWN, or no answer: the input desktop tells.
        assert_eq!(locked_from(Some(-1), Some("Winlogon")), Some(true));
        assert_eq!(locked_from(None, Some("Screen-saver")), Some(true));
        assert_eq!(locked_from(None, Some("Default")), Some(false));
        assert_eq!(locked_from(None, Some("default")), Some(false));
        assert_eq!(locked_from(None, None), None);
        assert_eq!(locked_from(Some(-1), None), None);
    }

    #[test]
    fn on_battery_is_mains_offline_on_a_machine_with_a_battery() {
        let status = |ac_line_status, battery_flag| PowerStatus {
            ac_line_status,
            battery_flag,
        };
        // A laptop: high charge (1) discharging, charging (8) on mains.
        assert_eq!(on_battery_from(status(0, 1)), Some(true));
        assert_eq!(on_battery_from(status(1, 8)), Some(false));
        // A desktop: no system battery, whatever the mains byte says.
        assert_eq!(on_battery_from(status(1, 128)), Some(false));
        assert_eq!(on_battery_from(status(255, 128)), Some(false));
        // Nothing known.
        assert_eq!(on_battery_from(status(255, 255)), None);
        assert_eq!(on_battery_from(status(255, 1)), None);
        // Mains offline with the battery state unknown: still on battery.
        assert_eq!(on_battery_from(status(0, 255)), Some(true));
    }

    /// The system calls answer here. Wine 8 answers: an input idle time, counted only from input to
    /// Wine's own windows (`xdotool` on the X server moves nothing for a program without a window, which
    /// reads idle since the machine booted); no session flag (WTSSessionInfoEx fails) but the input
    /// desktop "Default", so not locked; mains online and no system battery.
    #[cfg(windows)]
    #[test]
    fn the_system_calls_answer() {
        let idle = input_idle().expect("GetLastInputInfo");
        assert!(idle < Duration::from_secs(50 * 24 * 3600), "{idle:?}");
        assert_eq!(
            session_locked(),
            Some(false),
            "the test session is not locked"
        );
        assert!(on_battery().is_some(), "GetSystemPowerStatus answers");
    }
}
