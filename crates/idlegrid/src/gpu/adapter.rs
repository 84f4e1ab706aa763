//! Choosing the adapter: the best GPU present (discrete, then integrated, then software), or the one a
//! person named with `--adapter` or `WGPU_ADAPTER_NAME`; and past one that does not work (a driver
//! that cannot open a device or computes wrong) to the next, noting why it was skipped.

use serde::{Deserialize, Serialize};
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

/// The adapters `choice` allows, best first; an error lists what there is when none does.
pub fn ranked(adapters: Vec<Adapter>, choice: &AdapterChoice) -> Result<Vec<Adapter>, JobError> {
    let infos: Vec<AdapterInfo> = adapters.iter().map(Adapter::get_info).collect();
    let order = preference_order(&infos, choice);
    if order.is_empty() {
        return Err(no_adapter(&infos, choice));
    }
    let mut slots: Vec<Option<Adapter>> = adapters.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// Indexes into `infos` of the adapters `choice` allows, best first (ties keep their listed order).
pub fn preference_order(infos: &[AdapterInfo], choice: &AdapterChoice) -> Vec<usize> {
    let wanted = choice.name.as_deref().map(str::to_lowercase);
    let mut order: Vec<usize> = (0..infos.len())
        .filter(|&i| {
            wanted
                .as_ref()
                .is_none_or(|w| infos[i].name.to_lowercase().contains(w))
        })
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rank(&infos[i])));
    order
}

fn no_adapter(infos: &[AdapterInfo], choice: &AdapterChoice) -> JobError {
    let named = choice
        .name
        .as_ref()
        .map(|n| format!(" named like \"{n}\""))
        .unwrap_or_default();
    let present = if infos.is_empty() {
        " (is a Vulkan driver installed? on Debian: apt-get install mesa-vulkan-drivers)".to_owned()
    } else {
        let names: Vec<String> = infos.iter().map(describe).collect();
        format!("; present: {}", names.join(", "))
    };
    JobError::NoAdapter(format!("{named}{present}"))
}

/// An adapter passed over because it did not work, and why: shown on the Hardware page, since a
/// person with a broken driver should learn why their GPU is not the one used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedAdapter {
    /// As [`describe`] writes it.
    pub adapter: String,
    pub reason: String,
}

/// Tries `candidates` in order and keeps the first that `try_one` makes work; the ones before it are
/// returned as skipped, with their errors. When none works, the error names each one's failure.
pub fn first_working<C, T>(
    candidates: Vec<C>,
    name: impl Fn(&C) -> String,
    mut try_one: impl FnMut(C) -> Result<T, JobError>,
) -> Result<(T, Vec<SkippedAdapter>), JobError> {
    let mut skipped = Vec::new();
    for candidate in candidates {
        let adapter = name(&candidate);
        match try_one(candidate) {
            Ok(working) => return Ok((working, skipped)),
            Err(error) => {
                tracing::warn!(%adapter, %error, "GPU adapter does not work; trying the next");
                skipped.push(SkippedAdapter {
                    adapter,
                    reason: error.to_string(),
                });
            }
        }
    }
    let failures: Vec<String> = skipped
        .iter()
        .map(|s| format!("{}: {}", s.adapter, s.reason))
        .collect();
    Err(JobError::NoAdapter(format!(
        " that works; tried {}",
        failures.join("; ")
    )))
}

/// "NVIDIA GeForce RTX 4070 (Vulkan, DiscreteGpu)".
pub fn describe(info: &AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, device_type: DeviceType, backend: Backend) -> AdapterInfo {
        AdapterInfo {
            name: name.into(),
            ..AdapterInfo::new(device_type, backend)
        }
    }

    /// What Wine 8 lists under Xvfb: a fake DX12 GPU that cannot open a device, then llvmpipe twice.
    fn wine_adapters() -> Vec<AdapterInfo> {
        vec![
            info(
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                DeviceType::Cpu,
                Backend::Gl,
            ),
            info(
                "NVIDIA GeForce GTX 470",
                DeviceType::DiscreteGpu,
                Backend::Dx12,
            ),
            info(
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                DeviceType::Cpu,
                Backend::Vulkan,
            ),
        ]
    }

    #[test]
    fn adapters_are_tried_best_first_and_a_name_narrows_them() {
        let infos = wine_adapters();
        assert_eq!(
            preference_order(&infos, &AdapterChoice::default()),
            [1, 2, 0]
        );
        let llvmpipe = AdapterChoice {
            name: Some("LLVMPIPE".into()),
        };
        assert_eq!(preference_order(&infos, &llvmpipe), [2, 0]);
        let nothing = AdapterChoice {
            name: Some("radeon".into()),
        };
        assert!(preference_order(&infos, &nothing).is_empty());
        let error = no_adapter(&infos, &nothing).to_string();
        assert!(
            error.starts_with("no GPU adapter found named like \"radeon\"; present: "),
            "{error}"
        );
    }

    #[test]
    fn an_adapter_that_fails_is_skipped_with_its_reason_and_the_next_is_used() {
        let infos = wine_adapters();
        let order = preference_order(&infos, &AdapterChoice::default());
        let candidates: Vec<&AdapterInfo> = order.iter().map(|&i| &infos[i]).collect();
        let mut tried = Vec::new();
        let (chosen, skipped) = first_working(
            candidates,
            |c| describe(c),
            |c| {
                tried.push(c.backend);
                if c.backend == Backend::Dx12 {
                    Err(JobError::Device {
                        adapter: c.name.clone(),
                        message: "vkd3d could not compile a shader".into(),
                    })
                } else {
                    Ok(c.backend)
                }
            },
        )
        .unwrap();
        assert_eq!(chosen, Backend::Vulkan);
        assert_eq!(
            tried,
            [Backend::Dx12, Backend::Vulkan],
            "stops at the first that works"
        );
        assert_eq!(
            skipped,
            [SkippedAdapter {
                adapter: "NVIDIA GeForce GTX 470 (Dx12, DiscreteGpu)".into(),
                reason: "could not open a device on \"NVIDIA GeForce GTX 470\": \
                         vkd3d could not compile a shader"
                    .into(),
            }]
        );
    }

    #[test]
    fn when_no_adapter_works_the_error_names_each_failure() {
        let infos = wine_adapters();
        let error = first_working(
            infos.iter().collect(),
            |c| describe(c),
            |c| -> Result<(), JobError> { Err(JobError::Gpu(format!("{:?} broke", c.backend))) },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "no GPU adapter found that works; tried \
             llvmpipe (LLVM 15.0.6, 256 bits) (Gl, Cpu): GPU error: Gl broke; \
             NVIDIA GeForce GTX 470 (Dx12, DiscreteGpu): GPU error: Dx12 broke; \
             llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu): GPU error: Vulkan broke"
        );
    }
}
