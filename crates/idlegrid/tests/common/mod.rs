//! Shared by the integration tests: the executor on whatever adapter this machine has (llvmpipe in CI),
//! the example jobs, and small builders for jobs written inside a test.
#![allow(dead_code)]

mod example_jobs;
pub mod idle;
pub mod net;
mod programs;
#[cfg(unix)]
pub mod xvfb;

use std::path::PathBuf;

use idlegrid::gpu::{AdapterChoice, Executor, JobOutput};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, Pass, Verify};

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use example_jobs::*;
#[allow(unused_imports)]
pub use programs::*;

pub fn executor() -> Executor {
    Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter (llvmpipe in CI)")
}

/// The `idlegrid` binary, run from the repository root.
pub fn idlegrid_command() -> std::process::Command {
    program_command(env!("CARGO_BIN_EXE_idlegrid"))
}

/// A GPU worker started from the built `idlegrid` binary.
pub fn worker_config() -> idlegrid::worker::WorkerConfig {
    let mut config = idlegrid::worker::WorkerConfig::program(env!("CARGO_BIN_EXE_idlegrid"));
    if let Some(runtime) = runtime_dir() {
        config.env.push(("XDG_RUNTIME_DIR".into(), runtime.into()));
    }
    config
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The storage buffer the hostile shaders write to, at binding 0.
pub const STORE: &str = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n";

/// Endless for every purpose (after [`STORE`]). A real GPU spins in one invocation's loop forever;
/// llvmpipe stops any invocation after 65,535 trips round its loops, so the job asks for 2^38
/// invocations of them.
pub const ENDLESS: &str =
    "@compute @workgroup_size(64) fn main() { loop { data[0] = data[0] + 1u; } }";
pub const ENDLESS_GRID: [u32; 3] = [65_535, 65_535, 1];

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
