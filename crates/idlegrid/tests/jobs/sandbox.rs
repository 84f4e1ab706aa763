//! The sandbox: jobs run in a worker process (`idlegrid worker`) that a hostile job cannot take the
//! provider down with. Every entry of the hostile corpus is refused before the GPU or contained, with
//! a one-line reason, and the same worker (or its replacement) then runs an honest job correctly.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use idlegrid::gpu::RunControl;
use idlegrid::job::{Access, BufferInit, Job, JobError, JobLimits, Pass};
use idlegrid::worker::{WorkerConfig, WorkerProcess};

const DEADLINE: Duration = Duration::from_secs(2);

fn sandbox_config() -> WorkerConfig {
    let mut config = worker_config();
    config.grace = Duration::from_secs(1);
    config
}

fn worker() -> WorkerProcess {
    WorkerProcess::start(sandbox_config()).expect("a worker on this machine's adapter")
}

fn run(worker: &mut WorkerProcess, job: &Job) -> Result<idlegrid::JobOutput, JobError> {
    worker.run(job, DEADLINE, &RunControl::default())
}

/// The honest job run after every hostile one: 256 hash chains, checked against the CPU.
fn honest_job_runs(worker: &mut WorkerProcess) {
    let output = run(worker, &hashchain(256)).expect("the honest job after a hostile one");
    assert_hashchain(&output.outputs, 64);
}

fn hostile(wgsl: &str, workgroups: [u32; 3]) -> Job {
    let mut job = job(
        &format!("{STORE}{wgsl}"),
        vec![buffer(
            "data",
            0,
            BufferInit::Zeros(1024),
            Access::ReadWrite,
            true,
        )],
        vec![Pass {
            entry: "main".into(),
            workgroups,
        }],
    );
    job.name = "hostile".into();
    job
}

