//! Payout benchmarks on a real anvil (`cargo bench -p idlegrid --bench payouts`):
//!
//! 1. Soak: 1,000 payouts to 5 providers through the pool's chain rail, with the pool "killed" at random
//!    moments: each round of the rail is cut off after a random 0–40 ms (its future dropped wherever it
//!    is: mid-RPC, between storing a transaction and broadcasting it, ...) and a third of the time the
//!    pool is reopened from its data dir, as after a crash. Blocks are mined between rounds; payouts
//!    need 2 confirmations. At the end the sums of the contract's `Paid` log, of the providers' ledgers
//!    (after each provider's own check of the chain) and of the receipts must be equal to the unit, and
//!    no sequence id may be paid twice; the run fails otherwise.
//! 2. Latency: the real programs (`idlegrid pool --chain`, `provide`, `submit`) against anvil with 1 s
//!    blocks and 2 confirmations; each job's reward crosses the payout threshold. For each payout, the
//!    time from the receipt that crossed it (its signing time) to the provider's log line "payout
//!    confirmed on chain"; median and range.
//!
//! `--quick` (or IDLEGRID_BENCH_QUICK=1, or running without `--bench` as `cargo test --benches` does)
//! runs 40 payouts and 2 latency samples.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/chain/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Harness, binding, fresh_address};
use idlegrid::pool::Pool;
use idlegrid_chain::U256;
use iroh::SecretKey;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var_os("IDLEGRID_BENCH_QUICK").is_some()
        || !args.iter().any(|a| a == "--bench");
    let (payouts, samples) = if quick { (40, 2) } else { (1_000, 10) };
    soak(payouts).await;
    latency(samples);
}

/// A cheap, seedless draw: good enough to pick kill moments.
fn draw(below: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(Instant::now()) % below.max(1)
}

async fn soak(payouts: usize) {
    let h = Harness::start(&[], 1_000_000_000, 2).await;
    let mut pool = h.pool(Duration::from_secs(3600)).await;
    let providers: Vec<(
        SecretKey,
        idlegrid::statement::Signed<idlegrid::statement::AddressBinding>,
    )> = (0..5)
        .map(|_| {
            let key = SecretKey::generate();
            let bound = binding(&key, fresh_address(), 1);
            (key, bound)
        })
        .collect();
    let started = Instant::now();
    let (mut kills, mut restarts, mut rounds) = (0, 0, 0);
    for chunk in 0..payouts.div_ceil(100) {
        let n = (payouts - chunk * 100).min(100);
        for i in 0..n {
            let (key, bound) = &providers[i % providers.len()];
            h.earn(&pool, key, Some(bound), 1);
        }
        let target = chunk * 100 + n;
        while signed(&h, &pool, &providers) < target {
            rounds += 1;
            let cut = Duration::from_millis(draw(40));
            if tokio::time::timeout(cut, pool.chain_round()).await.is_err() {
                kills += 1;
            }
            if draw(3) == 0 {
                drop(pool);
                pool = h.pool(Duration::from_secs(3600)).await;
                restarts += 1;
            }
            h.anvil.mine(1).await.unwrap();
        }
    }
    let elapsed = started.elapsed();

    let events = idlegrid_chain::check::paid_events(h.anvil.endpoint(), h.file.terms.contract)
        .await
        .unwrap();
    let ids: HashSet<U256> = events.iter().map(|e| e.seq).collect();
    let on_chain: u64 = events.iter().map(|e| e.units.to::<u64>()).sum();
    let mut ledgers = 0;
    let mut receipts = 0;
    let mut dirs = Vec::new();
    for (key, bound) in &providers {
        let (dir, provider) = h.provider(&pool, key, bound.clone());
        provider.check_payouts_now().await;
        let earnings = provider.ledger().lock().unwrap().earnings().unwrap();
        ledgers += earnings.paid.micros();
        receipts += earnings.total.micros();
        dirs.push(dir);
    }
    println!("## Payout soak ({payouts} payouts, 5 providers, 2 confirmations)\n");
    println!(
        "| payouts on chain | distinct ids | on-chain sum | ledgers' sum | receipts' sum | rounds cut off | pool reopened | time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {on_chain} | {ledgers} | {receipts} | {kills} of {rounds} | {restarts} | {:.1} s |\n",
        events.len(),
        ids.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(events.len(), payouts, "every payout on chain");
    assert_eq!(ids.len(), events.len(), "no sequence id paid twice");
    assert_eq!(
        (on_chain, ledgers),
        (receipts, receipts),
        "the sums agree to the unit"
    );
}

/// Payouts signed so far, over all providers.
fn signed(
    h: &Harness,
    pool: &Pool,
    providers: &[(
        SecretKey,
        idlegrid::statement::Signed<idlegrid::statement::AddressBinding>,
    )],
) -> usize {
    providers
        .iter()
        .map(|(key, _)| h.payouts_for(pool, key).len())
        .sum()
}

/// A child killed when the bench ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn idlegrid() -> Command {
    let mut command = common::idlegrid_command();
    command.env("IDLEGRID_KEYSTORE", "file");
    command
}

