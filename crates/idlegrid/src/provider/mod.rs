//! The provider: asks a pool for work while it may run, fetches the inputs it lacks, runs leases on
//! its GPU, returns the outputs, and keeps the pool's signed receipts and payouts in its ledger.
//!
//! The same loop runs headless (`idlegrid provide`) and inside the desktop app. Whether it may run is
//! a `watch` of the idle policy's [`Verdict`]: it asks for work only while the verdict is Run, cancels
//! the job in flight between passes and gives its lease back the moment it turns to Pause, and drops
//! its GPU device after a minute paused. It reconnects with backoff when the pool goes away, and
//! publishes what it is doing as a [`ProviderStatus`], and tells what it stored in the ledger as
//! [`LedgerNews`] to whoever asked ([`Provider::telling`]). Beside that loop, it checks every payout
//! on a chain itself (`payout_check`).

mod path;
mod payout_check;
mod session;
mod status;

pub use path::{LOOKING, NO_DIRECT_PATH, OpenPath, PUNCH_GRACE, PoolPath, classify};
pub use status::{Progress, ProviderState, ProviderStatus};

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::{EndpointAddr, SecretKey};
use tokio::sync::{mpsc, watch};

use crate::blobs::{BlobError, BlobStore};
use crate::idle::Verdict;
use crate::ledger::{Ledger, LedgerError, LedgerNews};
use crate::protocol::{self, Bind, Capabilities, Network, ProtocolError, WORK_ALPN};
use crate::statement::{AddressBinding, Signed};
use crate::worker::Runner;

/// How a provider works.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Leases asked for at once.
    pub slots: u32,
    /// Bytes of inputs kept on disk for later jobs.
    pub cache_bytes: u64,
    /// This machine's matrix-multiply score, sent with requests for work.
    pub gflops: f32,
    /// First and longest wait between attempts to reach the pool.
    pub backoff: (Duration, Duration),
    /// Paused this long, the GPU device and its memory go back to the system.
    pub release_after: Duration,
    /// Which relays to reach the pool through (by default, those its ticket names).
    pub network: Network,
    /// Where this provider wants to be paid on a chain, signed; sent with every ask.
    pub binding: Option<Signed<AddressBinding>>,
    /// The RPC to check chain payouts through, instead of the one each pool names.
    pub chain_rpc: Option<String>,
}

/// Where a provider is paid on a chain and how it checks its payouts: what [`ProviderConfig`] says at
/// first, changed while it runs by whoever holds the sender given to [`Provider::following_payout`]
/// (the app's settings). The next ask carries the new binding; the pool keeps the higher sequence.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayoutTarget {
    pub binding: Option<Signed<AddressBinding>>,
    pub chain_rpc: Option<String>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            slots: 1,
            cache_bytes: 2 << 30,
            gflops: 0.0,
            backoff: (Duration::from_millis(250), Duration::from_secs(30)),
            release_after: Duration::from_secs(60),
            binding: None,
            chain_rpc: None,
            network: Network::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the pool refused: {0}")]
    Pool(String),
}

/// A provider bound to one pool.
pub struct Provider {
    key: SecretKey,
    pool: EndpointAddr,
    config: ProviderConfig,
    ledger: Arc<Mutex<Ledger>>,
    cache: Arc<BlobStore>,
    /// Where jobs run: normally a worker process, which the provider outlives.
    runner: Arc<Mutex<Runner>>,
    /// Results finished while the pool was unreachable.
    undelivered: Mutex<Vec<session::Finished>>,
    status: watch::Sender<ProviderStatus>,
    /// How the pool is reached.
    path: watch::Sender<PoolPath>,
    /// Who hears of each statement and unpaid job the moment it is stored.
    news: Option<mpsc::UnboundedSender<LedgerNews>>,
    payout: watch::Receiver<PayoutTarget>,
}

impl Provider {
    /// A provider keeping its ledger and input cache in `data_dir`, running jobs on `runner` (a
    /// [`crate::worker::WorkerProcess`], or an executor in this process).
    pub fn new(
        key: SecretKey,
        pool: EndpointAddr,
        data_dir: &Path,
        runner: impl Into<Runner>,
        config: ProviderConfig,
    ) -> Result<Provider, ProviderError> {
        let ledger = Ledger::open(&data_dir.join("ledger.sqlite"), key.public())?;
        if let Some(binding) = &config.binding {
            ledger.record_own_binding(binding)?;
        }
        let cache = BlobStore::open(&data_dir.join("cache"), Some(config.cache_bytes))?;
        // A receiver outlives its sender and keeps the last value: the config's, unless followed.
        let (_, payout) = watch::channel(PayoutTarget {
            binding: config.binding.clone(),
            chain_rpc: config.chain_rpc.clone(),
        });
        Ok(Provider {
            key,
            pool,
            config,
            ledger: Arc::new(Mutex::new(ledger)),
            cache: Arc::new(cache),
            runner: Arc::new(Mutex::new(runner.into())),
            undelivered: Mutex::new(Vec::new()),
            status: watch::Sender::new(ProviderStatus::new(ProviderState::Connecting)),
            path: watch::Sender::new(PoolPath::Connecting),
            news: None,
            payout,
        })
    }