#[derive(Debug)]
enum Expect {
    /// Refused by the checks: no shader compiled, no worker restarted.
    Refused(&'static str),
    /// Ran, and the worker had to be killed to stop it.
    Killed,
    /// Ran to the end without harm (bounds-checked memory).
    Ran,
}

fn corpus() -> Vec<(&'static str, Job, Expect)> {
    let nested = format!(
        "@compute @workgroup_size(1) fn main() {{ {} data[0] = 1u; {} }}",
        "{".repeat(5000),
        "}".repeat(5000)
    );
    let deep_expression = format!(
        "@compute @workgroup_size(1) fn main() {{ data[0] = {}1u{}; }}",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    let huge_source = format!(
        "@compute @workgroup_size(1) fn main() {{ {} }}",
        "data[0] = data[0] + 1u; ".repeat(20_000)
    );
    let mut sixty_four_gib = hostile(
        "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
        [1, 1, 1],
    );
    sixty_four_gib.buffers[0].init = BufferInit::Zeros(64 << 30);
    let mut unbound = hostile(
        "@group(0) @binding(1) var<storage, read_write> other: array<u32>;
         @compute @workgroup_size(1) fn main() { data[0] = other[0]; }",
        [1, 1, 1],
    );
    unbound.buffers[0].binding = 0;
    let mut wrong_access = hostile(
        "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
        [1, 1, 1],
    );
    wrong_access.buffers[0].access = Access::Read;
    let mut wrong_kind = hostile(
        "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
        [1, 1, 1],
    );
    wrong_kind.buffers[0].access = Access::Uniform;
    let mut extra_buffer = hostile(
        "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
        [1, 1, 1],
    );
    extra_buffer.buffers.push(buffer(
        "extra",
        7,
        BufferInit::Zeros(16),
        Access::ReadWrite,
        false,
    ));
    let mut too_small = hostile(
        "struct Big { values: array<u32, 4096> }
         @group(0) @binding(1) var<storage, read_write> big: Big;
         @compute @workgroup_size(1) fn main() { big.values[0] = 1u; data[0] = 1u; }",
        [1, 1, 1],
    );
    too_small.buffers.push(buffer(
        "big",
        1,
        BufferInit::Zeros(16),
        Access::ReadWrite,
        false,
    ));
    let mut out_of_bounds = hostile(
        "@group(0) @binding(1) var<storage, read_write> sentinel: array<u32>;
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
             let i = id.x * 1000003u + 4096u;
             data[i] = 0xdeadu;
             data[id.x % 256u] = data[i + 7u] + sentinel[i] + 1u;
         }",
        [64, 1, 1],
    );
    out_of_bounds.buffers.push(buffer(
        "sentinel",
        1,
        u32_bytes(&[7; 64]),
        Access::ReadWrite,
        true,
    ));
    vec![
        (
            "an endless loop",
            hostile(ENDLESS, ENDLESS_GRID),
            Expect::Killed,
        ),
        (
            "64 GiB of buffers",
            sixty_four_gib,
            Expect::Refused("the buffers' total size is 64 GiB; the limit is 1 GiB"),
        ),
        (
            "4 million workgroups",
            hostile(
                "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
                [4 << 20, 1, 1],
            ),
            Expect::Refused("workgroups"),
        ),
        (
            "a huge workgroup",
            hostile(
                "@compute @workgroup_size(1024, 1024, 64) fn main() { data[0] = 1u; }",
                [1, 1, 1],
            ),
            Expect::Refused("max_compute_invocations_per_workgroup"),
        ),
        (
            "a gigabyte of workgroup memory",
            hostile(
                "var<workgroup> scratch: array<u32, 268435456>;
                 @compute @workgroup_size(1) fn main() { scratch[0] = 1u; data[0] = scratch[0]; }",
                [1, 1, 1],
            ),
            Expect::Refused("max_compute_workgroup_storage_size"),
        ),
        (
            "5000 nested blocks",
            hostile(&nested, [1, 1, 1]),
            Expect::Refused("nesting limit"),
        ),
        (
            "20000 nested parentheses",
            hostile(&deep_expression, [1, 1, 1]),
            Expect::Refused("invalid WGSL"),
        ),
        (
            "a 480 KiB shader",
            hostile(&huge_source, [1, 1, 1]),
            Expect::Refused("the shader source is"),
        ),
        (
            "a binding without a buffer",
            unbound,
            Expect::Refused("binding 1"),
        ),
        (
            "a buffer without a binding",
            extra_buffer,
            Expect::Refused("binding 7"),
        ),
        (
            "a read-only buffer for a read_write binding",
            wrong_access,
            Expect::Refused("read_write"),
        ),
        (
            "a uniform buffer for a storage binding",
            wrong_kind,
            Expect::Refused("uniform"),
        ),
        (
            "a buffer smaller than its type",
            too_small,
            Expect::Refused("16384"),
        ),
        (
            "an entry point that is not compute",
            hostile(
                "@vertex fn main() -> @builtin(position) vec4<f32> { return vec4<f32>(0.0); }",
                [1, 1, 1],
            ),
            Expect::Refused("not @compute"),
        ),
        (
            "recursion",
            hostile(
                "fn again(x: u32) -> u32 { return again(x + 1u); }
                 @compute @workgroup_size(1) fn main() { data[0] = again(0u); }",
                [1, 1, 1],
            ),
            Expect::Refused("invalid WGSL"),
        ),
        ("out-of-bounds reads and writes", out_of_bounds, Expect::Ran),
    ]
}

#[test]
fn the_hostile_corpus_is_refused_or_contained_and_honest_work_goes_on() {
    let mut worker = worker();
    honest_job_runs(&mut worker);
    for (what, job, expect) in corpus() {
        let before = (worker.stats(), worker.executor_stats());
        let started = Instant::now();
        let result = run(&mut worker, &job);
        let took = started.elapsed();
        let after = (worker.stats(), worker.executor_stats());
        match (&expect, &result) {
            (Expect::Refused(reason), Err(error)) => {
                let message = error.to_string();
                assert!(message.contains(reason), "{what}: {message}");
                assert_eq!(message.lines().count(), 1, "{what}: {message}");
                assert!(
                    message.len() < 400,
                    "{what}: {} bytes of reason",
                    message.len()
                );
                assert_eq!(after.0.starts, before.0.starts, "{what}: worker restarted");
                assert_eq!(
                    after.1.shader_compilations, before.1.shader_compilations,
                    "{what}: refused after reaching the GPU ({message})"
                );
            }
            (Expect::Killed, Err(JobError::Deadline(deadline))) => {
                assert_eq!(*deadline, DEADLINE, "{what}");
                assert_eq!(after.0.kills, before.0.kills + 1, "{what}");
                assert!(took < DEADLINE + Duration::from_secs(5), "{what}: {took:?}");
            }
            (Expect::Ran, Ok(output)) => {
                let sentinel = u32s(named(&output.outputs, "sentinel"));
                assert!(
                    sentinel.iter().all(|&v| v == 7),
                    "{what}: out-of-bounds writes reached another buffer: {sentinel:?}"
                );
            }
            _ => panic!("{what}: expected {expect:?}, got {result:?}"),
        }
        honest_job_runs(&mut worker);
    }
    assert_eq!(worker.stats().crashes, 0, "{:?}", worker.stats());
}

#[test]
fn a_non_utf8_shader_never_reaches_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"latin1\"\nshader = \"latin1.wgsl\"\n[[buffers]]\nname = \"data\"\nbinding = 0\n\
         zeros = 256\noutput = true\n[[passes]]\nentry = \"main\"\nworkgroups = [1]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("latin1.wgsl"), b"// caf\xe9\n").unwrap();
    let error = Job::load(&dir.path().join("job.toml"), &JobLimits::default()).unwrap_err();
    assert!(error.to_string().contains("UTF-8"), "{error}");
}

