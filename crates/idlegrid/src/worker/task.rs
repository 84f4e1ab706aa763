//! One-off GPU tasks in a short-lived worker process: listing the adapters and benchmarking one.
//! Both load the GPU driver (for a software GPU, all of LLVM: ~50 MB that a process keeps once
//! loaded), which a long-lived program such as the tray app must not carry for the rest of the day.
//! The child answers once, in JSON, on its private stdout, and exits.

use std::io::{Read as _, Write};
use std::process::Stdio;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{ADAPTER_ENV, WorkerConfig, WorkerError};
use crate::gpu::{AdapterChoice, AdapterReport, BenchReport, Executor, bench, probe};

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
pub fn adapters(config: &WorkerConfig) -> Result<Vec<AdapterReport>, WorkerError> {
    run(config, Task::Adapters)
}

/// The benchmark on `config`'s adapter, run in a worker process.
pub fn benchmark(config: &WorkerConfig) -> Result<BenchReport, WorkerError> {
    run(config, Task::Bench)
}

fn run<T: DeserializeOwned>(config: &WorkerConfig, task: Task) -> Result<T, WorkerError> {
    let mut child = config
        .command()
        .env(TASK_ENV, task.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| {
            WorkerError::Start(format!(
                "cannot start {}: {error}",
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
    let status = child.wait()?;
    if let Some(Err(error)) = read {
        return Err(error.into());
    }
    let reply: Result<T, String> = serde_json::from_str(&answer)
        .map_err(|_| WorkerError::Start(format!("the GPU worker gave no answer ({status})")))?;
    reply.map_err(WorkerError::Start)
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
        "adapters" => to_json(Ok(probe().adapters)),
        "bench" => {
            let choice = AdapterChoice::from_flag_or_env(std::env::var(ADAPTER_ENV).ok());
            let report = Executor::new(&choice)
                .map_err(|e| e.to_string())
                .and_then(|mut executor| bench(&mut executor).map_err(|e| e.to_string()));
            to_json(report)
        }
        other => to_json::<()>(Err(format!("unknown worker task \"{other}\""))),
    };
    out.write_all(reply.as_bytes())?;
    Ok(out.flush()?)
}

fn to_json<T: serde::Serialize>(result: Result<T, String>) -> String {
    serde_json::to_string(&result)
        .unwrap_or_else(|error| format!("{{\"Err\":\"cannot write the answer: {error}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_cannot_start_or_answer_is_a_clear_error() {
        let missing = WorkerConfig::program("/nonexistent/idlegrid");
        let error = adapters(&missing).unwrap_err().to_string();
        assert!(
            error.contains("cannot start /nonexistent/idlegrid"),
            "{error}"
        );
        // A program that says nothing on stdout.
        let silent = WorkerConfig::program("/bin/true");
        let error = adapters(&silent).unwrap_err().to_string();
        assert!(error.contains("gave no answer"), "{error}");
    }
}
