//! GPUs: NVIDIA through NVML, the rest as sysinfo lists them; each GPU's use by others and its
//! temperature.

#[cfg(any(target_os = "linux", windows, test))]
use std::collections::HashMap;
use std::collections::HashSet;
#[cfg(target_os = "linux")]
use std::path::Path;

use super::GpuSignals;

/// A GPU that sysinfo lists and NVML does not cover.
struct ListedGpu {
    name: String,
    /// The PCI address ("0000:03:00.0"), where the GPU's sysfs directory and its hwmon sensors are.
    #[cfg(target_os = "linux")]
    pci: String,
}

pub(super) struct Gpus {
    #[cfg(any(target_os = "linux", windows))]
    nvidia: Option<nvidia::Nvidia>,
    listed: Vec<ListedGpu>,
}

impl Gpus {
    pub(super) fn new() -> Gpus {
        #[cfg(any(target_os = "linux", windows))]
        let nvidia = nvidia::Nvidia::init();
        #[cfg(any(target_os = "linux", windows))]
        let nvidia_covered = nvidia.is_some();
        #[cfg(not(any(target_os = "linux", windows)))]
        let nvidia_covered = false;
        Gpus {
            #[cfg(any(target_os = "linux", windows))]
            nvidia,
            listed: listed_gpus(nvidia_covered),
        }
    }

    pub(super) fn read(&mut self, ours: &HashSet<u32>) -> Vec<GpuSignals> {
        let mut gpus = Vec::new();
        #[cfg(any(target_os = "linux", windows))]
        if let Some(nvidia) = &mut self.nvidia {
            gpus.extend(nvidia.read(ours));
        }
        // Without NVML nothing here can tell our GPU use from others'.
        #[cfg(not(any(target_os = "linux", windows)))]
        let _ = ours;
        gpus.extend(self.listed.iter().map(listed_signals));
        gpus
    }
}

/// The GPUs sysinfo lists, read once: GPUs do not come and go while Idlegrid runs. NVIDIA GPUs are
/// left out where NVML reports them itself.
fn listed_gpus(nvidia_covered: bool) -> Vec<ListedGpu> {
    if let Err(unreadable) = crate::os_readings::check(crate::os_readings::Reading::GpuList) {
        tracing::info!(reason = %unreadable.reason, "GPUs other than NVIDIA's are not watched");
        return Vec::new();
    }
    let Ok(gpus) = sysinfo::Gpus::new_with_refreshed_list() else {
        return Vec::new();
    };
    gpus.iter()
        .filter(|gpu| {
            let vendor = gpu.vendor().unwrap_or_default().to_lowercase();
            !(nvidia_covered && vendor.contains("nvidia"))
        })
        .map(|gpu| ListedGpu {
            name: gpu
                .model()
                .or(gpu.vendor())
                .unwrap_or("GPU")
                .trim()
                .to_owned(),
            #[cfg(target_os = "linux")]
            pci: gpu.pci().to_string(),
        })
        .collect()
}

/// sysinfo's busy figure includes Idlegrid's own work and cannot be split, so other use is unknown.
fn listed_signals(gpu: &ListedGpu) -> GpuSignals {
    #[cfg(target_os = "linux")]
    let temperature_c = gpu_temperature(&Path::new("/sys/bus/pci/devices").join(&gpu.pci));
    #[cfg(not(target_os = "linux"))]
    let temperature_c = None;
    GpuSignals {
        name: gpu.name.clone(),
        other_use_percent: None,
        temperature_c,
    }
}

/// The temperature of the GPU whose PCI device directory is `device`, from its hwmon sensors
/// (amdgpu, radeon, nouveau, xe). Reading the device's own hwmon ties the sensor to the GPU exactly,
/// where matching sensor labels by name could not tell two GPUs apart.
#[cfg(target_os = "linux")]
fn gpu_temperature(device: &Path) -> Option<f32> {
    std::fs::read_dir(device.join("hwmon"))
        .ok()?
        .flatten()
        .find_map(|hwmon| hwmon_temperature(&hwmon.path()))
}

/// One hwmon's GPU temperature in °C: amdgpu's "edge" sensor (the die as a whole) where labelled,
/// else the first sensor. sysfs gives millidegrees.
#[cfg(target_os = "linux")]
fn hwmon_temperature(hwmon: &Path) -> Option<f32> {
    let read = |file: String| std::fs::read_to_string(hwmon.join(file)).ok();
    let edge = (1..=8).find(|n| read(format!("temp{n}_label")).is_some_and(|l| l.trim() == "edge"));
    let millidegrees: i64 = read(format!("temp{}_input", edge.unwrap_or(1)))?
        .trim()
        .parse()
        .ok()?;
    Some(millidegrees as f32 / 1000.0)
}

