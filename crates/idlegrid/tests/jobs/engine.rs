//! The executor's behaviour that a job author relies on: passes in order, uniform and read-only buffers,
//! bounds-checked memory, the pipeline cache, deadlines, and recovery after a failed job.

use crate::common;

use std::time::Duration;

use common::*;
use idlegrid::gpu::{AdapterChoice, Executor, ExecutorStats, Timing};
use idlegrid::job::{Access, BufferInit, JobError, JobLimits};

const MULTI_PASS: &str = "
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn fill(@builtin(global_invocation_id) id: vec3<u32>) { data[id.x] = id.x; }
@compute @workgroup_size(64) fn double(@builtin(global_invocation_id) id: vec3<u32>) { data[id.x] = data[id.x] * 2u; }
@compute @workgroup_size(64) fn add_one(@builtin(global_invocation_id) id: vec3<u32>) { data[id.x] = data[id.x] + 1u; }
";

#[test]
fn passes_run_in_order_over_the_same_buffers() {
    let job = job(
        MULTI_PASS,
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(256 * 4),
            Access::ReadWrite,
            true,
        )],
        vec![
            pass("fill", 4),
            pass("double", 4),
            pass("add_one", 4),
            pass("double", 4),
        ],
    );
    let out = executor().run(&job).unwrap();
    let expected: Vec<u32> = (0..256).map(|i| (i * 2 + 1) * 2).collect();
    assert_eq!(u32s(output(&out, "data")), expected);
}

#[test]
fn uniform_and_read_only_buffers_feed_the_shader() {
    let wgsl = "
struct Params { scale: f32, offset: f32, count: u32, pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < params.count) { result[id.x] = input[id.x] * params.scale + params.offset; }
}";
    let mut params: Vec<u8> = [2.5f32, -1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    params.extend([100u32, 0].iter().flat_map(|v| v.to_le_bytes()));
    let input: Vec<f32> = (0..128).map(|i| i as f32 * 0.25).collect();
    let job = job(
        wgsl,
        vec![
            buffer(
                "params",
                0,
                BufferInit::Bytes(params),
                Access::Uniform,
                false,
            ),
            buffer("input", 1, f32_bytes(&input), Access::Read, true),
            buffer(
                "result",
                2,
                BufferInit::Zeros(128 * 4),
                Access::ReadWrite,
                true,
            ),
        ],
        vec![pass("main", 4)],
    );
    let out = executor().run(&job).unwrap();
    let result = f32s(output(&out, "result"));
    for i in 0..128 {
        let expected = if i < 100 { input[i] * 2.5 - 1.0 } else { 0.0 };
        assert_eq!(result[i], expected, "element {i}");
    }
    // A read-only buffer comes back as it went in.
    assert_eq!(f32s(output(&out, "input")), input);
}

#[test]
fn out_of_bounds_writes_stay_inside_the_buffer() {
    // Writes far past the end of `small`, and reads past it too; `neighbour` must not change.
    let wgsl = "
@group(0) @binding(0) var<storage, read_write> small: array<u32, 16>;
@group(0) @binding(1) var<storage, read_write> neighbour: array<u32>;
@group(0) @binding(2) var<storage, read_write> runtime: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x * 1000u + 16u;
    small[i] = 0xdeadbeefu;
    runtime[arrayLength(&runtime) + id.x] = 0xdeadbeefu;
    neighbour[id.x] = neighbour[id.x] + small[i + 7u] * 0u;
}";
    let neighbour: Vec<u32> = (0..64).map(|i| i * 3 + 1).collect();
    let job = job(
        wgsl,
        vec![
            buffer("small", 0, BufferInit::Zeros(64), Access::ReadWrite, true),
            buffer(
                "neighbour",
                1,
                u32_bytes(&neighbour),
                Access::ReadWrite,
                true,
            ),
            buffer("runtime", 2, BufferInit::Zeros(64), Access::ReadWrite, true),
        ],
        vec![pass("main", 1)],
    );
    let out = executor().run(&job).unwrap();
    assert_eq!(u32s(output(&out, "neighbour")), neighbour);
    assert_eq!(output(&out, "small").len(), 64);
    assert_eq!(output(&out, "runtime").len(), 64);
}

