//! Taking results and deciding who was right: a lease's outputs are stored, then the job's pending
//! results are judged together (`verify` has the rules for replicas; a canary is right when it matches
//! the answer the pool knew). The verdict moves providers' records, ends the job, and names whom to
//! pay; receipts and checks are issued in the same transaction, payouts after it (`settle`).

use iroh::PublicKey;
use rusqlite::Transaction;

use super::lease::own_lease;
use super::store::{
    self, JobStage, JobTerms, LeaseEnd, LeaseState, RecordChange, ResultRow, ResultVerdict,
    StoreError,
};
use super::verify::{self, Candidate, Comparison, Verdict};
use super::{Pool, PoolError, hashed_wire, listing, output_digest};
use crate::blobs::BlobStore;
use crate::job::CosineCheck;
use crate::protocol::{LeaseId, OutputHeader};
use crate::statement::{Id, now_ms};

/// What a verdict asks of the settling that follows it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Judged {
    /// Providers to pay, with the digest of the outputs each returned.
    pub receipts: Vec<(PublicKey, Id)>,
    /// Providers to tell how a check (a canary) went: passed or not.
    pub checks: Vec<(PublicKey, bool)>,
}

impl Pool {
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

    /// Takes a lease's outputs, judges the job, and pays whoever the verdict says.
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
        let still_wanted = terms.stage == JobStage::Queued
            && matches!(row.state, LeaseState::Active | LeaseState::Expired);
        if !still_wanted {
            let late = LeaseEnd {
                reason: Some("late"),
                ..LeaseEnd::done()
            };
            store::end_lease(&tx, lease, &late, now)?;
            tx.commit().map_err(StoreError::from)?;
            return Err(PoolError::LeaseEnded {
                lease,
                state: if terms.stage == JobStage::Queued {
                    row.state.to_string()
                } else {
                    format!("on a job already {}", terms.stage.as_str())
                },
            });
        }
        store::end_lease(&tx, lease, &LeaseEnd::done(), now)?;
        store::insert_result(&tx, &row.job, provider, &digest, &listing, gpu_micros)?;
        let judged = self.judge(&tx, &row.job, &terms, now)?;
        self.issue(&tx, &row.job, &terms, &judged, now)?;
        tx.commit().map_err(StoreError::from)?;
        drop(db);
        for (paid, _) in &judged.receipts {
            self.settle(paid)?;
        }
        self.changed();
        Ok(())
    }

    /// Applies the verdict on a job's pending results; returns who is to be paid or told.
    fn judge(
        &self,
        tx: &Transaction,
        job: &Id,
        terms: &JobTerms,
        now: u64,
    ) -> Result<Judged, PoolError> {
        let results = store::pending_results(tx, job)?;
        if terms.canary {
            return judge_canary(tx, job, terms, &results, now, &self.shared.blobs);
        }
        let comparison = comparison(tx, job, terms)?;
        let candidates = self.candidates(&results, comparison)?;
        let all_trusted = self.all_trusted(tx, candidates.iter().map(|c| &c.provider))?;
        let needed = self
            .shared
            .config
            .replication
            .needed(terms.replicas, all_trusted);
        match verify::judge(&candidates, needed, comparison) {
            Verdict::Pending => Ok(Judged::default()),
            Verdict::Agreed { agree, disagree } => {
                let winner = &results[agree[0]];
                let outputs = Some((&winner.digest, &winner.outputs[..]));
                store::finish_job(tx, job, JobStage::Verified, None, outputs, now)?;
                for &i in &disagree {
                    let loser = &results[i].provider;
                    store::set_verdict(tx, job, loser, ResultVerdict::Rejected)?;
                    store::note_provider(tx, loser, RecordChange::STRIKE, now)?;
                    tracing::warn!(provider = %loser.fmt_short(), job = %job, "result disagreed with the quorum");
                }
                let mut paid = Vec::new();
                for &i in &agree {
                    let winner = results[i].provider;
                    store::set_verdict(tx, job, &winner, ResultVerdict::Agreed)?;
                    store::note_provider(tx, &winner, RecordChange::CLEAN, now)?;
                    paid.push((winner, results[i].digest));
                }
                tracing::info!(job = %job, agreeing = agree.len(), "job verified");
                Ok(Judged {
                    receipts: paid,
                    checks: Vec::new(),
                })
            }
            Verdict::Failed { reason } => {
                for result in &results {
                    store::set_verdict(tx, job, &result.provider, ResultVerdict::Undecided)?;
                }
                store::finish_job(tx, job, JobStage::Failed, Some(&reason), None, now)?;
                tracing::warn!(job = %job, %reason, "job failed");
                Ok(Judged::default())
            }
        }
    }

    /// Whether every one of `providers` has the record that lets a job rely on fewer replicas.
    pub(super) fn all_trusted<'a>(
        &self,
        tx: &Transaction,
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
        results: &[ResultRow],
        comparison: Comparison,
    ) -> Result<Vec<Candidate>, PoolError> {
        results
            .iter()
            .map(|r| {
                let outputs = if comparison.needs_bytes() {
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
}

/// How a job's results are compared. The cosine rule is read from the job's manifest: the database
/// keeps only the tolerance in a column of its own.
fn comparison(tx: &Transaction, job: &Id, terms: &JobTerms) -> Result<Comparison, PoolError> {
    if terms.tolerance > 0.0 {
        return Ok(Comparison::Relative(terms.tolerance));
    }
    Ok(Comparison::of(&store::manifest(tx, job)?.verify))
}

/// A canary has one result, from the one provider it was for: right or wrong against the answer
/// the pool knew. Either way it earns nothing, and its provider is told how it went.
fn judge_canary(
    tx: &Transaction,
    job: &Id,
    terms: &JobTerms,
    results: &[ResultRow],
    now: u64,
    blobs: &BlobStore,
) -> Result<Judged, PoolError> {
    let passed = match store::manifest(tx, job)?.verify.cosine {
        Some(check) => vectors_passed(results, terms.expected.as_ref(), check, blobs)?,
        None => canary_passed(results, terms.expected.as_ref()),
    };
    let mut checks = Vec::new();
    for result in results {
        let verdict = if passed {
            ResultVerdict::Agreed
        } else {
            ResultVerdict::Rejected
        };
        store::set_verdict(tx, job, &result.provider, verdict)?;
        store::note_provider(tx, &result.provider, RecordChange::judged(passed), now)?;
        if !passed {
            tracing::warn!(provider = %result.provider.fmt_short(), "provider failed a canary");
        }
        checks.push((result.provider, passed));
    }
    let (stage, reason) = if passed {
        (JobStage::Verified, None)
    } else {
        (JobStage::Failed, Some("canary answer was wrong"))
    };
    store::finish_job(tx, job, stage, reason, None, now)?;
    Ok(Judged {
        receipts: Vec::new(),
        checks,
    })
}

fn canary_passed(results: &[ResultRow], expected: Option<&Id>) -> bool {
    results.first().is_some_and(|r| Some(&r.digest) == expected)
}

/// An embedding canary's vectors against the answer the pool computed (`expected` names its bytes in
/// the blob store), row by row by cosine.
fn vectors_passed(
    results: &[ResultRow],
    expected: Option<&Id>,
    check: CosineCheck,
    blobs: &BlobStore,
) -> Result<bool, PoolError> {
    let (Some(result), Some(expected)) = (results.first(), expected) else {
        return Ok(false);
    };
    let Some(answer) = blobs.get(&blake3::Hash::from_bytes(expected.0)) else {
        return Ok(false);
    };
    let returned = listing(&result.outputs)?;
    Ok(match returned.as_slice() {
        [(_, hash)] => blobs
            .get(hash)
            .is_some_and(|bytes| verify::rows_agree_by_cosine(&bytes, &answer, check)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(digest: u8) -> ResultRow {
        ResultRow {
            provider: iroh::SecretKey::from_bytes(&[digest; 32]).public(),
            digest: Id([digest; 32]),
            outputs: Vec::new(),
        }
    }

    #[test]
    fn a_canary_passes_only_on_the_known_answer() {
        let known = Id([7; 32]);
        assert!(canary_passed(&[result(7)], Some(&known)));
        assert!(!canary_passed(&[result(8)], Some(&known)));
        assert!(!canary_passed(&[], Some(&known)));
        assert!(!canary_passed(&[result(7)], None));
    }
}
