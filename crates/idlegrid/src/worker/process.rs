//! The parent's side of the worker: starts it, hands it jobs, steers them, and kills and restarts it
//! when a job overstays its deadline, the child dies, or its device is lost. Jobs are answered in
//! order, one at a time; a reader thread turns the child's stdout into a channel so every wait has a
//! timeout.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::containment::{self, Containment};
use super::wire::{self, FromWorker, ToWorker};
use super::{ADAPTER_ENV, ADDRESS_SPACE_ENV};
use crate::gpu::{Change, ExecutorStats, JobOutput, RunControl};
use crate::job::{Job, JobError, JobLimits};
use crate::protocol::{Capabilities, ProtocolError};
use crate::sync::lock;

/// Runs of one job when its worker keeps dying under it.
pub const ATTEMPTS: u32 = 3;

/// Turns off Mesa's device-select Vulkan layer (its manifest's `disable_environment`).
const NO_DEVICE_SELECT_ENV: &str = "NODEVICE_SELECT";

/// How to start a worker and what it may do.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Set in the worker's environment, beside what it inherits.
    pub env: Vec<(OsString, OsString)>,
    /// The adapter whose name contains this; the best one when `None`.
    pub adapter: Option<String>,
    /// Every job's limits; a lease's deadline lowers `deadline` per job.
    pub limits: JobLimits,
    /// The worker's memory limit: its address space on Linux, its committed memory on Windows. If the
    /// driver cannot start under it, the worker is started again without it (and a warning logged)
    /// rather than not at all.
    pub address_space: Option<u64>,
    /// Past a job's deadline, the child has this long to answer before it is killed (its own
    /// executor normally gives up at the deadline itself).
    pub grace: Duration,
    /// Opening the adapter and device; drivers can be slow the first time.
    pub start_timeout: Duration,
    /// Start the next worker as soon as one is killed or dies, so that it warms up while the failure
    /// is reported: for a provider, which runs job after job. A one-shot command has no next job.
    pub standby: bool,
}

impl WorkerConfig {
    /// The worker's command line and environment (its adapter, its address-space limit), with stderr
    /// shared with this process; the caller sets up stdin and stdout.
    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stderr(Stdio::inherit())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(adapter) = &self.adapter {
            command.env(ADAPTER_ENV, adapter);
        }
        // Mesa's device-select Vulkan layer only reorders the adapters for the display's sake (we rank
        // them ourselves), and its look for the display prints "error: XDG_RUNTIME_DIR is invalid or
        // not set" twice wherever there is no desktop session.
        command.env(NO_DEVICE_SELECT_ENV, "1");
        super::containment::name_parent(&mut command);
        match self.address_space {
            Some(bytes) => command.env(ADDRESS_SPACE_ENV, bytes.to_string()),
            None => command.env_remove(ADDRESS_SPACE_ENV),
        };
        command
    }

    /// A worker started as `PROGRAM worker`.
    pub fn program(program: impl Into<PathBuf>) -> WorkerConfig {
        let limits = JobLimits::default();
        WorkerConfig {
            program: program.into(),
            args: vec!["worker".into()],
            env: Vec::new(),
            adapter: None,
            address_space: Some(default_address_space(&limits)),
            limits,
            grace: Duration::from_secs(2),
            start_timeout: Duration::from_secs(60),
            standby: true,
        }
    }

    /// A worker started from the running program (`idlegrid provide`, the desktop app).
    pub fn this_program() -> std::io::Result<WorkerConfig> {
        Ok(WorkerConfig::program(std::env::current_exe()?))
    }
}

/// Room for the driver and its threads (llvmpipe's worker peaks near 0.9 GiB of address space, 0.1 GiB
/// resident) and for the job's memory, which a driver may map more than once.
#[cfg(not(windows))]
fn default_address_space(limits: &JobLimits) -> u64 {
    (16u64 << 30).max(
        limits
            .memory_budget
            .saturating_mul(4)
            .saturating_add(8 << 30),
    )
}

/// On Windows the limit is on committed memory (a Job Object's), which mapping does not multiply: the
/// job's memory budget (a software GPU's buffers are the worker's own memory) and room for the driver,
/// its compiler (llvmpipe's is LLVM) and the job's inputs on their way to the GPU.
#[cfg(windows)]
fn default_address_space(limits: &JobLimits) -> u64 {
    limits.memory_budget.saturating_add(2 << 30)
}