#[test]
fn repeated_job_is_not_compiled_again() {
    let mut executor = executor();
    let job = job(
        MULTI_PASS,
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(64 * 4),
            Access::ReadWrite,
            true,
        )],
        vec![pass("fill", 1), pass("double", 1)],
    );
    let first = executor.run(&job).unwrap();
    let after_first = executor.stats();
    assert_eq!(
        (after_first.shader_compilations, after_first.pipelines_built),
        (1, 2)
    );
    let second = executor.run(&job).unwrap();
    let after_second = executor.stats();
    assert_eq!(
        after_second.shader_compilations, 1,
        "the second run compiled the shader again"
    );
    assert_eq!(after_second.pipelines_built, 2);
    assert_eq!(after_second.pipeline_cache_hits, 2);
    assert_eq!(after_second.devices_opened, 1);
    assert_eq!(first.outputs, second.outputs);
}

#[test]
fn gpu_time_is_measured() {
    let out = executor().run(&example("matmul")).unwrap();
    assert!(out.gpu_time > Duration::ZERO);
    let adapter = executor().adapter().clone();
    let expected = if adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        Timing::Timestamps
    } else {
        Timing::Wall
    };
    assert_eq!(out.timing, expected);
}

#[test]
fn job_past_its_deadline_fails_and_the_next_job_gets_a_fresh_device() {
    // A finite but slow shader with a deadline far shorter than it needs.
    let wgsl = "
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    var x = id.x;
    for (var i = 0u; i < 2000000u; i++) { x = x * 1664525u + 1013904223u; }
    data[id.x] = x;
}";
    let adapter = executor().adapter().clone();
    let limits = JobLimits {
        deadline: Duration::from_millis(1),
        ..JobLimits::default()
    };
    let mut executor = Executor::with_adapter(adapter, limits);
    let slow = job(
        wgsl,
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(64 * 4 * 8),
            Access::ReadWrite,
            true,
        )],
        vec![pass("main", 8)],
    );
    let err = executor.run(&slow).unwrap_err();
    assert!(matches!(err, JobError::Deadline(_)), "{err}");
    assert_eq!(err.to_string(), "the job ran past its deadline of 0.001 s");

    executor.set_limits(JobLimits::default());
    let quick = job(
        MULTI_PASS,
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(256),
            Access::ReadWrite,
            true,
        )],
        vec![pass("fill", 1)],
    );
    let out = executor.run(&quick).unwrap();
    assert_eq!(u32s(output(&out, "data")), (0..64).collect::<Vec<u32>>());
    assert_eq!(executor.stats().devices_opened, 2);
}

#[test]
fn the_chosen_adapter_passes_its_self_test_and_holds_no_device_until_a_job() {
    let mut executor = executor();
    // llvmpipe works: nothing ranked above it here was passed over.
    assert_eq!(executor.skipped_adapters(), []);
    assert!(
        !executor.has_device(),
        "the self-test's device is given back"
    );
    assert_eq!(executor.stats(), ExecutorStats::default());
    let job = job(
        MULTI_PASS,
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(64 * 4),
            Access::ReadWrite,
            true,
        )],
        vec![pass("fill", 1)],
    );
    let out = executor.run(&job).unwrap();
    assert_eq!(u32s(output(&out, "data")), (0..64).collect::<Vec<u32>>());
    assert_eq!(executor.stats().devices_opened, 1);
}

#[test]
fn named_adapter_is_chosen_and_unknown_name_lists_what_exists() {
    let name = executor().adapter_info().name.clone();
    let fragment = name.split_whitespace().next().unwrap().to_uppercase();
    let chosen = Executor::new(&AdapterChoice {
        name: Some(fragment),
    })
    .unwrap();
    assert_eq!(chosen.adapter_info().name, name);
    let err = Executor::new(&AdapterChoice {
        name: Some("no-such-gpu".into()),
    })
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with("no GPU adapter found named like \"no-such-gpu\"; present: "),
        "{err}"
    );
    assert!(err.contains(&name), "{err}");
}

#[test]
fn wire_form_runs_the_same() {
    let job = example("nearest");
    let decoded = idlegrid::Job::from_wire(&job.to_wire()).unwrap();
    let mut executor = executor();
    assert_eq!(
        executor.run(&job).unwrap().outputs,
        executor.run(&decoded).unwrap().outputs
    );
}
