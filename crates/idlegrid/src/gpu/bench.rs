//! The standard device score: tiled f32 matrix multiply (GFLOP/s), buffer copy bandwidth (GB/s) and
//! sentence embeddings per second (a fixed batch through the embedding kernels, see `embed::bench_job`),
//! all run as ordinary jobs through the executor and timed on the GPU where it can.
//!
//! Sizes are calibrated from a first small run so that the whole benchmark takes a few seconds at most on
//! anything from a software rasteriser to a data-centre GPU.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::executor::{Executor, Timing};
use crate::job::{Access, BufferInit, BufferSpec, Job, JobError, Pass, Verify};

const MATMUL_WGSL: &str = include_str!("../../../../examples/jobs/matmul/matmul.wgsl");
const COPY_WGSL: &str = "
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < arrayLength(&src)) { dst[gid.x] = src[gid.x]; }
}";

/// Time each measured run aims for: long enough to swamp launch costs, short enough to stay polite.
const TARGET_RUN: Duration = Duration::from_millis(150);
const RUNS: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub adapter: String,
    pub matmul_gflops: f64,
    /// Side of the square matrices measured.
    pub matmul_size: u32,
    pub copy_gbps: f64,
    /// Bytes copied per pass measured.
    pub copy_bytes: u64,
    /// Sentence embeddings a second; absent from the [`device_score`], which does not measure them.
    pub embeddings: Option<EmbeddingRate>,
    pub timing: Timing,
    /// Wall time of the whole benchmark.
    pub seconds: f64,
}

/// Texts embedded per second, in batches of `embed::BENCH_TEXTS`, and the model they are of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRate {
    pub per_second: f64,
    pub model: String,
}

/// What the embeddings part of a benchmark runs.
#[derive(Debug)]
pub enum EmbeddingBench {
    Skip,
    /// The tiny random model (`embed::TINY_MODEL`).
    Tiny,
    Model(crate::embed::Model),
}

/// Runs the whole benchmark on the executor's adapter, embeddings on the installed model
/// (`embed::installed_model`), or on the tiny one where none is installed.
pub fn bench(executor: &mut Executor) -> Result<BenchReport, JobError> {
    let embeddings =
        crate::embed::installed_model().map_or(EmbeddingBench::Tiny, EmbeddingBench::Model);
    bench_with(executor, embeddings)
}

/// The score a provider tells its pools: matmul and copy only, so that starting to share is not held
/// up by a model's forward passes (seconds on a software GPU).
pub fn device_score(executor: &mut Executor) -> Result<BenchReport, JobError> {
    bench_with(executor, EmbeddingBench::Skip)
}

