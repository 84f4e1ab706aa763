//! Engine benchmarks (run with `cargo bench -p idlegrid --bench engine`):
//!
//! 1. Overhead: one ~100 ms kernel run end to end (upload, dispatch, read back) through `Executor::run`
//!    and through a minimal program on bare wgpu, alternating, as a ratio of medians.
//! 2. Cold start vs cache: a fresh executor (device and compilation), a new shader on a warm executor
//!    (compilation only), and a repeated job (all cached), as medians.
//!
//! Set IDLEGRID_BENCH_RUNS to change the number of runs (default 15).

use std::time::{Duration, Instant};

use idlegrid::gpu::{AdapterChoice, Executor};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, JobLimits, Pass, Verify};
use wgpu::util::DeviceExt;

const ELEMENTS: u32 = 1 << 20;
const WORKGROUP: u32 = 256;

fn kernel(rounds: u32) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size({WORKGROUP}) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
    var x = data[id.x];
    for (var i = 0u; i < {rounds}u; i++) {{ x = x * 1664525u + 1013904223u; }}
    data[id.x] = x;
}}"
    )
}

fn input() -> Vec<u8> {
    (0..ELEMENTS).flat_map(|i| i.to_le_bytes()).collect()
}

fn job(wgsl: String) -> Job {
    Job {
        name: "bench".into(),
        source_name: "bench.wgsl".into(),
        wgsl,
        buffers: vec![BufferSpec {
            name: "data".into(),
            binding: 0,
            init: BufferInit::Bytes(input()),
            access: Access::ReadWrite,
            output: true,
        }],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [ELEMENTS / WORKGROUP, 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

/// The least a program can do with bare wgpu to run the same kernel and read the result back.
struct Bare {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
}

impl Bare {
    fn new(adapter: &wgpu::Adapter, wgsl: &str) -> Bare {
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Bare {
            device,
            queue,
            pipeline,
        }
    }

    fn run(&self, input: &[u8]) -> Vec<u8> {
        let size = input.len() as u64;
        let data = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: input,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            });
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: data.as_entire_binding(),
            }],
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(ELEMENTS / WORKGROUP, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&data, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        staging.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        let bytes = staging.get_mapped_range(..).unwrap().to_vec();
        staging.unmap();
        bytes
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = f();
    (start.elapsed(), value)
}

/// Rounds of the kernel loop that make one bare run take about `target`.
fn calibrate(adapter: &wgpu::Adapter, target: Duration) -> u32 {
    let mut rounds = 64;
    loop {
        let bare = Bare::new(adapter, &kernel(rounds));
        bare.run(&input());
        let (took, _) = time(|| bare.run(&input()));
        if took >= target || rounds >= 1 << 20 {
            let scaled = f64::from(rounds) * target.as_secs_f64() / took.as_secs_f64();
            return (scaled as u32).max(1);
        }
        rounds *= 4;
    }
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: a quick smoke run is enough then.
    let full = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("IDLEGRID_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if full { 15 } else { 3 });
    let mut executor =
        Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter");
    let adapter = executor.adapter().clone();
    println!("adapter: {}", executor.adapter_info().name);

    let rounds = calibrate(&adapter, Duration::from_millis(if full { 100 } else { 10 }));
    let wgsl = kernel(rounds);
    let big = job(wgsl.clone());
    let data = input();
    let bare = Bare::new(&adapter, &wgsl);
    assert_eq!(
        bare.run(&data),
        executor.run(&big).unwrap().outputs[0].bytes,
        "both paths compute the same"
    );
    let (mut engine, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        engine.push(time(|| executor.run(&big).unwrap()).0);
        plain.push(time(|| bare.run(&data)).0);
    }
    let (engine, plain) = (median(engine), median(plain));
    println!(
        "overhead: idlegrid {:.2} ms, bare wgpu {:.2} ms, ratio {:.3} (median of {runs}, {rounds} rounds x {ELEMENTS} elements)",
        ms(engine),
        ms(plain),
        engine.as_secs_f64() / plain.as_secs_f64()
    );

    let small = |n: u32| {
        let mut job = job(format!("// variant {n}\n{}", kernel(16)));
        job.buffers[0].init =
            BufferInit::Bytes((0..4096u32).flat_map(|i| i.to_le_bytes()).collect());
        job.passes[0].workgroups = [16, 1, 1];
        job
    };
    let mut cold = Vec::new();
    let mut new_shader = Vec::new();
    let mut cached = Vec::new();
    for n in 0..runs as u32 {
        cold.push(
            time(|| {
                Executor::with_adapter(adapter.clone(), JobLimits::default())
                    .run(&small(n))
                    .unwrap()
            })
            .0,
        );
        new_shader.push(time(|| executor.run(&small(1000 + n)).unwrap()).0);
        cached.push(time(|| executor.run(&small(1000 + n)).unwrap()).0);
    }
    let (cold, new_shader, cached) = (median(cold), median(new_shader), median(cached));
    println!(
        "first run vs cached (small job, median of {runs}): fresh executor {:.2} ms, new shader on a warm executor {:.2} ms, cached {:.2} ms; first/cached {:.1}x",
        ms(cold),
        ms(new_shader),
        ms(cached),
        new_shader.as_secs_f64() / cached.as_secs_f64()
    );
}
