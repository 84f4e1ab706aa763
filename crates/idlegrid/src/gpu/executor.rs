//! The executor: runs a checked job on one adapter, pass by pass, and reads its outputs back.
//!
//! Each pass is its own submission so a [`RunControl`] can stop the job between passes (the person came
//! back) or pace it; a pass itself cannot be pre-empted on every driver, which is why long jobs are
//! split into passes by their authors. Under a GPU watchdog (Windows' TDR) passes are grouped into
//! submissions that fit its budget instead, and a pass that alone runs too long is refused (see
//! `watchdog`).
//! It keeps one device open between jobs (reopened with larger limits only when a job needs them, and
//! afresh after a device loss) and caches shader interfaces and pipelines by the BLAKE3 hash of the
//! source, so a repeated job skips parsing and compilation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wgpu::util::DeviceExt;

use super::adapter::{self, AdapterChoice, SkippedAdapter};
use super::device::{GpuDevice, job_error};
use super::watchdog::{Measured, Watchdog};
use super::{requirements, self_test};
use crate::job::{self, Access, BufferInit, Job, JobError, JobLimits, ShaderInterface};

/// Interfaces kept for repeated jobs; beyond this the cache starts again (jobs rarely vary that much).
const INTERFACE_CACHE_SIZE: usize = 256;

/// One output buffer, read back after the last pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputBuffer {
    pub name: String,
    pub bytes: Vec<u8>,
    pub blake3: blake3::Hash,
}

/// How `JobOutput::gpu_time` was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// GPU timestamp queries around the passes.
    Timestamps,
    /// Wall time from submission to completion (the adapter has no timestamp queries).
    Wall,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobOutput {
    pub outputs: Vec<OutputBuffer>,
    pub gpu_time: Duration,
    pub timing: Timing,
    pub adapter: String,
}

/// Counters a person or a test can read to see what the executor did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorStats {
    pub jobs_run: u64,
    pub shader_compilations: u64,
    pub pipelines_built: u64,
    pub pipeline_cache_hits: u64,
    pub devices_opened: u64,
    /// Submissions to the GPU queue: one a pass, or fewer where the watchdog groups passes.
    #[serde(default)]
    pub submissions: u64,
}

/// Steers a run from another thread (cancel it between passes, or pace it) and follows its progress.
#[derive(Default)]
pub struct RunControl {
    cancelled: AtomicBool,
    gentle: AtomicBool,
    passes_done: AtomicU32,
    /// Told of every change: how a run in a worker process hears of steering, and its parent of
    /// progress.
    listener: Mutex<Option<Listener>>,
}

/// What changed on a [`RunControl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Steered { cancel: bool, gentle: bool },
    Progress { passes_done: u32 },
}

type Listener = Box<dyn Fn(Change) + Send + Sync>;

impl RunControl {
    /// Stops the run after the pass now on the GPU.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.steered();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Gentle: after each pass the GPU is left idle as long as the pass took (half the load).
    pub fn set_gentle(&self, gentle: bool) {
        let was = self.gentle.swap(gentle, Ordering::AcqRel);
        if was != gentle {
            self.steered();
        }
    }

    pub fn is_gentle(&self) -> bool {
        self.gentle.load(Ordering::Acquire)
    }

    /// Passes finished so far.
    pub fn passes_done(&self) -> u32 {
        self.passes_done.load(Ordering::Acquire)
    }

    /// Notes that `passes_done` passes have finished (the executor after each pass; a worker's parent
    /// relaying its child).
    pub fn record_progress(&self, passes_done: u32) {
        self.passes_done.store(passes_done, Ordering::Release);
        self.tell(Change::Progress { passes_done });
    }

    /// Calls `listener` on every change from now on, replacing any other.
    pub fn listen(&self, listener: impl Fn(Change) + Send + Sync + 'static) {
        *self.lock_listener() = Some(Box::new(listener));
    }

    pub fn stop_listening(&self) {
        *self.lock_listener() = None;
    }

    fn steered(&self) {
        self.tell(Change::Steered {
            cancel: self.is_cancelled(),
            gentle: self.is_gentle(),
        });
    }

    fn tell(&self, change: Change) {
        if let Some(listener) = self.lock_listener().as_ref() {
            listener(change);
        }
    }

