//! Which of the operating system's hardware readings this process may ask sysinfo for, and why not
//! when it may not. Under Wine, sysinfo's GPU list (`D3DKMTQueryAdapterInfo`) and CPU use
//! (`PdhEnumObjectsW`, also behind per-process GPU use) reach functions Wine has only as stubs, and a
//! stub raises an exception no Rust code can catch: the process aborts, mid-probe or mid-day in the
//! tray app. On Windows itself these functions always exist (D3DKMT since Vista, PDH since NT 4) and
//! fail with an error code that sysinfo turns into "no reading", so the abort is Wine's alone. Wine is
//! therefore detected once (ntdll's `wine_get_version`, Wine's documented marker) and those readings
//! are skipped there, reported as unknown with this reason. Running them in a child process instead
//! would cost a process start per reading (the tray app samples every few seconds) to guard against a
//! failure only Wine has.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A reading of the operating system's that can be unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The GPUs the system lists, with their use and memory (sysinfo's `Gpus`).
    GpuList,
    /// CPU use, overall and per core (sysinfo's `refresh_cpu_usage`).
    CpuUse,
}

impl Reading {
    fn describe(self) -> &'static str {
        match self {
            Reading::GpuList => "the system's GPU list (use and memory)",
            Reading::CpuUse => "CPU use",
        }
    }
}

/// A reading this machine cannot give, and why: shown where the reading would be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    pub reading: String,
    pub reason: String,
}

/// What decides which readings are safe: the platform's facts, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// Wine's version when this Windows program runs under Wine.
    pub wine: Option<String>,
}

/// `Ok` when `reading` may be asked for in this process.
pub fn check(reading: Reading) -> Result<(), Unreadable> {
    availability(reading, host())
}

/// Whether `reading` is safe on `host`.
pub fn availability(reading: Reading, host: &Host) -> Result<(), Unreadable> {
    match (&host.wine, reading) {
        (Some(version), Reading::GpuList | Reading::CpuUse) => Err(Unreadable {
            reading: reading.describe().to_owned(),
            reason: format!(
                "not implemented by Wine {version}, under which this Windows program runs \
                 (asking would end the program)"
            ),
        }),
        (None, _) => Ok(()),
    }
}

/// Every reading this machine cannot give, for a hardware report.
pub fn unreadable() -> Vec<Unreadable> {
    [Reading::GpuList, Reading::CpuUse]
        .into_iter()
        .filter_map(|reading| check(reading).err())
        .collect()
}

/// Wine's version when this Windows program runs under Wine (where tests skip what Wine ignores).
pub fn wine_version() -> Option<&'static str> {
    host().wine.as_deref()
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host {
        wine: read_wine_version(),
    })
}

#[cfg(windows)]
fn read_wine_version() -> Option<String> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: both take NUL-terminated names; ntdll is in every process. wine_get_version returns a
    // pointer to a static NUL-terminated string, read here once.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        if ntdll.is_null() {
            return None;
        }
        let function = GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast())?;
        let wine_get_version: unsafe extern "C" fn() -> *const std::ffi::c_char =
            std::mem::transmute(function);
        let version = wine_get_version();
        Some(if version.is_null() {
            "(unknown version)".to_owned()
        } else {
            std::ffi::CStr::from_ptr(version)
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[cfg(not(windows))]
fn read_wine_version() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_wine_the_readings_that_abort_are_unknown_with_the_reason() {
        let wine = Host {
            wine: Some("wine-8.0".into()),
        };
        for reading in [Reading::GpuList, Reading::CpuUse] {
            let unreadable = availability(reading, &wine).unwrap_err();
            assert!(
                unreadable
                    .reason
                    .starts_with("not implemented by Wine wine-8.0"),
                "{unreadable:?}"
            );
        }
        assert_eq!(
            availability(Reading::GpuList, &wine).unwrap_err().reading,
            "the system's GPU list (use and memory)"
        );
    }

    #[test]
    fn elsewhere_every_reading_is_made() {
        for reading in [Reading::GpuList, Reading::CpuUse] {
            assert_eq!(availability(reading, &Host::default()), Ok(()));
        }
    }
}
