//! The pool: a persistent queue of jobs from allowed submitters, leased to providers that ask, with
//! results verified by replication and canaries before anyone is paid with a signed receipt.
//!
//! `Pool` holds the decisions and the database; `service` puts it on the network. Every method that
//! changes state commits its transaction before returning, so the network layer only acknowledges
//! what is already on disk.

mod canary;
pub mod limits;
mod payout;
mod service;
mod store;
pub mod verify;

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
use crate::protocol::{
    Capabilities, Delivery, JobProgress, JobState, LeaseId, LeaseOffer, OutputHeader, WorkReply,
};
use crate::statement::{Id, Payout, Receipt, Signed, now_ms};

pub use payout::{RailError, SettlementRail, StatementRail};
pub use service::RunningPool;
use store::JobRow;
pub use store::StoreError;
use verify::{Candidate, ReplicationPolicy, Verdict};

/// How a pool runs; every field has a default a person can keep.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Submitters allowed besides the pool's own key.
    pub allow: Vec<PublicKey>,
    pub limits: JobLimits,
    pub replication: ReplicationPolicy,
    /// How long a provider holds a lease before it is handed to another.
    pub lease_time: Duration,
    /// Share of requests for work answered with a canary.
    pub canary_rate: f64,
    /// Unpaid balance at which a provider is paid out.
    pub payout_threshold: Amount,
    /// What a validated result earns when the job names no reward.
    pub default_reward: Amount,
    /// What a provider is told to wait when there is no work.
    pub retry_after: Duration,
    /// Distinct providers that may fail a job (or let its lease lapse) before it is given up.
    pub max_failures: u32,
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
    /// Bumped on every change a submitter may be waiting for.
    changes: watch::Sender<u64>,
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

/// A job still to be verified, as the result path reads it.
struct Judged {
    /// Providers to pay, with the digest of the outputs each returned.
    receipts: Vec<(PublicKey, Id)>,
}

