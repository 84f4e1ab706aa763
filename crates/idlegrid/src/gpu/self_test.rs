//! The tiny job an adapter must get right before jobs run on it. A broken driver can list an adapter
//! that then cannot open a device, or opens one and computes wrong (Wine lists a DX12 adapter of the
//! first kind); either way the executor moves on to the next adapter.

use crate::job::{Access, BufferInit, BufferSpec, Job, JobError, Pass, Verify};

use super::Executor;

const VALUES: u32 = 64;

const WGSL: &str = "
@group(0) @binding(0) var<storage, read_write> data: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    data[id.x] = data[id.x] * 3u + id.x;
}
";

/// Runs the self-test job on `executor`; an error says what went wrong.
pub(super) fn run(executor: &mut Executor) -> Result<(), JobError> {
    let output = executor.run(&job())?;
    let computed = output
        .outputs
        .first()
        .map(|o| o.bytes.as_slice())
        .unwrap_or_default();
    if computed == expected().as_slice() {
        Ok(())
    } else {
        Err(JobError::Gpu(
            "the adapter computed a self-test job wrongly".into(),
        ))
    }
}

fn job() -> Job {
    let input: Vec<u8> = (0..VALUES).flat_map(u32::to_le_bytes).collect();
    Job {
        name: "adapter self-test".into(),
        source_name: "self-test.wgsl".into(),
        wgsl: WGSL.into(),
        buffers: vec![BufferSpec {
            name: "data".into(),
            binding: 0,
            init: BufferInit::Bytes(input),
            access: Access::ReadWrite,
            output: true,
        }],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [1, 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

/// Each value i becomes 3i + i.
fn expected() -> Vec<u8> {
    (0..VALUES).flat_map(|i| (4 * i).to_le_bytes()).collect()
}
