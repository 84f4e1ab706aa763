//! The GPU: choosing an adapter, running jobs on it, describing the hardware, and scoring it.

mod adapter;
mod bench;
mod device;
mod executor;
mod probe;
mod requirements;
mod self_test;
mod watchdog;

pub use adapter::{AdapterChoice, SkippedAdapter, describe as describe_adapter};
pub use bench::{BenchReport, EmbeddingBench, EmbeddingRate, bench, bench_with, device_score};
pub use executor::{Change, Executor, ExecutorStats, JobOutput, OutputBuffer, RunControl, Timing};
pub use probe::{
    AdapterReport, CpuReport, GpuUsage, HardwareReport, KeyLimits, MemoryReport, list_adapters,
    probe,
};
pub use watchdog::{Measured, Watchdog};
