//! Choosing the adapter: the best GPU present (discrete, then integrated, then software), or the one a
//! person named with `--adapter` or `WGPU_ADAPTER_NAME`.

use wgpu::{Adapter, AdapterInfo, Backend, DeviceType};

use crate::job::JobError;

/// Which adapter to use: the best one, or the first whose name contains `name` (case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdapterChoice {
    pub name: Option<String>,
}

impl AdapterChoice {
    /// `--adapter NAME` when given, else the `WGPU_ADAPTER_NAME` environment variable, else the best.
    pub fn from_flag_or_env(flag: Option<String>) -> Self {
        let name = flag
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|n| !n.is_empty());
        AdapterChoice { name }
    }
}

/// Every adapter on this machine. GL is looked at only where no Vulkan, Metal or DX12 adapter exists: it
/// is slower for compute, and probing it makes some drivers print errors. `WGPU_BACKEND` overrides this.
pub fn all_adapters() -> Vec<Adapter> {
    if let Some(backends) = wgpu::Backends::from_env() {
        return enumerate(backends);
    }
    let primary = enumerate(wgpu::Backends::PRIMARY);
    if primary.is_empty() {
        enumerate(wgpu::Backends::GL)
    } else {
        primary
    }
}

fn enumerate(backends: wgpu::Backends) -> Vec<Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
    });
    // Adapters keep their instance alive.
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Higher is better: device type first, then the backend that runs compute best on it.
pub fn rank(info: &AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        DeviceType::DiscreteGpu => 4,
        DeviceType::IntegratedGpu => 3,
        DeviceType::VirtualGpu => 2,
        DeviceType::Cpu => 1,
        DeviceType::Other => 0,
    };
    let backend = match info.backend {
        Backend::Vulkan | Backend::Metal | Backend::Dx12 => 2,
        Backend::Gl => 1,
        _ => 0,
    };
    (kind, backend)
}

/// Picks from `adapters` by `choice`; an error lists what there is when nothing matches.
pub fn choose(adapters: Vec<Adapter>, choice: &AdapterChoice) -> Result<Adapter, JobError> {
    let names: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let wanted = choice.name.as_deref().map(str::to_lowercase);
    adapters
        .into_iter()
        .filter(|a| {
            wanted
                .as_ref()
                .is_none_or(|w| a.get_info().name.to_lowercase().contains(w))
        })
        .max_by_key(|a| rank(&a.get_info()))
        .ok_or_else(|| {
            let named = choice
                .name
                .as_ref()
                .map(|n| format!(" named like \"{n}\""))
                .unwrap_or_default();
            let present = if names.is_empty() {
                " (is a Vulkan driver installed? on Debian: apt-get install mesa-vulkan-drivers)"
                    .to_owned()
            } else {
                format!("; present: {}", names.join(", "))
            };
            JobError::NoAdapter(format!("{named}{present}"))
        })
}

/// "NVIDIA GeForce RTX 4070 (Vulkan, DiscreteGpu)".
pub fn describe(info: &AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}
