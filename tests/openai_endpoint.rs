//! `idlegrid serve` driven by the official `openai` Python client (installed by ./scripts/setup into
//! .tools/python), exactly as a developer would: one string, a batch, base64, the models list, and every
//! error status: 400, 401 and 404 (tests/openai/client_checks.py), 503 with no provider connected to the
//! pool, 504 past the deadline. With the tiny random model: llvmpipe on two cores is slow.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use idlegrid::embed::{Model, TinySpec, reference, write_tiny_model};
use idlegrid::job::JobLimits;
use serde_json::Value;

use crate::support::repo_root;
use crate::support::{Process, idlegrid, pool_for, text};

fn python() -> Option<PathBuf> {
    let python = repo_root().join(".tools/python/bin/python");
    if python.is_file() {
        Some(python)
    } else {
        // ./scripts/setup installs it; without it there is no official client to drive the endpoint.
        eprintln!(
            "skipped: {} is missing (run ./scripts/setup)",
            python.display()
        );
        None
    }
}

/// `idlegrid serve` on a free port; returns it with its base URL.
fn start_serve(args: &[&str]) -> (Process, String) {
    let mut child = idlegrid()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .trim()
        .to_owned();
    (Process(child), url)
}

/// Runs the checks script in `mode`; its stdout as JSON, or a failed test with its stderr.
fn client_checks(python: &Path, mode: &str, url: &str, key: &str, model: &str) -> Value {
    let output = Command::new(python)
        .arg(repo_root().join("tests/openai/client_checks.py"))
        .args([mode, url, key, model])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn tiny(dir: &Path) -> (PathBuf, Model) {
    let path = dir.join("model");
    write_tiny_model(&path, TinySpec::default()).unwrap();
    let model = Model::load(&path, &JobLimits::default()).unwrap();
    (path, model)
}

#[test]
fn the_openai_client_gets_embeddings_and_every_error_it_should() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, model) = tiny(dir.path());
    std::fs::write(dir.path().join("key"), "sk-idlegrid-test\n").unwrap();
    let (_serve, url) = start_serve(&[
        "--local",
        "--model",
        text(&model_dir),
        "--api-key-file",
        text(&dir.path().join("key")),
    ]);
    let result = client_checks(&python, "main", &url, "sk-idlegrid-test", model.name());
    let batch = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    .map(String::from);
    let tokens = model.tokenize(&batch).unwrap();
    assert_eq!(
        result["prompt_tokens"],
        tokens.iter().map(Vec::len).sum::<usize>()
    );
    let weights = model.weights_f32();
    for (i, vector) in result["batch"].as_array().unwrap().iter().enumerate() {
        let vector: Vec<f64> = vector
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let cosine = reference::cosine(
            &vector,
            &reference::embed_text(&model, &weights, &tokens[i]),
        );
        assert!(cosine >= 0.99999, "text {i}: cosine {cosine}");
    }
}

#[test]
fn no_provider_is_a_503_and_a_late_answer_a_504() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, model) = tiny(dir.path());
    let submitter = dir.path().join("submitter");
    let (_pool, ticket) = pool_for(&dir.path().join("pool"), &submitter, &[]);
    // The 503 comes from the pool's typed blocker (no provider connected); without it the request
    // would wait for this deadline and end as a 504.
    let (_through_pool, url) = start_serve(&[
        "--pool",
        &ticket,
        "--model",
        text(&model_dir),
        "--data",
        text(&submitter),
        "--request-timeout",
        "60",
    ]);
    let unavailable = client_checks(&python, "unavailable", &url, "unused", model.name());
    assert!(
        unavailable["message"]
            .as_str()
            .unwrap()
            .contains("no provider is connected"),
        "{unavailable}"
    );
    // 2,048 texts of 50 tokens cannot be done in a second on this machine's GPU.
    let (_local, url) = start_serve(&[
        "--local",
        "--model",
        text(&model_dir),
        "--request-timeout",
        "1",
    ]);
    let late = client_checks(&python, "timeout", &url, "unused", model.name());
    assert_eq!(late["status"], 504);
}
