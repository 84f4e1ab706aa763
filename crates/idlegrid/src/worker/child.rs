//! The worker's side: `idlegrid worker` opens the adapter, says it is ready, and runs the jobs that
//! arrive on stdin one at a time, answering on stdout. A second thread reads stdin while a job runs,
//! so a cancel or a change of pace reaches the run between two passes.
//!
//! It owns nothing worth saving: the parent may kill it at any moment, and it ends itself the moment
//! its stdin closes.

use std::io::Write;
use std::sync::{Arc, Mutex, mpsc};

use super::wire::{self, FromWorker, ToWorker};
use super::{ADAPTER_ENV, ADDRESS_SPACE_ENV, WorkerError, capabilities_of};
use crate::gpu::{AdapterChoice, Change, Executor, RunControl};
use crate::job::{Job, JobLimits};
use crate::sync::lock;

/// A frame from the parent can hold a whole job with its inputs; the parent is trusted to have
/// checked its size, so the cap is only the frame format's.
const MAX_JOB_FRAME: usize = u32::MAX as usize;

/// Runs the worker until the parent closes its stdin, or does the one-off task named by
/// `IDLEGRID_WORKER_TASK` (see [`super::task`]). Settings come from the environment
/// (`IDLEGRID_WORKER_ADAPTER`, `IDLEGRID_WORKER_ADDRESS_SPACE`), so any binary can host a worker by
/// calling this when started with `worker`.
pub fn serve() -> Result<(), WorkerError> {
    super::containment::watch_parent();
    let mut out = reply_channel()?;
    if let Some(bytes) = std::env::var(ADDRESS_SPACE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        limit_address_space(bytes)?;
    }
    if let Ok(task) = std::env::var(super::task::TASK_ENV) {
        return super::task::serve(&task, &mut out);
    }
    let replies = Arc::new(Mutex::new(out));
    let choice = AdapterChoice::from_flag_or_env(std::env::var(ADAPTER_ENV).ok());
    let mut executor = match Executor::new(&choice) {
        Ok(executor) => executor,
        Err(error) => {
            // The parent reports it; saying it here as well would print it twice.
            wire::write(&mut *lock(&replies), &FromWorker::Ready(Err(error)))?;
            return Ok(());
        }
    };
    let ready = FromWorker::Ready(Ok(capabilities_of(&executor)));
    wire::write(&mut *lock(&replies), &ready)?;
    let jobs = read_requests();
    for (job, limits, control) in jobs {
        let progress = Arc::clone(&replies);
        control.listen(move |change| {
            if let Change::Progress { passes_done } = change {
                // Lost progress is harmless; a broken pipe shows when the answer is written.
                let _ = wire::write(&mut *lock(&progress), &FromWorker::Progress { passes_done });
            }
        });
        executor.set_limits(limits);
        let result = executor.run_with(&job, &control);
        control.stop_listening();
        let reply = FromWorker::Done {
            result: result.map(Into::into),
            stats: executor.stats(),
        };
        wire::write(&mut *lock(&replies), &reply)?;
    }
    Ok(())
}

/// Reads the parent's frames on a thread of their own: jobs go to the returned channel, steering goes
/// straight to the run it is for. The channel ends when stdin does.
fn read_requests() -> mpsc::Receiver<(Job, JobLimits, Arc<RunControl>)> {
    let (jobs, received) = mpsc::channel();
    let current = Arc::new(Mutex::new(Arc::new(RunControl::default())));
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match wire::read::<ToWorker>(&mut stdin, MAX_JOB_FRAME) {
                Ok(Some(ToWorker::Run { job, limits })) => {
                    let job = job.into_owned();
                    let control = Arc::new(RunControl::default());
                    *lock(&current) = Arc::clone(&control);
                    if jobs.send((job, limits, control)).is_err() {
                        break;
                    }
                }
                Ok(Some(ToWorker::Steer { cancel, gentle })) => {
                    let control = Arc::clone(&lock(&current));
                    control.set_gentle(gentle);
                    if cancel {
                        control.cancel();
                    }
                }
                // The provider closed our stdin (it is stopping us) or is gone: nobody will read an
                // answer, so the worker ends now, even in the middle of an endless job. (Not
                // PR_SET_PDEATHSIG: that fires when the *thread* that spawned us exits, and providers
                // spawn from pooled threads that come and go.)
                Ok(None) => super::containment::end_now(0),
                Err(error) => {
                    tracing::error!(%error, "unreadable request from the provider; stopping");
                    super::containment::end_now(1);
                }
            }
        }
    });
    received
}

/// The stream replies go to: the real stdout, moved to a private descriptor so that anything a driver
/// prints lands on stderr instead of in the middle of a frame.
#[cfg(target_os = "linux")]
fn reply_channel() -> Result<Box<dyn Write + Send>, WorkerError> {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let private = rustix::io::dup(stdout.as_fd()).map_err(std::io::Error::from)?;
    rustix::stdio::dup2_stdout(std::io::stderr().as_fd()).map_err(std::io::Error::from)?;
    Ok(Box::new(std::io::BufWriter::new(std::fs::File::from(
        private,
    ))))
}

#[cfg(not(target_os = "linux"))]
fn reply_channel() -> Result<Box<dyn Write + Send>, WorkerError> {
    Ok(Box::new(std::io::stdout()))
}

/// Caps the worker's address space, so a job that gets past the memory checks (a driver's own
/// allocations, a bug) fails an allocation here instead of pushing the person's machine into swap.
#[cfg(target_os = "linux")]
fn limit_address_space(bytes: u64) -> Result<(), WorkerError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let maximum = getrlimit(Resource::As).maximum;
    let current = maximum.map_or(bytes, |max| max.min(bytes));
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(current),
            maximum,
        },
    )
    .map_err(std::io::Error::from)?;
    tracing::debug!(bytes = current, "address space limited");
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn limit_address_space(_bytes: u64) -> Result<(), WorkerError> {
    tracing::debug!("no address-space limit on this platform");
    Ok(())
}
