//! The WGSL of an embedding job, written out for one model: its sizes and weight offsets become constants,
//! and each layer gets its own entry points, so one job is a fixed list of passes over the same buffers
//! (the executor has no per-pass parameters). The source depends on the model only, never on the batch,
//! so a provider compiles it once and its pipeline cache serves every later batch.
//!
//! Kernels: embedding lookup with layer norm, tiled matmul with bias (and GELU or a residual add fused in),
//! attention over unpadded keys with an online softmax, layer norm, pooling with L2 normalisation.
//! Loops over a head's dimensions are unrolled: llvmpipe ends any loop after 65,535 iterations in all.

use std::fmt::Write;

use super::model::{Layout, ModelConfig, Pooling};
use crate::job::Pass;

/// Threads per workgroup for the row kernels (embedding, layer norm, pooling) and attention.
const ROW_THREADS: u32 = 64;
/// Output tile of the matmul: 64×64, 16×16 threads of 4×4 each.
const TILE: u32 = 64;

/// The job's buffers in binding order: (name, WGSL access).
pub(super) const BINDINGS: [(&str, &str); 9] = [
    ("weights", "read"),
    ("tokens", "read"),
    ("shape", "read"),
    ("hidden", "read_write"),
    ("qkv", "read_write"),
    ("context", "read_write"),
    ("ffn", "read_write"),
    ("sum", "read_write"),
    ("embeddings", "read_write"),
];

/// One matmul: which buffer it reads, which it writes, its width and depth, and what it does to each
/// result after the bias.
struct Matmul {
    name: &'static str,
    src: &'static str,
    dst: &'static str,
    n: &'static str,
    k: &'static str,
    epilogue: &'static str,
}

const MATMULS: [Matmul; 4] = [
    Matmul {
        name: "qkv",
        src: "hidden",
        dst: "qkv",
        n: "H3",
        k: "H",
        epilogue: "v",
    },
    Matmul {
        name: "attn_out",
        src: "context",
        dst: "sum",
        n: "H",
        k: "H",
        epilogue: "v + hidden[r * H + c]",
    },
    Matmul {
        name: "ffn_in",
        src: "hidden",
        dst: "ffn",
        n: "I",
        k: "H",
        epilogue: "gelu(v)",
    },
    Matmul {
        name: "ffn_out",
        src: "ffn",
        dst: "sum",
        n: "H",
        k: "I",
        epilogue: "v + hidden[r * H + c]",
    },
];

const COMMON: &str = r"
var<workgroup> reduce_buf: array<f32, 64>;
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

fn rows() -> u32 {
    return shape[0] * shape[1];
}

// The sum of `v` over the workgroup's 64 threads, given to all of them.
fn workgroup_sum(v: f32, t: u32) -> f32 {
    reduce_buf[t] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s >> 1u) {
        if (t < s) {
            reduce_buf[t] = reduce_buf[t] + reduce_buf[t + s];
        }
        workgroupBarrier();
    }
    let total = reduce_buf[0];
    workgroupBarrier();
    return total;
}

// Layer norm of row `row` of `sum` into `hidden`; each thread owns columns t, t + 64, ...
fn norm_row(row: u32, gamma: u32, beta: u32, t: u32) {
    let base = row * H;
    var s = 0.0;
    for (var j = t; j < H; j = j + 64u) {
        s = s + sum[base + j];
    }
    let mean = workgroup_sum(s, t) / f32(H);
    var q = 0.0;
    for (var j = t; j < H; j = j + 64u) {
        let d = sum[base + j] - mean;
        q = q + d * d;
    }
    let inv = inverseSqrt(workgroup_sum(q, t) / f32(H) + EPS);
    for (var j = t; j < H; j = j + 64u) {
        hidden[base + j] = (sum[base + j] - mean) * inv * weights[gamma + j] + weights[beta + j];
    }
}

// erf by Abramowitz and Stegun 7.1.26 (absolute error under 1.5e-7, below f32's resolution near 1).
fn erf(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return select(y, -y, x < 0.0);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
}

