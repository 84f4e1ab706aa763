//! The `idlegrid` command: runs jobs locally, describes and scores the hardware, and runs the pool,
//! provider and submitter roles. Every error is one line on stderr and a non-zero exit; output meant
//! for programs is behind `--json`. Whatever loads the GPU driver runs in a GPU worker process, as a
//! provider's jobs do: a job past its deadline is stopped by killing it, and the driver's own noise
//! stays out of this process.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cli::{chain, network};
use idlegrid::gpu::{BenchReport, HardwareReport, JobOutput, OutputBuffer, RunControl};
use idlegrid::job::{Job, JobLimits};
use idlegrid::worker::{WorkerConfig, WorkerProcess, task};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "idlegrid",
    version,
    about = "Share your GPU while you are away, and get paid for it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job file on this machine and write each output buffer to DIR/NAME.bin
    Run {
        job: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Use the adapter whose name contains this (default: the best GPU; also WGPU_ADAPTER_NAME)
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        /// Print a JSON summary: outputs (name, bytes, blake3), gpu_ms, adapter
        #[arg(long)]
        json: bool,
        /// Stop the job once it has run this long on the GPU (default: the job limit, 60 s)
        #[arg(long, value_name = "SECS", default_value_t = JobLimits::default().deadline.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        deadline: u64,
    },
    /// Describe the GPUs, CPU and memory of this machine
    Probe {
        #[arg(long)]
        json: bool,
    },
    /// Print this machine's identity: its public key (the iroh endpoint id)
    Id {
        /// Data dir whose identity to print (default: ~/.local/share/idlegrid or the platform's own)
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Score this machine's GPU: matrix multiply GFLOP/s and memory copy GB/s
    Bench {
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a pool: queue jobs from allowed submitters, lease them to providers, verify and pay
    /// (`idlegrid pool status` reports on one)
    Pool(network::PoolCommand),
    /// Work for a pool with this machine's GPU, without the desktop app
    Provide(network::ProvideArgs),
    /// Send a job to a pool, follow it, and write its verified outputs to DIR/NAME.bin
    Submit(network::SubmitArgs),
    /// This provider's ledger: signed receipts, balance and payouts
    Earnings(network::EarningsArgs),
    /// This provider's payout address and its token balance on each chain it is paid on
    Wallet(chain::WalletArgs),
    /// Check a proof of earnings (from `idlegrid earnings --proof`): every signature, and each chain
    /// transfer through the RPCs given
    VerifyEarnings(chain::VerifyEarningsArgs),
    /// A pool's payouts on an EVM chain
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Run a relay server, for peers behind NAT to reach each other through and punch direct paths
    Relay(cli::relay::RelayServerArgs),
    /// Sentence embeddings of texts, one {"index", "embedding"} JSON line per text, in order
    Embed(cli::embed::EmbedArgs),
    /// An OpenAI-compatible endpoint: POST /v1/embeddings and GET /v1/models
    Serve(cli::serve::ServeArgs),
    /// The GPU worker a provider runs jobs in; speaks frames on stdin/stdout, not for people
    #[command(hide = true)]
    Worker,
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error: {message} (please report this)");
    }));
    let cli = Cli::parse();
    init_logging(&cli.command);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(command: &Command) {
    // Quiet by default: graphics drivers are chatty. The long-running roles say what they do, with
    // times. RUST_LOG=info (or debug) shows more.
    let long_running = matches!(
        command,
        Command::Pool(_) | Command::Provide(_) | Command::Relay(_) | Command::Serve(_)
    );
    let default = if long_running {
        "warn,idlegrid=info,wgpu_hal=error,wgpu_core=error,naga=error"
    } else {
        "warn,wgpu_hal=error,wgpu_core=error,naga=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if long_running {
        builder.init();
    } else {
        builder.without_time().init();
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            job,
            out,
            adapter,
            json,
            deadline,
        } => run_job(&job, &out, adapter, Duration::from_secs(deadline), json),
        Command::Probe { json } => {
            let config = worker_config(None)?;
            let adapters = task::adapters(&config)?;
            let mut report = HardwareReport::with_adapters(adapters);
            // The adapters a job would skip take opening them, in a worker like the listing.
            match task::skipped_adapters(&config) {
                Ok(skipped) => report.skipped_adapters = skipped,
                Err(error) => tracing::warn!(%error, "no adapter works for jobs"),
            }
            print(json, &report, || describe_hardware(&report))
        }
        Command::Id { data } => {
            let data = data.unwrap_or_else(idlegrid::identity::default_data_dir);
            let identity =
                idlegrid::Identity::load_or_create(&data, &idlegrid::KeyStore::from_env())?;
            println!("{}", identity.public());
            Ok(())
        }
        Command::Bench { adapter, json } => {
            let report = task::benchmark(&worker_config(adapter)?)?;
            print(json, &report, || describe_bench(&report))
        }
        Command::Pool(args) => network::pool(args),
        Command::Provide(args) => network::provide(args),
        Command::Submit(args) => network::submit(args),
        Command::Earnings(args) => network::earnings(args),
        Command::Wallet(args) => chain::wallet(args),
        Command::VerifyEarnings(args) => chain::verify_earnings(args),
        Command::Chain(command) => chain::chain(command),
        Command::Relay(args) => cli::relay::relay(args),
        Command::Embed(args) => cli::embed::embed(args),
        Command::Serve(args) => cli::serve::serve(args),
        Command::Worker => Ok(idlegrid::worker::serve()?),
    }
}

