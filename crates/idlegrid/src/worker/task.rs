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

use super::{ADAPTER_ENV, WorkerConfig, WorkerError};
use crate::gpu::{AdapterChoice, AdapterReport, BenchReport, Executor, bench, list_adapters};
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
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Adapters => "adapters",
            Task::Bench => "bench",
        }
    }
}

/// The adapters, listed in a worker process.
pub fn adapters(config: &WorkerConfig) -> Result<Vec<AdapterReport>, JobError> {
    run(config, Task::Adapters)
}

/// The benchmark on `config`'s adapter, run in a worker process.
pub fn benchmark(config: &WorkerConfig) -> Result<BenchReport, JobError> {
    run(config, Task::Bench)
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
    let pid = child.id();
    let (finished, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(TASK_LIMIT) == Err(RecvTimeoutError::Timeout) {
            kill(pid);
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

#[cfg(unix)]
fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(not(unix))]
fn kill(_pid: u32) {}

/// The worker's side: does `task` and writes the answer to `out`.
pub(super) fn serve(task: &str, out: &mut dyn Write) -> Result<(), WorkerError> {
    let reply = match task {
        "adapters" => to_json(Ok(list_adapters())),
        "bench" => {
            let choice = AdapterChoice::from_flag_or_env(std::env::var(ADAPTER_ENV).ok());
            to_json(Executor::new(&choice).and_then(|mut executor| bench(&mut executor)))
        }
        other => to_json::<()>(Err(JobError::WorkerStopped(format!(
            "it does not know the task \"{other}\""
        )))),
    };
    out.write_all(reply.as_bytes())?;
    Ok(out.flush()?)
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
        // A program that says nothing on stdout.
        let silent = WorkerConfig::program("/bin/true");
        let error = adapters(&silent).unwrap_err();
        assert_eq!(error.fault(), Fault::Machine);
        assert!(error.to_string().contains("gave no answer"), "{error}");
    }
}
