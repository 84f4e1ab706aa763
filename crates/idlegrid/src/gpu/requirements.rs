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
            limit,
            needed,
            allowed,
        });
    });
    first.map_or(Ok(()), Err)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
