//! What a job needs of a device, as wgpu limits: checked against the adapter before anything is
//! allocated, and used to open a device no larger than the job needs.

use crate::job::{Access, Job, JobError, ShaderInterface};

/// The WebGPU baseline (lowered where the adapter is weaker), raised to what `job` needs.
pub fn needed_limits(
    job: &Job,
    interface: &ShaderInterface,
    adapter: &wgpu::Limits,
) -> wgpu::Limits {
    let mut limits = wgpu::Limits::downlevel_defaults().or_worse_values_from(adapter);
    let sizes = |access: fn(Access) -> bool| {
        job.buffers
            .iter()
            .filter(move |b| access(b.access))
            .map(|b| b.init.size())
    };
    let storage = |a: Access| a != Access::Uniform;
    let uniform = |a: Access| a == Access::Uniform;

    let raise = |limit: &mut u64, value: u64| *limit = (*limit).max(value);
    raise(
        &mut limits.max_buffer_size,
        job.buffers.iter().map(|b| b.init.size()).max().unwrap_or(0),
    );
    raise(
        &mut limits.max_storage_buffer_binding_size,
        sizes(storage).max().unwrap_or(0),
    );
    raise(
        &mut limits.max_uniform_buffer_binding_size,
        sizes(uniform).max().unwrap_or(0),
    );

    let raise = |limit: &mut u32, value: u32| *limit = (*limit).max(value);
    let storage_count = count(sizes(storage).count());
    let uniform_count = count(sizes(uniform).count());
    raise(
        &mut limits.max_storage_buffers_per_shader_stage,
        storage_count,
    );
    raise(
        &mut limits.max_uniform_buffers_per_shader_stage,
        uniform_count,
    );
    raise(
        &mut limits.max_buffers_and_acceleration_structures_per_shader_stage,
        storage_count + uniform_count,
    );
    raise(
        &mut limits.max_compute_workgroup_storage_size,
        u32::try_from(interface.workgroup_memory).unwrap_or(u32::MAX),
    );
    for pass in &job.passes {
        raise(
            &mut limits.max_compute_workgroups_per_dimension,
            pass.workgroups.into_iter().max().unwrap_or(1),
        );
        if let Some(entry) = interface.entry_point(&pass.entry) {
            let [x, y, z] = entry.workgroup_size;
            raise(&mut limits.max_compute_workgroup_size_x, x);
            raise(&mut limits.max_compute_workgroup_size_y, y);
            raise(&mut limits.max_compute_workgroup_size_z, z);
            raise(
                &mut limits.max_compute_invocations_per_workgroup,
                x.saturating_mul(y).saturating_mul(z),
            );
        }
    }
    limits
}

/// Refuses, naming the first limit, a job that needs more than the adapter allows.
pub fn check_adapter(
    needed: &wgpu::Limits,
    adapter: &wgpu::Limits,
    adapter_name: &str,
) -> Result<(), JobError> {
    let mut first = None;
    needed.check_limits_with_fail_fn(adapter, true, |limit, needed, allowed| {
        first = Some(JobError::AdapterLimit {
            adapter: adapter_name.to_owned(),
            limit: limit.to_owned(),
            needed,
            allowed,
        });
    });
    first.map_or(Ok(()), Err)
}

/// Bytes a job takes on the device: its buffers, and a staging copy of each output to read it back.
pub fn memory_needed(job: &Job) -> MemoryNeed {
    let sizes = |outputs_only: bool| {
        job.buffers
            .iter()
            .filter(|b| b.output || !outputs_only)
            .fold(0u64, |sum, b| sum.saturating_add(b.init.size()))
    };
    MemoryNeed {
        buffers: sizes(false),
        staging: sizes(true),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryNeed {
    pub buffers: u64,
    pub staging: u64,
}

impl MemoryNeed {
    pub fn total(self) -> u64 {
        self.buffers.saturating_add(self.staging)
    }
}

/// Refuses a job whose memory is over `budget`, before anything is allocated.
pub fn check_memory(job: &Job, budget: u64) -> Result<(), JobError> {
    let need = memory_needed(job);
    if need.total() <= budget {
        return Ok(());
    }
    Err(JobError::OverBudget {
        buffers: need.buffers,
        staging: need.staging,
        budget,
    })
}

/// Memory a job may use on this adapter: the person's budget, and for a CPU "GPU" (llvmpipe) half the
/// memory the system has free, since its buffers are ordinary memory. A real GPU's own memory is not
/// reported by wgpu; there the driver's out-of-memory error, caught per job, is the last line.
pub fn memory_budget(
    budget: u64,
    device_type: wgpu::DeviceType,
    system_available: Option<u64>,
) -> u64 {
    match (device_type, system_available) {
        (wgpu::DeviceType::Cpu, Some(available)) => budget.min(available / 2),
        _ => budget,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{BufferInit, BufferSpec, Pass, Verify};

    fn job(buffers: &[(u64, bool)]) -> Job {
        Job {
            name: "memory".into(),
            source_name: "inline".into(),
            wgsl: String::new(),
            buffers: buffers
                .iter()
                .enumerate()
                .map(|(i, &(size, output))| BufferSpec {
                    name: format!("b{i}"),
                    binding: i as u32,
                    init: BufferInit::Zeros(size),
                    access: Access::ReadWrite,
                    output,
                })
                .collect(),
            passes: vec![Pass {
                entry: "main".into(),
                workgroups: [1, 1, 1],
            }],
            verify: Verify::default(),
            reward: None,
        }
    }

    #[test]
    fn outputs_count_twice_for_their_read_back_copy() {
        let need = memory_needed(&job(&[(100, true), (50, false)]));
        assert_eq!(
            need,
            MemoryNeed {
                buffers: 150,
                staging: 100
            }
        );
        assert!(check_memory(&job(&[(100, true), (50, false)]), 250).is_ok());
        let refused = check_memory(&job(&[(100, true), (50, false)]), 249).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the job's GPU memory (buffers 150 bytes + read-back 100 bytes) is 250 bytes; \
             the limit is this machine's budget of 249 bytes"
        );
    }

    #[test]
    fn a_huge_buffer_does_not_overflow_the_sum() {
        let need = memory_needed(&job(&[(u64::MAX, true), (u64::MAX, true)]));
        assert_eq!(need.total(), u64::MAX);
        assert!(check_memory(&job(&[(u64::MAX, true)]), 64 << 30).is_err());
    }

    #[test]
    fn a_software_gpu_gets_half_the_free_memory_at_most() {
        let gib = 1u64 << 30;
        assert_eq!(
            memory_budget(2 * gib, wgpu::DeviceType::Cpu, Some(2 * gib)),
            gib
        );
        assert_eq!(
            memory_budget(2 * gib, wgpu::DeviceType::Cpu, Some(64 * gib)),
            2 * gib
        );
        assert_eq!(memory_budget(2 * gib, wgpu::DeviceType::Cpu, None), 2 * gib);
        assert_eq!(
            memory_budget(2 * gib, wgpu::DeviceType::DiscreteGpu, Some(gib)),
            2 * gib
        );
    }
}
