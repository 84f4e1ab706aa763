//! Embedding throughput (run with `cargo bench -p idlegrid --bench embed`): 1,000 sentences of mixed
//! length with all-MiniLM-L6-v2 (from ./scripts/setup; `--tiny` uses the tiny random model instead),
//! texts/s and tokens/s
//!
//! 1. on this machine's GPU through `Model::embed_local` (the engine's path under `embed --local`);
//! 2. through a pool with one provider, every role in this process on 127.0.0.1 (the path of
//!    `embed --pool`: jobs submitted, weights fetched once into the provider's cache, results verified);
//! 3. the f64 CPU forward pass (`embed::reference`) on a sample of the same texts, as the ratio of the
//!    GPU path to what a CPU does without a GPU framework (sentence-transformers needs torch, several
//!    GB, and onnxruntime an ONNX export made with torch: neither can be had here).
//!
//! Local and pool runs alternate, `--runs N` each (default 2); medians are printed; `--texts N` changes
//! the count. `--quick` (or running
//! without `--bench`, as `cargo test --benches` does) uses 50 texts and the tiny model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use idlegrid::client::Client;
use idlegrid::embed::{DEFAULT_TOKEN_BUDGET, Model, TinySpec, reference, write_tiny_model};
use idlegrid::gpu::{AdapterChoice, Executor};
use idlegrid::job::JobLimits;
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig};
use idlegrid::protocol::{self, Bind};
use idlegrid::provider::{Provider, ProviderConfig};
use iroh::SecretKey;
use tokio::sync::watch;

const WORDS: &[&str] = &[
    "the",
    "weather",
    "is",
    "lovely",
    "today",
    "it's",
    "so",
    "sunny",
    "outside",
    "he",
    "drove",
    "to",
    "stadium",
    "a",
    "cat",
    "sat",
    "on",
    "mat",
    "people",
    "share",
    "their",
    "computers",
    "while",
    "they",
    "sleep",
    "and",
    "graphics",
    "cards",
    "compute",
    "sentence",
    "embeddings",
    "for",
    "developers",
    "who",
    "search",
    "documents",
    "by",
    "meaning",
    "rather",
    "than",
    "keywords",
    "quickly",
    "cheaply",
    "with",
];

