//! `idlegrid pool`, `provide`, `submit` and `earnings`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use idlegrid::Amount;
use idlegrid::client::Client;
use idlegrid::identity::{Identity, KeyStore, default_data_dir};
use idlegrid::idle::{self, HostSignals, IdleMonitor, Mode, MonitorConfig, Preferences};
use idlegrid::job::{Job, JobLimits};
use idlegrid::ledger::Ledger;
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig, RunningPool};
use idlegrid::protocol::{self, Bind, JobProgress, JobState, Network};
use idlegrid::provider::{Provider, ProviderConfig};
use idlegrid::worker::{WorkerConfig, WorkerProcess, task};
use serde_json::json;
use tokio::sync::watch;

use super::relay::RelayArgs;

#[derive(Args)]
pub struct PoolArgs {
    /// Where the pool keeps its identity, queue, results and payouts
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// A submitter's public key (from `idlegrid id`) that may send jobs; repeat for more
    #[arg(long = "allow", value_name = "KEY")]
    allow: Vec<iroh::PublicKey>,
    /// A key (provider or submitter) refused at the handshake; repeat for more
    #[arg(long = "block", value_name = "KEY")]
    block: Vec<iroh::PublicKey>,
    /// Address to listen on (default: every IPv4 interface, on the port this pool had before so its
    /// ticket stays the same, or a free UDP port the first time)
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,
    /// Seconds a provider holds a lease before the job is handed to another
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    lease_secs: u64,
    /// Replicas a job needs while its providers have no long clean record
    #[arg(long, value_name = "N", default_value_t = ReplicationPolicy::default().untrusted_replicas)]
    replicas_for_new: u32,
    /// Share of requests for work answered with a canary job of known answer
    #[arg(long, value_name = "RATE", default_value_t = PoolConfig::default().canary_rate)]
    canary_rate: f64,
    /// Unpaid balance at which a provider is paid out
    #[arg(long, value_name = "AMOUNT", default_value_t = PoolConfig::default().payout_threshold)]
    payout_threshold: Amount,
    /// A job no provider takes for this many seconds fails, with the reason it was waiting
    #[arg(long, value_name = "SECS", default_value_t = PoolConfig::default().give_up_after.as_secs())]
    give_up_secs: u64,
    #[command(flatten)]
    chain: super::chain::PoolChainArgs,
    #[command(flatten)]
    relays: RelayArgs,
}

/// `idlegrid pool`: runs the pool, or reports on it.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PoolCommand {
    #[command(subcommand)]
    pub action: Option<PoolAction>,
    #[command(flatten)]
    pub run: PoolArgs,
}

#[derive(clap::Subcommand)]
pub enum PoolAction {
    /// The pool's books: owed, paid, pending payouts, providers without an address, and the deposit
    Status(super::chain::PoolStatusArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Policy {
    /// Work whenever the pool has work (a machine that is only for this); the GPU temperature limit
    /// still applies
    Always,
    /// Work only while the computer is idle: nobody at keyboard or mouse, other programs quiet, on
    /// mains power
    Idle,
}

#[derive(Args)]
pub struct ProvideArgs {
    /// The pool's ticket, as printed by `idlegrid pool`
    #[arg(long, value_name = "TICKET")]
    pool: String,
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "always")]
    policy: Policy,
    /// With --policy idle: seconds without keyboard or mouse input before work starts
    #[arg(long, value_name = "SECS", default_value_t = Preferences::default().idle_after.as_secs())]
    idle_after: u64,
    /// With --policy idle: pause while other programs use more than this share of the CPU
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0)]
    max_other_cpu: f32,
    /// Use the adapter whose name contains this (also WGPU_ADAPTER_NAME)
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Leases to ask for at once
    #[arg(long, value_name = "N", default_value_t = 1)]
    slots: u32,
    /// GPU memory one job may take (its buffers plus their read-back copies); lowered further to
    /// what the adapter has
    #[arg(long, value_name = "MIB", default_value_t = JobLimits::default().memory_budget >> 20)]
    job_memory: u64,
    #[command(flatten)]
    payout: super::chain::PayoutArgs,
    #[command(flatten)]
    relays: RelayArgs,
}