impl Pool {
    /// Opens (or creates) the pool kept in `dir`.
    pub fn open(dir: &Path, key: SecretKey, config: PoolConfig) -> Result<Pool, PoolError> {
        std::fs::create_dir_all(dir).map_err(|source| PoolError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let db = store::open(&dir.join("pool.sqlite"))?;
        let blobs = BlobStore::open(&dir.join("blobs"), None)?;
        Ok(Pool {
            shared: Arc::new(Shared {
                key,
                config,
                db: Mutex::new(db),
                blobs,
                rail: Box::new(StatementRail),
                changes: watch::channel(0).0,
            }),
        })
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

    /// Answers a provider's request for work: its statements to store, and leases on jobs it can
    /// run that still need a replica from it.
    pub fn ask(
        &self,
        provider: &PublicKey,
        capabilities: &Capabilities,
        slots: u32,
        stored: &[Id],
    ) -> Result<WorkReply, PoolError> {
        let now = now_ms();
        let config = &self.shared.config;
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        store::mark_delivered(&tx, provider, stored)?;
        self.expire(&tx, now)?;
        let mut leases = Vec::new();
        if slots > 0 {
            if let Some(canary) = self.canary_for(&tx, provider, now)? {
                leases.push(canary);
            }
            let trusted_me = self.all_trusted(&tx, [provider])?;
            let most = config.replication.needed(1, false);
            for job in store::queued_jobs(&tx, 256, now, most)? {
                if leases.len() >= slots as usize {
                    break;
                }
                if !fits(capabilities, &job) || store::has_taken(&tx, &job.id, provider)? {
                    continue;
                }
                let flight = store::in_flight(&tx, &job.id, now)?;
                let participants = flight
                    .leased
                    .iter()
                    .chain(flight.pending.iter().map(|(p, _)| p));
                let all_trusted = trusted_me && self.all_trusted(&tx, participants)?;
                let needed = config.replication.needed(job.replicas, all_trusted);
                let digests: Vec<Id> = flight.pending.iter().map(|(_, d)| *d).collect();
                if verify::wants_replica(needed, flight.leased.len() as u32, &digests) {
                    leases.push(job.id);
                }
            }
        }
        let expires_ms = now + u64::try_from(config.lease_time.as_millis()).unwrap_or(u64::MAX);
        let mut offers = Vec::with_capacity(leases.len());
        for job in leases {
            let lease = store::insert_lease(&tx, &job, provider, now, expires_ms)?;
            let manifest = store::manifest(&tx, &job)?;
            offers.push(LeaseOffer {
                lease,
                job,
                manifest,
                expires_in_ms: expires_ms - now,
            });
        }
        store::note_provider(&tx, provider, 0, 0, offers.len() as u64, now)?;
        let deliveries = store::undelivered(&tx, provider, 256)?
            .into_iter()
            .map(|(is_receipt, bytes)| {
                if is_receipt {
                    Signed::<Receipt>::from_bytes(&bytes).map(Delivery::Receipt)
                } else {
                    Signed::<Payout>::from_bytes(&bytes).map(Delivery::Payout)
                }
                .map_err(|_| StoreError::Corrupt("statement"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        if !offers.is_empty() {
            tracing::info!(provider = %provider.fmt_short(), leases = offers.len(), "leased");
            self.changed();
        }
        Ok(WorkReply::Work {
            leases: offers,
            deliveries,
            retry_after_ms: u32::try_from(config.retry_after.as_millis()).unwrap_or(u32::MAX),
        })
    }

    /// Expires lapsed leases; gives up a job whose leases lapsed on too many providers (an endless
    /// shader, say), so it does not circle forever.
    fn expire(&self, tx: &rusqlite::Transaction, now: u64) -> Result<(), PoolError> {
        for job in store::expire_leases(tx, now)? {
            tracing::info!(job = %job, "lease expired; the job is handed out again");
            let lapsed = store::count_leases(tx, &job, "expired")?;
            if lapsed >= self.shared.config.max_failures {
                let reason = format!("it ran past its lease on {lapsed} providers");
                store::finish_job(tx, &job, "failed", Some(&reason), None, now)?;
            }
        }
        Ok(())
    }

    /// The canary to lease `provider` now, if the dice say so.
    fn canary_for(
        &self,
        tx: &rusqlite::Transaction,
        provider: &PublicKey,
        now: u64,
    ) -> Result<Option<Id>, PoolError> {
        if let Some(waiting) = store::queued_canary(tx, provider)? {
            return Ok(Some(waiting));
        }
        let roll = random_u64() as f64 / u64::MAX as f64;
        if roll >= self.shared.config.canary_rate {
            return Ok(None);
        }
        let seed = random_u64();
        let (job, expected) = canary::canary(seed as u32);
        let id = job_id(&self.public_key(), &job, seed);
        let expected = output_digest(&[("data".to_owned(), blake3::hash(&expected))]);
        let row = self.job_row(self.public_key(), id, &job, Some(*provider), Some(expected));
        store::insert_job(tx, &row, now)?;
        Ok(Some(id))
    }

    /// The outputs a lease's result must have, in order, before any of their bytes are read.
    pub fn expected_outputs(
        &self,
        provider: &PublicKey,
        lease: LeaseId,
    ) -> Result<Vec<OutputHeader>, PoolError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let row = own_lease(&tx, provider, lease)?;
        Ok(OutputHeader::expected(&store::manifest(&tx, &row.job)?))
    }

    /// Takes a lease's outputs, judges the job and pays whoever the verdict says.
    pub fn submit_result(
        &self,
        provider: &PublicKey,
        lease: LeaseId,
        outputs: Vec<(String, Vec<u8>)>,
        gpu_micros: u64,
    ) -> Result<(), PoolError> {
        let hashed: Vec<(String, blake3::Hash)> = outputs
            .iter()
            .map(|(name, bytes)| (name.clone(), blake3::hash(bytes)))
            .collect();
        // Blobs first: a crash after this leaves only unreferenced files, never a result without
        // its bytes.
        for ((_, hash), (_, bytes)) in hashed.iter().zip(&outputs) {
            self.shared.blobs.put(hash, bytes)?;
        }
        let digest = output_digest(&hashed);
        let listing = postcard::to_allocvec(&hashed_wire(&hashed)).unwrap_or_default();
        let now = now_ms();
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let row = own_lease(&tx, provider, lease)?;
        if store::has_result(&tx, &row.job, provider)? {
            return Err(PoolError::Replayed);
        }
        let terms = store::job_terms(&tx, &row.job)?.ok_or(PoolError::UnknownJob)?;
        if terms.state != "queued" || !matches!(row.state.as_str(), "active" | "expired") {
            store::end_lease(&tx, lease, "done", Some("late"))?;
            tx.commit().map_err(StoreError::from)?;
            return Err(PoolError::LeaseEnded {
                lease,
                state: if terms.state == "queued" {
                    row.state
                } else {
                    format!("on a job already {}", terms.state)
                },
            });
        }
        store::end_lease(&tx, lease, "done", None)?;
        store::insert_result(&tx, &row.job, provider, &digest, &listing, gpu_micros)?;
        let judged = self.judge(&tx, &row.job, &terms, now)?;
        for (paid, digest) in &judged.receipts {
            self.issue_receipt(&tx, &row.job, &terms, paid, digest, now)?;
        }
        for (paid, _) in &judged.receipts {
            self.maybe_pay(&tx, paid)?;
        }
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        self.changed();
        Ok(())
    }

    /// Applies the verdict on a job's pending results; returns who is to be paid.
    fn judge(
        &self,
        tx: &rusqlite::Transaction,
        job: &Id,
        terms: &store::JobTerms,
        now: u64,
    ) -> Result<Judged, PoolError> {
        let results = store::pending_results(tx, job)?;
        if terms.canary {
            let passed = results
                .first()
                .is_some_and(|r| Some(r.digest) == terms.expected);
            let state = if passed { "verified" } else { "failed" };
            for result in &results {
                let verdict = if passed { "agreed" } else { "rejected" };
                store::set_verdict(tx, job, &result.provider, verdict)?;
                store::note_provider(
                    tx,
                    &result.provider,
                    u64::from(passed),
                    u64::from(!passed),
                    0,
                    now,
                )?;
                if !passed {
                    tracing::warn!(provider = %result.provider.fmt_short(), "provider failed a canary");
                }
            }
            store::finish_job(
                tx,
                job,
                state,
                (!passed).then_some("canary answer was wrong"),
                None,
                now,
            )?;
            return Ok(Judged { receipts: vec![] });
        }
        let candidates = self.candidates(&results, terms.tolerance)?;
        let all_trusted = self.all_trusted(tx, candidates.iter().map(|c| &c.provider))?;
        let needed = self
            .shared
            .config
            .replication
            .needed(terms.replicas, all_trusted);
        match verify::judge(&candidates, needed, terms.tolerance) {
            Verdict::Pending => Ok(Judged { receipts: vec![] }),
            Verdict::Agreed { agree, disagree } => {
                let winner = &results[agree[0]];
                store::finish_job(
                    tx,
                    job,
                    "verified",
                    None,
                    Some((&winner.digest, &winner.outputs)),
                    now,
                )?;
                for &i in &disagree {
                    let loser = &results[i].provider;
                    store::set_verdict(tx, job, loser, "rejected")?;
                    store::note_provider(tx, loser, 0, 1, 0, now)?;
                    tracing::warn!(provider = %loser.fmt_short(), job = %job, "result disagreed with the quorum");
                }
                let mut paid = Vec::new();
                for &i in &agree {
                    let winner = results[i].provider;
                    store::set_verdict(tx, job, &winner, "agreed")?;
                    store::note_provider(tx, &winner, 1, 0, 0, now)?;
                    paid.push((winner, results[i].digest));
                }
                tracing::info!(job = %job, agreeing = agree.len(), "job verified");
                Ok(Judged { receipts: paid })
            }
            Verdict::Failed { reason } => {
                for result in &results {
                    store::set_verdict(tx, job, &result.provider, "undecided")?;
                }
                store::finish_job(tx, job, "failed", Some(&reason), None, now)?;
                tracing::warn!(job = %job, %reason, "job failed");
                Ok(Judged { receipts: vec![] })
            }
        }
    }

    /// Whether every one of `providers` has the record that lets a job rely on fewer replicas.
    fn all_trusted<'a>(
        &self,
        tx: &rusqlite::Transaction,
        providers: impl IntoIterator<Item = &'a PublicKey>,
    ) -> Result<bool, PoolError> {
        let replication = &self.shared.config.replication;
        for provider in providers {
            let (clean, strikes) = store::provider_record(tx, provider)?;
            if !replication.trusts(verify::reputation(clean, strikes)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn candidates(
        &self,
        results: &[store::ResultRow],
        tolerance: f64,
    ) -> Result<Vec<Candidate>, PoolError> {
        results
            .iter()
            .map(|r| {
                let outputs = if tolerance > 0.0 {
                    listing(&r.outputs)?
                        .iter()
                        .map(|(_, hash)| self.shared.blobs.get(hash).unwrap_or_default())
                        .collect()
                } else {
                    Vec::new()
                };
                Ok(Candidate {
                    provider: r.provider,
                    digest: r.digest,
                    outputs,
                })
            })
            .collect()
    }

    fn issue_receipt(
        &self,
        tx: &rusqlite::Transaction,
        job: &Id,
        terms: &store::JobTerms,
        provider: &PublicKey,
        output_hash: &Id,
        now: u64,
    ) -> Result<(), PoolError> {
        let receipt = Receipt {
            pool: self.public_key(),
            provider: *provider,
            job: *job,
            job_name: terms.name.clone(),
            amount: terms.reward,
            output_hash: *output_hash,
            issued_at_ms: now,
        };
        let signed = Signed::sign(receipt, &self.shared.key);
        store::insert_receipt(
            tx,
            &signed.id(),
            job,
            provider,
            terms.reward,
            &signed.to_bytes(),
        )?;
        Ok(())
    }

    fn maybe_pay(&self, tx: &rusqlite::Transaction, provider: &PublicKey) -> Result<(), PoolError> {
        let unpaid = store::unpaid_receipts(tx, provider)?;
        let Some((receipts, amount)) = payout::due(&unpaid, self.shared.config.payout_threshold)
        else {
            return Ok(());
        };
        let mut body = Payout {
            pool: self.public_key(),
            provider: *provider,
            receipts: receipts.clone(),
            amount,
            rail: self.shared.rail.name().to_owned(),
            reference: String::new(),
            issued_at_ms: now_ms(),
        };
        let id = crate::statement::Statement::id(&body);
        match self.shared.rail.pay(provider, amount, &id) {
            Ok(reference) => body.reference = reference,
            Err(error) => {
                // The receipts stay unpaid and are tried again with the next receipt.
                tracing::warn!(%error, "payout failed");
                return Ok(());
            }
        }
        let signed = Signed::sign(body, &self.shared.key);
        store::insert_payout(tx, &id, provider, amount, &signed.to_bytes(), &receipts)?;
        tracing::info!(provider = %provider.fmt_short(), %amount, receipts = receipts.len(), "paid out");
        Ok(())
    }

    /// A provider could not run a lease's job; after enough distinct failures the job fails with the
    /// last reason.
    pub fn lease_failed(
        &self,
        provider: &PublicKey,
        lease: LeaseId,
        reason: &str,
    ) -> Result<(), PoolError> {
        let now = now_ms();
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let row = own_lease(&tx, provider, lease)?;
        store::end_lease(&tx, lease, "failed", Some(reason))?;
        if store::count_leases(&tx, &row.job, "failed")? >= self.shared.config.max_failures {
            let reason = format!(
                "it failed on {} providers; the last said: {reason}",
                self.shared.config.max_failures
            );
            store::finish_job(&tx, &row.job, "failed", Some(&reason), None, now)?;
        }
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        self.changed();
        Ok(())
    }

    /// Leases given back unfinished go straight back to the queue.
    pub fn give_back(
        &self,
        provider: &PublicKey,
        leases: &[LeaseId],
        reason: &str,
    ) -> Result<(), PoolError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        for &lease in leases {
            match store::lease(&tx, lease)? {
                Some(row) if row.provider == *provider && row.state == "active" => {
                    store::end_lease(&tx, lease, "returned", Some(reason))?;
                }
                _ => {}
            }
        }
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        tracing::info!(provider = %provider.fmt_short(), leases = leases.len(), %reason, "leases given back");
        self.changed();
        Ok(())
    }

    /// Where a job stands, and its verified outputs (name and bytes) once it has them.
    pub fn progress(&self, job: &Id) -> Result<JobReport, PoolError> {
        let now = now_ms();
        let status = {
            let mut db = self.db();
            let tx = db.transaction().map_err(StoreError::from)?;
            // Lapsed leases count as gone for the submitter too.
            self.expire(&tx, now)?;
            tx.commit().map_err(StoreError::from)?;
            store::job_status(&db, job, now)?.ok_or(PoolError::UnknownJob)?
        };
        let state = match status.state.as_str() {
            "verified" => JobState::Verified,
            "failed" => JobState::Failed,
            _ if status.active_leases > 0 => JobState::Running,
            _ => JobState::Queued,
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

/// The lease, if `provider` holds it; someone else's lease is as unknown as a made-up one.
fn own_lease(
    tx: &rusqlite::Transaction,
    provider: &PublicKey,
    lease: LeaseId,
) -> Result<store::LeaseRow, PoolError> {
    store::lease(tx, lease)?
        .filter(|row| row.provider == *provider)
        .ok_or(PoolError::NotYourLease(lease))
}

fn fits(capabilities: &Capabilities, job: &store::QueuedJob) -> bool {
    job.largest_buffer <= capabilities.max_storage_buffer_binding_size
        && job.largest_buffer <= capabilities.max_buffer_size
        && job.max_workgroups <= capabilities.max_workgroups_per_dimension
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
