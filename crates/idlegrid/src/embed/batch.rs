//! A batch of tokenised texts as one ordinary job, and its output read back as vectors. Splitting a
//! request into batches: texts sorted by length, so each batch pads little, cut at a token budget, and
//! the vectors put back in the caller's order.

use super::EmbedError;
use super::kernels::{self, BINDINGS};
use super::model::{Model, ModelConfig};
use crate::job::{Access, BufferInit, BufferSpec, CosineCheck, Job, Verify};

/// Tokens (padding included) one job carries by default: twice all-MiniLM-L6-v2's maximum length, about
/// 11 GFLOP with that model, some seconds on a software GPU (llvmpipe on two cores does about 1 GFLOP/s,
/// and a job must end within its 60 s deadline), milliseconds on a real one.
pub const DEFAULT_TOKEN_BUDGET: u32 = 512;
/// The row kernels dispatch one workgroup per token, at most 65,535 in one dimension.
pub const MAX_TOKEN_BUDGET: u32 = 65_535;
/// How closely replicas' vectors must agree: floats differ across GPUs by reduction order and fused
/// multiply-adds, to a cosine of about 0.9999 (API-NOTES).
pub const REPLICA_COSINE: f64 = 0.9999;

/// Some of a request's texts: their places in the request and their token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub indices: Vec<usize>,
    pub tokens: Vec<Vec<u32>>,
}

impl Batch {
    /// The length every text is padded to.
    pub fn seq(&self) -> u32 {
        self.tokens.iter().map(Vec::len).max().unwrap_or(1).max(1) as u32
    }

    /// Tokens the job computes, padding included.
    pub fn padded_tokens(&self) -> u64 {
        u64::from(self.seq()) * self.tokens.len() as u64
    }

    /// The job for this batch. The weights are a blob named by their hash, fetched by a provider once.
    pub fn job(&self, model: &Model, replicas: u32) -> Job {
        self.job_for(
            &model.config,
            model.weights_hash,
            model.weights.len() as u64,
            replicas,
        )
    }