    fn lock_listener(&self) -> std::sync::MutexGuard<'_, Option<Listener>> {
        crate::sync::lock(&self.listener)
    }
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("cancelled", &self.is_cancelled())
            .field("gentle", &self.is_gentle())
            .field("passes_done", &self.passes_done())
            .finish_non_exhaustive()
    }
}

pub struct Executor {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    limits: JobLimits,
    /// Free system memory when the executor started, for a CPU adapter whose buffers live there.
    system_available: Option<u64>,
    device: Option<GpuDevice>,
    interfaces: HashMap<blake3::Hash, Arc<ShaderInterface>>,
    stats: ExecutorStats,
    skipped: Vec<SkippedAdapter>,
    /// How passes are grouped into submissions where the driver has a watchdog (Windows).
    watchdog: Option<Watchdog>,
}

impl Executor {
    /// An executor on the best adapter `choice` allows that opens a device and passes the self-test,
    /// with the default job limits. The adapters passed over are in [`Executor::skipped_adapters`].
    /// The self-test's device is given back: the first job opens its own, with the limits it needs.
    pub fn new(choice: &AdapterChoice) -> Result<Executor, JobError> {
        let candidates = adapter::ranked(adapter::all_adapters(), choice)?;
        let (mut executor, skipped) = adapter::first_working(
            candidates,
            |candidate| adapter::describe(&candidate.get_info()),
            |candidate| {
                let mut executor = Executor::with_adapter(candidate, JobLimits::default());
                self_test::run(&mut executor)?;
                executor.release_device();
                executor.stats = ExecutorStats::default();
                Ok(executor)
            },
        )?;
        executor.skipped = skipped;
        Ok(executor)
    }

    pub fn with_adapter(adapter: wgpu::Adapter, limits: JobLimits) -> Executor {
        let info = adapter.get_info();
        tracing::info!(adapter = %adapter::describe(&info), "executor ready");
        let system_available = (info.device_type == wgpu::DeviceType::Cpu)
            .then(|| {
                let mut system = sysinfo::System::new().ok()?;
                system.refresh_memory();
                // 0 is no reading (Wine gives it now and then), not a full machine: no budget from it.
                Some(system.available_memory()).filter(|&bytes| bytes > 0)
            })
            .flatten();
        let watchdog = Watchdog::for_adapter(info.device_type);
        Executor {
            adapter,
            info,
            limits,
            system_available,
            device: None,
            interfaces: HashMap::new(),
            stats: ExecutorStats::default(),
            skipped: Vec::new(),
            watchdog,
        }
    }

