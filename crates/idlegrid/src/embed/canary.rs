//! Canaries for embedding work: a pool that leased an embedding job knows the model from the job itself
//! (its source is generated from the configuration, see `kernels::config_of`) and has the weights in its
//! blob store, so it can make a small embedding job of fresh random tokens and compute the answer on its
//! CPU (`reference`). A provider's vectors pass when every row agrees with that answer by cosine.

use super::batch::{Batch, REPLICA_COSINE};
use super::kernels;
use super::model::ModelConfig;
use super::reference;
use super::tiny::Seeded;
use crate::job::{BufferInit, CosineCheck, Job};

/// Texts in a canary, and the most tokens each: small, since the pool computes the answer in f64.
const TEXTS: usize = 2;
const MAX_TOKENS: u32 = 10;

/// The model an embedding job runs, with its weights' hash and size; `None` for any other job.
pub fn embedding_model(job: &Job) -> Option<(ModelConfig, blake3::Hash, u64)> {
    let name = job.source_name.strip_suffix(".wgsl")?;
    let config = kernels::config_of(&job.wgsl, name)?;
    match job.buffers.first()?.init {
        BufferInit::Blob { hash, size } if size == config.weight_bytes() => {
            Some((config, blake3::Hash::from_bytes(hash), size))
        }
        _ => None,
    }
}

/// A canary for `config` with fresh random tokens from `seed`, and the vectors it must produce
/// (little-endian f32, one row per text). `weights` are the packed weights as f32.
pub fn embedding_canary(
    config: &ModelConfig,
    weights_hash: blake3::Hash,
    weights: &[f32],
    seed: u64,
) -> (Job, Vec<u8>) {
    let mut rng = Seeded::new(seed);
    let most = MAX_TOKENS.min(config.max_len).max(1);
    let tokens: Vec<Vec<u32>> = (0..TEXTS)
        .map(|_| {
            let len = 1 + (rng.next_u64() % u64::from(most)) as usize;
            (0..len)
                .map(|_| (rng.next_u64() % u64::from(config.vocab)) as u32)
                .collect()
        })
        .collect();
    let expected = tokens
        .iter()
        .flat_map(|t| reference::embed_tokens(config, weights, t))
        .flat_map(|v| (v as f32).to_le_bytes())
        .collect();
    let batch = Batch {
        indices: (0..TEXTS).collect(),
        tokens,
    };
    let job = batch.job_for(config, weights_hash, weights.len() as u64 * 4, 1);
    (job, expected)
}

/// How a canary's vectors are compared with the known answer.
pub fn canary_check(config: &ModelConfig) -> CosineCheck {
    CosineCheck {
        min: REPLICA_COSINE,
        row: config.hidden,
    }
}
