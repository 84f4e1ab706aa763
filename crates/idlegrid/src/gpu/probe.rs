//! The hardware report: every adapter with its key limits, the CPU, memory, and per-GPU usage where the
//! platform lets sysinfo read it. One serde struct, shown by `idlegrid probe` and the app.

use serde::{Deserialize, Serialize};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use super::adapter::{self, SkippedAdapter};
use crate::os_readings::{self, Reading, Unreadable};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareReport {
    pub adapters: Vec<AdapterReport>,
    pub cpu: CpuReport,
    pub memory: MemoryReport,
    /// GPUs as the operating system reports them (usage and memory), where readable.
    pub gpus: Vec<GpuUsage>,
    /// The readings this machine cannot give, and why (under Wine: the system's GPU list, CPU use).
    pub unreadable: Vec<Unreadable>,
    /// Adapters ranked above the one jobs run on that failed to open or to pass the self-test, and
    /// why; filled in by whoever chose the adapter (`idlegrid probe` does).
    pub skipped_adapters: Vec<SkippedAdapter>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterReport {
    pub name: String,
    pub vendor: String,
    pub vendor_id: u32,
    pub device_id: u32,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub timestamp_queries: bool,
    pub limits: KeyLimits,
}

/// The limits that decide which jobs an adapter can take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuReport {
    pub model: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryReport {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuUsage {
    pub model: Option<String>,
    pub vendor: Option<String>,
    /// Percent busy, 0 to 100.
    pub usage_percent: Option<f32>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
}

/// Reads the whole report in this process. Takes a fraction of a second: adapters are enumerated, not
/// opened.
pub fn probe() -> HardwareReport {
    HardwareReport::with_adapters(list_adapters())
}

/// Every adapter wgpu can use, sorted by name. Loads the GPU driver into this process: programs that
/// live long or must stay quiet list them in a worker instead ([`crate::worker::task::adapters`]).
pub fn list_adapters() -> Vec<AdapterReport> {
    let mut adapters: Vec<_> = adapter::all_adapters().iter().map(adapter_report).collect();
    adapters.sort_by(|a, b| a.name.cmp(&b.name).then(a.backend.cmp(&b.backend)));
    adapters
}

impl HardwareReport {
    /// The report around `adapters` listed elsewhere, with the CPU, memory and GPU usage read here.
    pub fn with_adapters(adapters: Vec<AdapterReport>) -> HardwareReport {
        // Where the platform refuses to say, the report says nothing rather than failing.
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .ok();
        let cpus = system.as_ref().map(System::cpus).unwrap_or_default();
        let cpu = CpuReport {
            model: cpus
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            physical_cores: System::physical_core_count().ok(),
            logical_cores: cpus.len(),
        };
        let memory = MemoryReport {
            total_bytes: system.as_ref().map_or(0, System::total_memory),
            available_bytes: system.as_ref().map_or(0, System::available_memory),
        };
        HardwareReport {
            adapters,
            cpu,
            memory,
            gpus: gpu_usage(),
            unreadable: os_readings::unreadable(),
            skipped_adapters: Vec::new(),
        }
    }
}

fn adapter_report(adapter: &wgpu::Adapter) -> AdapterReport {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterReport {
        vendor: vendor_name(info.vendor).to_owned(),
        vendor_id: info.vendor,
        device_id: info.device,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        timestamp_queries: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        limits: KeyLimits {
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        },
        name: info.name,
    }
}

fn gpu_usage() -> Vec<GpuUsage> {
    if os_readings::check(Reading::GpuList).is_err() {
        return Vec::new();
    }
    let Ok(gpus) = sysinfo::Gpus::new_with_refreshed_list() else {
        return Vec::new();
    };
    gpus.iter()
        .map(|gpu| GpuUsage {
            model: gpu.model().map(str::to_owned),
            vendor: gpu.vendor().map(str::to_owned),
            usage_percent: gpu.usage(),
            memory_total_bytes: gpu.total_memory(),
            memory_used_bytes: gpu.used_memory(),
        })
        .collect()
}

/// PCI vendor ids of the GPU makers people will see.
fn vendor_name(id: u32) -> &'static str {
    match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x106b => "Apple",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x10005 => "Mesa",
        _ => "unknown",
    }
}
