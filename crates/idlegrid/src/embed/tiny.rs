//! A tiny random BERT written out as a sentence-transformers model directory (config, weights, tokenizer,
//! pooling), so tests, system tests and benchmarks run the whole path without downloading a model.

use std::path::Path;

use serde_json::json;

use super::model::{ModelConfig, Pooling, pack};
use super::safetensors;

/// Sizes of a tiny model: small enough for a software GPU, with every part a real model has.
#[derive(Clone, Copy, Debug)]
pub struct TinySpec {
    pub hidden: u32,
    pub layers: u32,
    pub heads: u32,
    pub intermediate: u32,
    pub max_len: u32,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        TinySpec {
            hidden: 64,
            layers: 2,
            heads: 4,
            intermediate: 128,
            max_len: 64,
            seed: 1,
        }
    }
}

/// A small seeded generator (SplitMix64): the same seed always makes the same model.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    pub fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((unit * 2.0 - 1.0) * f64::from(scale)) as f32
    }

    pub fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}

/// Words of the tiny vocabulary besides the special tokens, single letters and their continuations.
const WORDS: &[&str] = &[
    "the", "a", "is", "of", "and", "to", "in", "it", "weather", "lovely", "today", "sunny",
    "outside", "he", "drove", "stadium", "so", "cat", "dog", "sat", "on", "mat", "text", "number",
    "idle", "grid",
];

/// The tiny vocabulary: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, then letters, continuations,
/// digits, punctuation and words.
fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    for c in ('a'..='z').chain('0'..='9') {
        v.push(c.to_string());
        v.push(format!("##{c}"));
    }
    v.extend([".", ",", "!", "?", "'", "-"].map(String::from));
    v.extend(WORDS.iter().map(|w| (*w).to_owned()));
    v
}

fn tokenizer_json(vocab: &[String]) -> serde_json::Value {
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), json!(i)))
        .collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "special": true, "content": content, "single_word": false,
               "lstrip": false, "rstrip": false, "normalized": false})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]"), special(4, "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids}
    })
}

/// Writes a random model of `spec` into `dir` (created if missing), laid out as sentence-transformers
/// lays out all-MiniLM-L6-v2.
pub fn write_tiny_model(dir: &Path, spec: TinySpec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("1_Pooling"))?;
    let vocab = vocab();
    let config = json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": spec.hidden, "intermediate_size": spec.intermediate,
        "num_attention_heads": spec.heads, "num_hidden_layers": spec.layers,
        "max_position_embeddings": spec.max_len * 2, "vocab_size": vocab.len(),
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
        "pad_token_id": 0
    });
    let write =
        |name: &str, value: serde_json::Value| std::fs::write(dir.join(name), value.to_string());
    write("config.json", config)?;
    write(
        "sentence_bert_config.json",
        json!({"max_seq_length": spec.max_len, "do_lower_case": false}),
    )?;
    write(
        "modules.json",
        json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]),
    )?;
    write(
        "1_Pooling/config.json",
        json!({"word_embedding_dimension": spec.hidden, "pooling_mode_mean_tokens": true}),
    )?;
    write("tokenizer.json", tokenizer_json(&vocab))?;
    let tensors = tiny_tensors(spec, vocab.len() as u64);
    std::fs::write(dir.join("model.safetensors"), safetensors::write(&tensors))
}

