//! Sentence embeddings as ordinary jobs. A sentence-transformers model of the BERT family is read from
//! its directory (`model`), texts are tokenised on the submitter's side (`tokenize`), split into batches
//! of bounded tokens, and each batch becomes one WGSL job (`batch`, `kernels`) whose weights are one
//! content-addressed blob. So every limit, check, deadline and the pipeline cache apply unchanged, and
//! a pool verifies the vectors by cosine similarity across replicas. `reference` is the same model in
//! f64 on the CPU; `tiny` writes a random model for tests; `bench` is the work of the embeddings/s
//! score.

mod batch;
mod bench;
mod canary;
mod kernels;
mod model;
pub mod reference;
mod remote;
mod safetensors;
mod tiny;
mod tokenize;

use std::path::PathBuf;

pub use batch::{Batch, DEFAULT_TOKEN_BUDGET, MAX_TOKEN_BUDGET, REPLICA_COSINE, assemble, split};
pub use bench::{BENCH_TEXTS, SETUP_MODEL_DIR, bench_job, default_model_dir, installed_model};
pub use canary::{canary_check, embedding_canary, embedding_model};
pub use model::{Model, ModelConfig, Pooling, read_config, storage_binding_limit};
pub use remote::EmbedProgress;
pub use tiny::{
    Seeded, TINY_MODEL, TinySpec, sample_embedding_job, tiny_weights, write_tiny_model,
};

use crate::job::{Job, JobError};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    #[error("{file}: {message}")]
    Weights { file: String, message: String },
    #[error("model {model} cannot run as a job: its {what} ({value}) exceed {limit}")]
    TooLarge {
        model: String,
        what: String,
        value: String,
        limit: String,
    },
    #[error("cannot tokenise text {index}: {message}")]
    Tokenize { index: usize, message: String },
    #[error("nothing to embed: give at least one text")]
    Empty,
    #[error(
        "token budget {budget} is below the model's maximum length {max_len} (or above {MAX_TOKEN_BUDGET})"
    )]
    Budget { budget: u32, max_len: u32 },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("unexpected output: {0}")]
    Output(String),
}

/// Vectors for a request's texts, in the caller's order, and the tokens they took.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of the texts, special tokens included, padding not.
    pub tokens: u64,
}

impl Model {
    /// Token ids of each text, truncated to the model's maximum length.
    pub fn tokenize(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, EmbedError> {
        tokenize::encode(&self.tokenizer, texts)
    }

    /// The batches for `texts` within `budget` tokens a job.
    pub fn batches(&self, texts: &[String], budget: u32) -> Result<Vec<Batch>, EmbedError> {
        if texts.is_empty() {
            return Err(EmbedError::Empty);
        }
        if budget < self.config.max_len || budget > MAX_TOKEN_BUDGET {
            return Err(EmbedError::Budget {
                budget,
                max_len: self.config.max_len,
            });
        }
        Ok(split(self.tokenize(texts)?, budget))
    }

    /// Embeds `texts` by running each batch's job with `run`, which returns the job's `embeddings`
    /// output (an executor here, or a GPU worker process).
    pub fn embed_with(
        &self,
        texts: &[String],
        budget: u32,
        mut run: impl FnMut(&Job) -> Result<Vec<u8>, EmbedError>,
    ) -> Result<Embeddings, EmbedError> {
        let batches = self.batches(texts, budget)?;
        let tokens = token_count(&batches);
        let mut results = Vec::with_capacity(batches.len());
        for batch in batches {
            let bytes = run(&batch.local_job(self)?)?;
            let vectors = batch.vectors(&bytes, self.config.hidden)?;
            results.push((batch, vectors));
        }
        Ok(Embeddings {
            vectors: assemble(texts.len(), results)?,
            tokens,
        })
    }

    /// Embeds `texts` on this machine's GPU through `executor`.
    pub fn embed_local(
        &self,
        executor: &mut crate::Executor,
        texts: &[String],
        budget: u32,
    ) -> Result<Embeddings, EmbedError> {
        self.embed_with(texts, budget, |job| {
            embeddings_output(executor.run(job)?.outputs)
        })
    }
}

/// The `embeddings` buffer among a job's outputs.
pub fn embeddings_output(outputs: Vec<crate::gpu::OutputBuffer>) -> Result<Vec<u8>, EmbedError> {
    outputs
        .into_iter()
        .find(|o| o.name == "embeddings")
        .map(|o| o.bytes)
        .ok_or_else(|| EmbedError::Output("the job returned no embeddings".into()))
}

fn token_count(batches: &[Batch]) -> u64 {
    batches
        .iter()
        .flat_map(|b| &b.tokens)
        .map(|t| t.len() as u64)
        .sum()
}

#[cfg(test)]
mod tests;