#[test]
fn memory_over_the_budget_is_refused_even_when_the_buffer_limit_allows_it() {
    let mut config = sandbox_config();
    config.limits.max_total_buffer_bytes = u64::MAX;
    config.limits.memory_budget = 64 << 20;
    let mut worker = WorkerProcess::start(config).unwrap();
    let mut job = hostile(
        "@compute @workgroup_size(1) fn main() { data[0] = 1u; }",
        [1, 1, 1],
    );
    job.buffers[0].init = BufferInit::Zeros(40 << 20);
    let message = run(&mut worker, &job).unwrap_err().to_string();
    assert_eq!(
        message,
        "the job's GPU memory (buffers 40 MiB + read-back 40 MiB) is 80 MiB; \
         the limit is this machine's budget of 64 MiB"
    );
    assert_eq!(worker.executor_stats().devices_opened, 0);
    honest_job_runs(&mut worker);
}

/// Wine's version when these tests run under Wine, where a Job Object's memory limit does not hold:
/// a worker starts under a 64 MiB limit on Wine 8 (and llvmpipe's memory, the Linux driver's, is
/// outside what Wine would count).
fn wine_ignores_memory_limits() -> Option<String> {
    idlegrid::os_readings::wine_version().map(|version| format!("Wine {version}"))
}

#[test]
fn memory_past_the_address_space_limit_fails_in_the_worker_alone() {
    if let Some(wine) = wine_ignores_memory_limits() {
        eprintln!("skipped: {wine} does not enforce a Job Object's memory limit");
        return;
    }
    let mut config = sandbox_config();
    // The memory checks let this job through; only the worker's rlimit stands in its way.
    config.limits.max_total_buffer_bytes = u64::MAX;
    config.limits.memory_budget = 8 << 30;
    config.address_space = Some(2 << 30);
    let mut worker = WorkerProcess::start(config).unwrap();
    assert_eq!(
        worker.stats().starts,
        1,
        "the worker started under its limit"
    );
    let declarations: String = (0..8)
        .map(|i| format!("@group(0) @binding({i}) var<storage, read_write> b{i}: array<u32>;\n"))
        .collect();
    let body: String = (0..8).map(|i| format!("b{i}[0] = 1u; ")).collect();
    let mut job = job(
        &format!("{declarations}@compute @workgroup_size(1) fn main() {{ {body} }}"),
        (0..8)
            .map(|i| {
                buffer(
                    &format!("b{i}"),
                    i,
                    BufferInit::Zeros(120 << 20),
                    Access::ReadWrite,
                    true,
                )
            })
            .collect(),
        vec![pass("main", 1)],
    );
    job.name = "greedy".into();
    let error = run(&mut worker, &job).expect_err("1.9 GiB of buffers in a 2 GiB address space");
    let message = error.to_string();
    assert_eq!(message.lines().count(), 1, "{message}");
    honest_job_runs(&mut worker);
}