/// What the parent has seen of its workers, for logs, tests and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    pub starts: u64,
    /// Killed for running past a deadline.
    pub kills: u64,
    /// Ended on their own in the middle of a job (a crash, a lost device, killed from outside).
    pub crashes: u64,
    pub jobs_answered: u64,
    /// From spawning the last worker to its "ready".
    pub last_start: Duration,
}

/// A live child.
struct Live {
    process: Child,
    stdin: Arc<Mutex<ChildStdin>>,
    replies: mpsc::Receiver<Result<FromWorker, ProtocolError>>,
    spawned: Instant,
    ready: bool,
    /// Dropped with the worker: on Windows that ends it.
    _containment: Option<Containment>,
}

/// A worker process, started again whenever it has to be.
pub struct WorkerProcess {
    config: WorkerConfig,
    child: Option<Live>,
    capabilities: Capabilities,
    stats: WorkerStats,
    /// The running worker's executor counters, as of its last answer.
    executor_stats: ExecutorStats,
}

impl WorkerProcess {
    /// Starts a worker and waits until its device is ready.
    pub fn start(config: WorkerConfig) -> Result<WorkerProcess, JobError> {
        let mut worker = WorkerProcess {
            config,
            child: None,
            capabilities: Capabilities {
                adapter: String::new(),
                device_type: String::new(),
                max_buffer_size: 0,
                max_storage_buffer_binding_size: 0,
                max_workgroups_per_dimension: 0,
                gflops: 0.0,
            },
            stats: WorkerStats::default(),
            executor_stats: ExecutorStats::default(),
        };
        let Err(error) = worker.ensure_ready() else {
            return Ok(worker);
        };
        if worker.config.address_space.is_none() {
            return Err(error);
        }
        // Some drivers reserve vast address ranges up front; a worker is worth more than a limit. When
        // it fails without the limit too (no such adapter, say), that failure is the one to report.
        worker.config.address_space = None;
        worker.restart();
        worker.ensure_ready()?;
        tracing::warn!(%error, "the GPU worker did not start under its address-space limit; \
            it runs without one");
        Ok(worker)
    }

