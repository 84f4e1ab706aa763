//! Canary jobs: small jobs whose answer the pool knows, mixed in with real work so that a provider
//! returning made-up results is caught even when nobody else ran the same job. Each canary has a fresh
//! random seed, so its answer cannot be learnt from an earlier one.

use crate::job::{Access, BufferInit, BufferSpec, Job, Pass, Verify};

const WORDS: u32 = 4096;
const WORKGROUP: u32 = 64;

const SHADER: &str = r"
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@group(0) @binding(1) var<uniform> params: vec4<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&data)) {
        return;
    }
    data[i] = mix32((i * 0x9E3779B9u) ^ params.x);
}

fn mix32(v: u32) -> u32 {
    var x = v;
    x = (x ^ (x >> 16u)) * 0x7feb352du;
    x = (x ^ (x >> 15u)) * 0x846ca68bu;
    return x ^ (x >> 16u);
}
";

/// A canary job for `seed` and the output it must produce.
pub fn canary(seed: u32) -> (Job, Vec<u8>) {
    let params = [seed, 0, 0, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let job = Job {
        name: "checksum".into(),
        source_name: "checksum.wgsl".into(),
        wgsl: SHADER.into(),
        buffers: vec![
            BufferSpec {
                name: "data".into(),
                binding: 0,
                init: BufferInit::Zeros(u64::from(WORDS) * 4),
                access: Access::ReadWrite,
                output: true,
            },
            BufferSpec {
                name: "params".into(),
                binding: 1,
                init: BufferInit::Bytes(params),
                access: Access::Uniform,
                output: false,
            },
        ],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [WORDS / WORKGROUP, 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    };
    let expected = (0..WORDS)
        .flat_map(|i| mix32(i.wrapping_mul(0x9E37_79B9) ^ seed).to_le_bytes())
        .collect();
    (job, expected)
}

fn mix32(v: u32) -> u32 {
    let x = (v ^ (v >> 16)).wrapping_mul(0x7feb_352d);
    let x = (x ^ (x >> 15)).wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_passes_the_job_checks_and_differs_by_seed() {
        let (job, expected) = canary(7);
        crate::job::check(&job, &crate::job::JobLimits::default()).unwrap();
        assert_eq!(expected.len(), 4 * WORDS as usize);
        assert_ne!(canary(8).1, expected);
    }
}
