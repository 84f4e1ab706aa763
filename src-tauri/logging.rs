//! Logs: to stderr, and to a daily file in the platform's log folder (the one "Open logs folder"
//! opens), two weeks kept. `RUST_LOG` overrides the default levels.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The GPU and network stacks are chatty at info; their warnings are what matters here.
const DEFAULT_FILTER: &str = "info,wgpu_core=warn,wgpu_hal=warn,naga=warn,iroh=warn,noq=warn";
const DAYS_KEPT: usize = 14;

/// The engine's logs folder: `~/.local/share/idlegrid/logs` on Linux, `%LOCALAPPDATA%\Idlegrid\logs`
/// on Windows.
pub fn logs_dir() -> PathBuf {
    idlegrid::identity::default_logs_dir()
}

/// Starts logging; keep the guard until exit, so the last lines reach the file.
pub fn init(dir: &Path) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("idlegrid")
        .filename_suffix("log")
        .max_log_files(DAYS_KEPT)
        .build(dir)
        .context("cannot open the log file")?;
    let (file, guard) = tracing_appender::non_blocking(file);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file),
        )
        .try_init()
        .context("cannot start logging")?;
    Ok(guard)
}
