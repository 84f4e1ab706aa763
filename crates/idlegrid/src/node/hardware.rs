//! The hardware page: each GPU wgpu can use (enumerated once; adapters do not come and go), with its
//! memory, use and temperature where the operating system tells them, the person's share switch and
//! its last benchmark; and the CPU and memory, read fresh each time. What this machine cannot read is
//! unknown, and listed with the reason (`os_readings`).
//!
//! wgpu, sysinfo and NVML name the same GPU differently ("AMD Radeon RX 7800 XT" against
//! "Navi 32 [Radeon RX 7700 XT / 7800 XT]"); [`same_gpu`] matches them, and a software adapter is
//! never matched to a real GPU.

use sysinfo::{Gpus, System};

use crate::gpu::AdapterReport;
use crate::idle::{GpuSignals, Preferences};
use crate::os_readings::{self, Reading};

use super::settings::gpu_shared;
use super::views::{CpuView, GpuView, Hardware, MemoryView, Score};

pub struct HardwareSampler {
    adapters: Vec<AdapterReport>,
    /// Kept between samples: CPU use is measured over the time since the last one.
    system: Option<System>,
}

impl HardwareSampler {
    /// For `adapters` as listed once (adapters do not come and go).
    pub fn new(mut adapters: Vec<AdapterReport>) -> HardwareSampler {
        // One entry per name: the same GPU through two backends is one switch for the person.
        let mut seen = std::collections::HashSet::new();
        adapters.retain(|a| seen.insert(a.name.clone()));
        HardwareSampler {
            adapters,
            system: System::new().ok(),
        }
    }

    pub fn sample(
        &mut self,
        signals: &[GpuSignals],
        preferences: &Preferences,
        score: impl Fn(&str) -> Option<Score>,
    ) -> Hardware {
        // Read afresh each time: sysinfo's GPU list holds driver handles that cannot cross threads.
        let os_gpus = os_readings::check(Reading::GpuList)
            .ok()
            .and_then(|()| Gpus::new_with_refreshed_list().ok());
        let listed: Vec<&sysinfo::Gpu> = os_gpus.iter().flat_map(|g| g.iter()).collect();
        let gpus = self
            .adapters
            .iter()
            .map(|adapter| {
                let software = adapter.device_type == "Cpu";
                let os = listed
                    .iter()
                    .find(|g| !software && same_gpu(&adapter.name, g.model().unwrap_or_default()));
                let signal = signals
                    .iter()
                    .find(|s| !software && same_gpu(&adapter.name, &s.name));
                GpuView {
                    adapter: adapter.name.clone(),
                    backend: adapter.backend.clone(),
                    device_type: adapter.device_type.clone(),
                    vram_bytes: os.and_then(|g| g.total_memory()),
                    usage_percent: os.and_then(|g| g.usage()),
                    temperature_c: signal.and_then(|s| s.temperature_c),
                    shared: gpu_shared(preferences, &adapter.name),
                    score: score(&adapter.name),
                }
            })
            .collect();
        let (cpu, memory) = self.cpu_and_memory();
        Hardware {
            gpus,
            cpu,
            memory,
            unreadable: os_readings::unreadable(),
        }
    }

    fn cpu_and_memory(&mut self) -> (CpuView, MemoryView) {
        let Some(system) = &mut self.system else {
            let cpu = CpuView {
                name: String::new(),
                cores: 0,
                usage_percent: None,
            };
            let memory = MemoryView {
                total_bytes: 0,
                used_bytes: 0,
            };
            return (cpu, memory);
        };
        // Unreadable CPU use (see os_readings) is unknown, not sysinfo's 0.
        let readable = os_readings::check(Reading::CpuUse).is_ok();
        if readable {
            system.refresh_cpu_usage();
        }
        system.refresh_memory();
        let cpu = CpuView {
            name: system
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            cores: system.cpus().len(),
            usage_percent: readable.then(|| system.global_cpu_usage()),
        };
        let memory = MemoryView {
            total_bytes: system.total_memory(),
            used_bytes: system.used_memory(),
        };
        (cpu, memory)
    }
}

/// Whether wgpu's adapter name and the operating system's GPU name mean the same GPU: equal, or one
/// holds the other, ignoring case and the vendor words drivers add or drop.
pub fn same_gpu(adapter: &str, os_name: &str) -> bool {
    let plain = |name: &str| {
        name.to_lowercase()
            .replace(['(', ')', '[', ']', '/'], " ")
            .split_whitespace()
            .filter(|w| {
                !matches!(
                    *w,
                    "nvidia" | "amd" | "ati" | "intel" | "corporation" | "(r)"
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (a, b) = (plain(adapter), plain(os_name));
    !a.is_empty() && !b.is_empty() && (a == b || a.contains(&b) || b.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under Wine CPU use cannot be read: it is unknown with the reason, never a made-up 0 %.
    #[test]
    fn cpu_use_is_known_exactly_where_it_can_be_read() {
        let mut sampler = HardwareSampler::new(Vec::new());
        let hardware = sampler.sample(&[], &Preferences::default(), |_| None);
        let readable = os_readings::check(Reading::CpuUse).is_ok();
        assert_eq!(
            hardware.cpu.usage_percent.is_some(),
            readable,
            "{hardware:?}"
        );
        assert_eq!(
            hardware.unreadable.iter().any(|u| u.reading == "CPU use"),
            !readable,
            "{hardware:?}"
        );
        assert_eq!(hardware.unreadable, os_readings::unreadable());
    }

    #[test]
    fn gpu_names_match_across_apis() {
        assert!(same_gpu(
            "NVIDIA GeForce RTX 3080",
            "NVIDIA GeForce RTX 3080"
        ));
        assert!(same_gpu("NVIDIA GeForce RTX 3080", "GeForce RTX 3080"));
        assert!(same_gpu("AMD Radeon RX 7800 XT", "Radeon RX 7800 XT"));
        assert!(!same_gpu(
            "NVIDIA GeForce RTX 3080",
            "NVIDIA GeForce RTX 3090"
        ));
        assert!(!same_gpu("llvmpipe (LLVM 15.0.6, 256 bits)", ""));
    }
}