fn embed_row(row: u32, t: u32) {
    let token = min(tokens[row], VOCAB - 1u);
    let position = row % shape[1];
    for (var j = t; j < H; j = j + 64u) {
        sum[row * H + j] = weights[WORD + token * H + j] + weights[POSITION + position * H + j]
            + weights[TOKEN_TYPE + j];
    }
    norm_row(row, EMBED_NORM_G, EMBED_NORM_B, t);
}

@compute @workgroup_size(64)
fn embed(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    embed_row(wg.x, t);
}
";

/// The WGSL source of the embedding job for `config`. Every field of the configuration but its name is
/// one of the constants at its top (`LAYERS`, `MAX_LEN`, `POOLING`, `NORMALIZE` only for
/// [`config_of`]), so the configuration can be read back from a job.
pub(super) fn shader(config: &ModelConfig) -> String {
    let layout = Layout::new(config);
    let mut s = String::new();
    for (i, (name, access)) in BINDINGS.iter().enumerate() {
        let ty = if *name == "tokens" || *name == "shape" {
            "u32"
        } else {
            "f32"
        };
        let _ = writeln!(
            s,
            "@group(0) @binding({i}) var<storage, {access}> {name}: array<{ty}>;"
        );
    }
    let (h, d) = (config.hidden, config.head_dim());
    let _ = writeln!(
        s,
        "const H: u32 = {h}u;\nconst H3: u32 = {}u;\nconst I: u32 = {}u;\nconst HEADS: u32 = {}u;\n\
         const VOCAB: u32 = {}u;\nconst EPS: f32 = {:e};\nconst SCALE: f32 = {:e};\n\
         const WORD: u32 = {}u;\nconst POSITION: u32 = {}u;\nconst TOKEN_TYPE: u32 = {}u;\n\
         const EMBED_NORM_G: u32 = {}u;\nconst EMBED_NORM_B: u32 = {}u;\n\
         const LAYERS: u32 = {}u;\nconst MAX_LEN: u32 = {}u;\nconst POOLING: u32 = {}u;\nconst NORMALIZE: u32 = {}u;",
        3 * h,
        config.intermediate,
        config.heads,
        config.vocab,
        config.eps,
        1.0 / f64::from(d).sqrt(),
        layout.word,
        layout.position,
        layout.token_type,
        layout.embed_norm[0],
        layout.embed_norm[1],
        config.layers,
        config.max_len,
        config.pooling as u32,
        u32::from(config.normalize),
    );
    s.push_str(COMMON);
    for m in &MATMULS {
        s.push_str(&matmul(m));
    }
    s.push_str(&attention(d));
    s.push_str(&pool(config));
    for (l, layer) in layout.layers.iter().enumerate() {
        let mm = |name: &str, [w, b]: [u64; 2]| {
            format!(
                "@compute @workgroup_size(16, 16)\nfn l{l}_{name}(@builtin(workgroup_id) wg: vec3<u32>, \
                 @builtin(local_invocation_id) lid: vec3<u32>) {{\n    mm_{name}(wg, lid, {w}u, {b}u);\n}}\n"
            )
        };
        let norm = |name: &str, [g, b]: [u64; 2]| {
            format!(
                "@compute @workgroup_size(64)\nfn l{l}_{name}(@builtin(workgroup_id) wg: vec3<u32>, \
                 @builtin(local_invocation_index) t: u32) {{\n    norm_row(wg.x, {g}u, {b}u, t);\n}}\n"
            )
        };
        s.push_str(&mm("qkv", layer.qkv));
        let _ = writeln!(
            s,
            "@compute @workgroup_size(64)\nfn l{l}_attention(@builtin(global_invocation_id) id: vec3<u32>) {{\n    attention(id.x);\n}}"
        );
        s.push_str(&mm("attn_out", layer.attn_out));
        s.push_str(&norm("attn_norm", layer.attn_norm));
        s.push_str(&mm("ffn_in", layer.ffn_in));
        s.push_str(&mm("ffn_out", layer.ffn_out));
        s.push_str(&norm("ffn_norm", layer.ffn_norm));
    }
    s
}