    /// The better-ranked adapters [`Executor::new`] passed over because they did not work, and why.
    pub fn skipped_adapters(&self) -> &[SkippedAdapter] {
        &self.skipped
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    pub fn limits(&self) -> &JobLimits {
        &self.limits
    }

    /// The GPU watchdog the executor plans submissions for: Windows' over a GPU there, none elsewhere.
    pub fn watchdog(&self) -> Option<Watchdog> {
        self.watchdog
    }

    /// Plans the submissions of the jobs that follow for `watchdog` (tests use it on any platform),
    /// or pass by pass with none.
    pub fn set_watchdog(&mut self, watchdog: Option<Watchdog>) {
        self.watchdog = watchdog;
    }

    /// Changes the limits for the jobs that follow (a provider sets each lease's deadline, say).
    pub fn set_limits(&mut self, limits: JobLimits) {
        self.limits = limits;
    }

    /// Memory one job may take here: the limits' budget, lowered to what the adapter has.
    pub fn memory_budget(&self) -> u64 {
        requirements::memory_budget(
            self.limits.memory_budget,
            self.info.device_type,
            self.system_available,
        )
    }

    pub fn stats(&self) -> ExecutorStats {
        self.stats
    }

    /// Whether a device (and the buffers and pipelines on it) is held.
    pub fn has_device(&self) -> bool {
        self.device.is_some()
    }

    /// Gives the device and its memory back to the system; the next job opens a fresh one.
    pub fn release_device(&mut self) -> bool {
        let held = self.device.take().is_some();
        if held {
            tracing::info!(adapter = %self.info.name, "released the GPU device");
        }
        held
    }

    /// Checks `job` (without touching the GPU), then runs it and returns its outputs.
    pub fn run(&mut self, job: &Job) -> Result<JobOutput, JobError> {
        self.run_with(job, &RunControl::default())
    }

    /// [`Executor::run`], stopping early with [`JobError::Cancelled`] once `control` is cancelled.
    pub fn run_with(&mut self, job: &Job, control: &RunControl) -> Result<JobOutput, JobError> {
        let source_hash = blake3::hash(job.wgsl.as_bytes());
        let interface = self.check(job, source_hash)?;
        let needed = requirements::needed_limits(job, &interface, &self.adapter.limits());
        requirements::check_adapter(&needed, &self.adapter.limits(), &self.info.name)?;
        requirements::check_memory(job, self.memory_budget())?;
        self.ensure_device(&needed)?;
        let result = self.run_on_device(job, &interface, source_hash, control);
        if let Err(JobError::Deadline(_)) = result {
            // The GPU may still be busy with the job; this device cannot be trusted for the next one.
            self.device = None;
        }
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, JobError::Cancelled(_)))
        {
            self.forget_shader(source_hash);
        }
        if let Some(gpu) = &self.device
            && let Some(reason) = gpu.lost_reason()
        {
            tracing::warn!(%reason, "dropping lost device; the next job gets a fresh one");
            self.device = None;
            return Err(JobError::DeviceLost(reason));
        }
        self.stats.jobs_run += u64::from(result.is_ok());
        result
    }

    /// Every check of [`job::check`], with the shader's interface cached by source hash.
    fn check(
        &mut self,
        job: &Job,
        source_hash: blake3::Hash,
    ) -> Result<Arc<ShaderInterface>, JobError> {
        job::check_without_shader(job, &self.limits)?;
        let interface = match self.interfaces.get(&source_hash) {
            Some(interface) => Arc::clone(interface),
            None => {
                let interface = Arc::new(ShaderInterface::from_wgsl(&job.wgsl, &job.source_name)?);
                if self.interfaces.len() >= INTERFACE_CACHE_SIZE {
                    self.interfaces.clear();
                }
                self.interfaces.insert(source_hash, Arc::clone(&interface));
                interface
            }
        };
        job::check_fit(job, &interface)?;
        Ok(interface)
    }

    /// Keeps the open device when it already allows `needed`; otherwise opens one that allows both.
    fn ensure_device(&mut self, needed: &wgpu::Limits) -> Result<(), JobError> {
        if let Some(gpu) = &self.device
            && needed.check_limits(&gpu.limits)
        {
            return Ok(());
        }
        let limits = match &self.device {
            Some(gpu) => gpu.limits.clone().or_better_values_from(needed),
            None => needed.clone(),
        };
        self.device = None;
        self.device = Some(GpuDevice::open(&self.adapter, limits)?);
        self.stats.devices_opened += 1;
        Ok(())
    }

    fn forget_shader(&mut self, source_hash: blake3::Hash) {
        if let Some(gpu) = &mut self.device {
            gpu.forget(source_hash);
        }
    }

    fn run_on_device(
        &mut self,
        job: &Job,
        interface: &ShaderInterface,
        source_hash: blake3::Hash,
        control: &RunControl,
    ) -> Result<JobOutput, JobError> {
        let Some(gpu) = self.device.as_mut() else {
            return Err(JobError::Gpu("no device is open".into()));
        };
        let device = gpu.device.clone();
        let queue = gpu.queue.clone();
        let timestamps = gpu.timestamps;
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);

        let (shader, compiled_now) = gpu.shader(source_hash, &job.wgsl, interface);
        self.stats.shader_compilations += u64::from(compiled_now);
        let buffers = create_buffers(&device, job);
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("job buffers"),
            layout: &shader.bind_group_layout,
            entries: &job
                .buffers
                .iter()
                .zip(&buffers)
                .map(|(spec, buffer)| wgpu::BindGroupEntry {
                    binding: spec.binding,
                    resource: buffer.as_entire_binding(),
                })
                .collect::<Vec<_>>(),
        });
        let queries = timestamps.then(|| Timestamps::new(&device));
        let last = job.passes.len() - 1;
        let waits = Waits {
            started: Instant::now(),
            deadline: self.limits.deadline,
            watchdog: self.watchdog,
        };
        let mut readbacks = Vec::new();
        let mut in_flight: Option<InFlight> = None;
        let mut measured = None;
        let mut next = 0;
        while next <= last {
            if let Some(previous) = in_flight.take() {
                let ran = waits.finish(&device, previous, control, job)?;
                if control.is_cancelled() {
                    return Err(JobError::Cancelled(format!(
                        "stopped after pass {next} of {}",
                        last + 1
                    )));
                }
                if control.is_gentle() {
                    std::thread::sleep(ran.elapsed);
                }
                measured = Some(ran);
            }
            let count = match self.watchdog {
                Some(watchdog) => watchdog.passes_in_next(measured, last + 1 - next),
                None => 1,
            };
            let passes = next..next + count;
            let mut encoder = device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("job") });
            for i in passes.clone() {
                let pass = &job.passes[i];
                let (pipeline, built_now) = shader.pipeline(&device, &pass.entry);
                self.stats.pipelines_built += u64::from(built_now);
                self.stats.pipeline_cache_hits += u64::from(!built_now);
                let mut compute = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&pass.entry),
                    timestamp_writes: queries.as_ref().and_then(|q| q.writes(i == 0, i == last)),
                });
                compute.set_pipeline(pipeline);
                compute.set_bind_group(0, &bind_group, &[]);
                let [x, y, z] = pass.workgroups;
                compute.dispatch_workgroups(x, y, z);
            }
            if passes.end > last {
                readbacks = read_back(&device, &mut encoder, job, &buffers);
                if let Some(queries) = &queries {
                    queries.resolve(&mut encoder);
                }
            }
            in_flight = Some(InFlight {
                index: queue.submit([encoder.finish()]),
                at: Instant::now(),
                passes,
            });
            self.stats.submissions += 1;
            next += count;
        }
        let mapped = map_all(
            readbacks
                .iter()
                .map(|(_, b)| b)
                .chain(queries.as_ref().map(|q| &q.readback)),
        );

        let scope_error = pollster::block_on(out_of_memory.pop())
            .or_else(|| pollster::block_on(validation.pop()));
        if let Some(error) = scope_error
            .as_ref()
            .map(job_error)
            .or_else(|| gpu.take_uncaptured().into_iter().next())
        {
            return Err(error);
        }
        if let Some(final_submission) = in_flight {
            waits.finish(&device, final_submission, control, job)?;
        }
        let wall = waits.started.elapsed();
        mapped.wait()?;

        let outputs = readbacks
            .iter()
            .map(|(name, staging)| {
                let bytes = read_mapped(staging)?;
                Ok(OutputBuffer {
                    name: name.clone(),
                    blake3: blake3::hash(&bytes),
                    bytes,
                })
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        let gpu_time = match &queries {
            Some(q) => q.elapsed(queue.get_timestamp_period())?,
            None => wall,
        };
        Ok(JobOutput {
            outputs,
            gpu_time,
            timing: if queries.is_some() {
                Timing::Timestamps
            } else {
                Timing::Wall
            },
            adapter: self.info.name.clone(),
        })
    }
}