#[test]
fn the_worker_stays_warm_between_jobs() {
    let mut worker = worker();
    let pid = worker.pid();
    honest_job_runs(&mut worker);
    let first = worker.executor_stats();
    honest_job_runs(&mut worker);
    let second = worker.executor_stats();
    assert_eq!(worker.pid(), pid, "one process for both jobs");
    assert_eq!(worker.stats().starts, 1);
    assert_eq!(second.devices_opened, 1);
    assert_eq!(second.shader_compilations, first.shader_compilations);
    assert!(second.pipeline_cache_hits > first.pipeline_cache_hits);
    assert_eq!(second.jobs_run, 2);
}

#[test]
fn a_worker_killed_mid_job_is_replaced_and_the_job_run_again() {
    let mut worker = worker();
    honest_job_runs(&mut worker);
    let victim = worker.pid().unwrap();
    let control = std::sync::Arc::new(RunControl::default());
    // Killed once the job is under way: after its first pass, long before its 64th.
    let killer = {
        let control = std::sync::Arc::clone(&control);
        std::thread::spawn(move || {
            while control.passes_done() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            kill(victim);
        })
    };
    let output = worker.run(&long_hashchain(), Duration::from_secs(30), &control);
    killer.join().unwrap();
    let output = output.expect("run again on a fresh worker");
    assert_hashchain(&output.outputs, 64);
    assert_eq!(worker.stats().crashes, 1, "{:?}", worker.stats());
    assert_ne!(worker.pid(), Some(victim));
    honest_job_runs(&mut worker);
}

// Finds workers through /proc.
#[cfg(target_os = "linux")]
#[test]
fn a_job_that_keeps_killing_its_worker_is_reported_with_the_reason() {
    let mut config = sandbox_config();
    config.env.push((MARK.into(), "doomed".into()));
    let mut worker = WorkerProcess::start(config).unwrap();
    honest_job_runs(&mut worker);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pids = doomed_worker_killer(std::sync::Arc::clone(&stop));
    let error = worker
        .run(
            &long_hashchain(),
            Duration::from_secs(30),
            &RunControl::default(),
        )
        .unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::Release);
    pids.join().unwrap();
    assert_eq!(
        error.to_string(),
        "the GPU worker process stopped: killed by signal 9 (SIGKILL)"
    );
    assert_eq!(worker.stats().crashes, 3);
}

#[test]
fn progress_comes_back_from_the_worker_pass_by_pass() {
    let mut worker = worker();
    let control = std::sync::Arc::new(RunControl::default());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (control, seen, done) = (control.clone(), seen.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                seen.lock().unwrap().push(control.passes_done());
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let output = worker
        .run(&long_hashchain(), Duration::from_secs(30), &control)
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Release);
    watcher.join().unwrap();
    assert_hashchain(&output.outputs, 64);
    assert_eq!(control.passes_done(), 64);
    let seen = seen.lock().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went back");
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert!(distinct.len() > 3, "progress seen only as {distinct:?}");
}

#[test]
fn a_worker_outlives_the_thread_that_started_it() {
    // Providers start workers from pooled threads that end when idle; the worker must not go with
    // its thread, only with its provider.
    let mut worker = std::thread::spawn(worker).join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    honest_job_runs(&mut worker);
    assert_eq!((worker.stats().starts, worker.stats().crashes), (1, 0));
}