fn matmul(m: &Matmul) -> String {
    let mut products = String::new();
    for i in 0..4 {
        let _ = writeln!(
            products,
            "            let a{i} = tile_a[(lid.y * 4u + {i}u) * 16u + kk];"
        );
        let _ = writeln!(
            products,
            "            let b{i} = tile_b[(lid.x * 4u + {i}u) * 16u + kk];"
        );
    }
    for i in 0..4 {
        for j in 0..4 {
            let _ = writeln!(
                products,
                "            acc[{}] = acc[{}] + a{i} * b{j};",
                i * 4 + j,
                i * 4 + j
            );
        }
    }
    let (name, src, dst, n, k, epilogue) = (m.name, m.src, m.dst, m.n, m.k, m.epilogue);
    format!(
        r"
// {dst} = {src} · Wᵀ + bias, then `{epilogue}`; W is [{n}, {k}] row-major at `w`.
fn mm_{name}(wg: vec3<u32>, lid: vec3<u32>, w: u32, bias: u32) {{
    let m = rows();
    let row0 = wg.y * {TILE}u;
    let col0 = wg.x * {TILE}u;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < {k}; k0 = k0 + 16u) {{
        for (var i = 0u; i < 4u; i = i + 1u) {{
            let e = tid + i * 256u;
            let r = e / 16u;
            let kk = k0 + e % 16u;
            var a = 0.0;
            if (row0 + r < m && kk < {k}) {{
                a = {src}[(row0 + r) * {k} + kk];
            }}
            tile_a[e] = a;
            var b = 0.0;
            if (col0 + r < {n} && kk < {k}) {{
                b = weights[w + (col0 + r) * {k} + kk];
            }}
            tile_b[e] = b;
        }}
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {{
{products}        }}
        workgroupBarrier();
    }}
    for (var i = 0u; i < 4u; i = i + 1u) {{
        for (var j = 0u; j < 4u; j = j + 1u) {{
            let r = row0 + lid.y * 4u + i;
            let c = col0 + lid.x * 4u + j;
            if (r < m && c < {n}) {{
                let v = acc[i * 4u + j] + weights[bias + c];
                {dst}[r * {n} + c] = {epilogue};
            }}
        }}
    }}
}}
"
    )
}

/// Attention for one (token, head) per thread: keys past the text's length (padding) are left out.
fn attention(d: u32) -> String {
    let lines = |f: &dyn Fn(u32) -> String| (0..d).map(f).collect::<Vec<_>>().join("\n");
    let load_q = lines(&|i| format!("    q[{i}] = qkv[qb + {i}u] * SCALE;"));
    let score = lines(&|i| format!("        s = s + q[{i}] * qkv[kb + {i}u];"));
    let accumulate =
        lines(&|i| format!("        acc[{i}] = acc[{i}] * corr + p * qkv[kb + H + {i}u];"));
    let store = lines(&|i| format!("    context[r * H + head * {d}u + {i}u] = acc[{i}] / l;"));
    format!(
        r"
fn attention(index: u32) {{
    let seq = shape[1];
    if (index >= rows() * HEADS) {{
        return;
    }}
    let r = index / HEADS;
    let head = index % HEADS;
    let b = r / seq;
    let len = min(shape[2u + b], seq);
    let qb = r * H3 + head * {d}u;
    var q: array<f32, {d}>;
    var acc: array<f32, {d}>;
{load_q}
    var m = -3.0e38;
    var l = 0.0;
    for (var j = 0u; j < len; j = j + 1u) {{
        let kb = (b * seq + j) * H3 + H + head * {d}u;
        var s = 0.0;
{score}
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * corr + p;
{accumulate}
        m = m_new;
    }}
    l = max(l, 1e-30);
{store}
}}
"
    )
}

