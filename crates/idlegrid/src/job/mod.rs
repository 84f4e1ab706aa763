//! Jobs: what a WGSL compute job is, how it is read from a TOML file, how it travels on the wire, and the
//! checks that refuse a bad job before it reaches a GPU.
//!
//! A `Job` is self-contained: its shader source and its buffers' initial bytes are inside it, so the
//! same value can be run locally, sent to a pool, or hashed.

mod check;
mod error;
mod file;
mod interface;
mod limits;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;

pub use check::{MAX_NAME_CHARS, check, check_fit, check_manifest, check_without_shader};
pub(crate) use error::bytes;
pub use error::{Fault, JobError, WgslError};
pub use interface::{BindingKind, ShaderBinding, ShaderEntryPoint, ShaderInterface};
pub use limits::JobLimits;

/// A WGSL compute job: one shader, the buffers bound to it, and the passes run over them in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    /// Where the shader came from ("collatz.wgsl", or "job.toml" for inline source); used in errors.
    pub source_name: String,
    pub wgsl: String,
    pub buffers: Vec<BufferSpec>,
    pub passes: Vec<Pass>,
    pub verify: Verify,
    pub reward: Option<Amount>,
}

/// One buffer bound at `@group(0) @binding(binding)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BufferSpec {
    pub name: String,
    pub binding: u32,
    pub init: BufferInit,
    pub access: Access,
    /// Read back and returned after the last pass.
    pub output: bool,
}

/// A buffer's initial contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BufferInit {
    Bytes(Vec<u8>),
    /// Zero-filled; kept as a size so that a huge buffer can be refused without allocating it.
    Zeros(u64),
    /// Bytes named by their BLAKE3 hash, sent apart from the job so that a provider that already has
    /// them is not sent them again. Replaced by `Bytes` (see [`Job::with_blobs`]) before the job runs.
    Blob {
        hash: [u8; 32],
        size: u64,
    },
}

/// Inputs at least this large travel as blobs; smaller ones stay inline, where a round trip costs more
/// than the bytes.
pub const INLINE_INPUT_BYTES: usize = 1024;

/// How the job lets the shader use a buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    ReadWrite,
    Read,
    Uniform,
}

/// One dispatch of an entry point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    pub entry: String,
    pub workgroups: [u32; 3],
}

/// How a pool checks the job's results.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verify {
    /// Independent providers that must agree.
    pub replicas: u32,
    /// 0 means bit-exact; otherwise the largest relative error allowed between f32 outputs.
    pub tolerance: f64,
    /// Instead of `tolerance`: f32 outputs agree row by row by cosine similarity (embeddings, whose
    /// floats differ across GPUs but whose directions do not).
    pub cosine: Option<CosineCheck>,
}

/// Rows of `row` f32 values agree when their cosine similarity is at least `min`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CosineCheck {
    pub min: f64,
    pub row: u32,
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            replicas: 1,
            tolerance: 0.0,
            cosine: None,
        }
    }
}

impl BufferInit {
    pub fn size(&self) -> u64 {
        match self {
            BufferInit::Bytes(bytes) => bytes.len() as u64,
            BufferInit::Zeros(size) | BufferInit::Blob { size, .. } => *size,
        }
    }
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "read_write",
            Access::Read => "read",
            Access::Uniform => "uniform",
        }
    }
}

impl Job {
    /// Reads a job file, with the files it names, refusing anything over `limits` before reading it.
    pub fn load(path: &std::path::Path, limits: &JobLimits) -> Result<Job, JobError> {
        file::load(path, limits)
    }

    /// Parses the text of a job file, reading the files it names relative to `dir` and refusing
    /// anything over `limits` before reading it; `label` names the file in errors. [`Job::load`] is
    /// this after reading the file.
    pub fn from_toml(
        text: &str,
        dir: &std::path::Path,
        label: &str,
        limits: &JobLimits,
    ) -> Result<Job, JobError> {
        file::parse_text(text, dir, label, limits)
    }

