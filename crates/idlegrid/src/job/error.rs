//! The one error type of jobs: every refusal and every failure a job can meet, each a single line that says
//! what is wrong and where, and whose fault it was ([`Fault`]), which decides what a pool does next.
//!
//! The type is serializable so that a failure crosses the GPU worker's pipe as the same variant it was
//! raised as: the parent sees a WGSL error as a WGSL error, not as a string.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whose fault a failed run was; the pool decides what happens next by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// The job itself: it can never run anywhere (malformed, bad WGSL, over the pool's job limits, a binding mismatch).
    Job,
    /// This machine: device lost, out of memory here, no adapter, over this provider's own memory budget or adapter limits, worker crashed. Another provider may succeed.
    Machine,
    /// It ran past its deadline: a faster GPU may finish it.
    Deadline,
    /// Stopped because this machine's person came back; not a failure of anyone.
    Cancelled,
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum JobError {
    /// A job file, shader or input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        #[serde(with = "io_error_text")]
        source: std::io::Error,
    },
    /// The TOML itself is malformed or has a key of the wrong type or name.
    #[error("{file}:{line}:{column}: {message}")]
    Toml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The TOML is well-formed but a value in it is not acceptable.
    #[error("{file}: {key}: {message}")]
    Format {
        file: String,
        key: String,
        message: String,
    },
    #[error("{0}")]
    Wgsl(WgslError),
    /// The passes or buffers do not fit the shader's entry points and bindings.
    #[error("{0}")]
    Interface(String),
    /// Over one of the fixed job limits every pool applies ([`JobLimits`](super::JobLimits)' sizes
    /// and counts): the job is too big for any provider.
    #[error("{what} is {value}; the limit is {limit}")]
    Limit {
        what: String,
        value: String,
        limit: String,
    },
    /// Over the GPU memory this machine lets one job take (its person's budget, or for a software GPU
    /// half the free memory): a provider with more to spare may take it.
    #[error(
        "the job's GPU memory (buffers {} + read-back {}) is {}; the limit is this machine's budget of {}",
        bytes(*buffers), bytes(*staging), bytes(buffers.saturating_add(*staging)), bytes(*budget)
    )]
    OverBudget {
        buffers: u64,
        staging: u64,
        budget: u64,
    },
    /// Over a limit of this adapter: a bigger GPU may take it.
    #[error("the job needs {limit} = {needed}, but adapter \"{adapter}\" allows at most {allowed}")]
    AdapterLimit {
        adapter: String,
        limit: String,
        needed: u64,
        allowed: u64,
    },
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    #[error("could not open a device on \"{adapter}\": {message}")]
    Device { adapter: String, message: String },
    /// The device refused the job's commands (a wgpu validation error). Every check that can be made
    /// without a GPU has passed by then, so what is left comes from the job's shader or buffers as the
    /// driver sees them: the job's fault. (A bug of ours would show here too, on every provider alike.)
    #[error("GPU error: {0}")]
    Validation(String),
    /// The device ran out of memory for the job: this machine's fault, another may have more.
    #[error("GPU error: {0}")]
    OutOfMemory(String),
    /// Any other failure of the driver or the device (an internal error, waiting on the queue or
    /// reading results back failed): this machine's fault.
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the job ran past its deadline of {} s", .0.as_secs_f64())]
    Deadline(Duration),
    /// One dispatch ran so long that the next could trip the driver's GPU watchdog (Windows resets
    /// the GPU at about 2 s): refused here, where a faster GPU or another system may run it.
    #[error(
        "pass \"{pass}\" took {:.2} s in one dispatch; this system resets a GPU busy for about 2 s \
         (Windows' watchdog), so one dispatch may take at most {} s here: split it into more passes \
         of fewer workgroups",
        took.as_secs_f64(),
        limit.as_secs_f64()
    )]
    DispatchTooLong {
        pass: String,
        took: Duration,
        limit: Duration,
    },
    /// Stopped between passes because the machine's person came back.
    #[error("cancelled: {0}")]
    Cancelled(String),
    #[error("malformed job on the wire: {0}")]
    Wire(String),
    /// The GPU worker process could not be started, or stopped (crashed, or was killed) while it held
    /// the job or a task.
    #[error("the GPU worker process stopped: {0}")]
    WorkerStopped(String),
}

