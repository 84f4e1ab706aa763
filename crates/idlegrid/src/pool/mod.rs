//! The pool: a persistent queue of jobs from allowed submitters, leased to providers that ask, with
//! results verified by replication and canaries before anyone is paid with a signed receipt.
//!
//! `Pool` holds the decisions and the database, one concern a module: this one takes jobs in and
//! reports on them; `lease` hands work out; `tries` decides when a job that keeps failing is given up
//! and says why a job waits; `judge` takes results and decides who was right; `settle` issues
//! receipts, checks and payouts; `store` keeps it all in SQLite; `service` puts it on the network.
//! Every method that changes state commits its transaction before returning, so the network layer
//! only acknowledges what is already on disk.

mod canary;
pub mod chain;
mod chain_store;
mod judge;
mod lease;
pub mod limits;
pub mod report;
mod service;
mod settle;
mod store;
mod tries;
pub mod verify;
mod weights;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iroh::{PublicKey, SecretKey};
use rusqlite::Connection;
use tokio::sync::watch;

use crate::amount::Amount;
use crate::blobs::{BlobError, BlobStore};
use crate::job::{Job, JobError, JobLimits, check_manifest};
use crate::protocol::{JobProgress, JobState, LeaseId};
use crate::statement::{Id, Receipt, Signed, now_ms};

pub use service::RunningPool;
pub use settle::{RailError, SettlementRail, StatementRail};
pub use store::StoreError;
use store::{JobRow, JobStage};
use verify::ReplicationPolicy;

/// How a pool runs; every field has a default a person can keep.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Submitters allowed besides the pool's own key.
    pub allow: Vec<PublicKey>,
    pub limits: JobLimits,
    pub replication: ReplicationPolicy,
    /// How long a provider holds a lease before it is handed to another.
    pub lease_time: Duration,
    /// Share of paid leases followed by a canary for the same provider (drawn per paid lease, never
    /// for an ask that gets no paid work).
    pub canary_rate: f64,
    /// Unpaid balance at which a provider is paid out.
    pub payout_threshold: Amount,
    /// What a validated result earns when the job names no reward.
    pub default_reward: Amount,
    /// What a provider is told to wait when there is no work.
    pub retry_after: Duration,
    /// Distinct providers that may fail a job on their machine (or let its lease lapse) before it is
    /// given up; see `pool::tries` for the rules on the job's own faults and on deadlines.
    pub max_failures: u32,
    /// A job that gets no new try for this long fails, with the reason it was waiting.
    pub give_up_after: Duration,
    /// Keys refused at the handshake, on every protocol; `RunningPool::block` adds more at run time.
    pub blocked: Vec<PublicKey>,
    /// How often one peer may ask for work, submit and fetch inputs (see [`limits::PeerLimits`]).
    pub peer_limits: limits::PeerLimits,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            allow: Vec::new(),
            limits: JobLimits::default(),
            replication: ReplicationPolicy::default(),
            lease_time: Duration::from_secs(120),
            canary_rate: 0.05,
            payout_threshold: Amount::from_micros(10_000),
            default_reward: Amount::from_micros(100),
            retry_after: Duration::from_secs(1),
            max_failures: 3,
            give_up_after: Duration::from_secs(600),
            blocked: Vec::new(),
            peer_limits: limits::PeerLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("lease {0} is not one of yours")]
    NotYourLease(LeaseId),
    #[error("lease {lease} is {state}; its result is no longer wanted")]
    LeaseEnded { lease: LeaseId, state: String },
    #[error("a result for this job from this provider was already returned")]
    Replayed,
    #[error("the outputs do not match the job: {0}")]
    WrongOutputs(String),
    #[error("input {0} of the job was never sent")]
    MissingInput(String),
    #[error("no such job")]
    UnknownJob,
    #[error(
        "this pool has payouts due on a chain; start it with --chain (and its key) so they are paid there"
    )]
    ChainNeeded,
    #[error("the payout address binding is not the provider's own: {0}")]
    Binding(crate::statement::StatementError),
    #[error("pool data directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub(crate) struct Shared {
    key: SecretKey,
    config: PoolConfig,
    db: Mutex<Connection>,
    blobs: BlobStore,
    rail: Box<dyn SettlementRail>,
    /// The chain this pool pays on, when it has one; its payouts then go over it, not over `rail`.
    chain: Option<chain::ChainRail>,
    /// Bumped on every change a submitter may be waiting for.
    changes: watch::Sender<u64>,
    /// When stalled jobs were last looked for (ms since the epoch), so asks do not each scan the queue.
    stall_checked_ms: std::sync::atomic::AtomicU64,
    /// Weights read for embedding canaries.
    weights: weights::WeightsCache,
}

/// A pool's state and rules, shared by its network handlers.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// A blob a manifest names: its hash and size.
pub type BlobRef = (blake3::Hash, u64);

/// Where a job stands for its submitter.
#[derive(Clone, Debug)]
pub struct JobReport {
    pub progress: JobProgress,
    /// The verified outputs, name and bytes, once there are some.
    pub outputs: Option<Vec<(String, Vec<u8>)>>,
    /// Why it failed, if it did.
    pub reason: Option<String>,
}

