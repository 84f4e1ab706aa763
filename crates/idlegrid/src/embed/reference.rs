//! The same forward pass on the CPU in f64: what the kernels are tested against, and how a pool knows the
//! answer of an embedding canary without a GPU. Each kernel has its function here, over row-major slices.

use super::model::{Layout, Model, ModelConfig, Pooling};

/// Word, position and token-type embeddings summed for each token of one text (before the layer norm).
pub(super) fn embed_lookup(
    w: &[f32],
    layout: &Layout,
    c: &ModelConfig,
    tokens: &[u32],
) -> Vec<f64> {
    let h = c.hidden as usize;
    let mut out = Vec::with_capacity(tokens.len() * h);
    for (position, &token) in tokens.iter().enumerate() {
        let token = token.min(c.vocab - 1) as usize;
        for j in 0..h {
            out.push(
                f64::from(w[layout.word as usize + token * h + j])
                    + f64::from(w[layout.position as usize + position * h + j])
                    + f64::from(w[layout.token_type as usize + j]),
            );
        }
    }
    out
}

/// Each row of `x` (rows of `gamma.len()`) normalised, then scaled and shifted.
pub fn layer_norm(x: &[f64], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
    let h = gamma.len();
    x.chunks_exact(h)
        .flat_map(|row| {
            let mean = row.iter().sum::<f64>() / h as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
            let inv = 1.0 / (var + eps).sqrt();
            row.iter()
                .enumerate()
                .map(move |(j, v)| (v - mean) * inv * f64::from(gamma[j]) + f64::from(beta[j]))
        })
        .collect()
}

/// `x · Wᵀ + bias` with `W` stored [n, k] row-major (PyTorch's layout), `n = bias.len()`.
pub fn linear(x: &[f64], weight: &[f32], bias: &[f32]) -> Vec<f64> {
    let n = bias.len();
    let k = weight.len() / n;
    x.chunks_exact(k)
        .flat_map(|row| {
            (0..n).map(move |o| {
                let w = &weight[o * k..(o + 1) * k];
                row.iter()
                    .zip(w)
                    .map(|(a, b)| a * f64::from(*b))
                    .sum::<f64>()
                    + f64::from(bias[o])
            })
        })
        .collect()
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Self-attention over one text's `len` tokens: `qkv` holds rows of [q | k | v], each `hidden` wide.
pub fn attention(qkv: &[f64], len: usize, hidden: usize, heads: usize) -> Vec<f64> {
    let d = hidden / heads;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0; len * hidden];
    for head in 0..heads {
        for i in 0..len {
            let q = &qkv[i * 3 * hidden + head * d..][..d];
            let scores: Vec<f64> = (0..len)
                .map(|j| {
                    let k = &qkv[j * 3 * hidden + hidden + head * d..][..d];
                    q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for (j, p) in weights.iter().enumerate() {
                let v = &qkv[j * 3 * hidden + 2 * hidden + head * d..][..d];
                for (e, x) in v.iter().enumerate() {
                    out[i * hidden + head * d + e] += p / total * x;
                }
            }
        }
    }
    out
}

/// One text's token rows pooled into one vector.
pub fn pool(x: &[f64], hidden: usize, pooling: Pooling) -> Vec<f64> {
    let rows: Vec<&[f64]> = x.chunks_exact(hidden).collect();
    (0..hidden)
        .map(|j| match pooling {
            Pooling::Mean => rows.iter().map(|r| r[j]).sum::<f64>() / rows.len().max(1) as f64,
            Pooling::Max => rows.iter().map(|r| r[j]).fold(f64::NEG_INFINITY, f64::max),
            Pooling::Cls => rows.first().map_or(0.0, |r| r[j]),
        })
        .collect()
}

pub fn l2_normalize(v: &[f64]) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

/// One text's vector: the whole model on the CPU, in f64, over the text's own tokens (no padding).
pub fn embed_text(model: &Model, weights: &[f32], tokens: &[u32]) -> Vec<f64> {
    embed_tokens(&model.config, weights, tokens)
}

/// [`embed_text`] for a model known by its configuration and packed weights.
pub fn embed_tokens(c: &ModelConfig, weights: &[f32], tokens: &[u32]) -> Vec<f64> {
    let layout = Layout::new(c);
    let h = c.hidden as usize;
    let eps = f64::from(c.eps);
    let slice = |start: u64, len: u64| &weights[start as usize..(start + len) as usize];
    let hu = u64::from(c.hidden);
    let iu = u64::from(c.intermediate);
    let mut x = layer_norm(
        &embed_lookup(weights, &layout, c, tokens),
        slice(layout.embed_norm[0], hu),
        slice(layout.embed_norm[1], hu),
        eps,
    );
    for l in &layout.layers {
        let qkv = linear(&x, slice(l.qkv[0], 3 * hu * hu), slice(l.qkv[1], 3 * hu));
        let context = attention(&qkv, tokens.len(), h, c.heads as usize);
        let attn = linear(
            &context,
            slice(l.attn_out[0], hu * hu),
            slice(l.attn_out[1], hu),
        );
        x = layer_norm(
            &add(&attn, &x),
            slice(l.attn_norm[0], hu),
            slice(l.attn_norm[1], hu),
            eps,
        );
        let inner: Vec<f64> = linear(&x, slice(l.ffn_in[0], iu * hu), slice(l.ffn_in[1], iu))
            .into_iter()
            .map(gelu)
            .collect();
        let ffn = linear(
            &inner,
            slice(l.ffn_out[0], hu * iu),
            slice(l.ffn_out[1], hu),
        );
        x = layer_norm(
            &add(&ffn, &x),
            slice(l.ffn_norm[0], hu),
            slice(l.ffn_norm[1], hu),
            eps,
        );
    }
    let pooled = pool(&x, h, c.pooling);
    if c.normalize {
        l2_normalize(&pooled)
    } else {
        pooled
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb).max(f64::MIN_POSITIVE)
}
