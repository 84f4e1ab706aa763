//! `idlegrid embed` through a real pool with two providers, as separate processes on 127.0.0.1, with the
//! tiny random model (llvmpipe on two cores is slow): a thousand texts come back complete, in order and
//! verified; a provider killed mid-request loses nothing.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use idlegrid::embed::{Model, TinySpec, reference, write_tiny_model};
use idlegrid::job::JobLimits;
use serde_json::Value;

use crate::support::{
    Process, earnings, idlegrid, nix_kill, pool_for, public_key, start_pool, start_provider, text,
};

/// `count` texts of mixed length (1 to 40 words) from the tiny model's words, deterministically.
fn texts(count: usize) -> Vec<String> {
    const WORDS: [&str; 12] = [
        "the", "weather", "is", "lovely", "today", "cat", "sat", "on", "mat", "grid", "idle", "dog",
    ];
    (0..count)
        .map(|i| {
            let words = 1 + (i * 7919) % 40;
            (0..words)
                .map(|w| WORDS[(i * 31 + w * 17) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Runs `idlegrid embed --pool` on `input` and returns its output once it ends.
fn embed_through(
    ticket: &str,
    model: &Path,
    input: &Path,
    out: &Path,
    data: &Path,
    extra: &[&str],
) -> std::process::Child {
    idlegrid()
        .args([
            "embed",
            "--pool",
            ticket,
            "--model",
            text(model),
            "--input",
            text(input),
        ])
        .args(["--out", text(out), "--data", text(data), "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: std::process::Child, limit: Duration) -> Output {
    let mut child = child;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("embed still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Every line of `out` is `{"index": i, "embedding": [...]}` in order, each vector the f64 CPU
/// forward pass's to a cosine of 0.99999.
fn check_vectors(out: &Path, model: &Model, input: &[String]) {
    let lines: Vec<Value> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), input.len(), "one line per text");
    let weights = model.weights_f32();
    let tokens = model.tokenize(input).unwrap();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i, "line {i} in order");
        let vector: Vec<f64> = line["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let cpu = reference::embed_text(model, &weights, &tokens[i]);
        let cosine = reference::cosine(&vector, &cpu);
        assert!(
            cosine >= 0.99999,
            "text {i}: cosine {cosine} to the CPU's vector"
        );
    }
}

struct Setup {
    dir: tempfile::TempDir,
    model: Model,
    input: Vec<String>,
}

fn setup(count: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(&dir.path().join("model"), TinySpec::default()).unwrap();
    let model = Model::load(&dir.path().join("model"), &JobLimits::default()).unwrap();
    let input = texts(count);
    std::fs::write(dir.path().join("texts.txt"), input.join("\n")).unwrap();
    Setup { dir, model, input }
}

#[test]
fn a_thousand_texts_come_back_complete_in_order_and_verified_by_two_providers() {
    let s = setup(1000);
    let d = s.dir.path();
    let submitter = d.join("submitter");
    // Two replicas a job: every job is run by both providers and their vectors compared by cosine.
    let allowed = public_key(&submitter);
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--allow",
        &allowed,
        "--replicas-for-new",
        "2",
        "--canary-rate",
        "0",
    ];
    let (_pool, ticket) = start_pool(&d.join("pool"), &args);
    let providers = [d.join("provider0"), d.join("provider1")];
    let _running: Vec<Process> = providers
        .iter()
        .map(|p| start_provider(&ticket, p))
        .collect();
    let child = embed_through(
        &ticket,
        &d.join("model"),
        &d.join("texts.txt"),
        &d.join("out.jsonl"),
        &submitter,
        &[],
    );
    let output = finished(child, Duration::from_secs(300));
    assert!(
        output.status.success(),
        "embed failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["texts"], 1000);
    check_vectors(&d.join("out.jsonl"), &s.model, &s.input);
    // Verified: every job paid, which the pool does only once its results are verified. New providers'
    // results are replicated and compared by cosine until they have a record; then one suffices.
    let jobs = s
        .model
        .batches(&s.input, idlegrid::embed::DEFAULT_TOKEN_BUDGET)
        .unwrap()
        .len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut paid_jobs = std::collections::HashSet::new();
        let mut per_provider = Vec::new();
        for p in &providers {
            let ledger = earnings(p);
            let receipts = ledger["receipts"].as_array().unwrap();
            per_provider.push(receipts.len());
            paid_jobs.extend(
                receipts
                    .iter()
                    .map(|r| r["job"].as_str().unwrap().to_owned()),
            );
        }
        if paid_jobs.len() == jobs && per_provider.iter().all(|n| *n > 0) {
            // Replicated while neither provider was trusted: both were paid for the same jobs.
            assert!(
                per_provider.iter().sum::<usize>() > jobs,
                "{per_provider:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {jobs} jobs paid, receipts {per_provider:?}",
            paid_jobs.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_provider_killed_mid_request_loses_nothing() {
    let s = setup(300);
    let d = s.dir.path();
    let submitter = d.join("submitter");
    // A lease of a killed provider is handed to the other after 5 s.
    let (_pool, ticket) = pool_for(&d.join("pool"), &submitter, &["--lease-secs", "5"]);
    let mut first = start_provider(&ticket, &d.join("provider0"));
    let _second = start_provider(&ticket, &d.join("provider1"));
    // Small jobs, so there are many and the killed provider holds some when it dies.
    let child = embed_through(
        &ticket,
        &d.join("model"),
        &d.join("texts.txt"),
        &d.join("out.jsonl"),
        &submitter,
        &["--job-tokens", "128"],
    );
    let log = d.join("provider0.log");
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("running")
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "provider0 never took a lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix_kill(&first.0);
    let _ = first.0.wait();
    let output = finished(child, Duration::from_secs(300));
    assert!(
        output.status.success(),
        "embed failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    check_vectors(&d.join("out.jsonl"), &s.model, &s.input);
}
