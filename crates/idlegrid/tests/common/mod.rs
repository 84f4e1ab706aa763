//! Shared by the integration tests: the executor on whatever adapter this machine has (llvmpipe in CI),
//! the example jobs, and small builders for jobs written inside a test.
#![allow(dead_code)]

pub mod idle;
pub mod net;

use std::path::PathBuf;

use idlegrid::gpu::{AdapterChoice, Executor, JobOutput, OutputBuffer};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, JobLimits, Pass, Verify};

pub fn executor() -> Executor {
    Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter (llvmpipe in CI)")
}

/// The `idlegrid` binary, run from the repository root. A desktop session has a runtime dir; without
/// one Mesa prints warnings that are not ours.
pub fn idlegrid_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idlegrid"));
    if let Some(runtime) = runtime_dir() {
        command.env("XDG_RUNTIME_DIR", runtime);
    }
    command.current_dir(repo_root());
    command
}

/// A runtime dir for the programs tests start, where the test itself has none.
pub fn runtime_dir() -> Option<PathBuf> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| !dir.is_empty()) {
        return None;
    }
    let runtime = std::env::temp_dir().join("idlegrid-test-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    Some(runtime)
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

/// The storage buffer the hostile shaders write to, at binding 0.
pub const STORE: &str = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n";

/// Endless for every purpose (after [`STORE`]). A real GPU spins in one invocation's loop forever;
/// llvmpipe stops any invocation after 65,535 trips round its loops, so the job asks for 2^38
/// invocations of them.
pub const ENDLESS: &str =
    "@compute @workgroup_size(64) fn main() { loop { data[0] = data[0] + 1u; } }";
pub const ENDLESS_GRID: [u32; 3] = [65_535, 65_535, 1];

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

/// Checks a matmul example's outputs against the CPU product of its inputs.
pub fn assert_matmul(outputs: &[OutputBuffer]) {
    let (m, k, n) = (96, 64, 80);
    let a = f32s(&example_file("matmul/a.bin"));
    let b = f32s(&example_file("matmul/b.bin"));
    let c = f32s(named(outputs, "c"));
    assert_eq!(c.len(), m * n);
    let mut worst = 0.0f32;
    for row in 0..m {
        for col in 0..n {
            let expected: f32 = (0..k).map(|i| a[row * k + i] * b[i * n + col]).sum();
            worst = worst.max((c[row * n + col] - expected).abs());
        }
    }
    // 64 products of numbers in [-1, 1]: summation order alone moves the result by far less than this.
    assert!(
        worst < 1e-4,
        "largest difference from the CPU reference: {worst}"
    );
    assert_eq!(outputs[0].blake3, blake3::hash(named(outputs, "c")));
}

/// Checks a Mandelbrot example's iteration counts against the CPU's.
pub fn assert_mandelbrot(outputs: &[OutputBuffer]) {
    let (width, height, max_iter) = (320usize, 240usize, 256u32);
    let (centre_x, centre_y, scale) = (-0.6f32, 0.0f32, 0.0125f32);
    let gpu = u32s(named(outputs, "iterations"));
    assert_eq!(gpu.len(), width * height);
    let mut differing = 0;
    for py in 0..height {
        for px in 0..width {
            let cx = centre_x + (px as f32 - width as f32 * 0.5) * scale;
            let cy = centre_y + (py as f32 - height as f32 * 0.5) * scale;
            let (mut x, mut y, mut i) = (0.0f32, 0.0f32, 0u32);
            while i < max_iter && x * x + y * y <= 4.0 {
                let next_x = x * x - y * y + cx;
                y = 2.0 * x * y + cy;
                x = next_x;
                i += 1;
            }
            let got = gpu[py * width + px];
            if got != i {
                differing += 1;
                // A GPU may fuse multiply-adds; rounding then matters only near the set's boundary,
                // where orbits are chaotic. A point that escapes quickly must agree exactly.
                assert!(
                    i >= 8 && got >= 8,
                    "pixel ({px}, {py}): GPU {got} iterations, CPU {i}"
                );
            }
        }
    }
    assert!(
        differing * 200 <= width * height,
        "{differing} of {} pixels differ",
        width * height
    );
    // The picture is the set: the far-left column escapes at once, the centre of the main cardioid never.
    assert_eq!(gpu[(height / 2) * width + 20 * width / 100], max_iter);
    assert!(gpu[0] <= 2, "corner took {} iterations", gpu[0]);
}

/// Checks a nearest-neighbour example's answers against a CPU brute-force search.
pub fn assert_nearest(outputs: &[OutputBuffer]) {
    let (count, dim, queries) = (5000usize, 24usize, 48usize);
    let database = f32s(&example_file("nearest/database.bin"));
    let query_vectors = f32s(&example_file("nearest/queries.bin"));
    let nearest = u32s(named(outputs, "nearest"));
    let distance = f32s(named(outputs, "distance"));
    for q in 0..queries {
        let query = &query_vectors[q * dim..(q + 1) * dim];
        let (best, best_distance) = (0..count)
            .map(|i| {
                let d: f32 = database[i * dim..(i + 1) * dim]
                    .iter()
                    .zip(query)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (i, d)
            })
            .fold((usize::MAX, f32::INFINITY), |best, cur| {
                if cur.1 < best.1 { cur } else { best }
            });
        // Small integer coordinates make every distance exact, so the answer must match bit for bit.
        assert_eq!(
            (nearest[q] as usize, distance[q]),
            (best, best_distance),
            "query {q}"
        );
    }
}

/// The bytes of the output called `name`.
pub fn named<'a>(outputs: &'a [OutputBuffer], name: &str) -> &'a [u8] {
    &outputs
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no output named {name}"))
        .bytes
}

/// The hashchain example with `chains` chains (the example has 4,096): more chains, longer passes.
pub fn hashchain(chains: u64) -> Job {
    let mut job = example("hashchain");
    job.buffers[0].init = idlegrid::job::BufferInit::Zeros(chains * 4);
    for pass in &mut job.passes {
        pass.workgroups = [u32::try_from(chains.div_ceil(64)).unwrap(), 1, 1];
    }
    job
}

/// Checks a hashchain job's chains against the CPU: each pass adds the chain's index, then hashes
/// 2,048 times.
pub fn assert_hashchain(outputs: &[OutputBuffer], passes: usize) {
    fn lowbias32(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^ (x >> 16)
    }
    let chains = u32s(named(outputs, "chains"));
    // Every chain is checked in release builds; a sample in debug ones keeps the test quick.
    let step = if cfg!(debug_assertions) { 97 } else { 1 };
    for (i, &got) in chains.iter().enumerate().step_by(step) {
        let mut x = 0u32;
        for _ in 0..passes {
            x = x.wrapping_add(i as u32);
            for _ in 0..2048 {
                x = lowbias32(x);
            }
        }
        assert_eq!(got, x, "chain {i}");
    }
}