fn latency(samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    let anvil = idlegrid_chain::anvil::Anvil::start(
        &idlegrid_chain::anvil::setup_binary(),
        &["--block-time", "1"],
    )
    .unwrap();
    let key = dir.path().join("chain.key");
    std::fs::write(&key, idlegrid_chain::anvil::DEV_KEY).unwrap();
    let chain = dir.path().join("chain.toml");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let deployed = idlegrid()
        .args([
            "chain",
            "deploy",
            "--rpc",
            anvil.endpoint(),
            "--key-file",
            &path(&key),
        ])
        .args(["--test-token", "--out", &path(&chain)])
        .output()
        .unwrap();
    assert!(deployed.status.success());
    let submitter = dir.path().join("submitter");
    let id = idlegrid()
        .args(["id", "--data", &path(&submitter)])
        .output()
        .unwrap();
    let allow = String::from_utf8(id.stdout).unwrap().trim().to_owned();
    let mut pool = idlegrid()
        .args([
            "pool",
            "--data",
            &path(&dir.path().join("pool")),
            "--bind",
            "127.0.0.1:0",
        ])
        .args([
            "--allow",
            &allow,
            "--replicas-for-new",
            "1",
            "--canary-rate",
            "0",
        ])
        .args([
            "--payout-threshold",
            "0.0001",
            "--chain",
            &path(&chain),
            "--chain-key-file",
            &path(&key),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(pool.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _pool = Running(pool);
    let ticket = line.trim().trim_start_matches("ticket: ").to_owned();
    let provider_dir = dir.path().join("provider");
    let log = dir.path().join("provider.log");
    let _provider = Running(
        idlegrid()
            .args(["provide", "--pool", &ticket, "--data", &path(&provider_dir)])
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for i in 0..samples {
        let ok = idlegrid()
            .args([
                "submit",
                "examples/jobs/matmul/job.toml",
                "--replicas",
                "1",
                "--pool",
                &ticket,
            ])
            .args([
                "--data",
                &path(&submitter),
                "--out",
                &path(&dir.path().join(format!("out{i}"))),
            ])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        // One payout at a time, as a provider crossing the threshold now and then would see it.
        let start = Instant::now();
        while confirmed_at(&log).len() <= i && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let ledger = idlegrid()
        .args(["earnings", "--data", &path(&provider_dir), "--json"])
        .output()
        .unwrap();
    let ledger: serde_json::Value = serde_json::from_slice(&ledger.stdout).unwrap();
    let issued: HashMap<String, u64> = ledger["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["issued_at_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    let confirmed = confirmed_at(&log);
    let mut waits: Vec<f64> = ledger["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let crossed = p["receipts"]
                .as_array()?
                .iter()
                .filter_map(|r| issued.get(r.as_str()?))
                .max()?;
            let at = confirmed.get(p["id"].as_str()?)?;
            Some((*at as f64 - *crossed as f64) / 1000.0)
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    assert_eq!(waits.len(), samples, "every payout confirmed");
    println!(
        "## Threshold to \"confirmed on chain\" (anvil, 1 s blocks, 2 confirmations, {samples} payouts)\n"
    );
    println!("| median | fastest | slowest |");
    println!("|---|---|---|");
    println!(
        "| {:.1} s | {:.1} s | {:.1} s |",
        waits[waits.len() / 2],
        waits[0],
        waits[waits.len() - 1]
    );
}

/// When the provider logged each payout confirmed on chain (ms since the epoch), by payout id.
fn confirmed_at(log: &Path) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("payout confirmed on chain"))
        .filter_map(|l| {
            let time = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            let id = l.split("payout=").nth(1)?.split_whitespace().next()?;
            Some((id.to_owned(), u64::try_from(time.timestamp_millis()).ok()?))
        })
        .collect()
}