#[derive(Args)]
pub struct SubmitArgs {
    job: PathBuf,
    /// The pool's ticket, as printed by `idlegrid pool`
    #[arg(long, value_name = "TICKET")]
    pool: String,
    /// Where to write each verified output as NAME.bin
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Independent providers that must agree (overrides the job's [verify] replicas)
    #[arg(long, value_name = "N")]
    replicas: Option<u32>,
    /// Whose identity submits (default: the platform data dir)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print a JSON summary: status, job, id, outputs (name, bytes, blake3, path); or, when the job
    /// fails, {"status": "failed", "reason": ...}
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds, with the last reason the job was waiting
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    relays: RelayArgs,
}

#[derive(Args)]
pub struct EarningsArgs {
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print the ledger as JSON: receipts, balance, payouts
    #[arg(long)]
    json: bool,
    /// Write a proof of earnings to FILE instead: the pool-signed receipts and payouts and this
    /// provider's address bindings, which anyone can check with `idlegrid verify-earnings`
    #[arg(long, value_name = "FILE")]
    proof: Option<PathBuf>,
}

pub(crate) fn identity(data: &Path) -> anyhow::Result<Identity> {
    Ok(Identity::load_or_create(data, &KeyStore::from_env())?)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn pool(command: PoolCommand) -> anyhow::Result<()> {
    let args = match command.action {
        Some(PoolAction::Status(status)) => return super::chain::pool_status(status),
        None => command.run,
    };
    let data = args.data.unwrap_or_else(default_data_dir);
    let key = identity(&data)?.secret_key().clone();
    let config = PoolConfig {
        allow: args.allow,
        blocked: args.block,
        replication: ReplicationPolicy {
            untrusted_replicas: args.replicas_for_new.max(1),
            ..ReplicationPolicy::default()
        },
        lease_time: Duration::from_secs(args.lease_secs.max(1)),
        canary_rate: args.canary_rate.clamp(0.0, 1.0),
        payout_threshold: args.payout_threshold,
        give_up_after: Duration::from_secs(args.give_up_secs.max(1)),
        ..PoolConfig::default()
    };
    let network = args.relays.network()?;
    let previous = previous_ticket(&data);
    runtime()?.block_on(async {
        let pool = super::chain::open_pool(&data, key, config, &args.chain).await?;
        let running = match args.bind {
            Some(addr) => {
                let relays = network.for_pool(addr.ip(), previous.home.as_ref());
                pool.serve_with(Bind::At(addr), &relays, &network.ca_roots)
                    .await?
            }
            None => serve_on_previous_port(pool, &network, &previous).await?,
        };
        if running.online(ONLINE_WAIT).await {
            tracing::info!("the pool is reachable through its home relay");
        } else if running.relays().is_on() {
            tracing::warn!(
                "no relay reached within {} s: the ticket holds direct addresses only, and is \
                 rewritten in {} once a relay answers",
                ONLINE_WAIT.as_secs(),
                data.join("ticket").display()
            );
        }
        let ticket = running.ticket();
        write_atomically(&data.join("ticket"), format!("{ticket}\n").as_bytes())?;
        println!("ticket: {ticket}");
        tracing::info!(data = %data.display(), "pool running; Ctrl-C stops it");
        let keep_ticket = running.follow_ticket(|ticket| {
            match write_atomically(&data.join("ticket"), format!("{ticket}\n").as_bytes()) {
                Ok(()) => tracing::info!(%ticket, "the ticket changed; rewrote it"),
                Err(error) => tracing::warn!(%error, "cannot rewrite the ticket"),
            }
        });
        tokio::select! {
            () = shutdown_signal() => {}
            () = keep_ticket => {}
        }
        running.shutdown().await;
        Ok(())
    })
}

/// How long a pool with relays waits for its home relay before printing its ticket.
const ONLINE_WAIT: Duration = Duration::from_secs(5);

/// What the ticket a pool printed last time says: its port and home relay, so that a restarted pool
/// keeps both and the ticket people hold stays valid.
#[derive(Default)]
struct PreviousTicket {
    port: Option<u16>,
    home: Option<iroh::RelayUrl>,
}

fn previous_ticket(data: &Path) -> PreviousTicket {
    let Some(addr) = std::fs::read_to_string(data.join("ticket"))
        .ok()
        .and_then(|ticket| protocol::ticket_addr(&ticket).ok())
    else {
        return PreviousTicket::default();
    };
    PreviousTicket {
        port: bound_port(addr.ip_addrs().map(SocketAddr::port)),
        home: addr.relay_urls().next().cloned(),
    }
}

/// The port a pool was bound to, from its ticket's addresses: the one most of them share (a NAT's
/// public address, learned from a relay, may carry another).
fn bound_port(ports: impl Iterator<Item = u16>) -> Option<u16> {
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for port in ports {
        *counts.entry(port).or_default() += 1;
    }
    let most = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|&(_, n)| n == most)
        .map(|(port, _)| port)
}

/// Binds the port of the ticket this pool printed last time, so providers and submitters holding it
/// find the pool again after a restart; a new port if that one is taken.
async fn serve_on_previous_port(
    pool: Pool,
    network: &Network,
    previous: &PreviousTicket,
) -> anyhow::Result<RunningPool> {
    let any = |port| Bind::At(SocketAddr::from(([0, 0, 0, 0], port)));
    let relays = network.for_pool(Ipv4Addr::UNSPECIFIED.into(), previous.home.as_ref());
    if let Some(port) = previous.port {
        match pool
            .clone()
            .serve_with(any(port), &relays, &network.ca_roots)
            .await
        {
            Ok(running) => return Ok(running),
            Err(error) => {
                tracing::warn!(port, %error, "the previous port is taken; the ticket changes")
            }
        }
    }
    Ok(pool.serve_with(any(0), &relays, &network.ca_roots).await?)
}

pub fn provide(args: ProvideArgs) -> anyhow::Result<()> {
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    let key = identity(&data)?.secret_key().clone();
    let pool = protocol::ticket_addr(&args.pool)?;
    // Strangers' jobs run in a child process that can be killed; this process keeps the network.
    let mut worker = WorkerConfig::this_program()?;
    worker.adapter = args.adapter.clone();
    worker.limits.memory_budget = args.job_memory.saturating_mul(1 << 20);
    let scorer = worker.clone();
    let worker = WorkerProcess::start(worker)?;
    let adapter = worker.capabilities().adapter.clone();
    let gflops = device_score(&data, &adapter, &scorer);
    let config = ProviderConfig {
        slots: args.slots.max(1),
        gflops,
        binding: super::chain::payout_binding(&data, &key, &args.payout)?,
        chain_rpc: super::chain::chain_rpc(&args.payout),
        network: args.relays.network()?,
        ..ProviderConfig::default()
    };
    let monitor = idle_monitor(&args, adapter);
    let provider = Provider::new(key, pool, &data, worker, config)?;
    runtime()?.block_on(async {
        let (stop, stop_rx) = watch::channel(false);
        let work = tokio::spawn(provider.run(monitor.verdicts(), stop_rx));
        tracing::info!("providing; Ctrl-C stops");
        shutdown_signal().await;
        let _ = stop.send(true);
        work.await.context("the provider stopped unexpectedly")??;
        Ok(())
    })
}

/// The monitor deciding when this provider works; `always` still reads the machine, for the GPU
/// temperature limit.
fn idle_monitor(args: &ProvideArgs, adapter: String) -> IdleMonitor {
    let preferences = Preferences {
        mode: match args.policy {
            Policy::Always => Mode::Always,
            Policy::Idle => Mode::WhenIdle,
        },
        idle_after: Duration::from_secs(args.idle_after),
        max_other_cpu_percent: Some(args.max_other_cpu),
        ..Preferences::default()
    };
    let input = match args.policy {
        Policy::Always => None,
        Policy::Idle => match idle::detect_input() {
            Ok(input) => Some(input),
            Err(error) => {
                tracing::warn!(%error, "no keyboard and mouse idle time here; deciding on the other signals");
                None
            }
        },
    };
    IdleMonitor::spawn(
        input,
        Box::new(HostSignals::new()),
        preferences,
        MonitorConfig::new(adapter),
    )
}

/// The matrix-multiply score sent to pools, measured once per adapter (here, with our own trusted
/// benchmark jobs, in a worker of its own) and kept in the data dir.
fn device_score(data: &Path, adapter: &str, worker: &WorkerConfig) -> f32 {
    let path = data.join("bench.json");
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter(|v| v["adapter"] == adapter)
        .and_then(|v| v["matmul_gflops"].as_f64());
    if let Some(score) = cached {
        return score as f32;
    }
    match task::device_score_of(worker) {
        Ok(report) => {
            let json = json!({ "adapter": adapter, "matmul_gflops": report.matmul_gflops });
            if let Err(error) = write_atomically(&path, json.to_string().as_bytes()) {
                tracing::warn!(%error, "could not keep the device score");
            }
            report.matmul_gflops as f32
        }
        Err(error) => {
            tracing::warn!(%error, "could not score this GPU; pools will see 0");
            0.0
        }
    }
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let mut job = Job::load(&args.job, &JobLimits::default())?;
    if let Some(replicas) = args.replicas {
        if replicas == 0 {
            bail!("--replicas must be at least 1");
        }
        job.verify.replicas = replicas;
    }
    let data = args.data.unwrap_or_else(default_data_dir);
    let key = identity(&data)?.secret_key().clone();
    let network = args.relays.network()?;
    let mut progress = Progress::new(&job.name);
    let timeout = args.timeout.map(Duration::from_secs);
    let outcome = runtime()?.block_on(async {
        let client = Client::connect_with(&args.pool, key, &network).await?;
        let outcome = async {
            let handle = client.submit(&job).await?;
            let id = handle.id();
            let waiting = handle.wait_with(|p| progress.show(&p));
            let outputs = match timeout {
                Some(limit) => tokio::time::timeout(limit, waiting).await.map_err(|_| {
                    SubmitFailure::TimedOut {
                        after: limit,
                        last: progress.last.clone(),
                    }
                })??,
                None => waiting.await?,
            };
            anyhow::Ok((id, outputs))
        }
        .await;
        client.close().await;
        outcome
    });
    progress.finish();
    let (id, outputs) = match outcome {
        Ok(done) => done,
        Err(error) if args.json => {
            let reason = error
                .downcast_ref::<idlegrid::client::ClientError>()
                .and_then(|e| match e {
                    idlegrid::client::ClientError::Failed(reason) => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| error.to_string());
            crate::print(
                true,
                &json!({ "status": "failed", "reason": reason }),
                String::new,
            )?;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    crate::write_outputs(&outputs, &args.out)?;
    let summary = json!({
        "status": "verified",
        "job": job.name,
        "id": id.to_hex(),
        "outputs": crate::outputs_json(&outputs, &args.out),
    });
    crate::print(args.json, &summary, || {
        format!(
            "{} verified\n{}",
            job.name,
            crate::describe_outputs(&outputs, &args.out)
        )
    })
}

#[derive(Debug, thiserror::Error)]
enum SubmitFailure {
    #[error("gave up after {} s: {last}", after.as_secs())]
    TimedOut { after: Duration, last: String },
}

/// Where a submitted job stands, for the person who sent it: a spinner on a terminal, otherwise one
/// line on stderr each time the description changes (a log or a CI run shows why it waits).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// The last description shown.
    last: String,
}

impl Progress {
    fn new(job: &str) -> Progress {
        let first = format!("sending {job} to the pool");
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(first.clone());
            bar
        });
        Progress { bar, last: first }
    }

    fn show(&mut self, progress: &JobProgress) {
        let line = describe_progress(progress);
        if line == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(line.clone()),
            None => eprintln!("{line}"),
        }
        self.last = line;
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn describe_progress(progress: &JobProgress) -> String {
    let state = match progress.state {
        JobState::Queued => format!("queued ({}/{} results)", progress.results, progress.needed),
        JobState::Running => format!(
            "running on {} provider{} ({}/{} results)",
            progress.running,
            if progress.running == 1 { "" } else { "s" },
            progress.results,
            progress.needed
        ),
        JobState::Verified => "verified".into(),
        JobState::Failed => "failed".into(),
    };
    match &progress.note {
        Some(note) => format!("{state}: {note}"),
        None => state,
    }
}

pub fn earnings(args: EarningsArgs) -> anyhow::Result<()> {
    let data = args.data.unwrap_or_else(default_data_dir);
    let me = identity(&data)?.public();
    let ledger = Ledger::open(&data.join("ledger.sqlite"), me)?;
    if let Some(path) = &args.proof {
        let bundle = idlegrid::proof::ProofBundle::new(&me, &ledger.signed_statements()?);
        let text = serde_json::to_string_pretty(&bundle).context("cannot write the proof")?;
        write_atomically(path, text.as_bytes())?;
        println!(
            "wrote {} receipts, {} payouts and {} address bindings to {}",
            bundle.receipts.len(),
            bundle.payouts.len(),
            bundle.bindings.len(),
            path.display()
        );
        return Ok(());
    }
    let earnings = ledger.earnings()?;
    crate::print(args.json, &earnings, || earnings.describe())
}

/// Writes through a temporary file, so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    idlegrid::atomic_file::write(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