#[test]
fn a_cancel_reaches_the_job_in_the_worker() {
    let mut worker = worker();
    let control = std::sync::Arc::new(RunControl::default());
    let canceller = {
        let control = std::sync::Arc::clone(&control);
        // Once the job is under way: after its first pass, long before its 64th.
        std::thread::spawn(move || {
            while control.passes_done() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            control.cancel();
        })
    };
    let error = worker
        .run(&long_hashchain(), Duration::from_secs(30), &control)
        .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(error, JobError::Cancelled(_)), "{error}");
    assert_eq!(
        worker.stats().starts,
        1,
        "cancelling never restarts the worker"
    );
    honest_job_runs(&mut worker);
}

#[test]
fn a_worker_that_cannot_start_under_its_address_space_limit_starts_without_it() {
    if let Some(wine) = wine_ignores_memory_limits() {
        eprintln!("skipped: {wine} does not enforce a Job Object's memory limit");
        return;
    }
    let mut config = sandbox_config();
    config.address_space = Some(64 << 20);
    let mut worker = WorkerProcess::start(config).unwrap();
    assert_eq!(worker.stats().starts, 2);
    honest_job_runs(&mut worker);
}

#[test]
fn a_missing_worker_program_is_a_clear_error() {
    let error = match WorkerProcess::start(WorkerConfig::program("/nonexistent/idlegrid")) {
        Ok(_) => panic!("started a worker from nowhere"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.starts_with(
            "the GPU worker process stopped: it could not be started from /nonexistent/idlegrid"
        ),
        "{error}"
    );
}

/// The hash chain example with 4096 chains and 64 passes of 2048 rounds: a second or so on llvmpipe.
fn long_hashchain() -> Job {
    hashchain(4096)
}

/// Marks a test's workers, as `MARK=name`, so that it kills only its own: other tests' run beside them.
const MARK: &str = "IDLEGRID_TEST_DOOMED";

// Finds workers through /proc.
#[cfg(target_os = "linux")]
/// Kills every marked worker of this test process, again and again, until told to stop.
fn doomed_worker_killer(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            for pid in marked_children("doomed") {
                kill(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

// Finds workers through /proc.
#[cfg(target_os = "linux")]
fn marked_children(mark: &str) -> Vec<u32> {
    let wanted = format!("{MARK}={mark}");
    let me = std::process::id();
    let parent_of = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse::<u32>()
            .ok()
    };
    let marked = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == wanted.as_bytes()))
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(me) && marked(pid))
        .collect()
}

#[cfg(unix)]
fn kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

/// A process we wait on: a handle that can wait for it to end (SYNCHRONIZE), closed on drop.
#[cfg(windows)]
struct WorkerHandle {
    pid: u32,
    handle: windows_sys::Win32::Foundation::HANDLE,
}

#[cfg(windows)]
impl WorkerHandle {
    fn open(pid: u32) -> WorkerHandle {
        use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_SYNCHRONIZE};
        // SAFETY: returns null or a handle this struct closes.
        let handle = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
        assert!(!handle.is_null(), "the worker {pid} can be opened");
        WorkerHandle { pid, handle }
    }

    fn ends_within(&self, limit: Duration) -> bool {
        use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
        use windows_sys::Win32::System::Threading::WaitForSingleObject;
        let millis = u32::try_from(limit.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: the handle is open until drop.
        unsafe { WaitForSingleObject(self.handle, millis) == WAIT_OBJECT_0 }
    }
}

#[cfg(windows)]
impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once, here.
        unsafe { windows_sys::Win32::Foundation::CloseHandle(self.handle) };
    }
}

// Directly rather than through taskkill, which under Wine takes longer to start than the rest of a
// job takes once the executor groups its passes (gpu::Watchdog).
#[cfg(windows)]
fn kill(pid: u32) {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};
    // SAFETY: the handle is checked, used once and closed.
    unsafe {
        let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
        if !process.is_null() {
            TerminateProcess(process, 1);
            CloseHandle(process);
        }
    }
}

