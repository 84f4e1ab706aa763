//! A sentence-transformers model of the BERT family, read from its directory: sizes from `config.json`,
//! pooling, maximum length and normalisation from the sentence-transformers files, the weights from
//! `model.safetensors` packed into the one buffer the kernels read. A model that cannot fit a job's limits
//! is refused here, naming the limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::EmbedError;
use super::safetensors::Tensors;
use crate::job::JobLimits;

/// Largest attention head the attention kernel keeps in registers.
pub const MAX_HEAD_DIM: u32 = 128;
/// Passes the embedding job takes besides seven per layer: the lookup and the pooling.
const FIXED_PASSES: usize = 2;
pub(super) const PASSES_PER_LAYER: usize = 7;

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean = 0,
    Cls = 1,
    Max = 2,
}

/// What the kernels need to know of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The directory's name, which is what sentence-transformers models are known by.
    pub name: String,
    pub vocab: u32,
    pub hidden: u32,
    pub layers: u32,
    pub heads: u32,
    pub intermediate: u32,
    /// Tokens a text is truncated to, special tokens included.
    pub max_len: u32,
    pub eps: f32,
    pub pooling: Pooling,
    pub normalize: bool,
}

/// A loaded model: its configuration and its weights packed in [`Layout`] order (little-endian f32).
#[derive(Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub(super) weights: Arc<Vec<u8>>,
    pub(super) weights_hash: blake3::Hash,
    pub(super) tokenizer: Arc<tokenizers::Tokenizer>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("weights", &self.weights.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct BertConfig {
    vocab_size: u32,
    hidden_size: u32,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    intermediate_size: u32,
    max_position_embeddings: u32,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_position")]
    position_embedding_type: String,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_position() -> String {
    "absolute".into()
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: u32,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// Where each tensor sits in the packed weights, in f32 elements.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Layout {
    pub word: u64,
    pub position: u64,
    pub token_type: u64,
    pub embed_norm: [u64; 2],
    pub layers: Vec<LayerLayout>,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct LayerLayout {
    /// Query, key and value weights stacked as one [3H, H] matrix, and their biases as one [3H].
    pub qkv: [u64; 2],
    pub attn_out: [u64; 2],
    pub attn_norm: [u64; 2],
    pub ffn_in: [u64; 2],
    pub ffn_out: [u64; 2],
    pub ffn_norm: [u64; 2],
}

impl Layout {
    pub fn new(c: &ModelConfig) -> Layout {
        let (h, i) = (u64::from(c.hidden), u64::from(c.intermediate));
        let mut at = 0u64;
        let mut take = |n: u64| {
            let start = at;
            at += n;
            start
        };
        let word = take(u64::from(c.vocab) * h);
        let position = take(u64::from(c.max_len) * h);
        let token_type = take(h);
        let embed_norm = [take(h), take(h)];
        let layers = (0..c.layers)
            .map(|_| LayerLayout {
                qkv: [take(3 * h * h), take(3 * h)],
                attn_out: [take(h * h), take(h)],
                attn_norm: [take(h), take(h)],
                ffn_in: [take(i * h), take(i)],
                ffn_out: [take(h * i), take(h)],
                ffn_norm: [take(h), take(h)],
            })
            .collect();
        Layout {
            word,
            position,
            token_type,
            embed_norm,
            layers,
            total: at,
        }
    }
}

impl ModelConfig {
    /// Passes one embedding job takes with this model.
    pub fn passes(&self) -> usize {
        FIXED_PASSES + PASSES_PER_LAYER * self.layers as usize
    }

    pub fn head_dim(&self) -> u32 {
        self.hidden / self.heads.max(1)
    }

    /// Bytes of the packed weights.
    pub fn weight_bytes(&self) -> u64 {
        Layout::new(self).total * 4
    }

    /// Refuses a model the kernels or the job limits cannot take, naming what it breaks.
    pub fn check_fits(&self, limits: &JobLimits, storage_binding: u64) -> Result<(), EmbedError> {
        let too_large = |what: &str, value: String, limit: String| EmbedError::TooLarge {
            model: self.name.clone(),
            what: what.to_owned(),
            value,
            limit,
        };
        if self.passes() > limits.max_passes {
            return Err(too_large(
                "passes per job",
                format!("{} ({} layers)", self.passes(), self.layers),
                format!("{} passes a job", limits.max_passes),
            ));
        }
        let bytes = self.weight_bytes();
        if bytes > storage_binding {
            return Err(too_large(
                "weights",
                crate::job::bytes(bytes),
                format!(
                    "the storage-binding limit of {}",
                    crate::job::bytes(storage_binding)
                ),
            ));
        }
        if self.head_dim() > MAX_HEAD_DIM {
            return Err(too_large(
                "attention head size",
                self.head_dim().to_string(),
                MAX_HEAD_DIM.to_string(),
            ));
        }
        Ok(())
    }
}

impl Model {
    /// Loads the model in `dir`, refusing one that cannot fit `limits` or the default storage-binding
    /// limit an adapter offers (128 MiB).
    pub fn load(dir: &Path, limits: &JobLimits) -> Result<Model, EmbedError> {
        let config = read_config(dir)?;
        config.check_fits(limits, storage_binding_limit())?;
        let path = dir.join("model.safetensors");
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| EmbedError::Io {
            path: path.clone(),
            source,
        })?;
        let tensors = Tensors::parse(bytes, &file)?;
        let weights = pack(&config, &tensors, &file)?;
        let tokenizer = super::tokenize::load(&dir.join("tokenizer.json"), config.max_len)?;
        Ok(Model::from_parts(config, weights, tokenizer))
    }

    pub(super) fn from_parts(
        config: ModelConfig,
        weights: Vec<u8>,
        tokenizer: tokenizers::Tokenizer,
    ) -> Model {
        Model {
            config,
            weights_hash: blake3::hash(&weights),
            weights: Arc::new(weights),
            tokenizer: Arc::new(tokenizer),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The packed weights as f32 values (for the CPU reference).
    pub fn weights_f32(&self) -> Vec<f32> {
        self.weights
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// The storage-binding size wgpu grants on request everywhere (its downlevel default).
pub fn storage_binding_limit() -> u64 {
    wgpu::Limits::downlevel_defaults().max_storage_buffer_binding_size
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EmbedError::Config {
        file: path.to_owned(),
        message: e.to_string(),
    })
}

fn config_error(file: PathBuf, message: impl Into<String>) -> EmbedError {
    EmbedError::Config {
        file,
        message: message.into(),
    }
}

/// The configuration of the model in `dir`, from its `config.json` and sentence-transformers files.
pub fn read_config(dir: &Path) -> Result<ModelConfig, EmbedError> {
    let config_path = dir.join("config.json");
    let bert: BertConfig = read_json(&config_path)?;
    let unsupported = |what: String| config_error(config_path.clone(), what);
    if let Some(kind) = &bert.model_type
        && !matches!(kind.as_str(), "bert")
    {
        return Err(unsupported(format!(
            "model_type {kind:?}: only BERT models are supported"
        )));
    }
    if !matches!(bert.hidden_act.as_str(), "gelu" | "gelu_python") {
        return Err(unsupported(format!(
            "hidden_act {:?}: only gelu (erf) is supported",
            bert.hidden_act
        )));
    }
    if bert.position_embedding_type != "absolute" {
        return Err(unsupported(format!(
            "position_embedding_type {:?}: only absolute is supported",
            bert.position_embedding_type
        )));
    }
    if bert.num_attention_heads == 0 || !bert.hidden_size.is_multiple_of(bert.num_attention_heads) {
        return Err(unsupported(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            bert.hidden_size, bert.num_attention_heads
        )));
    }
    if [
        bert.vocab_size,
        bert.hidden_size,
        bert.intermediate_size,
        bert.num_hidden_layers,
    ]
    .contains(&0)
    {
        return Err(unsupported("sizes and layers must be above 0".into()));
    }
    let sbert: SentenceBertConfig = read_json(&dir.join("sentence_bert_config.json"))?;
    let max_len = sbert.max_seq_length.min(bert.max_position_embeddings);
    if max_len < 2 {
        return Err(config_error(
            dir.join("sentence_bert_config.json"),
            "max_seq_length must be at least 2",
        ));
    }
    let modules: Vec<ModuleEntry> = read_json(&dir.join("modules.json"))?;
    let pooling_dir = modules
        .iter()
        .find(|m| m.kind.ends_with(".Pooling"))
        .map(|m| m.path.clone())
        .ok_or_else(|| config_error(dir.join("modules.json"), "names no Pooling module"))?;
    let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
    let pooling_path = dir.join(pooling_dir).join("config.json");
    let pooling: PoolingConfig = read_json(&pooling_path)?;
    let pooling = match (
        pooling.pooling_mode_mean_tokens,
        pooling.pooling_mode_cls_token,
        pooling.pooling_mode_max_tokens,
        pooling.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false, false) => Pooling::Mean,
        (false, true, false, false) => Pooling::Cls,
        (false, false, true, false) => Pooling::Max,
        _ => {
            return Err(config_error(
                pooling_path,
                "exactly one of mean, cls or max pooling is supported",
            ));
        }
    };
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    Ok(ModelConfig {
        name,
        vocab: bert.vocab_size,
        hidden: bert.hidden_size,
        layers: bert.num_hidden_layers,
        heads: bert.num_attention_heads,
        intermediate: bert.intermediate_size,
        max_len,
        eps: bert.layer_norm_eps as f32,
        pooling,
        normalize,
    })
}

/// Packs the tensors in [`Layout`] order: q, k and v stacked, token type 0 only, positions up to
/// `max_len`.
pub(super) fn pack(c: &ModelConfig, t: &Tensors, file: &str) -> Result<Vec<u8>, EmbedError> {
    let (h, i) = (u64::from(c.hidden), u64::from(c.intermediate));
    let mut out: Vec<f32> = Vec::with_capacity(Layout::new(c).total as usize);
    out.extend(t.f32s(
        "embeddings.word_embeddings.weight",
        &[u64::from(c.vocab), h],
        file,
    )?);
    let positions = t.f32s_rows("embeddings.position_embeddings.weight", h, file)?;
    let rows = u64::from(c.max_len) * h;
    if (positions.len() as u64) < rows {
        return Err(EmbedError::Weights {
            file: file.to_owned(),
            message: format!(
                "fewer position embeddings than max_seq_length {}",
                c.max_len
            ),
        });
    }
    out.extend(&positions[..rows as usize]);
    let types = t.f32s_rows("embeddings.token_type_embeddings.weight", h, file)?;
    out.extend(&types[..h as usize]);
    out.extend(t.f32s("embeddings.LayerNorm.weight", &[h], file)?);
    out.extend(t.f32s("embeddings.LayerNorm.bias", &[h], file)?);
    for l in 0..c.layers {
        let p = format!("encoder.layer.{l}.");
        let get = |name: &str, shape: &[u64]| t.f32s(&format!("{p}{name}"), shape, file);
        for part in ["query", "key", "value"] {
            out.extend(get(&format!("attention.self.{part}.weight"), &[h, h])?);
        }
        for part in ["query", "key", "value"] {
            out.extend(get(&format!("attention.self.{part}.bias"), &[h])?);
        }
        out.extend(get("attention.output.dense.weight", &[h, h])?);
        out.extend(get("attention.output.dense.bias", &[h])?);
        out.extend(get("attention.output.LayerNorm.weight", &[h])?);
        out.extend(get("attention.output.LayerNorm.bias", &[h])?);
        out.extend(get("intermediate.dense.weight", &[i, h])?);
        out.extend(get("intermediate.dense.bias", &[i])?);
        out.extend(get("output.dense.weight", &[h, i])?);
        out.extend(get("output.dense.bias", &[h])?);
        out.extend(get("output.LayerNorm.weight", &[h])?);
        out.extend(get("output.LayerNorm.bias", &[h])?);
    }
    Ok(out.iter().flat_map(|v| v.to_le_bytes()).collect())
}

impl Tensors {
    /// A tensor of any number of rows of `width`.
    fn f32s_rows(&self, name: &str, width: u64, file: &str) -> Result<Vec<f32>, EmbedError> {
        let rows = self.rows(name, width).ok_or_else(|| EmbedError::Weights {
            file: file.to_owned(),
            message: format!("tensor {name}: missing or not rows of {width}"),
        })?;
        self.f32s(name, &[rows, width], file)
    }
}