    /// [`Batch::job`] for a model known by its configuration and its weights' hash and size.
    pub fn job_for(
        &self,
        config: &ModelConfig,
        weights: blake3::Hash,
        weights_bytes: u64,
        replicas: u32,
    ) -> Job {
        let (texts, seq) = (self.tokens.len() as u32, self.seq());
        let rows = u64::from(texts) * u64::from(seq);
        let (h, i) = (u64::from(config.hidden), u64::from(config.intermediate));
        let mut ids = Vec::with_capacity(rows as usize);
        for tokens in &self.tokens {
            ids.extend(tokens.iter().copied());
            ids.extend(std::iter::repeat_n(0, seq as usize - tokens.len()));
        }
        let mut shape = vec![texts, seq];
        shape.extend(self.tokens.iter().map(|t| t.len() as u32));
        let words = |values: &[u32]| {
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        let inits = [
            BufferInit::Blob {
                hash: *weights.as_bytes(),
                size: weights_bytes,
            },
            BufferInit::Bytes(words(&ids)),
            BufferInit::Bytes(words(&shape)),
            BufferInit::Zeros(rows * h * 4),
            BufferInit::Zeros(rows * 3 * h * 4),
            BufferInit::Zeros(rows * h * 4),
            BufferInit::Zeros(rows * i * 4),
            BufferInit::Zeros(rows * h * 4),
            BufferInit::Zeros(u64::from(texts) * h * 4),
        ];
        let buffers = BINDINGS
            .iter()
            .zip(inits)
            .enumerate()
            .map(|(binding, ((name, access), init))| BufferSpec {
                name: (*name).to_owned(),
                binding: binding as u32,
                init,
                access: if *access == "read" {
                    Access::Read
                } else {
                    Access::ReadWrite
                },
                output: *name == "embeddings",
            })
            .collect();
        Job {
            name: job_name(texts, &config.name),
            source_name: format!("{}.wgsl", config.name),
            wgsl: kernels::shader(config),
            buffers,
            passes: kernels::passes(config, texts, seq),
            verify: Verify {
                replicas,
                tolerance: 0.0,
                cosine: Some(CosineCheck {
                    min: REPLICA_COSINE,
                    row: config.hidden,
                }),
            },
            reward: None,
        }
    }

    /// The job with the weights in it, to run without a pool. The weights are the model's own, so
    /// they are put in without hashing them again (90 MB for all-MiniLM-L6-v2, every batch).
    pub fn local_job(&self, model: &Model) -> Result<Job, EmbedError> {
        let mut job = self.job(model, 1);
        if let Some(weights) = job.buffers.first_mut() {
            weights.init = BufferInit::Bytes(model.weights.to_vec());
        }
        Ok(job)
    }

    /// The vectors in a job's `embeddings` output, one per text of this batch.
    pub fn vectors(&self, bytes: &[u8], dims: u32) -> Result<Vec<Vec<f32>>, EmbedError> {
        let expected = self.tokens.len() * dims as usize * 4;
        if bytes.len() != expected {
            return Err(EmbedError::Output(format!(
                "{} bytes of embeddings where {expected} were expected",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(dims as usize * 4)
            .map(|row| {
                row.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .collect())
    }
}

/// What a provider's window shows for the job: "Embedding 256 texts (all-MiniLM-L6-v2)", the model's
/// name shortened to keep within a job name's limit.
fn job_name(texts: u32, model: &str) -> String {
    let model: String = model.chars().take(MAX_MODEL_NAME_CHARS).collect();
    format!("Embedding {texts} texts ({model})")
}

const MAX_MODEL_NAME_CHARS: usize = 60;

/// Splits tokenised texts into batches of at most `budget` tokens each (padding included), shortest
/// texts together, so little is wasted on padding.
pub fn split(tokens: Vec<Vec<u32>>, budget: u32) -> Vec<Batch> {
    let mut order: Vec<(usize, Vec<u32>)> = tokens.into_iter().enumerate().collect();
    order.sort_by_key(|(i, t)| (t.len(), *i));
    let mut batches = Vec::new();
    let mut current = Batch {
        indices: Vec::new(),
        tokens: Vec::new(),
    };
    for (index, tokens) in order {
        // Sorted ascending, so this text sets the padded length of the batch it joins.
        let padded = (current.tokens.len() as u64 + 1) * tokens.len().max(1) as u64;
        if !current.tokens.is_empty() && padded > u64::from(budget) {
            batches.push(std::mem::replace(
                &mut current,
                Batch {
                    indices: Vec::new(),
                    tokens: Vec::new(),
                },
            ));
        }
        current.indices.push(index);
        current.tokens.push(tokens);
    }
    if !current.tokens.is_empty() {
        batches.push(current);
    }
    batches
}

/// Puts the vectors of every batch back in the caller's order.
pub fn assemble(
    count: usize,
    results: Vec<(Batch, Vec<Vec<f32>>)>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut out: Vec<Option<Vec<f32>>> = vec![None; count];
    for (batch, vectors) in results {
        for (index, vector) in batch.indices.into_iter().zip(vectors) {
            if let Some(slot) = out.get_mut(index) {
                *slot = Some(vector);
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| EmbedError::Output(format!("text {i} came back without a vector")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_within_the_budget_sorted_by_length_and_reassemble_in_order() {
        let lengths = [5usize, 1, 9, 3, 3, 7, 2, 8, 4, 6, 10, 2];
        let tokens: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![n as u32; n]).collect();
        let batches = split(tokens.clone(), 16);
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &batches {
            assert!(batch.padded_tokens() <= 16, "{batch:?}");
        }
        let firsts: Vec<u32> = batches.iter().map(|b| b.seq()).collect();
        assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
        // Each text's "vector" is its own length: back in the caller's order.
        let results = batches
            .into_iter()
            .map(|b| {
                let v = b.tokens.iter().map(|t| vec![t.len() as f32]).collect();
                (b, v)
            })
            .collect();
        let out = assemble(lengths.len(), results).unwrap();
        let back: Vec<usize> = out.iter().map(|v| v[0] as usize).collect();
        assert_eq!(back, lengths);
    }

    #[test]
    fn a_text_longer_than_the_budget_gets_a_batch_of_its_own() {
        let batches = split(vec![vec![1; 3], vec![1; 40], vec![1; 2]], 16);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].indices, vec![1]);
    }

    #[test]
    fn the_job_is_named_for_the_window_within_the_name_limit() {
        assert_eq!(
            job_name(256, "all-MiniLM-L6-v2"),
            "Embedding 256 texts (all-MiniLM-L6-v2)"
        );
        let long = job_name(u32::MAX, &"m".repeat(500));
        assert!(long.chars().count() <= crate::job::MAX_NAME_CHARS, "{long}");
    }

    #[test]
    fn a_missing_vector_is_an_error() {
        let batch = Batch {
            indices: vec![0],
            tokens: vec![vec![1]],
        };
        assert!(assemble(2, vec![(batch, vec![vec![1.0]])]).is_err());
    }
}