/// A submission on the GPU: its index, when it was submitted, and the passes in it.
struct InFlight {
    index: wgpu::SubmissionIndex,
    at: Instant,
    passes: std::ops::Range<usize>,
}

/// What waiting for a job's submissions goes by.
struct Waits {
    /// When the job's first submission went to the GPU; the deadline counts from it.
    started: Instant,
    deadline: Duration,
    watchdog: Option<Watchdog>,
}

impl Waits {
    /// Waits for `submission` within the job's deadline, notes the progress, and measures it; a
    /// single dispatch the watchdog finds too long ends the job.
    fn finish(
        &self,
        device: &wgpu::Device,
        submission: InFlight,
        control: &RunControl,
        job: &Job,
    ) -> Result<Measured, JobError> {
        wait_for(device, submission.index, self.started, self.deadline)?;
        let measured = Measured {
            passes: submission.passes.len(),
            elapsed: submission.at.elapsed(),
        };
        control.record_progress(u32::try_from(submission.passes.end).unwrap_or(u32::MAX));
        if let Some(took) = self.watchdog.and_then(|w| w.too_long(measured))
            && let Some(limit) = self.watchdog.map(|w| w.dispatch_limit)
        {
            return Err(JobError::DispatchTooLong {
                pass: job.passes[submission.passes.start].entry.clone(),
                took,
                limit,
            });
        }
        Ok(measured)
    }
}

