//! Pool memberships: checking a ticket before joining (well formed, and the pool answers), and one
//! running provider per joined pool, stopped when the person leaves or blocks it. Each membership's
//! provider follows a verdict channel (the idle monitor's, or the demo pool's "always" version of it)
//! and wakes the node whenever its state changes.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use iroh::{EndpointAddr, SecretKey};
use iroh_tickets::endpoint::EndpointTicket;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::gpu::{AdapterChoice, AdapterReport, BenchReport, Executor, bench, list_adapters};
use crate::idle::Verdict;
use crate::job::JobError;
use crate::ledger::LedgerNews;
use crate::protocol::{self, Bind, Network, WORK_ALPN};
use crate::provider::{
    PayoutTarget, PoolPath, Provider, ProviderConfig, ProviderState, ProviderStatus,
};
use crate::worker::{Runner, WorkerConfig, WorkerProcess, task};

use super::NodeError;
use super::store::PoolRecord;
use super::views::PoolState;

/// How long a provider gets to stop cleanly (give its lease back, close its connection).
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Names people give pools are shown in a menu and a table.
const MAX_POOL_NAME_CHARS: usize = 60;

/// A ticket read the way `idlegrid pool` prints it, or why it is not one.
pub fn parse_ticket(ticket: &str) -> Result<EndpointAddr, NodeError> {
    let ticket = ticket.trim();
    let ticket = ticket.strip_prefix("ticket:").map_or(ticket, str::trim);
    if ticket.is_empty() {
        return Err(NodeError::BadTicket("it is empty".into()));
    }
    EndpointTicket::from_str(ticket)
        .map(EndpointAddr::from)
        .map_err(|e| NodeError::BadTicket(e.to_string()))
}

/// The name a pool is shown under: the one given (trimmed, at most 60 characters), else the first 8
/// characters of its key.
pub fn display_name(given: Option<&str>, id: &str) -> String {
    match given.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_POOL_NAME_CHARS)
            .collect(),
        None => id.chars().take(8).collect(),
    }
}

/// Connects to the pool once, as `key`, and hangs up: proof it is there before it is joined.
pub async fn reach(
    key: &SecretKey,
    pool: &EndpointAddr,
    network: &Network,
    limit: Duration,
) -> Result<(), NodeError> {
    let unreachable = |reason: String| NodeError::Unreachable(reason);
    let relays = network.for_peer(pool);
    let builder = protocol::endpoint_builder_with(
        key.clone(),
        Bind::Toward,
        Some(pool),
        &relays,
        &network.ca_roots,
    )
    .map_err(|e| unreachable(e.to_string()))?;
    let endpoint = protocol::bind_endpoint(builder)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let connected = tokio::time::timeout(limit, endpoint.connect(pool.clone(), WORK_ALPN)).await;
    let result = match connected {
        Ok(Ok(connection)) => {
            connection.close(0u32.into(), b"checked");
            Ok(())
        }
        Ok(Err(error)) => Err(unreachable(error.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            limit.as_secs()
        ))),
    };
    endpoint.close().await;
    result
}

/// Where a provider's jobs run.
#[derive(Clone, Debug)]
pub enum JobRunner {
    /// In a child process (`PROGRAM worker`) that is killed and replaced when a job misbehaves, and
    /// ends when the provider releases the GPU: what the app uses.
    Worker(Box<WorkerConfig>),
    /// In this process, without isolation: for tests and for programs that cannot host a worker.
    InProcess,
}

impl JobRunner {
    /// Opens the adapter (and starts the worker); blocks until it is ready.
    fn open(self, adapter: &AdapterChoice) -> Result<Runner, JobError> {
        match self {
            JobRunner::InProcess => Ok(Executor::new(adapter)?.into()),
            JobRunner::Worker(mut config) => {
                config.adapter = config.adapter.or_else(|| adapter.name.clone());
                Ok(WorkerProcess::start(*config)?.into())
            }
        }
    }

    /// Every adapter wgpu can use, listed where jobs run: with a worker, in a short-lived one, so
    /// the GPU driver never loads into this process.
    pub fn adapters(&self) -> Result<Vec<AdapterReport>, NodeError> {
        match self {
            JobRunner::InProcess => Ok(list_adapters()),
            JobRunner::Worker(config) => task::adapters(config).map_err(NodeError::NoGpu),
        }
    }

