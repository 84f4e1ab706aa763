//! Idlegrid's engine: WGSL compute jobs run on wgpu, and everything a provider, a pool and a submitter
//! share. It knows nothing of the desktop app; the app and the `idlegrid` command both call this API.
//!
//! ```no_run
//! use idlegrid::{AdapterChoice, Executor, Job, JobLimits};
//! let job = Job::load("examples/jobs/matmul/job.toml".as_ref(), &JobLimits::default())?;
//! let output = Executor::new(&AdapterChoice::default())?.run(&job)?;
//! println!("{} in {:?}", output.outputs[0].blake3, output.gpu_time);
//! # Ok::<(), idlegrid::JobError>(())
//! ```

pub mod amount;
pub mod atomic_file;
pub mod blobs;
pub mod client;
pub mod crash_point;
pub mod embed;
pub mod gpu;
pub mod identity;
pub mod idle;
pub mod job;
pub mod ledger;
pub mod node;
pub mod onchain;
pub mod openai;
pub mod os_readings;
#[cfg(windows)]
pub mod owner_only;
pub mod payout_address;
pub mod pool;
pub mod proof;
pub mod protocol;
pub mod provider;
pub mod relay;
pub mod sqlite;
pub mod statement;
pub mod sync;
pub mod worker;

pub use amount::Amount;
pub use gpu::{AdapterChoice, BenchReport, Executor, HardwareReport, JobOutput, bench, probe};
pub use identity::{Identity, KeyStore};
pub use job::{Job, JobError, JobLimits};