/// [`bench`] with the embeddings part on `embeddings`.
pub fn bench_with(
    executor: &mut Executor,
    embeddings: EmbeddingBench,
) -> Result<BenchReport, JobError> {
    let started = Instant::now();
    let adapter_limits = executor.adapter().limits();
    let max_binding = adapter_limits
        .max_storage_buffer_binding_size
        .min(adapter_limits.max_buffer_size);

    let (matmul_size, matmul_time, timing) =
        calibrate(executor, 128, max_side(max_binding), matmul_job)?;
    let flops = 2.0 * f64::from(matmul_size).powi(3);

    let (copy_vectors, copy_time, _) = calibrate(
        executor,
        1 << 16,
        max_copy_vectors(&adapter_limits, max_binding),
        copy_job,
    )?;
    let copy_bytes = u64::from(copy_vectors) * 16;

    let embeddings = match embeddings {
        EmbeddingBench::Skip => None,
        EmbeddingBench::Tiny => Some(embedding_rate(executor, None)?),
        EmbeddingBench::Model(model) => Some(embedding_rate(executor, Some(&model))?),
    };

    Ok(BenchReport {
        adapter: executor.adapter_info().name.clone(),
        matmul_gflops: flops / matmul_time.as_secs_f64() / 1e9,
        matmul_size,
        // Each element is read once and written once.
        copy_gbps: 2.0 * copy_bytes as f64 / copy_time.as_secs_f64() / 1e9,
        copy_bytes,
        embeddings,
        timing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Embeddings a second on `model` (the tiny one for `None`): the median of `RUNS` runs of the fixed
/// batch, after one that compiles its shaders.
fn embedding_rate(
    executor: &mut Executor,
    model: Option<&crate::embed::Model>,
) -> Result<EmbeddingRate, JobError> {
    let (job, model) = crate::embed::bench_job(model);
    timed(executor, &job)?;
    let (time, _) = median(executor, &job)?;
    Ok(EmbeddingRate {
        per_second: f64::from(crate::embed::BENCH_TEXTS) / time.as_secs_f64(),
        model,
    })
}

/// Grows the problem from `start` until a run takes about `TARGET_RUN` (or `max` is reached), then
/// returns the size and the median of `RUNS` runs at that size.
fn calibrate(
    executor: &mut Executor,
    start: u32,
    max: u32,
    job: fn(u32) -> Job,
) -> Result<(u32, Duration, Timing), JobError> {
    let mut size = start.min(max);
    let (mut time, _) = timed(executor, &job(size))?; // also compiles the shader
    while time < TARGET_RUN && size < max {
        // Work grows with the cube of a matrix side and linearly with a copy; doubling is safe for both.
        size = size.saturating_mul(2).min(max);
        time = timed(executor, &job(size))?.0;
    }
    let (time, timing) = median(executor, &job(size))?;
    Ok((size, time, timing))
}

/// The median time of `RUNS` runs of `job`.
fn median(executor: &mut Executor, job: &Job) -> Result<(Duration, Timing), JobError> {
    let mut times = Vec::with_capacity(RUNS);
    let mut timing = Timing::Wall;
    for _ in 0..RUNS {
        let (t, how) = timed(executor, job)?;
        times.push(t);
        timing = how;
    }
    times.sort();
    Ok((times[RUNS / 2].max(Duration::from_nanos(1)), timing))
}

fn timed(executor: &mut Executor, job: &Job) -> Result<(Duration, Timing), JobError> {
    let output = executor.run(job)?;
    Ok((output.gpu_time, output.timing))
}

/// Most vectors one copy job may move: one 256-thread workgroup per 256 vectors in one dispatch
/// dimension. A fast GPU reaches the dispatch limit (65,535 workgroups) before the time target.
fn max_copy_vectors(limits: &wgpu::Limits, max_binding: u64) -> u32 {
    let max_dispatch = u64::from(limits.max_compute_workgroups_per_dimension) * 256;
    (max_binding / 16).min(max_dispatch).min(1 << 24) as u32
}

/// Largest matrix side (a multiple of 16) whose three matrices each fit a binding.
fn max_side(max_binding: u64) -> u32 {
    let side = ((max_binding / 4) as f64).sqrt() as u32;
    (side / 16 * 16).clamp(16, 4096)
}

fn buffer(name: &str, binding: u32, init: BufferInit, access: Access, output: bool) -> BufferSpec {
    BufferSpec {
        name: name.into(),
        binding,
        init,
        access,
        output,
    }
}

fn matmul_job(n: u32) -> Job {
    let bytes = u64::from(n) * u64::from(n) * 4;
    // Small integers keep the inputs cheap to build; the cost of the multiply does not depend on them.
    let matrix = |seed: u32| {
        BufferInit::Bytes(
            (0..n * n)
                .flat_map(|i| (((i.wrapping_mul(seed)) % 7) as f32 - 3.0).to_le_bytes())
                .collect(),
        )
    };
    Job {
        name: format!("bench-matmul-{n}"),
        source_name: "matmul.wgsl".into(),
        wgsl: MATMUL_WGSL.into(),
        buffers: vec![
            buffer("a", 0, matrix(31), Access::Read, false),
            buffer("b", 1, matrix(17), Access::Read, false),
            buffer("c", 2, BufferInit::Zeros(bytes), Access::ReadWrite, true),
            buffer(
                "dims",
                3,
                BufferInit::Bytes([n, n, n, 0].iter().flat_map(|v| v.to_le_bytes()).collect()),
                Access::Uniform,
                false,
            ),
        ],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [n.div_ceil(16), n.div_ceil(16), 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

fn copy_job(vectors: u32) -> Job {
    let bytes = u64::from(vectors) * 16;
    Job {
        name: format!("bench-copy-{bytes}"),
        source_name: "copy.wgsl".into(),
        wgsl: COPY_WGSL.into(),
        buffers: vec![
            buffer("src", 0, BufferInit::Zeros(bytes), Access::Read, false),
            buffer("dst", 1, BufferInit::Zeros(bytes), Access::ReadWrite, true),
        ],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [vectors.div_ceil(256), 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The score includes embeddings per second through the real kernels, and says which model: the
    /// tiny one here (no model is passed), named as the engine names it.
    #[test]
    fn the_score_has_embeddings_per_second_for_a_named_model() {
        let mut executor = Executor::new(&crate::gpu::AdapterChoice::default()).unwrap();
        let report = bench_with(&mut executor, EmbeddingBench::Tiny).unwrap();
        let embeddings = report.embeddings.as_ref().expect("an embeddings score");
        assert!(
            embeddings.per_second > 0.0 && embeddings.per_second.is_finite(),
            "{report:?}"
        );
        assert_eq!(embeddings.model, crate::embed::TINY_MODEL);
        assert!(report.matmul_gflops > 0.0 && report.copy_gbps > 0.0);
        // The score pools see leaves embeddings out.
        let pools_see = device_score(&mut executor).unwrap();
        assert!(pools_see.embeddings.is_none() && pools_see.matmul_gflops > 0.0);
        // The batch it timed is real embedding work: eight unit vectors come back.
        let (job, _) = crate::embed::bench_job(None);
        let vectors = crate::embed::embeddings_output(executor.run(&job).unwrap().outputs).unwrap();
        let floats: Vec<f32> = vectors
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let rows = crate::embed::BENCH_TEXTS as usize;
        assert_eq!(floats.len() % rows, 0);
        for row in floats.chunks_exact(floats.len() / rows) {
            let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
        }
    }

    #[test]
    fn the_largest_copy_job_fits_one_dispatch_dimension() {
        let limits = wgpu::Limits::default();
        let vectors = max_copy_vectors(&limits, u64::MAX);
        let job = copy_job(vectors);
        assert!(job.passes[0].workgroups[0] <= limits.max_compute_workgroups_per_dimension);
        assert!(crate::job::check_without_shader(&job, &crate::job::JobLimits::default()).is_ok());
    }
}
