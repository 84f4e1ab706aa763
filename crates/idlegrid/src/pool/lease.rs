//! Handing work out: a provider asks with its capabilities and free slots, and gets leases on the
//! jobs it can run that still want a replica from it, each with a deadline. Leases come back as
//! results (see `judge`), as failures, given back unfinished, or not at all (they lapse); `tries`
//! decides what a failure means for the job.
//!
//! Canaries (jobs whose answer the pool knows) are drawn per paid lease, never per ask: an idle
//! provider on an empty pool runs no unpaid work. A drawn canary waits for its provider's next free
//! slot, looking like any other lease; the provider learns it was a check only once it is judged.
//! The ask's transaction only draws one; its answer (for an embedding canary, a forward pass on the
//! CPU) is computed after that transaction commits, so no other request waits for it, and the canary
//! is queued in a transaction of its own. A crash between the two loses only that canary.

use iroh::PublicKey;
use rusqlite::Transaction;

use super::chain_store;
use super::store::{self, FailedTry, JobStage, LeaseEnd, LeaseState, RecordChange, StoreError};
use super::{Pool, PoolError, canary, job_id, output_digest, random_u64, tries, verify};
use crate::embed;
use crate::job::{Fault, Job};
use crate::protocol::{Blocker, Capabilities, Delivery, LeaseId, LeaseOffer, WorkReply};
use crate::statement::{AddressBinding, Check, Id, Payout, Receipt, Signed, now_ms};

/// A canary drawn in an ask's transaction, made after it commits.
enum DrawnCanary {
    /// The checksum job (`pool::canary`).
    Checksum { seed: u64 },
    /// An embedding job of fresh random tokens for the model whose weights are the blob `weights`.
    Embedding {
        config: embed::ModelConfig,
        weights: blake3::Hash,
        seed: u64,
    },
}

/// Most queued jobs one ask looks at.
const QUEUE_WINDOW: u32 = 256;
/// Most statements one reply delivers.
const DELIVERIES: u32 = 256;