    /// The adapter the worker opened.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn stats(&self) -> WorkerStats {
        self.stats
    }

    /// The running worker's executor counters (compilations, cache hits) as of its last answer.
    pub fn executor_stats(&self) -> ExecutorStats {
        self.executor_stats
    }

    /// The child's process id while one runs (tests kill it to play a crash).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.process.id())
    }

    /// Runs `job` in the worker with its deadline lowered to `deadline`, passing on `control`'s
    /// changes while it runs. A job past its deadline gets the worker killed and a fresh one started.
    /// A worker that dies under a job (a crash, a kill from outside) is replaced and the job run again
    /// on the new one, up to [`ATTEMPTS`] times within the deadline: the fault may not be the job's.
    pub fn run(
        &mut self,
        job: &Job,
        deadline: Duration,
        control: &RunControl,
    ) -> Result<JobOutput, JobError> {
        let started = Instant::now();
        let mut attempt = 1;
        let mut left = deadline;
        loop {
            match self.run_once(job, left, control) {
                Err(JobError::WorkerStopped(reason))
                    if attempt < ATTEMPTS
                        && started.elapsed() < deadline
                        && !control.is_cancelled() =>
                {
                    tracing::info!(job = %job.name, attempt, %reason, "running the job again on a fresh worker");
                    attempt += 1;
                    left = deadline.saturating_sub(started.elapsed());
                }
                result => return result,
            }
        }
    }

    fn run_once(
        &mut self,
        job: &Job,
        deadline: Duration,
        control: &RunControl,
    ) -> Result<JobOutput, JobError> {
        self.ensure_ready()?;
        let limits = JobLimits {
            deadline: self.config.limits.deadline.min(deadline),
            ..self.config.limits.clone()
        };
        let stdin = self.stdin()?;
        let request = ToWorker::Run {
            job: Cow::Borrowed(job),
            limits: limits.clone(),
        };
        if let Err(error) = wire::write(&mut *lock(&stdin), &request) {
            return Err(self.lost(&format!("could not hand it the job ({error})")));
        }
        let steering = Arc::clone(&stdin);
        control.listen(move |change| {
            if let Change::Steered { cancel, gentle } = change {
                // A worker that is gone cannot be steered; the wait for its answer notices it.
                let _ = wire::write(&mut *lock(&steering), &ToWorker::Steer { cancel, gentle });
            }
        });
        if control.is_cancelled() || control.is_gentle() {
            let steer = ToWorker::Steer {
                cancel: control.is_cancelled(),
                gentle: control.is_gentle(),
            };
            let _ = wire::write(&mut *lock(&stdin), &steer);
        }
        let result = self.await_answer(limits.deadline, control);
        control.stop_listening();
        result
    }

    /// Ends the worker (closing its stdin asks it to leave; it is killed if it does not within a
    /// second). The next job starts a fresh one.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            let Live {
                mut process, stdin, ..
            } = child;
            drop(stdin);
            if wait_at_most(&mut process, Duration::from_secs(1)).is_none() {
                let _ = process.kill();
                let _ = process.wait();
            }
            tracing::info!("GPU worker stopped");
        }
    }

    fn await_answer(
        &mut self,
        deadline: Duration,
        control: &RunControl,
    ) -> Result<JobOutput, JobError> {
        let until = Instant::now() + deadline + self.config.grace;
        let answer = loop {
            let Some(child) = self.child.as_mut() else {
                return Err(JobError::WorkerStopped("it was not running".into()));
            };
            match child
                .replies
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(Ok(FromWorker::Progress { passes_done })) => {
                    control.record_progress(passes_done);
                }
                other => break other,
            }
        };
        match answer {
            Ok(Ok(FromWorker::Done { result, stats })) => {
                self.stats.jobs_answered += 1;
                self.executor_stats = stats;
                let result = result.map(JobOutput::from);
                match &result {
                    Err(JobError::DeviceLost(reason)) => {
                        tracing::warn!(%reason, "device lost; starting a fresh worker");
                        self.restart();
                    }
                    // The worker gave up waiting, but its GPU may still be busy with the job.
                    Err(JobError::Deadline(_)) => self.kill_overdue(deadline),
                    _ => {}
                }
                result
            }
            Ok(Ok(FromWorker::Ready(_) | FromWorker::Progress { .. })) => {
                Err(self.lost("it answered out of turn"))
            }
            Ok(Err(error)) => Err(self.lost(&format!("unreadable answer ({error})"))),
            Err(RecvTimeoutError::Disconnected) => Err(self.lost("")),
            Err(RecvTimeoutError::Timeout) => {
                self.kill_overdue(deadline);
                Err(JobError::Deadline(deadline))
            }
        }
    }

    fn kill_overdue(&mut self, deadline: Duration) {
        // Not a warning: the deadline miss is the job's result, which whoever ran it reports.
        tracing::info!(
            deadline_s = deadline.as_secs_f64(),
            "job ran past its deadline; killing the GPU worker"
        );
        self.stats.kills += 1;
        self.restart();
    }

    /// The worker died or misbehaved in the middle of a job: reaps it, starts another, and says what
    /// happened.
    fn lost(&mut self, what: &str) -> JobError {
        self.stats.crashes += 1;
        let exit = self.child.take().map(|mut child| {
            let status = match wait_at_most(&mut child.process, Duration::from_secs(1)) {
                Some(status) => Some(status),
                None => {
                    let _ = child.process.kill();
                    child.process.wait().ok()
                }
            };
            status.map_or_else(|| "it would not end".to_owned(), describe_exit)
        });
        let reason = match (what.is_empty(), exit) {
            (true, Some(exit)) => exit,
            (false, Some(exit)) => format!("{what}; {exit}"),
            (_, None) => what.to_owned(),
        };
        tracing::warn!(%reason, "the GPU worker stopped mid-job");
        self.spawn_standby();
        JobError::WorkerStopped(reason)
    }

    /// Kills the worker; the next job gets a fresh one.
    fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.process.kill();
            let _ = child.process.wait();
        }
        self.spawn_standby();
    }

    /// With [`WorkerConfig::standby`], spawns the next worker at once, so it warms up while the
    /// failure is reported.
    fn spawn_standby(&mut self) {
        if !self.config.standby {
            return;
        }
        if let Err(error) = self.spawn() {
            tracing::warn!(%error, "could not start a GPU worker; trying again with the next job");
        }
    }

    /// A running worker that has said it is ready, started (again) if need be.
    fn ensure_ready(&mut self) -> Result<(), JobError> {
        if self.child.is_none() {
            self.spawn()?;
        }
        self.await_ready()
    }

    fn await_ready(&mut self) -> Result<(), JobError> {
        let Some(child) = self.child.as_mut() else {
            return Err(JobError::WorkerStopped("it could not be started".into()));
        };
        if child.ready {
            return Ok(());
        }
        let answer = child.replies.recv_timeout(self.config.start_timeout);
        let capabilities = match answer {
            Ok(Ok(FromWorker::Ready(Ok(capabilities)))) => capabilities,
            Ok(Ok(FromWorker::Ready(Err(error)))) => {
                self.stop();
                return Err(error);
            }
            Ok(Ok(FromWorker::Done { .. } | FromWorker::Progress { .. })) => {
                return Err(self.lost("it answered before it was ready"));
            }
            Ok(Err(error)) => return Err(self.lost(&format!("unreadable greeting ({error})"))),
            Err(RecvTimeoutError::Disconnected) => return Err(self.lost("")),
            Err(RecvTimeoutError::Timeout) => {
                self.stop();
                return Err(JobError::WorkerStopped(format!(
                    "it did not open the GPU within {} s",
                    self.config.start_timeout.as_secs()
                )));
            }
        };
        child.ready = true;
        self.stats.last_start = child.spawned.elapsed();
        tracing::info!(
            adapter = %capabilities.adapter,
            pid = child.process.id(),
            start_ms = self.stats.last_start.as_secs_f64() * 1e3,
            "GPU worker ready"
        );
        self.capabilities = capabilities;
        Ok(())
    }

    fn spawn(&mut self) -> Result<(), JobError> {
        let mut command = self.config.command();
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let spawned = Instant::now();
        let mut process = command.spawn().map_err(|e| {
            JobError::WorkerStopped(format!(
                "it could not be started from {}: {e}",
                self.config.program.display()
            ))
        })?;
        let containment = containment::contain(&process, self.config.address_space)
            .inspect_err(|error| {
                tracing::warn!(%error, "could not contain the GPU worker; it runs without limits")
            })
            .ok();
        let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            let _ = process.kill();
            return Err(JobError::WorkerStopped("its pipes were not set up".into()));
        };
        let cap = usize::try_from(
            self.config
                .limits
                .max_total_buffer_bytes
                .saturating_add(1 << 20),
        )
        .unwrap_or(usize::MAX)
        .min(u32::MAX as usize);
        self.executor_stats = ExecutorStats::default();
        self.child = Some(Live {
            process,
            stdin: Arc::new(Mutex::new(stdin)),
            replies: read_replies(stdout, cap),
            spawned,
            ready: false,
            _containment: containment,
        });
        self.stats.starts += 1;
        Ok(())
    }

    fn stdin(&mut self) -> Result<Arc<Mutex<ChildStdin>>, JobError> {
        match &self.child {
            Some(child) => Ok(Arc::clone(&child.stdin)),
            None => Err(JobError::WorkerStopped("it was not running".into())),
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The child's answers, decoded on a thread of their own; the channel ends with the child's stdout.
fn read_replies(
    stdout: ChildStdout,
    cap: usize,
) -> mpsc::Receiver<Result<FromWorker, ProtocolError>> {
    let (sender, replies) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let reply = wire::read::<FromWorker>(&mut stdout, cap);
            let end = !matches!(reply, Ok(Some(_)));
            if let Some(reply) = reply.transpose()
                && sender.send(reply).is_err()
            {
                break;
            }
            if end {
                break;
            }
        }
    });
    replies
}

fn wait_at_most(process: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match process.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                4 => " (illegal instruction)",
                6 => " (aborted)",
                7 | 11 => " (memory fault)",
                9 => " (SIGKILL)",
                _ => "",
            };
            return format!("killed by signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "ended".to_owned(),
    }
}
