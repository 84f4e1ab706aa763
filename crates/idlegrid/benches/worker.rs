//! Worker-process benchmarks (run with `cargo bench -p idlegrid --bench worker`):
//!
//! 1. Start: spawning `idlegrid worker` until it has opened its adapter and said so.
//! 2. Restart: a job killed at its deadline, until the next small job has run on the fresh worker.
//! 3. Overhead: the same small job through an executor in this process and through a warm worker,
//!    alternating, as a ratio of medians; and the same for a job of about a second on llvmpipe.
//!
//! Set IDLEGRID_BENCH_RUNS to change the number of runs (default 30; 3 under `cargo test`).

use std::time::{Duration, Instant};

use idlegrid::gpu::{AdapterChoice, Executor, RunControl};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, Pass, Verify};
use idlegrid::worker::{WorkerConfig, WorkerProcess};

fn job(name: &str, wgsl: String, elements: u32) -> Job {
    Job {
        name: name.into(),
        source_name: format!("{name}.wgsl"),
        wgsl,
        buffers: vec![BufferSpec {
            name: "data".into(),
            binding: 0,
            init: BufferInit::Bytes((0..elements).flat_map(|i| i.to_le_bytes()).collect()),
            access: Access::ReadWrite,
            output: true,
        }],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [elements.div_ceil(256), 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

fn lcg(rounds: u32) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
    var x = data[id.x];
    for (var i = 0u; i < {rounds}u; i++) {{ x = x * 1664525u + 1013904223u; }}
    data[id.x] = x;
}}"
    )
}

/// Endless on any GPU, llvmpipe included (which ends one invocation's loops after 65,535 trips).
fn endless() -> Job {
    let mut job = job(
        "endless",
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main() { loop { data[0] = data[0] + 1u; } }"
            .into(),
        256,
    );
    job.passes[0].workgroups = [65_535, 65_535, 1];
    job
}

fn config() -> WorkerConfig {
    WorkerConfig::program(env!("CARGO_BIN_EXE_idlegrid"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("IDLEGRID_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if full { 30 } else { 3 });
    let control = RunControl::default();
    let long = Duration::from_secs(60);

    let starts: Vec<Duration> = (0..runs)
        .map(|_| {
            WorkerProcess::start(config())
                .expect("a worker")
                .stats()
                .last_start
        })
        .collect();
    let mut worker = WorkerProcess::start(config()).expect("a worker");
    println!("adapter: {}", worker.capabilities().adapter);
    println!(
        "worker start (spawn to ready): median {:.1} ms over {runs}",
        ms(median(starts))
    );

    let small = job("small", lcg(16), 4096);
    let restarts: Vec<Duration> = (0..runs.min(10))
        .map(|_| {
            let killed = worker.run(&endless(), Duration::from_millis(100), &control);
            assert!(killed.is_err(), "the endless job ended by itself");
            let (done, took) = timed(|| worker.run(&small, long, &control));
            done.expect("the small job on the fresh worker");
            took
        })
        .collect();
    println!(
        "restart (deadline kill to the next small job done): median {:.1} ms over {}; kills {}",
        ms(median(restarts.clone())),
        restarts.len(),
        worker.stats().kills
    );

    let mut executor =
        Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter");
    let rounds = if full { 20_000 } else { 200 };
    let medium = job("medium", lcg(rounds), 1 << 18);
    for (label, job) in [
        ("small job (4096 u32)", &small),
        ("large job (256 Ki u32 x 20,000 rounds)", &medium),
    ] {
        let expected = executor.run(job).expect("in process").outputs;
        assert_eq!(
            worker
                .run(job, long, &control)
                .expect("in the worker")
                .outputs,
            expected
        );
        let mut here = Vec::new();
        let mut there = Vec::new();
        for _ in 0..runs {
            here.push(timed(|| executor.run(job).expect("in process")).1);
            there.push(timed(|| worker.run(job, long, &control).expect("in the worker")).1);
        }
        let (here, there) = (median(here), median(there));
        println!(
            "{label}: in process {:.3} ms, worker {:.3} ms, ratio {:.3} (median of {runs})",
            ms(here),
            ms(there),
            there.as_secs_f64() / here.as_secs_f64()
        );
    }
}
