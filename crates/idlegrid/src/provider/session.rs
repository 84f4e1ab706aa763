//! One connection's worth of work: ask, fetch, run, return, store statements, and ask again.

use std::time::Duration;

use std::sync::Arc;

use iroh::PublicKey;
use iroh::endpoint::{Connection, RecvStream};
use tokio::sync::watch;

use super::status::{self, Progress};
use super::{Provider, ProviderError, ProviderState};
use crate::gpu::{JobOutput, RunControl};
use crate::idle::{Pace, Reason, Verdict};
use crate::job::{Fault, Job, JobError};
use crate::ledger::{Ledger, LedgerError, LedgerNews, Recorded};
use crate::onchain::{PendingPayout, PoolChain};
use crate::protocol::{
    Delivery, LeaseOffer, MAX_REPLY_FRAME, OutputHeader, ProtocolError, WorkReply, WorkRequest,
    read_bytes, read_frame, write_frame,
};
use crate::statement::{Id, now_ms};

/// Time kept back from a lease for returning the result before it lapses; at most half the lease,
/// so a pool with short leases still leaves time to run (a whole margin would leave none).
const RETURN_MARGIN: Duration = Duration::from_secs(2);

/// Inputs larger than this wait for a direct path before they are fetched: control frames may ride a
/// relay, bulk should not when it need not.
const BULK_BYTES: u64 = 8 << 20;
/// How long a bulk fetch waits for a direct path before it goes over the relay.
const DIRECT_WAIT: Duration = Duration::from_secs(5);

/// How often the progress of the job in hand is published while it runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A lease run to the end, until the pool has its outputs.
pub(super) struct Finished {
    lease: u64,
    job: Id,
    name: String,
    gpu_micros: u64,
    outputs: Vec<crate::gpu::OutputBuffer>,
}

pub(super) struct Session<'a> {
    provider: &'a Provider,
    connection: &'a Connection,
    pool: PublicKey,
}

