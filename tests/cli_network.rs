//! The network commands as separate processes, the way people run them: `idlegrid pool`, `provide`,
//! `submit` and `earnings`, on 127.0.0.1 — including a pool killed with SIGKILL mid-batch and started
//! again on the same data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

fn micros(amount: &Value) -> u64 {
    amount
        .as_str()
        .unwrap()
        .parse::<idlegrid::Amount>()
        .unwrap()
        .micros()
}

#[test]
fn a_pool_killed_mid_batch_restarts_and_every_job_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("pool");
    let submitter_dir = dir.path().join("submitter");
    let submitter = public_key(&submitter_dir);
    let bind = format!("127.0.0.1:{}", free_port());
    let pool_args = [
        "--bind",
        &bind,
        "--allow",
        &submitter,
        "--replicas-for-new",
        "1",
        "--canary-rate",
        "0",
        "--payout-threshold",
        "0.0003",
        // A lease whose offer died with the pool is handed out again after this.
        "--lease-secs",
        "15",
    ];
    let (pool, ticket) = start_pool(&pool_dir, &pool_args);
    let provider_dirs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("provider{i}")))
        .collect();
    let _providers: Vec<Process> = provider_dirs
        .iter()
        .map(|d| start_provider(&ticket, d))
        .collect();

    const JOBS: usize = 8;
    let mut submits: Vec<(PathBuf, Child)> = (0..JOBS)
        .map(|i| {
            let out = dir.path().join(format!("out{i}"));
            let child = idlegrid()
                .args(["submit", "examples/jobs/matmul/job.toml", "--replicas", "1"])
                .args([
                    "--pool",
                    &ticket,
                    "--out",
                    text(&out),
                    "--data",
                    text(&submitter_dir),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();

    // Kill the pool as soon as the first job is through, while the others are in flight.
    let started = Instant::now();
    while !submits
        .iter_mut()
        .any(|(_, c)| c.try_wait().unwrap().is_some())
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no job finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut pool = pool;
    nix_kill(&pool.0);
    let _ = pool.0.wait();
    drop(pool);
    let (_pool, again) = start_pool(&pool_dir, &pool_args);
    assert_eq!(again, ticket, "a restarted pool keeps its ticket");

    for (out, child) in submits {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "submit failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_matmul(&read_outputs(&out, &["c"]));
    }

    // Exactly one receipt per job, none twice, and every ledger adds up to the micro-unit.
    let mut receipts = HashSet::new();
    let mut jobs = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        receipts.clear();
        jobs.clear();
        let mut consistent = true;
        for d in &provider_dirs {
            let ledger = earnings(d);
            let list = ledger["receipts"].as_array().unwrap();
            let owed: u64 = list.iter().map(|r| micros(&r["amount"])).sum();
            let paid: u64 = ledger["payouts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| micros(&p["amount"]))
                .sum();
            consistent &= micros(&ledger["balance"]) + paid == owed;
            for r in list {
                assert!(
                    receipts.insert(r["id"].as_str().unwrap().to_owned()),
                    "receipt stored twice"
                );
                jobs.insert(r["job"].as_str().unwrap().to_owned());
            }
        }
        if consistent && receipts.len() == JOBS || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(receipts.len(), JOBS, "one receipt per job");
    assert_eq!(jobs.len(), JOBS, "no job paid twice");
}

#[test]
fn submit_reports_a_refused_job_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_pool, ticket) = start_pool(&dir.path().join("pool"), &["--bind", "127.0.0.1:0"]);
    // Not on the allow list.
    let output = run(&[
        "submit",
        "examples/jobs/matmul/job.toml",
        "--pool",
        &ticket,
        "--out",
        text(&dir.path().join("out")),
        "--data",
        text(&dir.path().join("stranger")),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("does not accept jobs from"), "{stderr}");
    // One line says what is wrong (beside the notice that the test keeps its key in a file).
    let said: Vec<_> = stderr.lines().filter(|l| !l.contains("WARN")).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].starts_with("error: this pool does not accept"),
        "{stderr}"
    );

    let output = run(&[
        "submit",
        "examples/jobs/matmul/job.toml",
        "--pool",
        "endpoint-nonsense",
        "--out",
        "x",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not a pool ticket"), "{stderr}");
}

#[test]
fn earnings_of_a_new_provider_are_empty_and_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = earnings(dir.path());
    assert_eq!(ledger["receipts"], Value::Array(vec![]));
    assert_eq!(ledger["payouts"], Value::Array(vec![]));
    assert_eq!(ledger["balance"], "0");
}

#[test]
fn a_job_over_the_providers_memory_budget_is_refused_there_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let submitter_dir = dir.path().join("submitter");
    let submitter = public_key(&submitter_dir);
    let (_pool, ticket) = start_pool(
        &dir.path().join("pool"),
        &[
            "--bind",
            "127.0.0.1:0",
            "--allow",
            &submitter,
            "--replicas-for-new",
            "1",
        ],
    );
    let provider_dir = dir.path().join("provider");
    let _provider = Process(
        idlegrid()
            .args(["provide", "--pool", &ticket, "--data", text(&provider_dir)])
            .args(["--job-memory", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let job_dir = dir.path().join("job");
    std::fs::create_dir_all(&job_dir).unwrap();
    std::fs::write(
        job_dir.join("job.toml"),
        "name = \"two-mebibytes\"\nwgsl = \"\"\"\n\
         @group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) \
         { data[id.x] = id.x; }\n\"\"\"\n\
         [[buffers]]\nname = \"data\"\nbinding = 0\nzeros = 1048576\noutput = true\n\
         [[passes]]\nentry = \"main\"\nworkgroups = [4096]\n",
    )
    .unwrap();
    // The submitter waits on other providers; the refusal is the provider's to tell.
    let _submit = Process(
        idlegrid()
            .args(["submit", text(&job_dir.join("job.toml")), "--pool", &ticket])
            .args([
                "--out",
                text(&dir.path().join("out")),
                "--data",
                text(&submitter_dir),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let reason = loop {
        let unpaid = earnings(&provider_dir)["unpaid_work"].clone();
        if let Some(work) = unpaid.as_array().and_then(|w| w.first()) {
            break work["reason"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the provider never refused the job"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        reason,
        "the job's GPU memory (buffers 1 MiB + read-back 1 MiB) is 2 MiB; \
         the limit is this machine's budget of 1 MiB"
    );
}

/// Writes a job file whose shader never ends: a loop with a store in it, over more workgroups than
/// llvmpipe's own loop cap can end in time.
fn endless_job(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("endless.toml");
    std::fs::write(
        &path,
        "name = \"endless\"\nwgsl = \"\"\"\n\
         @group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
         @compute @workgroup_size(64) fn main() { loop { data[0] = data[0] + 1u; } }\n\"\"\"\n\
         [[buffers]]\nname = \"data\"\nbinding = 0\nzeros = 256\noutput = true\n\
         [[passes]]\nentry = \"main\"\nworkgroups = [65535, 16]\n",
    )
    .unwrap();
    path
}

/// `idlegrid submit JOB --json` with stderr piped (no terminal): its output once it ends, or a
/// failed test if it runs past `limit`.
fn submit_until(job: &Path, ticket: &str, data: &Path, extra: &[&str], limit: Duration) -> Output {
    let mut child = idlegrid()
        .args(["submit", text(job), "--pool", ticket, "--json"])
        .args(["--out", text(&data.join("out")), "--data", text(data)])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("submit still waiting after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn failure_reason(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "submit succeeded: {stderr}");
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("no JSON on stdout: {stderr}"));
    assert_eq!(json["status"], "failed", "{json}");
    json["reason"].as_str().unwrap().to_owned()
}

#[test]
fn an_endless_job_fails_as_too_slow_and_its_submitter_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let submitter_dir = dir.path().join("submitter");
    // A 6 s lease: the provider's run deadline is 4 s of it.
    let (_pool, ticket) = pool_for(
        &dir.path().join("pool"),
        &submitter_dir,
        &["--lease-secs", "6"],
    );
    let _provider = start_provider(&ticket, &dir.path().join("provider"));
    let job = endless_job(&dir.path().join("job"));

    // The only provider the pool has seen missed the deadline: the job fails then, not after the
    // give-up time or once two more providers tried.
    let output = submit_until(&job, &ticket, &submitter_dir, &[], Duration::from_secs(90));
    let reason = failure_reason(&output);
    assert!(reason.starts_with("too slow for this pool"), "{reason}");
    assert!(reason.contains("ran past its deadline of 4 s"), "{reason}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("too slow for this pool")),
        "{stderr}"
    );
    // Without a terminal, each change of progress is a line.
    assert!(stderr.contains("running on 1 provider"), "{stderr}");
}

#[test]
fn a_job_short_of_providers_ends_at_the_submitters_timeout_or_the_pools_give_up_time() {
    let dir = tempfile::tempdir().unwrap();
    let submitter_dir = dir.path().join("submitter");
    let (_pool, ticket) = pool_for(
        &dir.path().join("pool"),
        &submitter_dir,
        // Long enough for the provider to start (it scores its GPU first).
        &["--give-up-secs", "20"],
    );
    let _provider = start_provider(&ticket, &dir.path().join("provider"));
    let matmul = Path::new("examples/jobs/matmul/job.toml");
    let two = ["--replicas", "2"];
    let waiting = "waiting for a second provider (1 connected)";
    // The provider is up once one job went through.
    let one = ["--replicas", "1"];
    let first = submit_until(
        matmul,
        &ticket,
        &submitter_dir,
        &one,
        Duration::from_secs(90),
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // The submitter's own limit: it says what it was waiting for when it gave up.
    let timeout = [&two[..], &["--timeout", "5"]].concat();
    let output = submit_until(
        matmul,
        &ticket,
        &submitter_dir,
        &timeout,
        Duration::from_secs(60),
    );
    let reason = failure_reason(&output);
    assert!(reason.starts_with("gave up after 5 s"), "{reason}");
    assert!(reason.ends_with(waiting), "{reason}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.lines().any(|l| l.ends_with(waiting)), "{stderr}");

    // The pool's: a job nobody takes for the give-up time fails with what it waited for.
    let output = submit_until(
        matmul,
        &ticket,
        &submitter_dir,
        &two,
        Duration::from_secs(90),
    );
    let reason = failure_reason(&output);
    assert_eq!(reason, format!("no provider took it for 20 s: {waiting}"));
}