#[cfg(any(target_os = "linux", windows, test))]
/// Per-process GPU use from samples of (pid, percent): the sum over processes that are not ours,
/// capped at 100. A process sampled twice counts at its highest.
fn others_gpu_share(samples: impl IntoIterator<Item = (u32, u32)>, ours: &HashSet<u32>) -> f32 {
    let mut by_pid: HashMap<u32, u32> = HashMap::new();
    for (pid, percent) in samples.into_iter().filter(|(pid, _)| !ours.contains(pid)) {
        let highest = by_pid.entry(pid).or_default();
        *highest = (*highest).max(percent);
    }
    (by_pid.values().sum::<u32>() as f32).min(100.0)
}

#[cfg(any(target_os = "linux", windows))]
mod nvidia {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::error::NvmlError;
    use nvml_wrapper::{Device, Nvml};

    use super::{GpuSignals, others_gpu_share};

    /// How far back per-process GPU samples are read: one sampling interval.
    const WINDOW: Duration = Duration::from_secs(1);

    /// NVML, loaded once, and the failures already logged: a call that fails every second is
    /// logged the first time only.
    pub(super) struct Nvidia {
        nvml: Nvml,
        reported: HashSet<&'static str>,
    }

    impl Nvidia {
        /// Where the NVIDIA driver is installed. Its absence is the normal case on other machines.
        pub(super) fn init() -> Option<Nvidia> {
            let nvml = Nvml::init()
                .inspect_err(
                    |error| tracing::debug!(%error, "no NVML; NVIDIA GPUs go through sysinfo"),
                )
                .ok()?;
            Some(Nvidia {
                nvml,
                reported: HashSet::new(),
            })
        }

        pub(super) fn read(&mut self, ours: &HashSet<u32>) -> Vec<GpuSignals> {
            let count = match self.nvml.device_count() {
                Ok(count) => count,
                Err(error) => {
                    if self.reported.insert("device count") {
                        tracing::warn!(%error, "NVML cannot count the GPUs");
                    }
                    return Vec::new();
                }
            };
            (0..count)
                .filter_map(|index| match self.nvml.device_by_index(index) {
                    Ok(device) => Some(signals(&device, index, ours)),
                    Err(error) => {
                        if self.reported.insert("device") {
                            tracing::warn!(%error, index, "NVML cannot open a GPU");
                        }
                        None
                    }
                })
                .collect()
        }
    }

    fn signals(device: &Device, index: u32, ours: &HashSet<u32>) -> GpuSignals {
        GpuSignals {
            name: device
                .name()
                .unwrap_or_else(|_| format!("NVIDIA GPU {index}")),
            other_use_percent: other_use(device, ours),
            temperature_c: device
                .temperature(TemperatureSensor::Gpu)
                .ok()
                .map(|celsius| celsius as f32),
        }
    }

    /// Other programs' share of the GPU: per process where the driver samples it, else the whole
    /// GPU's use, but only when none of our processes is on it (or it would count our own work).
    fn other_use(device: &Device, ours: &HashSet<u32>) -> Option<f32> {
        match device.process_utilization_stats(window_start_us()) {
            Ok(samples) => Some(others_gpu_share(
                samples.iter().map(|s| (s.pid, s.sm_util)),
                ours,
            )),
            // The driver had no process with any use in the window.
            Err(NvmlError::NotFound) => Some(0.0),
            Err(_) => whole_use_if_not_ours(device, ours),
        }
    }

    fn whole_use_if_not_ours(device: &Device, ours: &HashSet<u32>) -> Option<f32> {
        let compute = device.running_compute_processes().ok()?;
        let graphics = device.running_graphics_processes().ok()?;
        if compute
            .iter()
            .chain(&graphics)
            .any(|p| ours.contains(&p.pid))
        {
            return None;
        }
        device.utilization_rates().ok().map(|u| u.gpu as f32)
    }

    /// NVML stamps samples with the wall clock in microseconds.
    fn window_start_us() -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(WINDOW).as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_gpu_share_leaves_ours_out() {
        let ours = HashSet::from([7, 8]);
        let samples = [(7, 90), (8, 5), (100, 20), (100, 30), (200, 10)];
        assert_eq!(others_gpu_share(samples, &ours), 40.0);
        assert_eq!(others_gpu_share([(1, 80), (2, 70)], &ours), 100.0);
        assert_eq!(others_gpu_share([], &ours), 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn gpu_temperature_reads_the_devices_hwmon() {
        let device = tempfile::tempdir().expect("temp dir");
        assert_eq!(gpu_temperature(device.path()), None);
        let hwmon = device.path().join("hwmon/hwmon4");
        std::fs::create_dir_all(&hwmon).expect("create hwmon");
        std::fs::write(hwmon.join("temp1_input"), "45000\n").expect("write temp1");
        assert_eq!(gpu_temperature(device.path()), Some(45.0));
        // amdgpu: the "edge" sensor is the GPU's as a whole.
        std::fs::write(hwmon.join("temp1_label"), "junction\n").expect("write label");
        std::fs::write(hwmon.join("temp2_label"), "edge\n").expect("write label");
        std::fs::write(hwmon.join("temp2_input"), "38500\n").expect("write temp2");
        assert_eq!(gpu_temperature(device.path()), Some(38.5));
    }
}
