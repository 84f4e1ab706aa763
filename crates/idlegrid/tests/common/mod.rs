//! Shared by the integration tests: the executor on whatever adapter this machine has (llvmpipe in CI),
//! the example jobs, and small builders for jobs written inside a test.
#![allow(dead_code)]

use std::path::PathBuf;

use idlegrid::gpu::{AdapterChoice, Executor, JobOutput};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, JobLimits, Pass, Verify};

pub fn executor() -> Executor {
    Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter (llvmpipe in CI)")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(name: &str) -> Job {
    Job::load(
        &repo_root()
            .join("examples/jobs")
            .join(name)
            .join("job.toml"),
        &JobLimits::default(),
    )
    .unwrap()
}

pub fn example_file(path: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("examples/jobs").join(path)).unwrap()
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn u32_bytes(values: &[u32]) -> BufferInit {
    BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn f32_bytes(values: &[f32]) -> BufferInit {
    BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn buffer(
    name: &str,
    binding: u32,
    init: BufferInit,
    access: Access,
    output: bool,
) -> BufferSpec {
    BufferSpec {
        name: name.into(),
        binding,
        init,
        access,
        output,
    }
}

pub fn pass(entry: &str, x: u32) -> Pass {
    Pass {
        entry: entry.into(),
        workgroups: [x, 1, 1],
    }
}

pub fn job(wgsl: &str, buffers: Vec<BufferSpec>, passes: Vec<Pass>) -> Job {
    Job {
        name: "test".into(),
        source_name: "test.wgsl".into(),
        wgsl: wgsl.into(),
        buffers,
        passes,
        verify: Verify::default(),
        reward: None,
    }
}

pub fn output<'a>(out: &'a JobOutput, name: &str) -> &'a [u8] {
    &out.outputs.iter().find(|o| o.name == name).unwrap().bytes
}
