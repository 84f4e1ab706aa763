//! The GPU worker: a child process (`idlegrid worker`) holds the GPU device and runs jobs for the
//! provider, which keeps the lease, the ledger and the network, and for `idlegrid run`. A job past its
//! deadline (a GPU cannot be pre-empted mid-dispatch on every driver), a crashing driver or a lost
//! device takes down only the child: the parent kills it, reports the job failed with the reason, and
//! starts a fresh one. Between jobs the child stays up, its device and pipeline cache warm.
//!
//! `wire` is the protocol on the child's stdin and stdout, `child` the worker's side, `process` the
//! parent's, `task` the one-off workers that list adapters and benchmark; [`Runner`] is what a
//! provider runs jobs with: a worker, or an executor in its own process.

mod child;
mod containment;
mod process;
pub mod task;
mod wire;

use std::time::Duration;

pub use child::serve;
pub use process::{WorkerConfig, WorkerProcess, WorkerStats};

use crate::gpu::{Executor, JobOutput, RunControl};
use crate::job::{Job, JobError};
use crate::protocol::{Capabilities, ProtocolError};

/// The adapter the worker opens (a name to match, as `--adapter` takes).
pub const ADAPTER_ENV: &str = "IDLEGRID_WORKER_ADAPTER";
/// The worker's address-space limit in bytes, where the platform has one.
pub const ADDRESS_SPACE_ENV: &str = "IDLEGRID_WORKER_ADDRESS_SPACE";

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Where a provider's jobs run.
// One per provider, made once and kept behind a mutex: its size never matters.
#[allow(clippy::large_enum_variant)]
pub enum Runner {
    /// In this process: no isolation, no start-up; for embedding and comparison.
    InProcess(Executor),
    /// In a child process that is killed and restarted when a job misbehaves.
    Worker(WorkerProcess),
}

impl Runner {
    /// What the adapter can take, as sent to pools (without a benchmark score).
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Runner::InProcess(executor) => capabilities_of(executor),
            Runner::Worker(worker) => worker.capabilities().clone(),
        }
    }

    /// Runs `job` with its deadline lowered to `deadline`, steered by `control`.
    pub fn run(
        &mut self,
        job: &Job,
        deadline: Duration,
        control: &RunControl,
    ) -> Result<JobOutput, JobError> {
        match self {
            Runner::InProcess(executor) => {
                let previous = executor.limits().clone();
                let mut limits = previous.clone();
                limits.deadline = limits.deadline.min(deadline);
                executor.set_limits(limits);
                let result = executor.run_with(job, control);
                executor.set_limits(previous);
                result
            }
            Runner::Worker(worker) => worker.run(job, deadline, control),
        }
    }

    /// Gives the GPU device and its memory back; true once none is held. A worker simply ends.
    pub fn release_device(&mut self) -> bool {
        match self {
            Runner::InProcess(executor) => {
                executor.release_device();
                !executor.has_device()
            }
            Runner::Worker(worker) => {
                worker.stop();
                true
            }
        }
    }
}

impl From<Executor> for Runner {
    fn from(executor: Executor) -> Runner {
        Runner::InProcess(executor)
    }
}

impl From<WorkerProcess> for Runner {
    fn from(worker: WorkerProcess) -> Runner {
        Runner::Worker(worker)
    }
}

pub(crate) fn capabilities_of(executor: &Executor) -> Capabilities {
    let limits = executor.adapter().limits();
    let info = executor.adapter_info();
    Capabilities {
        adapter: info.name.clone(),
        device_type: format!("{:?}", info.device_type).to_lowercase(),
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        gflops: 0.0,
    }
}