/// `count` sentences of 2 to 30 words, deterministically mixed.
fn sentences(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let words = 2 + (i * 7919 + i * i) % 29;
            let mut s: Vec<&str> = (0..words)
                .map(|w| WORDS[(i * 31 + w * 17 + w * w) % WORDS.len()])
                .collect();
            s.push(".");
            s.join(" ")
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct OnePool {
    _dir: tempfile::TempDir,
    pool: idlegrid::pool::RunningPool,
    client: Client,
    stop: watch::Sender<bool>,
    _verdict: watch::Sender<idlegrid::idle::Verdict>,
    provider: tokio::task::JoinHandle<()>,
}

async fn one_pool() -> OnePool {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let config = PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            trusted_at: 10,
        },
        canary_rate: 0.0,
        retry_after: Duration::from_millis(25),
        ..PoolConfig::default()
    };
    let loopback = Bind::At("127.0.0.1:0".parse().unwrap());
    let pool = Pool::open(&dir.path().join("pool"), owner.clone(), config)
        .unwrap()
        .serve(loopback)
        .await
        .unwrap();
    let ticket = pool.ticket();
    let (stop, stop_rx) = watch::channel(false);
    let (verdict, verdict_rx) = watch::channel(idlegrid::idle::Verdict::RUN);
    let provider = Provider::new(
        SecretKey::generate(),
        protocol::ticket_addr(&ticket).unwrap(),
        &dir.path().join("provider"),
        Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter"),
        ProviderConfig {
            slots: 1,
            ..ProviderConfig::default()
        },
    )
    .unwrap();
    let provider = tokio::spawn(async move { provider.run(verdict_rx, stop_rx).await.unwrap() });
    let client = Client::connect(&ticket, owner).await.unwrap();
    OnePool {
        _dir: dir,
        pool,
        client,
        stop,
        _verdict: verdict,
        provider,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let tiny = quick || args.iter().any(|a| a == "--tiny");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 1 } else { 2 });
    let dir = tempfile::tempdir().unwrap();
    let model_dir = if tiny {
        write_tiny_model(dir.path(), TinySpec::default()).unwrap();
        dir.path().to_path_buf()
    } else {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/models/all-MiniLM-L6-v2");
        assert!(
            dir.join("model.safetensors").exists(),
            "run ./scripts/setup first (or pass --tiny)"
        );
        dir
    };
    let model = Model::load(&model_dir, &JobLimits::default()).unwrap();
    let count = args
        .iter()
        .position(|a| a == "--texts")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 50 } else { 1000 });
    let texts = sentences(count);
    let tokens: u64 = model
        .tokenize(&texts)
        .unwrap()
        .iter()
        .map(|t| t.len() as u64)
        .sum();
    let padded: u64 = model
        .batches(&texts, DEFAULT_TOKEN_BUDGET)
        .unwrap()
        .iter()
        .map(|b| b.padded_tokens())
        .sum();
    let jobs = model.batches(&texts, DEFAULT_TOKEN_BUDGET).unwrap().len();
    println!(
        "{} texts, {tokens} tokens ({padded} with padding), {jobs} jobs of at most {DEFAULT_TOKEN_BUDGET} tokens, model {}",
        texts.len(),
        model.name()
    );

    let mut executor = Executor::new(&AdapterChoice::from_flag_or_env(None)).unwrap();
    println!("adapter: {}", executor.adapter_info().name);
    // Warm-up: shader compiled, pipelines built.
    model
        .embed_local(&mut executor, &texts[..4], DEFAULT_TOKEN_BUDGET)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let grid = runtime.block_on(one_pool());
    runtime
        .block_on(
            grid.client
                .embed(&model, &texts[..4], DEFAULT_TOKEN_BUDGET, 1, |_| {}),
        )
        .unwrap();

    let (mut local, mut pooled) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let started = Instant::now();
        let out = model
            .embed_local(&mut executor, &texts, DEFAULT_TOKEN_BUDGET)
            .unwrap();
        local.push(started.elapsed());
        let started = Instant::now();
        let through = runtime
            .block_on(
                grid.client
                    .embed(&model, &texts, DEFAULT_TOKEN_BUDGET, 1, |_| {}),
            )
            .unwrap();
        pooled.push(started.elapsed());
        assert_eq!(out.vectors.len(), through.vectors.len());
        println!(
            "run {run}: local {:.2} s, pool {:.2} s",
            local[run].as_secs_f64(),
            pooled[run].as_secs_f64()
        );
    }
    runtime.block_on(async {
        let _ = grid.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), grid.provider).await;
        grid.client.close().await;
        grid.pool.shutdown().await;
    });

    let sample = if quick { 5 } else { 20 };
    let weights = model.weights_f32();
    let sample_ids = model.tokenize(&texts[..sample]).unwrap();
    let started = Instant::now();
    for ids in &sample_ids {
        std::hint::black_box(reference::embed_text(&model, &weights, ids));
    }
    let cpu = started.elapsed();
    let sample_tokens: u64 = sample_ids.iter().map(|t| t.len() as u64).sum();

    let (local, pooled) = (median(local), median(pooled));
    let rate = |d: Duration, n: u64| n as f64 / d.as_secs_f64();
    println!("\n| path | time | texts/s | tokens/s |\n|---|---|---|---|");
    for (name, time, n_texts, n_tokens) in [
        (
            "GPU, local (Model::embed_local)",
            local,
            texts.len() as u64,
            tokens,
        ),
        (
            "GPU, through a one-provider pool",
            pooled,
            texts.len() as u64,
            tokens,
        ),
        (
            "CPU, f64 reference (sample)",
            cpu,
            sample as u64,
            sample_tokens,
        ),
    ] {
        println!(
            "| {name} | {:.2} s | {:.1} | {:.0} |",
            time.as_secs_f64(),
            rate(time, n_texts),
            rate(time, n_tokens)
        );
    }
    println!(
        "\npool overhead: {:.1} % (pool time / local time − 1); GPU path vs f64 CPU: {:.1}× the tokens/s",
        (pooled.as_secs_f64() / local.as_secs_f64() - 1.0) * 100.0,
        rate(local, tokens) / rate(cpu, sample_tokens)
    );
}
