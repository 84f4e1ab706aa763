//! The work behind the embeddings-per-second score: a fixed small batch of token ids through the real
//! embedding kernels, as one ordinary job with its weights inline. It runs the model a developer would
//! run where one is installed ([`default_model_dir`]), else the tiny random model; the score names its
//! model, since the two differ by orders of magnitude. `gpu::bench` times it.

use std::path::PathBuf;

use super::tiny::{Seeded, TINY_MODEL, TinySpec, inline_job, tiny_weights};
use super::{Batch, Model};
use crate::job::{Job, JobLimits};

/// Where `./scripts/setup` puts all-MiniLM-L6-v2, relative to a checkout.
pub const SETUP_MODEL_DIR: &str = ".tools/models/all-MiniLM-L6-v2";

/// Texts in the measured batch.
pub const BENCH_TEXTS: u32 = 8;
/// Tokens in each text, special tokens included: a short sentence.
const BENCH_TOKENS: usize = 16;

/// The model directory used when none is given: `$IDLEGRID_MODEL`, else [`SETUP_MODEL_DIR`].
pub fn default_model_dir() -> PathBuf {
    std::env::var_os("IDLEGRID_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SETUP_MODEL_DIR))
}

/// The model in [`default_model_dir`], when one is there and loads.
pub fn installed_model() -> Option<Model> {
    let dir = default_model_dir();
    if !dir.join("config.json").is_file() {
        return None;
    }
    Model::load(&dir, &JobLimits::default())
        .inspect_err(|error| {
            tracing::warn!(dir = %dir.display(), %error, "the installed model does not load; scoring the tiny one")
        })
        .ok()
}

/// The measured batch on `model`, or on the tiny model without one: the job and the model's name.
pub fn bench_job(model: Option<&Model>) -> (Job, String) {
    let (config, weights) = match model {
        Some(model) => (model.config.clone(), model.weights.to_vec()),
        None => tiny_weights(TinySpec::default(), TINY_MODEL),
    };
    // Fixed ids, so every adapter runs the same work; attention costs do not depend on their values.
    let mut rng = Seeded::new(1);
    let tokens = (0..BENCH_TEXTS)
        .map(|_| {
            (0..BENCH_TOKENS.min(config.max_len as usize))
                .map(|_| (rng.next_u64() % u64::from(config.vocab)) as u32)
                .collect()
        })
        .collect();
    let batch = Batch {
        indices: (0..BENCH_TEXTS as usize).collect(),
        tokens,
    };
    let name = config.name.clone();
    (inline_job(&batch, &config, weights), name)
}
