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
//!
//! GPU temperature and other programs' GPU use come from NVIDIA's NVML (Linux adds the GPU's hwmon
//! sensors for temperature). Windows has no common sensor API for other GPUs, so there, without NVML,
//! they are unknown, and the hardware report says so.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A reading of the operating system's that can be unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The GPUs the system lists, with their use and memory (sysinfo's `Gpus`).
    GpuList,
    /// CPU use, overall and per core (sysinfo's `refresh_cpu_usage`).
    CpuUse,
    /// Each GPU's temperature and its use by other programs (NVML, hwmon).
    GpuSensors,
}

const EVERY_READING: [Reading; 3] = [Reading::GpuList, Reading::CpuUse, Reading::GpuSensors];

impl Reading {
    fn describe(self) -> &'static str {
        match self {
            Reading::GpuList => "the system's GPU list (use and memory)",
            Reading::CpuUse => "CPU use",
            Reading::GpuSensors => "GPU temperature and GPU use by other programs",
        }
    }
}

/// A reading this machine cannot give, and why: shown where the reading would be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Unreadable {
    pub reading: String,
    pub reason: String,
}

/// What decides which readings are safe: the platform's facts, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// Wine's version when this Windows program runs under Wine.
    pub wine: Option<String>,
    pub gpu_sensors: GpuSensors,
}

/// Where GPU temperatures and other programs' GPU use can come from here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuSensors {
    /// NVML, or on Linux the GPU's hwmon sensors.
    #[default]
    Readable,
    /// Windows without NVIDIA's driver (NVML): nothing else gives them.
    WindowsWithoutNvml,
    /// A platform where they are not read yet (macOS).
    NotRead,
}

/// `Ok` when `reading` may be asked for in this process.
pub fn check(reading: Reading) -> Result<(), Unreadable> {
    availability(reading, host())
}

/// Whether `reading` is safe on `host`.
pub fn availability(reading: Reading, host: &Host) -> Result<(), Unreadable> {
    let unreadable = |reason: String| {
        Err(Unreadable {
            reading: reading.describe().to_owned(),
            reason,
        })
    };
    match (&host.wine, reading, host.gpu_sensors) {
        (Some(version), Reading::GpuList | Reading::CpuUse, _) => unreadable(format!(
            "not implemented by Wine {version}, under which this Windows program runs (asking \
             would end the program)"
        )),
        (_, Reading::GpuSensors, GpuSensors::WindowsWithoutNvml) => unreadable(
            "on Windows only NVIDIA's driver (NVML) reports them, and this machine has none; a \
             rule to pause while other programs use the GPU cannot act here"
                .to_owned(),
        ),
        (_, Reading::GpuSensors, GpuSensors::NotRead) => {
            unreadable("not read on this operating system yet".to_owned())
        }
        _ => Ok(()),
    }
}

/// Every reading this machine cannot give, for a hardware report.
pub fn unreadable() -> Vec<Unreadable> {
    EVERY_READING
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
        gpu_sensors: gpu_sensors(),
    })
}

#[cfg(target_os = "linux")]
fn gpu_sensors() -> GpuSensors {
    GpuSensors::Readable
}

/// Loads NVML once to see whether it is there (the idle signals keep their own).
#[cfg(windows)]
fn gpu_sensors() -> GpuSensors {
    match nvml_wrapper::Nvml::init() {
        Ok(_) => GpuSensors::Readable,
        Err(_) => GpuSensors::WindowsWithoutNvml,
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
fn gpu_sensors() -> GpuSensors {
    GpuSensors::NotRead
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
            gpu_sensors: GpuSensors::Readable,
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
        for reading in EVERY_READING {
            assert_eq!(availability(reading, &Host::default()), Ok(()));
        }
    }

    #[test]
    fn windows_without_nvml_says_gpu_temperature_and_other_use_are_unknown_and_why() {
        let host = Host {
            wine: None,
            gpu_sensors: GpuSensors::WindowsWithoutNvml,
        };
        let unreadable = availability(Reading::GpuSensors, &host).unwrap_err();
        assert_eq!(
            unreadable.reading,
            "GPU temperature and GPU use by other programs"
        );
        assert!(unreadable.reason.contains("NVML"), "{unreadable:?}");
        // The other readings are not affected.
        assert_eq!(availability(Reading::CpuUse, &host), Ok(()));
        assert_eq!(availability(Reading::GpuList, &host), Ok(()));
    }

    /// Under Wine, with no NVIDIA driver, the report names the three readings it cannot give.
    #[cfg(windows)]
    #[test]
    fn under_wine_this_machine_reports_each_unreadable_reading() {
        let Some(version) = wine_version() else {
            eprintln!("not under Wine: nothing to check");
            return;
        };
        let readings: Vec<String> = unreadable().into_iter().map(|u| u.reading).collect();
        assert_eq!(
            readings,
            EVERY_READING.map(|r| r.describe().to_owned()),
            "under {version}"
        );
    }
}