/// A provider whose jobs run in a marked worker process, on a real pool on 127.0.0.1.
fn provider_in_worker(ticket: &str, dir: &std::path::Path, mark: &str) -> net::Running {
    let mut config = sandbox_config();
    config.env.push((MARK.into(), mark.into()));
    let worker = WorkerProcess::start(config).unwrap();
    net::start_provider_on(
        ticket,
        dir,
        net::provider_config(),
        idlegrid::idle::Verdict::RUN,
        worker.into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endless_job_fails_within_its_deadline_unpaid_and_the_provider_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let owner = iroh::SecretKey::generate();
    let lease = Duration::from_secs(6);
    let config = idlegrid::pool::PoolConfig {
        lease_time: lease,
        max_failures: 1,
        ..net::test_config()
    };
    let pool = net::start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let provider = provider_in_worker(&pool.ticket(), &dir.path().join("provider"), "endless");
    let client = idlegrid::client::Client::connect(&pool.ticket(), owner)
        .await
        .unwrap();

    let mut endless = hostile(ENDLESS, ENDLESS_GRID);
    endless.name = "endless".into();
    let started = Instant::now();
    let failed = client.submit(&endless).await.unwrap().wait().await;
    let took = started.elapsed();
    let Err(idlegrid::client::ClientError::Failed(reason)) = failed else {
        panic!("the endless job should fail, got {failed:?}");
    };
    // The provider's deadline is the lease less its margin for returning the result: 4 s.
    assert!(took < Duration::from_secs(4 + 10), "failed after {took:?}");
    assert!(reason.contains("ran past its deadline of 4 s"), "{reason}");

    let honest = client.submit(&hashchain(256)).await.unwrap().wait().await;
    assert_hashchain(&honest.expect("the honest job after the endless one"), 64);
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1, "only the honest job is paid");
    assert_eq!(receipts[0].body.provider, provider.key.public());
    let unpaid = provider
        .ledger
        .lock()
        .unwrap()
        .earnings()
        .unwrap()
        .unpaid_work;
    assert!(
        unpaid
            .iter()
            .any(|w| w.job_name == "endless" && w.reason.contains("deadline")),
        "{unpaid:?}"
    );
    client.close().await;
    net::stop_all(vec![provider]).await;
    pool.shutdown().await;
}

// Finds workers through /proc.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_worker_mid_batch_loses_no_job_and_pays_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let owner = iroh::SecretKey::generate();
    let pool = net::start_pool(&dir.path().join("pool"), owner.clone(), net::test_config()).await;
    let provider = provider_in_worker(&pool.ticket(), &dir.path().join("provider"), "batch");
    let client = idlegrid::client::Client::connect(&pool.ticket(), owner)
        .await
        .unwrap();
    let sizes: Vec<u64> = (0..6).map(|i| 4096 - 64 * i).collect();
    let mut handles = Vec::new();
    for &chains in &sizes {
        handles.push(client.submit(&hashchain(chains)).await.unwrap());
    }

    // One kill per lease, at a random moment of its run.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        | 1;
    let killer = tokio::spawn(kill_once_per_lease(provider.status.clone(), seed));
    for (handle, chains) in handles.into_iter().zip(&sizes) {
        let outputs = handle.wait().await;
        let outputs = outputs.unwrap_or_else(|e| panic!("{chains} chains (seed {seed}): {e}"));
        assert_eq!(named(&outputs, "chains").len() as u64, chains * 4);
        assert_hashchain(&outputs, 64);
    }
    let kills = killer.await.unwrap();
    assert!(kills >= 3, "only {kills} kills landed (seed {seed})");

    let receipts = pool.pool.receipts().unwrap();
    let mut jobs: Vec<_> = receipts.iter().map(|r| r.body.job).collect();
    jobs.sort();
    jobs.dedup();
    assert_eq!(
        receipts.len(),
        sizes.len(),
        "one receipt per job (seed {seed})"
    );
    assert_eq!(jobs.len(), sizes.len(), "no job paid twice (seed {seed})");
    let settled = net::eventually(Duration::from_secs(10), || {
        provider
            .ledger
            .lock()
            .unwrap()
            .earnings()
            .unwrap()
            .receipts
            .len()
            == sizes.len()
    })
    .await;
    assert!(settled, "the provider's ledger holds each receipt once");
    client.close().await;
    net::stop_all(vec![provider]).await;
    pool.shutdown().await;
}