/// Waits for `submission` within what is left of `deadline` from `started`.
fn wait_for(
    device: &wgpu::Device,
    submission: wgpu::SubmissionIndex,
    started: Instant,
    deadline: Duration,
) -> Result<(), JobError> {
    match device.poll(wgpu::PollType::Wait {
        submission_index: Some(submission),
        timeout: Some(deadline.saturating_sub(started.elapsed())),
    }) {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(JobError::Deadline(deadline)),
        Err(e) => Err(JobError::Gpu(e.to_string())),
    }
}

/// Copies each output buffer into a mappable one, after the last pass.
fn read_back(
    device: &wgpu::Device,
    encoder: &mut wgpu::CommandEncoder,
    job: &Job,
    buffers: &[wgpu::Buffer],
) -> Vec<(String, wgpu::Buffer)> {
    job.buffers
        .iter()
        .zip(buffers)
        .filter(|(spec, _)| spec.output)
        .map(|(spec, buffer)| {
            let staging = staging_buffer(device, &spec.name, buffer.size());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
            (spec.name.clone(), staging)
        })
        .collect()
}

fn create_buffers(device: &wgpu::Device, job: &Job) -> Vec<wgpu::Buffer> {
    job.buffers
        .iter()
        .map(|spec| {
            let usage = match spec.access {
                Access::Uniform => wgpu::BufferUsages::UNIFORM,
                Access::Read | Access::ReadWrite => wgpu::BufferUsages::STORAGE,
            } | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST;
            match &spec.init {
                BufferInit::Bytes(bytes) => {
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(&spec.name),
                        contents: bytes,
                        usage,
                    })
                }
                // wgpu zero-fills new buffers; a blob not yet fetched was refused by the checks.
                BufferInit::Zeros(size) | BufferInit::Blob { size, .. } => {
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&spec.name),
                        size: *size,
                        usage,
                        mapped_at_creation: false,
                    })
                }
            }
        })
        .collect()
}

fn staging_buffer(device: &wgpu::Device, label: &str, size: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Outstanding `map_async` requests, checked once the device has been polled.
struct Mapping {
    results: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
    count: usize,
}

fn map_all<'a>(buffers: impl Iterator<Item = &'a wgpu::Buffer>) -> Mapping {
    let (sender, results) = mpsc::channel();
    let mut count = 0;
    for buffer in buffers {
        let sender = sender.clone();
        buffer.map_async(wgpu::MapMode::Read, .., move |result| {
            // The receiver outlives every callback, which run inside `poll`.
            let _ = sender.send(result);
        });
        count += 1;
    }
    Mapping { results, count }
}

impl Mapping {
    fn wait(self) -> Result<(), JobError> {
        for _ in 0..self.count {
            match self.results.recv_timeout(Duration::from_secs(1)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(JobError::Gpu(format!("reading results back failed: {e}")));
                }
                Err(_) => return Err(JobError::Gpu("reading results back did not finish".into())),
            }
        }
        Ok(())
    }
}

fn read_mapped(buffer: &wgpu::Buffer) -> Result<Vec<u8>, JobError> {
    let bytes = buffer
        .get_mapped_range(..)
        .map_err(|e| JobError::Gpu(format!("reading results back failed: {e}")))?
        .to_vec();
    buffer.unmap();
    Ok(bytes)
}

/// Two timestamps: the start of the first pass and the end of the last.
struct Timestamps {
    set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl Timestamps {
    const BYTES: u64 = 16;

    fn new(device: &wgpu::Device) -> Timestamps {
        Timestamps {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("job time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolved: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("job time"),
                size: Self::BYTES,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: staging_buffer(device, "job time", Self::BYTES),
        }
    }

    /// The writes for one pass: none for the passes between the first and the last.
    fn writes(&self, first: bool, last: bool) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        (first || last).then_some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: first.then_some(0),
            end_of_pass_write_index: last.then_some(1),
        })
    }

    fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.set, 0..2, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, Self::BYTES);
    }

    fn elapsed(&self, period_ns: f32) -> Result<Duration, JobError> {
        let bytes = read_mapped(&self.readback)?;
        let tick =
            |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let ticks = tick(1).saturating_sub(tick(0));
        Ok(Duration::from_nanos(
            (ticks as f64 * f64::from(period_ns)) as u64,
        ))
    }
}