    /// Compact binary form for the network (postcard).
    pub fn to_wire(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes the wire form. The result is not yet checked: run [`check`] before trusting it.
    pub fn from_wire(bytes: &[u8]) -> Result<Job, JobError> {
        postcard::from_bytes(bytes).map_err(|e| JobError::Wire(e.to_string()))
    }

    /// BLAKE3 of the wire form: the same job always has the same id.
    pub fn content_hash(&self) -> blake3::Hash {
        blake3::hash(&self.to_wire())
    }

    /// Moves every large input out of the job as a content-addressed blob: the manifest that travels
    /// first, and the blobs (hash and bytes) fetched only by those who lack them.
    pub fn into_manifest(mut self) -> (Job, Vec<(blake3::Hash, Vec<u8>)>) {
        let mut blobs = Vec::new();
        for buffer in &mut self.buffers {
            if let BufferInit::Bytes(bytes) = &mut buffer.init
                && bytes.len() >= INLINE_INPUT_BYTES
            {
                let bytes = std::mem::take(bytes);
                let hash = blake3::hash(&bytes);
                buffer.init = BufferInit::Blob {
                    hash: *hash.as_bytes(),
                    size: bytes.len() as u64,
                };
                if !blobs.iter().any(|(h, _)| *h == hash) {
                    blobs.push((hash, bytes));
                }
            }
        }
        (self, blobs)
    }

    /// The blobs a manifest names, each once.
    pub fn blob_refs(&self) -> Vec<(blake3::Hash, u64)> {
        let mut refs: Vec<(blake3::Hash, u64)> = Vec::new();
        for buffer in &self.buffers {
            if let BufferInit::Blob { hash, size } = buffer.init {
                let hash = blake3::Hash::from_bytes(hash);
                if !refs.iter().any(|(h, _)| *h == hash) {
                    refs.push((hash, size));
                }
            }
        }
        refs
    }

    /// Puts the blobs back: `blob` gives the bytes for a hash. A blob whose bytes do not hash to its
    /// name, or are missing, is an error naming the buffer.
    pub fn with_blobs(
        mut self,
        mut blob: impl FnMut(&blake3::Hash) -> Option<Vec<u8>>,
    ) -> Result<Job, JobError> {
        for buffer in &mut self.buffers {
            if let BufferInit::Blob { hash, size } = buffer.init {
                let hash = blake3::Hash::from_bytes(hash);
                let missing = |why: &str| JobError::Format {
                    file: self.name.clone(),
                    key: format!("buffers.{}", buffer.name),
                    message: format!("input {} {why}", &hash.to_hex()[..16]),
                };
                let bytes = blob(&hash).ok_or_else(|| missing("is missing"))?;
                if bytes.len() as u64 != size || blake3::hash(&bytes) != hash {
                    return Err(missing("does not match its hash"));
                }
                buffer.init = BufferInit::Bytes(bytes);
            }
        }
        Ok(self)
    }

    pub fn outputs(&self) -> impl Iterator<Item = &BufferSpec> {
        self.buffers.iter().filter(|b| b.output)
    }

    /// Total bytes of all buffers, saturating so that hostile sizes cannot overflow.
    pub fn total_buffer_bytes(&self) -> u64 {
        self.buffers
            .iter()
            .fold(0u64, |sum, b| sum.saturating_add(b.init.size()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Job {
        Job {
            name: "sample".into(),
            source_name: "sample.wgsl".into(),
            wgsl: "@compute @workgroup_size(1) fn main() {}".into(),
            buffers: vec![BufferSpec {
                name: "data".into(),
                binding: 0,
                init: BufferInit::Bytes(vec![1, 2, 3, 4]),
                access: Access::ReadWrite,
                output: true,
            }],
            passes: vec![Pass {
                entry: "main".into(),
                workgroups: [1, 1, 1],
            }],
            verify: Verify::default(),
            reward: Some(Amount::from_micros(500)),
        }
    }

    #[test]
    fn wire_form_round_trips_and_is_compact() {
        let job = sample();
        let wire = job.to_wire();
        assert_eq!(Job::from_wire(&wire).unwrap(), job);
        // The bytes travel one byte each, not as a list of numbers.
        assert!(wire.len() < job.wgsl.len() + 64, "{} bytes", wire.len());
    }

    #[test]
    fn truncated_wire_bytes_are_an_error_not_a_panic() {
        let wire = sample().to_wire();
        for cut in 0..wire.len() {
            assert!(
                matches!(Job::from_wire(&wire[..cut]), Err(JobError::Wire(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn large_inputs_travel_as_blobs_and_come_back() {
        let mut job = sample();
        let big: Vec<u8> = (0..4096u32).flat_map(|v| v.to_le_bytes()).collect();
        job.buffers.push(BufferSpec {
            name: "big".into(),
            binding: 1,
            init: BufferInit::Bytes(big.clone()),
            access: Access::Read,
            output: false,
        });
        let (manifest, blobs) = job.clone().into_manifest();
        assert_eq!(blobs.len(), 1);
        assert_eq!(
            manifest.blob_refs(),
            vec![(blake3::hash(&big), big.len() as u64)]
        );
        // The small buffer stays inline; the manifest is small.
        assert_eq!(manifest.buffers[0].init, job.buffers[0].init);
        assert!(manifest.to_wire().len() < 200);
        let restored = manifest
            .clone()
            .with_blobs(|h| blobs.iter().find(|(b, _)| b == h).map(|(_, v)| v.clone()))
            .unwrap();
        assert_eq!(restored, job);
        let wrong = manifest.with_blobs(|_| Some(vec![0; big.len()]));
        assert!(
            wrong
                .unwrap_err()
                .to_string()
                .contains("does not match its hash")
        );
    }

    #[test]
    fn a_wire_job_with_both_tolerance_and_cosine_is_refused() {
        let mut job = sample();
        job.verify.cosine = Some(CosineCheck {
            min: 0.9999,
            row: 1,
        });
        assert!(check_without_shader(&job, &JobLimits::default()).is_ok());
        job.verify.tolerance = 0.1;
        let err = check_without_shader(&job, &JobLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("either `tolerance` or `cosine`"), "{err}");
        job.verify.tolerance = 0.0;
        job.verify.cosine = Some(CosineCheck { min: 1.5, row: 1 });
        assert!(check_without_shader(&job, &JobLimits::default()).is_err());
    }

    #[test]
    fn content_hash_changes_with_the_content() {
        let a = sample();
        let mut b = sample();
        b.passes[0].workgroups = [2, 1, 1];
        assert_eq!(a.content_hash(), sample().content_hash());
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