impl Pool {
    /// Answers a provider's request for work: its statements to store, and leases on jobs it can
    /// run that still need a replica from it. A newer address binding replaces the one held.
    pub fn ask(
        &self,
        provider: &PublicKey,
        capabilities: &Capabilities,
        slots: u32,
        stored: &[Id],
        binding: Option<&Signed<AddressBinding>>,
    ) -> Result<WorkReply, PoolError> {
        let now = now_ms();
        let config = &self.shared.config;
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        store::mark_delivered(&tx, provider, stored)?;
        let rebound = match binding {
            Some(binding) => self.bind(&tx, provider, binding)?,
            None => false,
        };
        self.expire(&tx, now)?;
        let mut leases = Vec::new();
        let mut drawn = None;
        if slots > 0 {
            leases.extend(store::queued_canary(&tx, provider)?);
            let paid = self.paid_work(
                &tx,
                provider,
                capabilities,
                slots as usize - leases.len(),
                now,
            )?;
            drawn = self.draw_canary(&tx, provider, &paid)?;
            leases.extend(paid);
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
        store::note_provider(&tx, provider, RecordChange::leased(offers.len()), now)?;
        let deliveries = deliveries(&tx, provider)?;
        let pending = self.pending_payouts(&tx, provider)?;
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        if !offers.is_empty() {
            tracing::info!(provider = %provider.fmt_short(), leases = offers.len(), "leased");
            self.changed();
        }
        if let Some(drawn) = drawn {
            // The leases are committed: a canary that cannot be made now is only a check skipped.
            if let Err(error) = self.queue_canary(provider, drawn) {
                tracing::warn!(provider = %provider.fmt_short(), %error, "no canary queued");
            }
        }
        if rebound {
            // A balance held for want of an address can be paid now.
            self.settle(provider)?;
        }
        Ok(WorkReply::Work {
            leases: offers,
            deliveries,
            retry_after_ms: u32::try_from(config.retry_after.as_millis()).unwrap_or(u32::MAX),
            chain: self.pool_chain(),
            pending,
        })
    }

    /// Keeps `binding` when `provider` signed it and it is newer than the one held.
    fn bind(
        &self,
        tx: &Transaction,
        provider: &PublicKey,
        binding: &Signed<AddressBinding>,
    ) -> Result<bool, PoolError> {
        binding.verify(provider).map_err(PoolError::Binding)?;
        let newer = chain_store::bind_address(tx, binding)?;
        if newer {
            tracing::info!(provider = %provider.fmt_short(), address = %binding.body.address_hex(), seq = binding.body.seq, "payout address bound");
        }
        Ok(newer)
    }

    /// Up to `room` submitted jobs that `provider` can run and that still want a replica from it,
    /// oldest first.
    fn paid_work(
        &self,
        tx: &Transaction,
        provider: &PublicKey,
        capabilities: &Capabilities,
        room: usize,
        now: u64,
    ) -> Result<Vec<Id>, PoolError> {
        let mut chosen = Vec::new();
        if room == 0 {
            return Ok(chosen);
        }
        let replication = &self.shared.config.replication;
        let trusted_me = self.all_trusted(tx, [provider])?;
        let most = replication.needed(1, false);
        for job in store::queued_jobs(tx, QUEUE_WINDOW, now, most)? {
            if chosen.len() >= room {
                break;
            }
            if !fits(capabilities, &job) || store::has_taken(tx, &job.id, provider)? {
                continue;
            }
            let flight = store::in_flight(tx, &job.id, now)?;
            let participants = flight
                .leased
                .iter()
                .chain(flight.pending.iter().map(|(p, _)| p));
            let all_trusted = trusted_me && self.all_trusted(tx, participants)?;
            let needed = replication.needed(job.replicas, all_trusted);
            let digests: Vec<Id> = flight.pending.iter().map(|(_, d)| *d).collect();
            if verify::wants_replica(needed, flight.leased.len() as u32, &digests) {
                chosen.push(job.id);
            }
        }
        Ok(chosen)
    }

    /// Rolls the dice once per paid lease; a hit draws one canary for `provider`, to be queued (by
    /// [`Pool::queue_canary`], outside this transaction) and leased with its next free slot. At most
    /// one waits at a time. When the paid work includes an embedding job, the canary is an embedding
    /// job for its model.
    fn draw_canary(
        &self,
        tx: &Transaction,
        provider: &PublicKey,
        paid: &[Id],
    ) -> Result<Option<DrawnCanary>, PoolError> {
        let rate = self.shared.config.canary_rate;
        let hit = paid
            .iter()
            .any(|_| (random_u64() as f64 / u64::MAX as f64) < rate);
        if !hit || store::queued_canary(tx, provider)?.is_some() {
            return Ok(None);
        }
        let seed = random_u64();
        for job in paid {
            if let Some((config, weights, _)) = embed::embedding_model(&store::manifest(tx, job)?) {
                return Ok(Some(DrawnCanary::Embedding {
                    config,
                    weights,
                    seed,
                }));
            }
        }
        Ok(Some(DrawnCanary::Checksum { seed }))
    }

    /// Makes a drawn canary and its known answer, then queues it for `provider` unless another of its
    /// asks queued one meanwhile.
    fn queue_canary(&self, provider: &PublicKey, drawn: DrawnCanary) -> Result<(), PoolError> {
        let (job, expected, seed) = self.make_canary(drawn)?;
        let id = job_id(&self.public_key(), &job, seed);
        let row = self.job_row(self.public_key(), id, &job, Some(*provider), Some(expected));
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        if store::queued_canary(&tx, provider)?.is_none() {
            store::insert_job(&tx, &row, now_ms())?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// The canary's job, the id of its expected answer and its seed. An embedding canary's answer is
    /// computed here on the CPU, with weights read once into the pool's
    /// [`super::weights::WeightsCache`], and kept in the blob store as vectors (its judge compares by
    /// cosine, not by digest); weights the pool no longer has make it a checksum canary.
    fn make_canary(&self, drawn: DrawnCanary) -> Result<(Job, Id, u64), PoolError> {
        let seed = match drawn {
            DrawnCanary::Embedding {
                config,
                weights,
                seed,
            } => {
                let loaded = self
                    .shared
                    .weights
                    .get_or_read(&weights, || self.shared.blobs.get(&weights));
                if let Some(loaded) = loaded {
                    let (canary, vectors) =
                        embed::embedding_canary(&config, weights, &loaded, seed);
                    let answer = blake3::hash(&vectors);
                    self.shared.blobs.put(&answer, &vectors)?;
                    return Ok((canary, Id(*answer.as_bytes()), seed));
                }
                seed
            }
            DrawnCanary::Checksum { seed } => seed,
        };
        let (job, expected) = canary::canary(seed as u32);
        let expected = output_digest(&[("data".to_owned(), blake3::hash(&expected))]);
        Ok((job, expected, seed))
    }

    /// Expires lapsed leases and gives up jobs the rules in `tries` say are hopeless, or that nobody
    /// took for the give-up time.
    pub(super) fn expire(&self, tx: &Transaction, now: u64) -> Result<(), PoolError> {
        for job in store::expire_leases(tx, now)? {
            tracing::info!(job = %job, "lease expired; the job is handed out again");
            self.maybe_give_up(tx, &job, now)?;
        }
        self.give_up_stalled(tx, now)
    }

    /// Fails `job` if its failed tries say it cannot succeed here.
    fn maybe_give_up(&self, tx: &Transaction, job: &Id, now: u64) -> Result<(), PoolError> {
        let tries = store::failed_tries(tx, job)?;
        let recent = store::providers_seen_since(tx, since(now, tries::RECENT))?;
        if let Some(reason) = tries::give_up(&tries, &recent, self.shared.config.max_failures) {
            tracing::warn!(job = %job, %reason, "job given up");
            store::finish_job(tx, job, JobStage::Failed, Some(&reason), None, now)?;
        }
        Ok(())
    }

    /// Fails the submitted jobs that no provider took for the give-up time; looks at most once a
    /// second, since every ask comes through here.
    fn give_up_stalled(&self, tx: &Transaction, now: u64) -> Result<(), PoolError> {
        use std::sync::atomic::Ordering;
        let last = self.shared.stall_checked_ms.load(Ordering::Relaxed);
        if now < last.saturating_add(1000) {
            return Ok(());
        }
        self.shared.stall_checked_ms.store(now, Ordering::Relaxed);
        let after = self.shared.config.give_up_after;
        for job in store::stalled_jobs(tx, since(now, after))? {
            let (note, _) = self.waiting(tx, &job, 0, now)?;
            let reason = tries::stalled(after, note.as_deref());
            tracing::warn!(job = %job, %reason, "job given up");
            store::finish_job(tx, &job, JobStage::Failed, Some(&reason), None, now)?;
        }
        Ok(())
    }

    /// What `job`, with `running` leases out, waits for: the note for people (see
    /// [`tries::waiting_note`]) and the blocker for programs ([`tries::blocker`]).
    pub(super) fn waiting(
        &self,
        tx: &Transaction,
        job: &Id,
        running: u32,
        now: u64,
    ) -> Result<(Option<String>, Option<Blocker>), PoolError> {
        let tries: Vec<FailedTry> = store::failed_tries(tx, job)?;
        let takers = store::takers(tx, job)?.len();
        let connected = store::providers_seen_since(tx, since(now, tries::CONNECTED))?.len();
        let waiting = tries::Waiting {
            tries: &tries,
            running,
            takers,
            connected,
        };
        Ok((tries::waiting_note(&waiting), tries::blocker(&waiting)))
    }

    /// A provider could not run a lease's job; `fault` says whose fault that was, and `tries`
    /// whether the job goes on. A cancelled run is a lease given back.
    pub fn lease_failed(
        &self,
        provider: &PublicKey,
        lease: LeaseId,
        fault: Fault,
        reason: &str,
    ) -> Result<(), PoolError> {
        if fault == Fault::Cancelled {
            return self.give_back(provider, &[lease], reason);
        }
        let now = now_ms();
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let row = own_lease(&tx, provider, lease)?;
        let end = LeaseEnd {
            state: LeaseState::Failed,
            fault: Some(fault),
            reason: Some(reason),
        };
        store::end_lease(&tx, lease, &end, now)?;
        store::note_provider(&tx, provider, RecordChange::SEEN, now)?;
        let canary = store::job_terms(&tx, &row.job)?.is_some_and(|terms| terms.canary);
        if canary {
            // Only this provider would ever run it; a check that could not run checks nothing.
            let reason = format!("the check could not run: {reason}");
            store::finish_job(&tx, &row.job, JobStage::Failed, Some(&reason), None, now)?;
        } else {
            self.maybe_give_up(&tx, &row.job, now)?;
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
        let now = now_ms();
        let mut db = self.db();
        let tx = db.transaction().map_err(StoreError::from)?;
        let end = LeaseEnd {
            state: LeaseState::Returned,
            fault: None,
            reason: Some(reason),
        };
        for &lease in leases {
            match store::lease(&tx, lease)? {
                Some(row) if row.provider == *provider && row.state == LeaseState::Active => {
                    store::end_lease(&tx, lease, &end, now)?;
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
}

/// The lease, if `provider` holds it; someone else's lease is as unknown as a made-up one.
pub(super) fn own_lease(
    tx: &Transaction,
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

fn since(now: u64, window: std::time::Duration) -> u64 {
    now.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
}

/// The statements `provider` has not confirmed storing, decoded: a row that does not decode is a
/// damaged database, not something to send.
fn deliveries(tx: &Transaction, provider: &PublicKey) -> Result<Vec<Delivery>, StoreError> {
    store::undelivered(tx, provider, DELIVERIES)?
        .into_iter()
        .map(|(kind, bytes)| {
            let corrupt = |_| StoreError::Corrupt("statement");
            Ok(match kind {
                store::StatementKind::Receipt => {
                    Delivery::Receipt(Signed::<Receipt>::from_bytes(&bytes).map_err(corrupt)?)
                }
                store::StatementKind::Payout => {
                    Delivery::Payout(Signed::<Payout>::from_bytes(&bytes).map_err(corrupt)?)
                }
                store::StatementKind::Check => {
                    Delivery::Check(Signed::<Check>::from_bytes(&bytes).map_err(corrupt)?)
                }
            })
        })
        .collect()
}
