//! The `idlegrid` command: runs jobs locally, describes and scores the hardware. Every error is one line
//! on stderr and a non-zero exit; output meant for programs is behind `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use idlegrid::gpu::{AdapterChoice, BenchReport, Executor, HardwareReport, JobOutput};
use idlegrid::job::{Job, JobLimits};
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
}

fn main() -> ExitCode {
    init_logging();
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
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    // Quiet by default: graphics drivers are chatty. RUST_LOG=info (or debug) shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,wgpu_hal=error,wgpu_core=error,naga=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            job,
            out,
            adapter,
            json,
        } => run_job(&job, &out, adapter, json),
        Command::Probe { json } => {
            let report = idlegrid::probe();
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
            let mut executor = Executor::new(&AdapterChoice::from_flag_or_env(adapter))?;
            let report = idlegrid::bench(&mut executor)?;
            print(json, &report, || describe_bench(&report))
        }
    }
}

fn run_job(path: &Path, out: &Path, adapter: Option<String>, json: bool) -> anyhow::Result<()> {
    let job = Job::load(path, &JobLimits::default())?;
    let mut executor = Executor::new(&AdapterChoice::from_flag_or_env(adapter))?;
    let output = executor.run(&job)?;
    write_outputs(&output, out)?;
    let summary = json!({
        "job": job.name,
        "outputs": output.outputs.iter().map(|o| json!({
            "name": o.name,
            "bytes": o.bytes.len(),
            "blake3": o.blake3.to_hex().as_str(),
            "path": out.join(format!("{}.bin", o.name)),
        })).collect::<Vec<_>>(),
        "gpu_ms": output.gpu_time.as_secs_f64() * 1e3,
        "timing": output.timing,
        "adapter": output.adapter,
    });
    print(json, &summary, || describe_run(&job, &output, out))
}

/// Writes each output to DIR/NAME.bin through a temporary file, so a reader never sees half a file.
fn write_outputs(output: &JobOutput, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for buffer in &output.outputs {
        let path = dir.join(format!("{}.bin", buffer.name));
        let partial = dir.join(format!(".{}.bin.partial", buffer.name));
        std::fs::write(&partial, &buffer.bytes)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
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
    let mut text = format!(
        "{} ran on {} in {:.3} ms of GPU time\n",
        job.name,
        output.adapter,
        output.gpu_time.as_secs_f64() * 1e3
    );
    for o in &output.outputs {
        let path = out.join(format!("{}.bin", o.name));
        text += &format!(
            "  {}  {} bytes  blake3 {}  -> {}\n",
            o.name,
            o.bytes.len(),
            o.blake3.to_hex(),
            path.display()
        );
    }
    text
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
    text
}

fn describe_bench(report: &BenchReport) -> String {
    format!(
        "{}\n  matmul {:.2} GFLOP/s ({n}x{n} f32)\n  copy   {:.2} GB/s ({} MiB)\n  timed with {:?}, {:.1} s in all\n",
        report.adapter,
        report.matmul_gflops,
        report.copy_gbps,
        report.copy_bytes >> 20,
        report.timing,
        report.seconds,
        n = report.matmul_size
    )
}