// Finds workers through /proc.
#[cfg(target_os = "linux")]
/// Each time the provider starts a new lease, waits a random 0–400 ms and kills its worker. Returns
/// how many kills hit a worker, once the provider has been idle for two seconds.
async fn kill_once_per_lease(
    mut status: tokio::sync::watch::Receiver<idlegrid::provider::ProviderStatus>,
    mut seed: u32,
) -> usize {
    use idlegrid::provider::ProviderState;
    let mut hit = std::collections::HashSet::new();
    let mut kills = 0;
    loop {
        let lease = match &status.borrow_and_update().state {
            ProviderState::Working { lease, .. } => Some(*lease),
            _ => None,
        };
        if lease.is_some_and(|l| hit.insert(l)) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            tokio::time::sleep(Duration::from_millis(u64::from(seed % 400))).await;
            let doomed = marked_children("batch");
            kills += doomed.len();
            doomed.into_iter().for_each(kill);
        }
        match tokio::time::timeout(Duration::from_secs(2), status.changed()).await {
            Ok(Ok(())) => {}
            _ => return kills,
        }
    }
}

/// Windows: a parent killed outright (no chance to stop its worker) takes the worker with it. Three
/// things see to it: the worker's Job Object kills it when the parent's handle closes, the worker
/// watches its parent and ends with it, and a job worker ends when its stdin closes. Under Wine only
/// the last two act.
#[cfg(windows)]
#[test]
fn a_worker_dies_with_its_parent_however_the_parent_dies() {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"endless\"\nwgsl = '''{STORE}{ENDLESS}'''\n\
             [[buffers]]\nname = \"data\"\nbinding = 0\nzeros = 1024\noutput = true\n\
             [[passes]]\nentry = \"main\"\nworkgroups = {ENDLESS_GRID:?}\n"
        ),
    )
    .unwrap();
    let mut parent = idlegrid_command()
        .args(["run", "--deadline", "600", "--out"])
        .arg(dir.path())
        .arg(&job)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent_pid = Pid::from_u32(parent.id());
    let mut system = System::new().unwrap();
    let children = |system: &mut System| -> Vec<Pid> {
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing(),
        );
        system
            .processes()
            .values()
            .filter(|p| p.parent() == Some(parent_pid))
            .map(|p| p.pid())
            .collect()
    };
    let started = Instant::now();
    let worker = loop {
        if let Some(&worker) = children(&mut system).first() {
            break worker;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no worker was started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // A handle of our own, taken before the parent dies: sysinfo's view of a process can outlive it
    // (it holds handles of its own), a wait on the process itself cannot.
    let worker = WorkerHandle::open(worker.as_u32());
    if let Some(version) = idlegrid::os_readings::wine_version() {
        // Under Wine a process whose parent dies while Wine is still starting it hangs in that start,
        // before any of our code runs (Windows itself has the Job Object for that moment); so the
        // parent dies once the worker is up and running the job.
        eprintln!("under Wine {version}: the parent is killed once its worker is running");
        std::thread::sleep(Duration::from_secs(5));
    }
    parent.kill().unwrap();
    parent.wait().unwrap();
    if !worker.ends_within(Duration::from_secs(30)) {
        // Not left behind: it would hold this test's output open.
        kill(worker.pid);
        panic!("the worker outlived its parent");
    }
}