/// The tiny model's random tensors, named and shaped as a BERT export names and shapes them.
fn tiny_tensors(spec: TinySpec, vocab_len: u64) -> Vec<(String, Vec<u64>, Vec<f32>)> {
    let (h, i) = (u64::from(spec.hidden), u64::from(spec.intermediate));
    let mut rng = Seeded::new(spec.seed);
    let mut tensors = Vec::new();
    let mut add =
        |name: String, shape: Vec<u64>, values: Vec<f32>| tensors.push((name, shape, values));
    let mut random =
        |shape: &[u64], scale: f32| rng.values(shape.iter().product::<u64>() as usize, scale);
    let norm = |rng: &mut dyn FnMut(&[u64], f32) -> Vec<f32>| -> (Vec<f32>, Vec<f32>) {
        (
            rng(&[h], 0.1).iter().map(|v| 1.0 + v).collect(),
            rng(&[h], 0.1),
        )
    };
    let positions = u64::from(spec.max_len) * 2;
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![vocab_len, h],
        random(&[vocab_len, h], 1.0),
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![positions, h],
        random(&[positions, h], 0.5),
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, h],
        random(&[2, h], 0.5),
    );
    let (g, b) = norm(&mut random);
    add("embeddings.LayerNorm.weight".into(), vec![h], g);
    add("embeddings.LayerNorm.bias".into(), vec![h], b);
    let scale_h = 1.0 / (h as f32).sqrt();
    let scale_i = 1.0 / (i as f32).sqrt();
    for l in 0..spec.layers {
        let p = format!("encoder.layer.{l}.");
        for part in ["query", "key", "value"] {
            add(
                format!("{p}attention.self.{part}.weight"),
                vec![h, h],
                random(&[h, h], 2.0 * scale_h),
            );
            add(
                format!("{p}attention.self.{part}.bias"),
                vec![h],
                random(&[h], 0.1),
            );
        }
        add(
            format!("{p}attention.output.dense.weight"),
            vec![h, h],
            random(&[h, h], scale_h),
        );
        add(
            format!("{p}attention.output.dense.bias"),
            vec![h],
            random(&[h], 0.1),
        );
        let (g, b) = norm(&mut random);
        add(format!("{p}attention.output.LayerNorm.weight"), vec![h], g);
        add(format!("{p}attention.output.LayerNorm.bias"), vec![h], b);
        add(
            format!("{p}intermediate.dense.weight"),
            vec![i, h],
            random(&[i, h], 2.0 * scale_h),
        );
        add(
            format!("{p}intermediate.dense.bias"),
            vec![i],
            random(&[i], 0.1),
        );
        add(
            format!("{p}output.dense.weight"),
            vec![h, i],
            random(&[h, i], scale_i),
        );
        add(format!("{p}output.dense.bias"), vec![h], random(&[h], 0.1));
        let (g, b) = norm(&mut random);
        add(format!("{p}output.LayerNorm.weight"), vec![h], g);
        add(format!("{p}output.LayerNorm.bias"), vec![h], b);
    }
    tensors
}

/// The tiny model in memory: its configuration (named `name`) and packed weights, for work that needs
/// no tokenizer (the local pool's sample embedding job).
pub fn tiny_weights(spec: TinySpec, name: &str) -> (ModelConfig, Vec<u8>) {
    let vocab = vocab().len() as u32;
    let config = ModelConfig {
        name: name.to_owned(),
        vocab,
        hidden: spec.hidden,
        layers: spec.layers,
        heads: spec.heads,
        intermediate: spec.intermediate,
        max_len: spec.max_len,
        eps: 1e-12,
        pooling: Pooling::Mean,
        normalize: true,
    };
    let bytes = safetensors::write(&tiny_tensors(spec, u64::from(vocab)));
    let packed = safetensors::Tensors::parse(bytes, name)
        .and_then(|tensors| pack(&config, &tensors, name))
        .unwrap_or_default();
    (config, packed)
}

/// What the tiny random model is called in sample work and when it stands in for an installed model.
pub const TINY_MODEL: &str = "tiny-bert";

/// An embedding job of `texts` random token lists on the tiny model, weights inline: sample work.
pub fn sample_embedding_job(texts: usize, seed: u64) -> crate::job::Job {
    let spec = TinySpec {
        seed,
        ..TinySpec::default()
    };
    let (config, weights) = tiny_weights(spec, TINY_MODEL);
    let mut rng = Seeded::new(seed);
    let tokens = (0..texts)
        .map(|_| {
            let len = 3 + (rng.next_u64() % 20) as usize;
            (0..len)
                .map(|_| (rng.next_u64() % u64::from(config.vocab)) as u32)
                .collect()
        })
        .collect();
    let batch = super::Batch {
        indices: (0..texts).collect(),
        tokens,
    };
    inline_job(&batch, &config, weights)
}

/// `batch` as one job on `config` with `weights` inline, as a job file holds its inputs.
pub(super) fn inline_job(
    batch: &super::Batch,
    config: &ModelConfig,
    weights: Vec<u8>,
) -> crate::job::Job {
    let hash = blake3::hash(&weights);
    let manifest = batch.job_for(config, hash, weights.len() as u64, 1);
    // This cannot fail: the hash is the weights' own.
    manifest
        .clone()
        .with_blobs(|h| (*h == hash).then(|| weights.clone()))
        .unwrap_or(manifest)
}