/// A GPU worker for one command: on `adapter` (the worker falls back to `WGPU_ADAPTER_NAME`, then
/// the best), with no spare started after a kill.
fn worker_config(adapter: Option<String>) -> anyhow::Result<WorkerConfig> {
    let mut config =
        WorkerConfig::this_program().context("cannot find this program to start its GPU worker")?;
    config.adapter = adapter;
    config.standby = false;
    Ok(config)
}

fn run_job(
    path: &Path,
    out: &Path,
    adapter: Option<String>,
    deadline: Duration,
    json: bool,
) -> anyhow::Result<()> {
    let limits = JobLimits {
        deadline,
        ..JobLimits::default()
    };
    let job = Job::load(path, &limits)?;
    let mut config = worker_config(adapter)?;
    config.limits = limits;
    let mut worker = WorkerProcess::start(config)?;
    let output = worker.run(&job, deadline, &RunControl::default())?;
    worker.stop();
    write_outputs(&output.outputs, out)?;
    let summary = json!({
        "job": job.name,
        "outputs": outputs_json(&output.outputs, out),
        "gpu_ms": output.gpu_time.as_secs_f64() * 1e3,
        "timing": output.timing,
        "adapter": output.adapter,
    });
    print(json, &summary, || describe_run(&job, &output, out))
}

/// Writes each output to DIR/NAME.bin through a temporary file, so a reader never sees half a file.
fn write_outputs(outputs: &[OutputBuffer], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for buffer in outputs {
        network::write_atomically(&dir.join(format!("{}.bin", buffer.name)), &buffer.bytes)?;
    }
    Ok(())
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

fn describe_run(job: &Job, output: &JobOutput, out: &Path) -> String {
    format!(
        "{} ran on {} in {:.3} ms of GPU time\n{}",
        job.name,
        output.adapter,
        output.gpu_time.as_secs_f64() * 1e3,
        describe_outputs(&output.outputs, out)
    )
}

/// One line per output: name, size, hash and the file it was written to.
fn describe_outputs(outputs: &[OutputBuffer], out: &Path) -> String {
    outputs
        .iter()
        .map(|o| {
            format!(
                "  {}  {} bytes  blake3 {}  -> {}\n",
                o.name,
                o.bytes.len(),
                o.blake3.to_hex(),
                out.join(format!("{}.bin", o.name)).display()
            )
        })
        .collect()
}

fn outputs_json(outputs: &[OutputBuffer], out: &Path) -> serde_json::Value {
    outputs
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "bytes": o.bytes.len(),
                "blake3": o.blake3.to_hex().as_str(),
                "path": out.join(format!("{}.bin", o.name)),
            })
        })
        .collect()
}

fn describe_hardware(report: &HardwareReport) -> String {
    let mut text = String::from("GPU adapters:\n");
    if report.adapters.is_empty() {
        text +=
            "  none (install a Vulkan driver; on Debian: apt-get install mesa-vulkan-drivers)\n";
    }
    for a in &report.adapters {
        text += &format!(
            "  {} [{} {}, {}] driver {} {}; max buffer {} MiB, timestamps {}\n",
            a.name,
            a.vendor,
            a.device_type,
            a.backend,
            a.driver,
            a.driver_info,
            a.limits.max_buffer_size >> 20,
            if a.timestamp_queries { "yes" } else { "no" }
        );
    }
    for g in &report.gpus {
        let usage = g
            .usage_percent
            .map_or("usage unknown".to_owned(), |u| format!("{u:.0}% busy"));
        let memory = match (g.memory_used_bytes, g.memory_total_bytes) {
            (Some(used), Some(total)) => format!(", {} / {} MiB", used >> 20, total >> 20),
            _ => String::new(),
        };
        text += &format!(
            "  in use: {} {}{}\n",
            g.model.as_deref().unwrap_or("GPU"),
            usage,
            memory
        );
    }
    let cores = report
        .cpu
        .physical_cores
        .map_or(String::new(), |c| format!("{c} cores, "));
    text += &format!(
        "CPU: {} ({}{} threads)\n",
        report.cpu.model, cores, report.cpu.logical_cores
    );
    text += &format!(
        "Memory: {:.1} GiB, {:.1} GiB available\n",
        report.memory.total_bytes as f64 / f64::from(1u32 << 30),
        report.memory.available_bytes as f64 / f64::from(1u32 << 30)
    );
    for s in &report.skipped_adapters {
        text += &format!("Skipped adapter {}: {}\n", s.adapter, s.reason);
    }
    for u in &report.unreadable {
        text += &format!("Unknown {}: {}\n", u.reading, u.reason);
    }
    text
}

fn describe_bench(report: &BenchReport) -> String {
    let embeddings = match &report.embeddings {
        Some(e) => format!(
            "  embed  {:.1} embeddings/s ({}, batches of {})\n",
            e.per_second,
            e.model,
            idlegrid::embed::BENCH_TEXTS
        ),
        None => String::new(),
    };
    format!(
        "{}\n  matmul {:.2} GFLOP/s ({n}x{n} f32)\n  copy   {:.2} GB/s ({} MiB)\n{embeddings}  timed with {:?}, {:.1} s in all\n",
        report.adapter,
        report.matmul_gflops,
        report.copy_gbps,
        report.copy_bytes >> 20,
        report.timing,
        report.seconds,
        n = report.matmul_size
    )
}
