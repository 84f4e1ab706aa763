//! One-off GPU tasks in a short-lived worker process: listing the adapters and benchmarking one.
//! Both load the GPU driver (for a software GPU, all of LLVM: ~50 MB that a process keeps once
//! loaded), which a long-lived program such as the tray app must not carry for the rest of the day.
//! The child answers once, in JSON, on its private stdout, and exits; a failure comes back as the
//! [`JobError`] it was, so its fault survives the trip.

use std::io::{Read as _, Write};
use std::process::Stdio;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{ADAPTER_ENV, WorkerConfig, WorkerError, containment};
use crate::gpu::{
    AdapterChoice, AdapterReport, BenchReport, Executor, SkippedAdapter, bench, device_score,
    list_adapters,
};
use crate::job::JobError;

/// Names the task for a worker started to do one (unset: the worker runs jobs).
pub const TASK_ENV: &str = "IDLEGRID_WORKER_TASK";

/// A task never takes this long; past it, the driver is stuck and the child is killed.
const TASK_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Every adapter wgpu can use (`Vec<AdapterReport>`).
    Adapters,
    /// The benchmark on the configured adapter (`BenchReport`).
    Bench,
    /// The score pools are told, without embeddings (`BenchReport`).
    DeviceScore,
    /// The adapters ranked above the one jobs would run on that do not work (`Vec<SkippedAdapter>`).
    SkippedAdapters,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Adapters => "adapters",
            Task::Bench => "bench",
            Task::DeviceScore => "device-score",
            Task::SkippedAdapters => "skipped-adapters",
        }
    }
}

/// The adapters, listed in a worker process.
pub fn adapters(config: &WorkerConfig) -> Result<Vec<AdapterReport>, JobError> {
    run(config, Task::Adapters)
}

/// The adapters a job on `config` would pass over, and why, found in a worker process.
pub fn skipped_adapters(config: &WorkerConfig) -> Result<Vec<SkippedAdapter>, JobError> {
    run(config, Task::SkippedAdapters)
}

/// The benchmark on `config`'s adapter, run in a worker process.
pub fn benchmark(config: &WorkerConfig) -> Result<BenchReport, JobError> {
    run(config, Task::Bench)
}

/// The score pools are told (`gpu::device_score`), measured in a worker process.
pub fn device_score_of(config: &WorkerConfig) -> Result<BenchReport, JobError> {
    run(config, Task::DeviceScore)
}

fn run<T: DeserializeOwned>(config: &WorkerConfig, task: Task) -> Result<T, JobError> {
    let mut child = config
        .command()
        .env(TASK_ENV, task.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| {
            JobError::WorkerStopped(format!(
                "it could not be started from {}: {error}",
                config.program.display()
            ))
        })?;
    // No memory cap: a task opens the GPU but runs no job. On Windows the task dies with us.
    let _containment = containment::contain(&child, None)
        .inspect_err(|error| tracing::warn!(%error, "could not contain the GPU task worker"));
    let pid = child.id();
    let (finished, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(TASK_LIMIT) == Err(RecvTimeoutError::Timeout) {
            containment::kill(pid);
        }
    });
    let mut answer = String::new();
    let read = child
        .stdout
        .take()
        .map(|mut out| out.read_to_string(&mut answer));
    // The watchdog is done before the child is reaped, so it never signals a reused pid.
    drop(finished);
    let _ = watchdog.join();
    let stopped = |why: String| JobError::WorkerStopped(why);
    let status = child
        .wait()
        .map_err(|e| stopped(format!("it could not be waited for: {e}")))?;
    if let Some(Err(error)) = read {
        return Err(stopped(format!("its answer could not be read: {error}")));
    }
    serde_json::from_str::<Result<T, JobError>>(&answer)
        .map_err(|_| stopped(format!("it gave no answer ({status})")))?
}

/// The worker's side: does `task` and writes the answer to `out`.
pub(super) fn serve(task: &str, out: &mut dyn Write) -> Result<(), WorkerError> {
    let reply = match task {
        "adapters" => to_json(Ok(list_adapters())),
        "bench" => to_json(configured_executor().and_then(|mut executor| bench(&mut executor))),
        "device-score" => {
            to_json(configured_executor().and_then(|mut executor| device_score(&mut executor)))
        }
        "skipped-adapters" => {
            to_json(configured_executor().map(|executor| executor.skipped_adapters().to_vec()))
        }
        other => to_json::<()>(Err(JobError::WorkerStopped(format!(
            "it does not know the task \"{other}\""
        )))),
    };
    out.write_all(reply.as_bytes())?;
    Ok(out.flush()?)
}

fn configured_executor() -> Result<Executor, JobError> {
    Executor::new(&AdapterChoice::from_flag_or_env(
        std::env::var(ADAPTER_ENV).ok(),
    ))
}

fn to_json<T: serde::Serialize>(result: Result<T, JobError>) -> String {
    serde_json::to_string(&result).unwrap_or_else(|error| {
        let failure: Result<(), _> = Err(JobError::WorkerStopped(format!(
            "it could not write its answer: {error}"
        )));
        serde_json::to_string(&failure).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Fault;

    #[test]
    fn a_worker_that_cannot_start_or_answer_is_a_clear_error_of_this_machine() {
        let missing = WorkerConfig::program("/nonexistent/idlegrid");
        let error = adapters(&missing).unwrap_err();
        assert_eq!(error.fault(), Fault::Machine);
        let error = error.to_string();
        assert!(
            error.contains("could not be started from /nonexistent/idlegrid"),
            "{error}"
        );
        // A program that answers no JSON on stdout.
        #[cfg(unix)]
        let silent = WorkerConfig::program("/bin/true");
        #[cfg(windows)]
        let silent = WorkerConfig::program(std::env::var("ComSpec").unwrap_or("cmd.exe".into()));
        let error = adapters(&silent).unwrap_err();
        assert_eq!(error.fault(), Fault::Machine);
        assert!(error.to_string().contains("gave no answer"), "{error}");
    }
}