impl<'a> Session<'a> {
    pub(super) fn new(provider: &'a Provider, connection: &'a Connection) -> Session<'a> {
        Session {
            provider,
            connection,
            pool: connection.remote_id(),
        }
    }

    pub(super) async fn serve(
        &self,
        verdicts: &mut watch::Receiver<Verdict>,
    ) -> Result<(), ProviderError> {
        self.return_undelivered().await?;
        let mut stored = Vec::new();
        loop {
            let verdict = verdicts.borrow_and_update().clone();
            if let Verdict::Pause { reason } = verdict {
                // Statements are still collected while paused: a payout should not wait for idleness.
                self.ask(0, &mut stored).await?;
                self.wait_paused(reason, verdicts).await;
                continue;
            }
            let (leases, retry_after) = self.ask(self.provider.config.slots, &mut stored).await?;
            if leases.is_empty() {
                self.provider.set_state(ProviderState::Waiting);
                verdict_change(verdicts, retry_after).await;
                continue;
            }
            let mut leases = leases.into_iter();
            while let Some(lease) = leases.next() {
                let pause = verdicts.borrow().reason().map(ToString::to_string);
                if let Some(reason) = pause {
                    let unstarted: Vec<_> = std::iter::once(lease.lease)
                        .chain(leases.by_ref().map(|l| l.lease))
                        .collect();
                    self.give_back(unstarted, &reason.to_string()).await?;
                    break;
                }
                self.work(lease, verdicts).await?;
            }
        }
    }

    /// Waits for the verdict to change (at most 30 s, to keep collecting statements), giving the GPU
    /// device back once paused for `release_after`.
    async fn wait_paused(&self, reason: Reason, verdicts: &mut watch::Receiver<Verdict>) {
        let status = self.provider.status.borrow().clone();
        let paused_since = match &status.state {
            ProviderState::Paused { .. } => status.since_ms,
            _ => now_ms(),
        };
        let paused_for = Duration::from_millis(now_ms().saturating_sub(paused_since));
        let release_in = self
            .provider
            .config
            .release_after
            .saturating_sub(paused_for);
        let gpu_released = release_in.is_zero() && self.release_device().await;
        self.provider.set_state(ProviderState::Paused {
            reason,
            gpu_released,
        });
        let wait = if release_in.is_zero() {
            Duration::from_secs(30)
        } else {
            release_in.min(Duration::from_secs(30))
        };
        verdict_change(verdicts, wait).await;
    }

    /// True once no device is held.
    async fn release_device(&self) -> bool {
        let runner = Arc::clone(&self.provider.runner);
        tokio::task::spawn_blocking(move || crate::sync::lock(&runner).release_device())
            .await
            .unwrap_or(false)
    }

    /// One request, one reply.
    async fn request(&self, request: &WorkRequest) -> Result<WorkReply, ProviderError> {
        Ok(self.exchange(request, &[]).await?.0)
    }

    /// Sends a request frame followed by `body` raw, and reads the reply frame; the stream is
    /// returned for any raw bytes that follow the reply.
    async fn exchange(
        &self,
        request: &WorkRequest,
        body: &[&[u8]],
    ) -> Result<(WorkReply, RecvStream), ProtocolError> {
        let (mut send, mut recv) = self.connection.open_bi().await?;
        write_frame(&mut send, request).await?;
        for bytes in body {
            send.write_all(bytes).await?;
        }
        send.finish()?;
        Ok((read_frame(&mut recv, MAX_REPLY_FRAME).await?, recv))
    }

    async fn ask(
        &self,
        slots: u32,
        stored: &mut Vec<Id>,
    ) -> Result<(Vec<LeaseOffer>, Duration), ProviderError> {
        let request = WorkRequest::Ask {
            capabilities: self.provider.capabilities(),
            slots,
            stored: std::mem::take(stored),
            binding: self.provider.binding(),
        };
        match self.request(&request).await? {
            WorkReply::Work {
                leases,
                deliveries,
                retry_after_ms,
                chain,
                pending,
            } => {
                self.note_chain(chain.as_ref(), &pending);
                *stored = self.store(deliveries);
                Ok((leases, Duration::from_millis(u64::from(retry_after_ms))))
            }
            WorkReply::Error { message } => Err(ProviderError::Pool(message)),
            other => Err(unexpected(&other)),
        }
    }

    /// Keeps the chain the pool pays on and its notices of payouts on their way.
    fn note_chain(&self, chain: Option<&PoolChain>, pending: &[PendingPayout]) {
        let pool = self.pool.to_string();
        let mut ledger = crate::sync::lock(&self.provider.ledger);
        if let Some(chain) = chain
            && let Err(error) = ledger.record_pool_chain(&pool, chain)
        {
            tracing::warn!(%error, "cannot keep the pool's chain");
        }
        match ledger.record_pending(&pool, pending) {
            Ok(true) => {
                for notice in pending {
                    let id = notice.payout.to_hex();
                    self.provider
                        .tell(|| Ok(ledger.payout(&id)?.map(LedgerNews::Payout)));
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot keep the pool's pending payouts"),
        }
    }

    /// Verifies and stores the pool's statements; returns the ids it may confirm.
    fn store(&self, deliveries: Vec<Delivery>) -> Vec<Id> {
        let mut ledger = crate::sync::lock(&self.provider.ledger);
        deliveries
            .into_iter()
            .filter_map(|delivery| {
                let id = delivery.id();
                let recorded = match &delivery {
                    Delivery::Receipt(receipt) => ledger.record_receipt(&self.pool, receipt),
                    Delivery::Payout(payout) => ledger.record_payout(&self.pool, payout),
                    Delivery::Check(check) => ledger.record_check(&self.pool, check),
                };
                match recorded {
                    Ok(Recorded::New) => {
                        tracing::info!(statement = %id, "stored a signed statement from the pool");
                        self.provider.tell(|| news_of(&ledger, &delivery));
                        Some(id)
                    }
                    Ok(Recorded::Duplicate) => Some(id),
                    Err(error) => {
                        tracing::warn!(%error, "refused a statement from the pool");
                        None
                    }
                }
            })
            .collect()
    }

    async fn give_back(&self, leases: Vec<u64>, reason: &str) -> Result<(), ProviderError> {
        let request = WorkRequest::GiveBack {
            leases,
            reason: reason.into(),
        };
        match self.request(&request).await? {
            WorkReply::Ack => Ok(()),
            WorkReply::Error { message } => Err(ProviderError::Pool(message)),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs one lease and reports how it went. A job that fails here is the pool's to judge, not a
    /// reason to drop the connection.
    async fn work(
        &self,
        offer: LeaseOffer,
        verdicts: &mut watch::Receiver<Verdict>,
    ) -> Result<(), ProviderError> {
        let name = offer.manifest.name.clone();
        let lease = Duration::from_millis(offer.expires_in_ms);
        let deadline = lease.saturating_sub(RETURN_MARGIN.min(lease / 2));
        let job = match self.fetch_inputs(offer.manifest.clone()).await {
            Ok(job) => job,
            Err(ProviderError::Pool(message)) => {
                // Not the job's fault as far as this provider can tell: another may fare better.
                return self
                    .report_failure(&offer, &name, Fault::Machine, &message)
                    .await;
            }
            Err(other) => return Err(other),
        };
        tracing::info!(job = %name, lease = offer.lease, "running");
        match self.execute(job, &offer, deadline, verdicts).await {
            Ok(output) => {
                let finished = Finished {
                    lease: offer.lease,
                    job: offer.job,
                    name,
                    gpu_micros: u64::try_from(output.gpu_time.as_micros()).unwrap_or(u64::MAX),
                    outputs: output.outputs,
                };
                self.return_result(finished).await
            }
            Err(JobError::Cancelled(_)) => {
                let verdict = verdicts.borrow().clone();
                if let Verdict::Pause { reason } = &verdict {
                    // The GPU is free now; the pool hears of it next.
                    self.provider.set_state(ProviderState::Paused {
                        reason: reason.clone(),
                        gpu_released: false,
                    });
                }
                self.give_back(vec![offer.lease], &verdict.to_string())
                    .await?;
                tracing::info!(job = %name, lease = offer.lease, "gave the lease back");
                Ok(())
            }
            Err(error) => {
                self.report_failure(&offer, &name, error.fault(), &error.to_string())
                    .await
            }
        }
    }

    /// Returns a finished lease's outputs. If the pool cannot be reached, the result is kept and
    /// returned first thing after reconnecting: the lease may well still be open, and the work paid.
    async fn return_result(&self, finished: Finished) -> Result<(), ProviderError> {
        match self.send_result(&finished).await {
            Ok(WorkReply::Ack) => {
                tracing::info!(job = %finished.name, gpu_ms = finished.gpu_micros as f64 / 1e3, "result returned");
                Ok(())
            }
            Ok(WorkReply::Error { message }) => {
                tracing::warn!(job = %finished.name, %message, "the pool did not take the result");
                self.note_unpaid(finished.job, &finished.name, &message);
                Ok(())
            }
            Ok(other) => Err(unexpected(&other)),
            Err(error) => {
                tracing::info!(job = %finished.name, "keeping the result until the pool is back");
                crate::sync::lock(&self.provider.undelivered).push(finished);
                Err(error)
            }
        }
    }

    async fn send_result(&self, finished: &Finished) -> Result<WorkReply, ProviderError> {
        let request = WorkRequest::Result {
            lease: finished.lease,
            gpu_micros: finished.gpu_micros,
            outputs: finished
                .outputs
                .iter()
                .map(|o| OutputHeader {
                    name: o.name.clone(),
                    size: o.bytes.len() as u64,
                })
                .collect(),
        };
        let body: Vec<&[u8]> = finished.outputs.iter().map(|o| &o.bytes[..]).collect();
        Ok(self.exchange(&request, &body).await?.0)
    }

    /// Results finished while the pool was away.
    async fn return_undelivered(&self) -> Result<(), ProviderError> {
        let waiting = std::mem::take(&mut *crate::sync::lock(&self.provider.undelivered));
        for finished in waiting {
            self.return_result(finished).await?;
        }
        Ok(())
    }

    async fn report_failure(
        &self,
        offer: &LeaseOffer,
        name: &str,
        fault: Fault,
        reason: &str,
    ) -> Result<(), ProviderError> {
        tracing::warn!(job = %name, %reason, "job failed here");
        self.note_unpaid(offer.job, name, reason);
        let request = WorkRequest::Failed {
            lease: offer.lease,
            fault,
            reason: reason.to_owned(),
        };
        match self.request(&request).await? {
            WorkReply::Ack | WorkReply::Error { .. } => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn note_unpaid(&self, job: Id, name: &str, reason: &str) {
        let mut ledger = crate::sync::lock(&self.provider.ledger);
        match ledger.record_unpaid(&self.pool, job, name, reason, now_ms()) {
            Ok(Some(work)) => self.provider.tell(|| Ok(Some(LedgerNews::Unpaid(work)))),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not note unpaid work in the ledger"),
        }
    }

    /// The job with its inputs, fetching from the pool only those not in the cache.
    async fn fetch_inputs(&self, manifest: Job) -> Result<Job, ProviderError> {
        let cache = &self.provider.cache;
        for (hash, size) in manifest.blob_refs() {
            if cache.has(&hash) {
                continue;
            }
            if size > BULK_BYTES
                && !super::path::wait_for_direct(self.connection, DIRECT_WAIT).await
            {
                tracing::info!(
                    bytes = size,
                    "no direct path to the pool within {} s; fetching the input over the relay",
                    DIRECT_WAIT.as_secs()
                );
            }
            let request = WorkRequest::Blob {
                hash: *hash.as_bytes(),
            };
            let started = std::time::Instant::now();
            match self.exchange(&request, &[]).await? {
                (WorkReply::Blob { size: sent }, mut recv) if sent == size => {
                    let bytes = read_bytes(&mut recv, size).await?;
                    if size > BULK_BYTES {
                        let ms = started.elapsed().as_millis();
                        tracing::info!(bytes = size, ms, "fetched a large input");
                    }
                    cache.put(&hash, &bytes)?;
                }
                (WorkReply::Blob { size: sent }, _) => {
                    return Err(ProviderError::Pool(format!(
                        "input {} is {sent} bytes, the job says {size}",
                        &hash.to_hex()[..16]
                    )));
                }
                (WorkReply::Error { message }, _) => return Err(ProviderError::Pool(message)),
                (other, _) => return Err(unexpected(&other)),
            }
        }
        manifest
            .with_blobs(|hash| cache.get(hash))
            .map_err(|e| ProviderError::Pool(e.to_string()))
    }

    /// Runs the job on the GPU, off the async threads, following the verdict while it runs: a pause
    /// cancels it between passes, "gentle" paces it.
    async fn execute(
        &self,
        job: Job,
        offer: &LeaseOffer,
        deadline: Duration,
        verdicts: &mut watch::Receiver<Verdict>,
    ) -> Result<JobOutput, JobError> {
        let control = Arc::new(RunControl::default());
        let passes = u32::try_from(job.passes.len()).unwrap_or(u32::MAX);
        let mut progress = tokio::time::interval(PROGRESS_EVERY);
        let runner = Arc::clone(&self.provider.runner);
        let run = {
            let control = Arc::clone(&control);
            tokio::task::spawn_blocking(move || {
                crate::sync::lock(&runner).run(&job, deadline, &control)
            })
        };
        tokio::pin!(run);
        let follow = |verdict: Verdict| match verdict {
            Verdict::Run { pace } => {
                control.set_gentle(pace == Pace::Gentle);
                self.provider.set_state(ProviderState::Working {
                    job: offer.manifest.name.clone(),
                    lease: offer.lease,
                    pace,
                });
            }
            Verdict::Pause { .. } => control.cancel(),
        };
        follow(verdicts.borrow_and_update().clone());
        let mut following = true;
        loop {
            tokio::select! {
                result = &mut run => {
                    return result.unwrap_or_else(|e| {
                        Err(JobError::Gpu(format!("the run stopped unexpectedly: {e}")))
                    });
                }
                changed = verdicts.changed(), if following => {
                    // Whoever set the verdict has gone: run to the end as things stood.
                    following = changed.is_ok();
                    if following {
                        follow(verdicts.borrow_and_update().clone());
                    }
                }
                _ = progress.tick() => {
                    let passes_done = control.passes_done();
                    status::publish_progress(&self.provider.status, Progress { passes_done, passes });
                }
            }
        }
    }
}

/// Waits at most `limit` for a new verdict; a verdict that can no longer change just waits.
async fn verdict_change(verdicts: &mut watch::Receiver<Verdict>, limit: Duration) {
    let change = async {
        if verdicts.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let _ = tokio::time::timeout(limit, change).await;
}

fn unexpected(reply: &WorkReply) -> ProviderError {
    ProviderError::Protocol(ProtocolError::Malformed(format!(
        "unexpected reply from the pool: {}",
        match reply {
            WorkReply::Work { .. } => "work",
            WorkReply::Blob { .. } => "blob",
            WorkReply::Ack => "ack",
            WorkReply::Error { .. } => "error",
        }
    )))
}

/// What `delivery`, just stored, added to the ledger, read back as the ledger lists it.
fn news_of(ledger: &Ledger, delivery: &Delivery) -> Result<Option<LedgerNews>, LedgerError> {
    let id = delivery.id().to_hex();
    Ok(match delivery {
        Delivery::Receipt(_) => ledger.receipt(&id)?.map(LedgerNews::Receipt),
        Delivery::Payout(_) => ledger.payout(&id)?.map(LedgerNews::Payout),
        Delivery::Check(_) => ledger.check(&id)?.map(LedgerNews::Check),
    })
}