    /// The benchmark on `adapter`, run where jobs run.
    pub fn benchmark(&self, adapter: &AdapterChoice) -> Result<BenchReport, JobError> {
        match self {
            JobRunner::InProcess => bench(&mut Executor::new(adapter)?),
            JobRunner::Worker(config) => {
                let mut config = (**config).clone();
                config.adapter = adapter.name.clone().or(config.adapter);
                task::benchmark(&config)
            }
        }
    }

    /// The name of the adapter jobs would run on. With a worker, the GPU driver is loaded in the
    /// worker only, not in this long-lived process (an idle tray app then stays small).
    pub fn adapter_name(self, adapter: &AdapterChoice) -> Result<String, JobError> {
        let mut runner = self.open(adapter)?;
        let name = runner.capabilities().adapter;
        runner.release_device();
        Ok(name)
    }
}

/// A joined pool's running provider.
pub struct PoolMembership {
    status: watch::Receiver<ProviderStatus>,
    path: watch::Receiver<PoolPath>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Forwards the provider's state changes to the node.
    waker: JoinHandle<()>,
}

/// What a membership needs from the node to start.
pub struct Start<'a> {
    pub key: &'a SecretKey,
    pub data_dir: &'a Path,
    pub adapter: &'a AdapterChoice,
    pub runner: &'a JobRunner,
    pub config: ProviderConfig,
    pub verdicts: watch::Receiver<Verdict>,
    pub wake: Arc<Notify>,
    /// Where the provider tells what it stores in the ledger.
    pub news: mpsc::UnboundedSender<LedgerNews>,
    /// Where it is paid on a chain, as the person's settings say now and later.
    pub payout: watch::Receiver<PayoutTarget>,
}

impl PoolMembership {
    /// Opens the GPU adapter and starts working for the pool of `record`.
    pub async fn start(record: &PoolRecord, start: Start<'_>) -> Result<PoolMembership, NodeError> {
        let pool = parse_ticket(&record.ticket)?;
        let (choice, runner) = (start.adapter.clone(), start.runner.clone());
        // Opening an adapter, or starting a worker, blocks for a moment; not on the async threads.
        let runner = tokio::task::spawn_blocking(move || runner.open(&choice))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?
            .map_err(NodeError::NoGpu)?;
        let provider = Provider::new(
            start.key.clone(),
            pool,
            start.data_dir,
            runner,
            start.config,
        )?
        .telling(start.news)
        .following_payout(start.payout);
        let status = provider.status();
        let path = provider.path();
        let (stop, stop_rx) = watch::channel(false);
        let name = record.name.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = provider.run(start.verdicts, stop_rx).await {
                tracing::warn!(pool = %name, %error, "the provider stopped");
            }
        });
        let waker = tokio::spawn(wake_on_change(status.clone(), path.clone(), start.wake));
        tracing::info!(pool = %record.name, id = %record.id, "working for the pool");
        Ok(PoolMembership {
            status,
            path,
            stop,
            task,
            waker,
        })
    }

    pub fn status(&self) -> ProviderStatus {
        self.status.borrow().clone()
    }

    /// How the pool is reached now.
    pub fn path(&self) -> PoolPath {
        self.path.borrow().clone()
    }

    /// The pool's state as the pools page shows it, and the error when it cannot be reached.
    pub fn state(&self) -> (PoolState, Option<String>) {
        pool_state(&self.status.borrow().state)
    }

    /// Stops the provider (its lease goes back to the pool) and waits for it, a bounded time.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_WAIT, self.task).await.is_err() {
            tracing::warn!("a provider did not stop in time; left to finish on its own");
        }
        self.waker.abort();
    }
}

pub fn pool_state(state: &ProviderState) -> (PoolState, Option<String>) {
    match state {
        ProviderState::Connecting => (PoolState::Connecting, None),
        ProviderState::Unreachable { error } => (PoolState::Unreachable, Some(error.clone())),
        _ => (PoolState::Connected, None),
    }
}

/// Wakes the node when the provider's state changes, or how it reaches the pool (a new RTT alone is
/// not news: it shows with the next change).
async fn wake_on_change(
    mut status: watch::Receiver<ProviderStatus>,
    mut path: watch::Receiver<PoolPath>,
    wake: Arc<Notify>,
) {
    let mut shown = path.borrow_and_update().clone();
    loop {
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            changed = path.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = path.borrow_and_update().clone();
                if now.same_kind(&shown) {
                    continue;
                }
                shown = now;
            }
        }
        wake.notify_one();
    }
}