    /// Takes where to be paid, and the RPC to check payouts through, from `payout` from now on. An
    /// address it names must already be recorded as this provider's own
    /// ([`Ledger::record_own_address`]), or payouts to it are flagged not found.
    pub fn following_payout(mut self, payout: watch::Receiver<PayoutTarget>) -> Provider {
        self.payout = payout;
        self
    }

    /// The binding to send with the next ask.
    fn binding(&self) -> Option<Signed<AddressBinding>> {
        self.payout.borrow().binding.clone()
    }

    /// The RPC to check payouts through, if the person chose one.
    fn chain_rpc(&self) -> Option<String> {
        self.payout.borrow().chain_rpc.clone()
    }

    /// Tells `news` of every receipt, payout, check and unpaid job this provider stores.
    pub fn telling(mut self, news: mpsc::UnboundedSender<LedgerNews>) -> Provider {
        self.news = Some(news);
        self
    }

    /// Passes on what a write added; read only when someone listens.
    fn tell(&self, news: impl FnOnce() -> Result<Option<LedgerNews>, LedgerError>) {
        let Some(listener) = &self.news else {
            return;
        };
        match news() {
            // A listener gone (the node shutting down) misses nothing it could still show.
            Ok(Some(news)) => {
                let _ = listener.send(news);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read back what was stored in the ledger"),
        }
    }

    /// The ledger, shared with whoever shows earnings.
    pub fn ledger(&self) -> Arc<Mutex<Ledger>> {
        Arc::clone(&self.ledger)
    }

    /// What the provider is doing now, and each change.
    pub fn status(&self) -> watch::Receiver<ProviderStatus> {
        self.status.subscribe()
    }

    /// How the pool is reached now, and each change.
    pub fn path(&self) -> watch::Receiver<PoolPath> {
        self.path.subscribe()
    }

    fn unreachable(&self, error: String) {
        path::publish(
            &self.path,
            PoolPath::Unreachable {
                error: error.clone(),
            },
        );
        self.set_state(ProviderState::Unreachable { error });
    }

    fn set_state(&self, state: ProviderState) {
        status::publish(&self.status, state);
    }

    fn capabilities(&self) -> Capabilities {
        let runner = crate::sync::lock(&self.runner);
        Capabilities {
            gflops: self.config.gflops,
            ..runner.capabilities()
        }
    }

    /// Works for the pool while the verdict is Run, until `stop` turns true. Losing the pool is not an
    /// error: the provider waits and reconnects.
    pub async fn run(
        self,
        verdicts: watch::Receiver<Verdict>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ProviderError> {
        let (worked, ()) = tokio::join!(
            self.work_for_pool(verdicts, stop.clone()),
            self.check_payouts(stop)
        );
        worked
    }

    async fn work_for_pool(
        &self,
        mut verdicts: watch::Receiver<Verdict>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ProviderError> {
        let network = &self.config.network;
        let relays = network.for_peer(&self.pool);
        let builder = protocol::endpoint_builder_with(
            self.key.clone(),
            Bind::Toward,
            Some(&self.pool),
            &relays,
            &network.ca_roots,
        )?;
        let endpoint = protocol::bind_endpoint(builder).await?;
        let (first, longest) = self.config.backoff;
        let mut backoff = first;
        loop {
            self.set_state(ProviderState::Connecting);
            tracing::debug!(pool = %self.pool.id.fmt_short(), "dialing the pool");
            let connected = tokio::select! {
                connected = endpoint.connect(self.pool.clone(), WORK_ALPN) => connected,
                _ = stop.wait_for(|&s| s) => break,
            };
            match connected {
                Ok(connection) => {
                    tracing::info!(pool = %self.pool.id.fmt_short(), "connected to the pool");
                    backoff = first;
                    let session = session::Session::new(self, &connection);
                    let ended = tokio::select! {
                        ended = session.serve(&mut verdicts) => ended,
                        _ = stop.wait_for(|&s| s) => Ok(()),
                        () = path::follow(&connection, &self.path) => Ok(()),
                    };
                    if let Err(error) = ended {
                        tracing::warn!(%error, "lost the pool; reconnecting");
                        self.unreachable(error.to_string());
                    }
                    connection.close(0u32.into(), b"bye");
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot reach the pool");
                    self.unreachable(error.to_string());
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|&s| s) => {}
            }
            backoff = (backoff * 2).min(longest);
            if *stop.borrow() || stop.has_changed().is_err() {
                break;
            }
        }
        endpoint.close().await;
        Ok(())
    }
}