fn pool(config: &ModelConfig) -> String {
    let (start, step, finish) = match config.pooling {
        Pooling::Mean => ("0.0", "v = v + x;", "v = v / f32(max(len, 1u));"),
        Pooling::Max => ("-3.0e38", "v = max(v, x);", ""),
        Pooling::Cls => ("0.0", "if (s == 0u) { v = x; }", ""),
    };
    let normalize = if config.normalize {
        "    let norm = max(sqrt(workgroup_sum(q, t)), 1e-12);
    for (var j = t; j < H; j = j + 64u) {
        embeddings[b * H + j] = embeddings[b * H + j] / norm;
    }"
    } else {
        ""
    };
    format!(
        r"
// One workgroup per text: its tokens (padding left out) pooled into one vector, then normalised.
@compute @workgroup_size(64)
fn pool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {{
    let b = wg.x;
    let seq = shape[1];
    let len = min(shape[2u + b], seq);
    var q = 0.0;
    for (var j = t; j < H; j = j + 64u) {{
        var v = {start};
        for (var s = 0u; s < len; s = s + 1u) {{
            let x = hidden[(b * seq + s) * H + j];
            {step}
        }}
        {finish}
        embeddings[b * H + j] = v;
        q = q + v * v;
    }}
{normalize}
}}
"
    )
}

/// The passes over a batch of `texts` texts padded to `seq` tokens.
pub(super) fn passes(config: &ModelConfig, texts: u32, seq: u32) -> Vec<Pass> {
    let rows = texts * seq;
    let pass = |entry: String, workgroups: [u32; 3]| Pass { entry, workgroups };
    let tiles = |n: u32| [n.div_ceil(TILE), rows.div_ceil(TILE), 1];
    let (h, i) = (config.hidden, config.intermediate);
    let mut passes = vec![pass("embed".into(), [rows, 1, 1])];
    for l in 0..config.layers {
        passes.push(pass(format!("l{l}_qkv"), tiles(3 * h)));
        passes.push(pass(
            format!("l{l}_attention"),
            [(rows * config.heads).div_ceil(ROW_THREADS), 1, 1],
        ));
        passes.push(pass(format!("l{l}_attn_out"), tiles(h)));
        passes.push(pass(format!("l{l}_attn_norm"), [rows, 1, 1]));
        passes.push(pass(format!("l{l}_ffn_in"), tiles(i)));
        passes.push(pass(format!("l{l}_ffn_out"), tiles(h)));
        passes.push(pass(format!("l{l}_ffn_norm"), [rows, 1, 1]));
    }
    passes.push(pass("pool".into(), [texts, 1, 1]));
    passes
}

/// The configuration a job's source was written for, named `name`: read from the constants at the top,
/// and only if the source is exactly what [`shader`] writes for it (so no other job passes for one).
pub(super) fn config_of(wgsl: &str, name: &str) -> Option<ModelConfig> {
    let constant = |key: &str| {
        let prefix = format!("const {key}: ");
        let line = wgsl.lines().find(|l| l.starts_with(&prefix))?;
        let value = line.split(" = ").nth(1)?.trim_end_matches(';');
        Some(value.trim_end_matches('u').to_owned())
    };
    let number = |key: &str| constant(key)?.parse::<u32>().ok();
    let config = ModelConfig {
        name: name.to_owned(),
        vocab: number("VOCAB")?,
        hidden: number("H")?,
        layers: number("LAYERS")?,
        heads: number("HEADS")?,
        intermediate: number("I")?,
        max_len: number("MAX_LEN")?,
        eps: constant("EPS")?.parse().ok()?,
        pooling: match number("POOLING")? {
            0 => Pooling::Mean,
            1 => Pooling::Cls,
            2 => Pooling::Max,
            _ => return None,
        },
        normalize: number("NORMALIZE")? == 1,
    };
    // Sizes a hostile job could give to make the pool's CPU work for nothing.
    let sane = config.heads > 0
        && config.hidden.is_multiple_of(config.heads)
        && config.layers <= 64
        && config.weight_bytes() <= 1 << 31;
    (sane && shader(&config) == wgsl).then_some(config)
}