impl JobError {
    /// Whose fault this failure is. Refusals by this provider's own budget or adapter are the
    /// machine's, since another provider may take the job; only what no provider could run is the job's.
    pub fn fault(&self) -> Fault {
        match self {
            JobError::Io { .. }
            | JobError::Toml { .. }
            | JobError::Format { .. }
            | JobError::Wgsl(_)
            | JobError::Interface(_)
            | JobError::Limit { .. }
            | JobError::Validation(_)
            | JobError::Wire(_) => Fault::Job,
            JobError::OverBudget { .. }
            | JobError::AdapterLimit { .. }
            | JobError::NoAdapter(_)
            | JobError::Device { .. }
            | JobError::OutOfMemory(_)
            | JobError::Gpu(_)
            | JobError::DeviceLost(_)
            | JobError::DispatchTooLong { .. }
            | JobError::WorkerStopped(_) => Fault::Machine,
            JobError::Deadline(_) => Fault::Deadline,
            JobError::Cancelled(_) => Fault::Cancelled,
        }
    }
}

/// An I/O error crosses the worker's pipe as its message; its kind matters to no one past the reader.
mod io_error_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(error: &std::io::Error, to: S) -> Result<S::Ok, S::Error> {
        to.collect_str(error)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<std::io::Error, D::Error> {
        String::deserialize(from).map(std::io::Error::other)
    }
}

/// A WGSL parse or validation error, located in the source where naga knows where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgslError {
    pub file: String,
    /// 1-based line and column.
    pub location: Option<(u32, u32)>,
    pub message: String,
    /// The offending source line, trimmed.
    pub source_line: Option<String>,
}

impl fmt::Display for WgslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": invalid WGSL: {}", self.message)?;
        if let Some(source_line) = &self.source_line {
            write!(f, " (in `{source_line}`)")?;
        }
        Ok(())
    }
}

/// Human-readable byte counts for messages ("64 GiB", "12 bytes").
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let value = n as f64 / size as f64;
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_the_fault_of_whoever_can_do_something_about_it() {
        let text = || "why".to_owned();
        let cases = [
            (
                JobError::Io {
                    path: "input.bin".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                },
                Fault::Job,
            ),
            (
                JobError::Toml {
                    file: "job.toml".into(),
                    line: 1,
                    column: 1,
                    message: text(),
                },
                Fault::Job,
            ),
            (
                JobError::Format {
                    file: "job.toml".into(),
                    key: "name".into(),
                    message: text(),
                },
                Fault::Job,
            ),
            (
                JobError::Wgsl(WgslError {
                    file: "k.wgsl".into(),
                    location: None,
                    message: text(),
                    source_line: None,
                }),
                Fault::Job,
            ),
            (JobError::Interface(text()), Fault::Job),
            (
                JobError::Limit {
                    what: "the number of passes".into(),
                    value: "65".into(),
                    limit: "64".into(),
                },
                Fault::Job,
            ),
            (JobError::Validation(text()), Fault::Job),
            (JobError::Wire(text()), Fault::Job),
            (
                JobError::OverBudget {
                    buffers: 2 << 30,
                    staging: 1 << 30,
                    budget: 1 << 30,
                },
                Fault::Machine,
            ),
            (
                JobError::AdapterLimit {
                    adapter: "llvmpipe".into(),
                    limit: "max_buffer_size".into(),
                    needed: 2,
                    allowed: 1,
                },
                Fault::Machine,
            ),
            (JobError::NoAdapter(String::new()), Fault::Machine),
            (
                JobError::Device {
                    adapter: "llvmpipe".into(),
                    message: text(),
                },
                Fault::Machine,
            ),
            (JobError::OutOfMemory(text()), Fault::Machine),
            (JobError::Gpu(text()), Fault::Machine),
            (JobError::DeviceLost(text()), Fault::Machine),
            (JobError::WorkerStopped(text()), Fault::Machine),
            (JobError::Deadline(Duration::from_secs(60)), Fault::Deadline),
            (JobError::Cancelled(text()), Fault::Cancelled),
        ];
        for (error, fault) in cases {
            assert_eq!(error.fault(), fault, "{error:?}");
        }
    }
}
