//! Signals about the machine other than input: session lock, CPU used by other programs, battery,
//! programs that must run alone, and each GPU's use by others and temperature.
//!
//! [`HostSignals`] reads them; "ours" is this process and every process descended from it (the
//! `idlegrid worker` children), whose use never counts as another program's. Per platform:
//!
//! | signal | Linux | Windows | macOS |
//! |---|---|---|---|
//! | `other_cpu_percent` | `/proc/stat` less our processes' `/proc/<pid>/stat` | sysinfo | sysinfo |
//! | `exclusive_running` | `/proc`: each process's name and executable, read once | sysinfo | sysinfo |
//! | `on_battery` | `/sys/class/power_supply` | `GetSystemPowerStatus` | None |
//! | `session_locked` | logind's `LockedHint` (system D-Bus) | the session's lock flag (WTS), else the input desktop | None |
//! | GPUs and their names | NVML, and sysinfo for the rest | the same | sysinfo |
//! | GPU `temperature_c` | NVML; else the GPU's hwmon | NVML; else None | None |
//! | GPU `other_use_percent` | NVML; else None | NVML; else None | None |
//!
//! Linux falls back to sysinfo where /proc cannot be read. sysinfo reads every process's CPU time at
//! each sample, which costs in proportion to the processes running; the /proc reader reads only ours
//! and the processes new since the last sample (see `procfs`).
//!
//! The first sample has no interval to measure CPU over, so its `other_cpu_percent` is None, and
//! `session_locked` stays None until the background connection to logind is up (a few milliseconds).
//! Samples closer than 200 ms apart return the last CPU figure and process list.
//! Known gaps: CPU time of a child that exited between two samples is lost, so for that one sample it
//! counts as other; NVML in a container reports host pids, which never match ours; a process that
//! replaces itself (`exec`) keeps, for exclusive programs, the name it had when first seen.

mod gpus;
#[cfg(target_os = "linux")]
mod logind;
mod power;
mod processes;
#[cfg(target_os = "linux")]
mod procfs;

use serde::Serialize;

use gpus::Gpus;
use power::on_battery;
use processes::Processes;

/// One reading of the machine. `None` means the platform would not say.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SystemSample {
    pub session_locked: Option<bool>,
    /// Share of the whole CPU (all cores; 0–100) used by programs other than Idlegrid.
    pub other_cpu_percent: Option<f32>,
    pub on_battery: Option<bool>,
    /// The person's exclusive programs that are running now, named as the person wrote them.
    pub exclusive_running: Vec<String>,
    pub gpus: Vec<GpuSignals>,
}

/// One GPU as the operating system sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuSignals {
    /// The name the driver reports; matched against wgpu's adapter name.
    pub name: String,
    /// Share of the GPU (0–100) used by programs other than Idlegrid.
    pub other_use_percent: Option<f32>,
    pub temperature_c: Option<f32>,
}

/// Reads [`SystemSample`]s; the real one is [`HostSignals`], tests drive their own.
pub trait SystemSignals: Send {
    /// Refreshes and reads the machine. `exclusive_programs` are the names to look for.
    fn sample(&mut self, exclusive_programs: &[String]) -> SystemSample;
}

/// The real [`SystemSignals`]: sysinfo for processes and CPU, sysfs for battery and GPU temperatures,
/// logind over D-Bus for the lock (on Windows: `idle::win32`), NVML for NVIDIA GPUs. Each part that cannot be read says `None`.
pub struct HostSignals {
    processes: Processes,
    #[cfg(target_os = "linux")]
    logind: logind::Logind,
    gpus: Gpus,
}

impl HostSignals {
    /// Opens what can be opened once (NVML, the GPU list) and starts connecting to logind in the
    /// background; nothing here blocks for long.
    pub fn new() -> HostSignals {
        HostSignals {
            processes: Processes::new(),
            #[cfg(target_os = "linux")]
            logind: logind::Logind::new(),
            gpus: Gpus::new(),
        }
    }

    /// Whether `pid` was this process or one of its descendants at the last sample. Their CPU and GPU
    /// use is Idlegrid's own, never "other".
    pub fn is_ours(&self, pid: u32) -> bool {
        self.processes.ours().contains(&pid)
    }

    fn session_locked(&mut self) -> Option<bool> {
        #[cfg(target_os = "linux")]
        return self.logind.locked();
        #[cfg(windows)]
        return super::win32::session_locked();
        #[cfg(not(any(target_os = "linux", windows)))]
        None
    }
}

impl Default for HostSignals {
    fn default() -> Self {
        HostSignals::new()
    }
}

impl SystemSignals for HostSignals {
    fn sample(&mut self, exclusive_programs: &[String]) -> SystemSample {
        self.processes.refresh(!exclusive_programs.is_empty());
        SystemSample {
            session_locked: self.session_locked(),
            other_cpu_percent: self.processes.other_cpu_percent(),
            on_battery: on_battery(),
            exclusive_running: self.processes.running(exclusive_programs),
            gpus: self.gpus.read(self.processes.ours()),
        }
    }
}
