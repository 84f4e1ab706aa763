//! Embeddings through a pool: every batch is submitted as its own job (the weights blob is uploaded
//! only if the pool lacks it), so the pool spreads them over its providers; the verified vectors are
//! put back in the caller's order.

use super::{EmbedError, Embeddings, Model, assemble, token_count};
use crate::client::Client;
use crate::protocol::Blocker;

/// How far a request through a pool has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedProgress {
    pub jobs_done: usize,
    pub jobs: usize,
    /// The pool's latest word on why a job waits ("waiting for a provider (none connected)").
    pub note: Option<String>,
    /// What blocks the job waited for, as the pool types it (absent from pools before submit/3).
    pub blocked: Option<Blocker>,
}

impl Client {
    /// Embeds `texts` with `model` on the pool's providers, `replicas` agreeing results a job (the
    /// pool may ask for more), in jobs of at most `budget` tokens.
    pub async fn embed(
        &self,
        model: &Model,
        texts: &[String],
        budget: u32,
        replicas: u32,
        mut progress: impl FnMut(EmbedProgress),
    ) -> Result<Embeddings, EmbedError> {
        let batches = model.batches(texts, budget)?;
        let tokens = token_count(&batches);
        let weights = [(model.weights_hash, model.weights.as_slice())];
        let mut handles = Vec::with_capacity(batches.len());
        for batch in &batches {
            let manifest = batch.job(model, replicas);
            handles.push(self.submit_manifest(manifest, &weights).await?);
        }
        let jobs = handles.len();
        progress(EmbedProgress {
            jobs_done: 0,
            jobs,
            note: None,
            blocked: None,
        });
        let mut results = Vec::with_capacity(jobs);
        for (done, (batch, handle)) in batches.into_iter().zip(handles).enumerate() {
            let outputs = handle
                .wait_with(|p| {
                    progress(EmbedProgress {
                        jobs_done: done,
                        jobs,
                        note: p.note,
                        blocked: p.blocked,
                    })
                })
                .await?;
            let vectors =
                batch.vectors(&super::embeddings_output(outputs)?, model.config.hidden)?;
            results.push((batch, vectors));
            progress(EmbedProgress {
                jobs_done: done + 1,
                jobs,
                note: None,
                blocked: None,
            });
        }
        Ok(Embeddings {
            vectors: assemble(texts.len(), results)?,
            tokens,
        })
    }
}