impl Pool {
    /// Opens (or creates) the pool kept in `dir`.
    pub fn open(dir: &Path, key: SecretKey, config: PoolConfig) -> Result<Pool, PoolError> {
        Pool::open_with_rail(dir, key, config, Box::new(StatementRail))
    }

    /// Opens the pool kept in `dir`, paying providers over `rail`.
    pub fn open_with_rail(
        dir: &Path,
        key: SecretKey,
        config: PoolConfig,
        rail: Box<dyn SettlementRail>,
    ) -> Result<Pool, PoolError> {
        Pool::open_with(dir, key, config, rail, None)
    }

    /// Opens the pool kept in `dir`, paying providers on a chain (see `pool::chain`; its loop runs
    /// once the pool serves).
    pub fn open_on_chain(
        dir: &Path,
        key: SecretKey,
        config: PoolConfig,
        chain: chain::ChainRail,
    ) -> Result<Pool, PoolError> {
        Pool::open_with(dir, key, config, Box::new(StatementRail), Some(chain))
    }

    fn open_with(
        dir: &Path,
        key: SecretKey,
        config: PoolConfig,
        rail: Box<dyn SettlementRail>,
        chain: Option<chain::ChainRail>,
    ) -> Result<Pool, PoolError> {
        std::fs::create_dir_all(dir).map_err(|source| PoolError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let db = store::open(&dir.join("pool.sqlite"))?;
        // Paying them as IOUs could pay twice: a transaction may carry them already.
        if chain.is_none() && chain_store::any_chain_payout_due(&db)? {
            return Err(PoolError::ChainNeeded);
        }
        let blobs = BlobStore::open(&dir.join("blobs"), None)?;
        let pool = Pool {
            shared: Arc::new(Shared {
                key,
                config,
                db: Mutex::new(db),
                blobs,
                rail,
                chain,
                changes: watch::channel(0).0,
                stall_checked_ms: Default::default(),
                weights: Default::default(),
            }),
        };
        // Payouts fixed before a crash and not yet paid are paid now, under the ids they were given.
        pool.settle_due()?;
        Ok(pool)
    }

    pub fn public_key(&self) -> PublicKey {
        self.shared.key.public()
    }

    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back).
        crate::sync::lock(&self.shared.db)
    }

    /// Holds the cache of canary weights, so a test can catch an ask making an embedding canary
    /// (which waits for it) while other requests go on.
    #[cfg(test)]
    pub(crate) fn hold_canary_weights(&self) -> impl Drop + '_ {
        self.shared.weights.lock()
    }

    fn changed(&self) {
        self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Allowed submitters, and the pool's own identity (through the key it submits with).
    pub fn may_submit(&self, submitter: &PublicKey) -> bool {
        *submitter == crate::client::own_submitter_key(&self.shared.key).public()
            || self.shared.config.allow.contains(submitter)
    }

    /// Checks a submitted manifest and names its job; returns the blobs the pool still lacks, or
    /// `None` when the job is already queued (a submitter retrying after a lost reply).
    pub fn offer_job(
        &self,
        submitter: &PublicKey,
        manifest: &Job,
        nonce: u64,
    ) -> Result<(Id, Option<Vec<BlobRef>>), PoolError> {
        check_manifest(manifest, &self.shared.config.limits)?;
        let job = job_id(submitter, manifest, nonce);
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        if store::job_exists(&tx, &job)? {
            return Ok((job, None));
        }
        let missing = manifest
            .blob_refs()
            .into_iter()
            .filter(|(hash, _)| !self.shared.blobs.has(hash))
            .collect();
        Ok((job, Some(missing)))
    }

    pub fn store_blob(&self, hash: &blake3::Hash, bytes: &[u8]) -> Result<(), PoolError> {
        Ok(self.shared.blobs.put(hash, bytes)?)
    }

    pub fn blob(&self, hash: &blake3::Hash) -> Option<Vec<u8>> {
        self.shared.blobs.get(hash)
    }

    /// Queues a checked manifest whose blobs are all stored.
    pub fn enqueue(&self, submitter: &PublicKey, job: Id, manifest: &Job) -> Result<(), PoolError> {
        if let Some((hash, _)) = manifest
            .blob_refs()
            .into_iter()
            .find(|(hash, _)| !self.shared.blobs.has(hash))
        {
            return Err(PoolError::MissingInput(hash.to_hex()[..16].to_owned()));
        }
        let row = self.job_row(*submitter, job, manifest, None, None);
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        if !store::job_exists(&tx, &job)? {
            store::insert_job(&tx, &row, now_ms())?;
        }
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        tracing::info!(job = %job, name = %manifest.name, "job queued");
        self.changed();
        Ok(())
    }

    fn job_row(
        &self,
        submitter: PublicKey,
        id: Id,
        manifest: &Job,
        canary_for: Option<PublicKey>,
        expected: Option<Id>,
    ) -> JobRow {
        JobRow {
            id,
            submitter,
            name: manifest.name.clone(),
            manifest: manifest.to_wire(),
            replicas: manifest.verify.replicas.max(1),
            tolerance: manifest.verify.tolerance,
            reward: manifest.reward.unwrap_or(self.shared.config.default_reward),
            largest_buffer: manifest
                .buffers
                .iter()
                .map(|b| b.init.size())
                .max()
                .unwrap_or(0),
            total_bytes: manifest.total_buffer_bytes(),
            max_workgroups: manifest
                .passes
                .iter()
                .flat_map(|p| p.workgroups)
                .max()
                .unwrap_or(0),
            canary_for,
            expected,
        }
    }

    /// Where a job stands, and its verified outputs (name and bytes) once it has them.
    pub fn progress(&self, job: &Id) -> Result<JobReport, PoolError> {
        let now = now_ms();
        let (status, (note, blocked)) = {
            let mut db = self.db();
            let tx = db.transaction().map_err(StoreError::from)?;
            // Lapsed leases and stalled jobs count as gone for the submitter too.
            self.expire(&tx, now)?;
            let status = store::job_status(&tx, job, now)?.ok_or(PoolError::UnknownJob)?;
            let waiting = match status.stage {
                JobStage::Queued => self.waiting(&tx, job, status.active_leases, now)?,
                JobStage::Verified | JobStage::Failed => (None, None),
            };
            tx.commit().map_err(StoreError::from)?;
            (status, waiting)
        };
        let state = match status.stage {
            JobStage::Verified => JobState::Verified,
            JobStage::Failed => JobState::Failed,
            JobStage::Queued if status.active_leases > 0 => JobState::Running,
            JobStage::Queued => JobState::Queued,
        };
        let progress = JobProgress {
            state,
            running: status.active_leases,
            results: status.results,
            // The most it can need: trusted providers may settle it with fewer.
            needed: self
                .shared
                .config
                .replication
                .needed(status.replicas, false),
            note,
            blocked,
        };
        let outputs = match (&status.outputs, state) {
            (Some(bytes), JobState::Verified) => Some(
                listing(bytes)?
                    .into_iter()
                    .map(|(name, hash)| {
                        self.shared
                            .blobs
                            .get(&hash)
                            .map(|b| (name, b))
                            .ok_or(StoreError::Corrupt("output blob"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        Ok(JobReport {
            progress,
            outputs,
            reason: status.reason,
        })
    }

    /// A provider's reputation here (see [`verify::reputation`]).
    pub fn reputation(&self, provider: &PublicKey) -> Result<i64, PoolError> {
        let (clean, strikes) = store::provider_record(&self.db(), provider)?;
        Ok(verify::reputation(clean, strikes))
    }

    /// How many jobs submitters have had accepted, whatever became of them (canaries not counted):
    /// a refused submission leaves this unchanged.
    pub fn submitted_jobs(&self) -> Result<u64, PoolError> {
        Ok(store::count_submitted_jobs(&self.db())?)
    }

    /// Every receipt issued, for operators and audits.
    pub fn receipts(&self) -> Result<Vec<Signed<Receipt>>, PoolError> {
        store::all_receipts(&self.db())?
            .iter()
            .map(|bytes| {
                Signed::from_bytes(bytes).map_err(|_| StoreError::Corrupt("receipt").into())
            })
            .collect()
    }
}

/// A job's id: the same submitter, manifest and nonce always name the same job.
pub fn job_id(submitter: &PublicKey, manifest: &Job, nonce: u64) -> Id {
    let mut hasher = blake3::Hasher::new_derive_key("idlegrid job id v1");
    hasher
        .update(submitter.as_bytes())
        .update(&nonce.to_le_bytes())
        .update(&manifest.to_wire());
    Id(*hasher.finalize().as_bytes())
}

/// The hash a result is compared by: every output's name and bytes, in order.
pub fn output_digest(outputs: &[(String, blake3::Hash)]) -> Id {
    let mut hasher = blake3::Hasher::new_derive_key("idlegrid outputs v1");
    for (name, hash) in outputs {
        hasher
            .update(&(name.len() as u64).to_le_bytes())
            .update(name.as_bytes())
            .update(hash.as_bytes());
    }
    Id(*hasher.finalize().as_bytes())
}

fn hashed_wire(outputs: &[(String, blake3::Hash)]) -> Vec<(String, [u8; 32])> {
    outputs
        .iter()
        .map(|(n, h)| (n.clone(), *h.as_bytes()))
        .collect()
}

fn listing(bytes: &[u8]) -> Result<Vec<(String, blake3::Hash)>, StoreError> {
    let list: Vec<(String, [u8; 32])> =
        postcard::from_bytes(bytes).map_err(|_| StoreError::Corrupt("output listing"))?;
    Ok(list
        .into_iter()
        .map(|(n, h)| (n, blake3::Hash::from_bytes(h)))
        .collect())
}

/// Unpredictable enough for canary seeds and sampling (SipHash with fresh random keys).
fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}

#[cfg(test)]
pub(crate) mod tests;
