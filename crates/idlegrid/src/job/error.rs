//! The one error type of jobs: every refusal and every failure a job can meet, each a single line that says
//! what is wrong and where.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
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
    #[error("{what} is {value}; the limit is {limit}")]
    Limit {
        what: String,
        value: String,
        limit: String,
    },
    #[error("the job needs {limit} = {needed}, but adapter \"{adapter}\" allows at most {allowed}")]
    AdapterLimit {
        adapter: String,
        limit: &'static str,
        needed: u64,
        allowed: u64,
    },
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    #[error("could not open a device on \"{adapter}\": {message}")]
    Device { adapter: String, message: String },
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the job ran past its deadline of {} s", .0.as_secs_f64())]
    Deadline(Duration),
    /// Stopped between passes because the machine's person came back.
    #[error("cancelled: {0}")]
    Cancelled(String),
    #[error("malformed job on the wire: {0}")]
    Wire(String),
    /// An error the GPU worker process reported, in its own words.
    #[error("{0}")]
    Reported(String),
    /// The GPU worker process stopped (crashed, or was killed) while it held the job.
    #[error("the GPU worker process stopped: {0}")]
    WorkerStopped(String),
}

/// Whose fault a failed run was; the pool decides what happens next by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// A WGSL parse or validation error, located in the source where naga knows where.
#[derive(Debug, Clone, PartialEq, Eq)]
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

// PROVISIONAL (replaced by the worker branch's mapping at merge).
impl JobError {
    pub fn fault(&self) -> Fault {
        match self {
            JobError::Deadline(_) => Fault::Deadline,
            JobError::Cancelled(_) => Fault::Cancelled,
            JobError::Toml { .. }
            | JobError::Format { .. }
            | JobError::Wgsl(_)
            | JobError::Interface(_)
            | JobError::Wire(_) => Fault::Job,
            _ => Fault::Machine,
        }
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
