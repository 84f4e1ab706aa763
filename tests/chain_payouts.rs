//! Real payouts end to end, as separate processes on 127.0.0.1: anvil, `idlegrid chain deploy`, a pool
//! paying through the contract, two providers and a submitter; then a pool killed at each moment of a
//! payout (signed and stored, broadcast, mined without its confirmations) and started again. Each ends
//! with exactly one transfer per payout, and the providers' ledgers, the pool's books and the token's
//! transfer log agree to the unit.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use idlegrid_chain::anvil::{self, Anvil, DEV_KEY};
use idlegrid_chain::check::{paid_events, transfers_from};
use idlegrid_chain::{Address, ChainFile, U256};
use serde_json::Value;

use crate::support::*;

struct Chain {
    anvil: Anvil,
    file: ChainFile,
    chain_toml: PathBuf,
    key_file: PathBuf,
}

/// anvil with 1-second blocks, and a payouts contract funded with the test token.
fn chain(dir: &Path, confirmations: u64) -> Chain {
    let anvil = Anvil::start(&anvil::setup_binary(), &["--block-time", "1"])
        .expect("anvil (./scripts/setup installs it)");
    let key_file = dir.join("deployer.key");
    std::fs::write(&key_file, DEV_KEY).unwrap();
    let chain_toml = dir.join("chain.toml");
    let output = run(&[
        "chain",
        "deploy",
        "--rpc",
        anvil.endpoint(),
        "--key-file",
        text(&key_file),
        "--test-token",
        "--confirmations",
        &confirmations.to_string(),
        "--out",
        text(&chain_toml),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = ChainFile::load(&chain_toml).unwrap();
    Chain {
        anvil,
        file,
        chain_toml,
        key_file,
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn submit(ticket: &str, submitter: &Path, out: &Path) -> Child {
    idlegrid()
        .args(["submit", "examples/jobs/matmul/job.toml", "--replicas", "1"])
        .args([
            "--pool",
            ticket,
            "--out",
            text(out),
            "--data",
            text(submitter),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn json(args: &[&str]) -> Value {
    let output = run(args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Token units of a decimal amount of a 6-decimal token ("0.0003" is 300).
fn units(amount: &Value) -> u64 {
    amount
        .as_str()
        .unwrap()
        .parse::<idlegrid::Amount>()
        .unwrap()
        .micros()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every payout in the ledger confirmed on chain, and no receipt unpaid.
fn all_confirmed(ledger: &Value) -> bool {
    let payouts = ledger["payouts"].as_array().unwrap();
    !payouts.is_empty()
        && units(&ledger["balance"]) == 0
        && payouts.iter().all(|p| p["status"] == "confirmed")
}

fn address_of(provider: &Path) -> Address {
    json(&["wallet", "--data", text(provider), "--json"])["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A chain, and where a pool and its submitter keep their data.
struct Setup {
    dir: tempfile::TempDir,
    chain: Chain,
    pool_dir: PathBuf,
    submitter: PathBuf,
    flags: Vec<String>,
}

impl Setup {
    /// A pool paying on a fresh chain once a provider's balance reaches `threshold`.
    fn new(confirmations: u64, threshold: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let chain = chain(dir.path(), confirmations);
        let submitter = dir.path().join("submitter");
        let flags = [
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--allow",
            &public_key(&submitter),
            "--replicas-for-new",
            "1",
            "--canary-rate",
            "0",
            "--payout-threshold",
            threshold,
            "--chain",
            text(&chain.chain_toml),
            "--chain-key-file",
            text(&chain.key_file),
        ]
        .map(str::to_owned)
        .to_vec();
        Setup {
            pool_dir: dir.path().join("pool"),
            dir,
            chain,
            submitter,
            flags,
        }
    }

    fn pool_args(&self) -> Vec<&str> {
        self.flags.iter().map(String::as_str).collect()
    }
}

#[test]
fn a_pool_pays_two_providers_on_chain_and_every_book_agrees_to_the_unit() {
    let s = Setup::new(2, "0.0002");
    let (dir, chain, pool_dir, submitter) = (
        &s.dir,
        &s.chain,
        s.pool_dir.as_path(),
        s.submitter.as_path(),
    );
    let pool_args = s.pool_args();
    let (_pool, ticket) = start_pool(pool_dir, &pool_args);
    let providers: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("provider{i}")))
        .collect();
    let mut running: Vec<Option<Process>> = providers
        .iter()
        .map(|p| Some(start_provider(&ticket, p)))
        .collect();

    const JOBS: usize = 6;
    let submits: Vec<Child> = (0..JOBS)
        .map(|i| submit(&ticket, submitter, &dir.path().join(format!("out{i}"))))
        .collect();
    for child in submits {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    // The second provider goes offline while it is paid, and finds its payouts when it comes back.
    running[1] = None;
    let status = || json(&["pool", "status", "--data", text(pool_dir), "--json"]);
    wait_until(
        "the pool has paid out everything above the threshold",
        Duration::from_secs(60),
        || {
            let books = status();
            books["pending_count"] == 0 && units(&books["owed"]) < 200
        },
    );
    running[1] = Some(start_provider(&ticket, &providers[1]));
    wait_until(
        "both providers confirmed every payout on chain",
        Duration::from_secs(60),
        || {
            providers.iter().all(|p| {
                let ledger = earnings(p);
                ledger["receipts"].as_array().unwrap().is_empty() || all_confirmed(&ledger)
            })
        },
    );

    let rpc = chain.anvil.endpoint();
    let terms = &chain.file.terms;
    let transfers = block_on(transfers_from(rpc, terms.token, terms.contract)).unwrap();
    let mut on_chain: HashMap<Address, u64> = HashMap::new();
    for (to, amount) in &transfers {
        *on_chain.entry(*to).or_default() += amount.to::<u64>();
    }
    let mut ledgers_paid = 0;
    let mut receipts = 0;
    for provider in &providers {
        let ledger = earnings(provider);
        let paid = units(&ledger["paid"]);
        receipts += ledger["receipts"].as_array().unwrap().len();
        let address = address_of(provider);
        assert_eq!(
            on_chain.get(&address).copied().unwrap_or(0),
            paid,
            "ledger and token log agree"
        );
        let wallet = json(&["wallet", "--data", text(provider), "--json"]);
        let balance = wallet["balances"][0]["balance"]
            .as_str()
            .map(|b| units(&Value::from(b)));
        assert_eq!(
            balance.unwrap_or(0),
            paid,
            "the wallet shows what the ledger counts as paid"
        );
        for payout in ledger["payouts"].as_array().unwrap() {
            assert_eq!(payout["chain_id"], terms.chain_id);
            assert_eq!(payout["symbol"], "tUSD");
            assert!(
                payout["tx_hash"]
                    .as_str()
                    .is_some_and(|h| h.starts_with("0x"))
            );
        }
        ledgers_paid += paid;
    }
    assert_eq!(receipts, JOBS, "one receipt per job");
    let books = status();
    assert_eq!(
        units(&books["paid"]),
        ledgers_paid,
        "the pool's books agree"
    );
    assert_eq!(books["chain"]["symbol"], "tUSD");
    let events = block_on(paid_events(rpc, terms.contract)).unwrap();
    let ids: HashSet<U256> = events.iter().map(|e| e.seq).collect();
    assert_eq!(ids.len(), events.len(), "no payout id paid twice");

    // Anyone holding the proof and an RPC of their own can check it; a changed one fails, naming why.
    let proof = dir.path().join("proof.json");
    // Whichever provider took the jobs: the work is pulled, so one may have had none.
    let paid_most = providers
        .iter()
        .max_by_key(|p| earnings(p)["receipts"].as_array().map_or(0, Vec::len))
        .unwrap();
    let wrote = run(&[
        "earnings",
        "--data",
        text(paid_most),
        "--proof",
        text(&proof),
    ]);
    assert!(wrote.status.success());
    let verdict = json(&["verify-earnings", text(&proof), "--rpc", rpc, "--json"]);
    assert_eq!(verdict["problems"], Value::Array(vec![]));
    assert!(verdict["unchecked_chains"].as_array().unwrap().is_empty());
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    bundle["receipts"].as_array_mut().unwrap().remove(0);
    std::fs::write(&proof, bundle.to_string()).unwrap();
    let refused = run(&["verify-earnings", text(&proof), "--rpc", rpc]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("which the bundle lacks"), "{stderr}");
    drop(running);
}

/// Starts a pool that aborts (as if killed) at `crash`, or a clean one.
fn pool_process(data: &Path, args: &[&str], crash: Option<&str>) -> (Process, String) {
    let mut command = idlegrid();
    if let Some(point) = crash {
        command.env(idlegrid::crash_point::ENV, point);
    }
    start_pool_with(command, data, args)
}

fn wait_for_exit(pool: &mut Process, what: &str) {
    wait_until(what, Duration::from_secs(60), || {
        pool.0.try_wait().unwrap().is_some()
    });
}

#[test]
fn a_pool_killed_at_each_moment_of_a_payout_pays_it_exactly_once() {
    let s = Setup::new(3, "0.0001");
    let (dir, chain, pool_dir, submitter) = (
        &s.dir,
        &s.chain,
        s.pool_dir.as_path(),
        s.submitter.as_path(),
    );
    let args = s.pool_args();
    let provider = dir.path().join("provider");

    // Killed once the first payout's transaction is signed and stored, before it is broadcast.
    let (mut pool, ticket) = pool_process(pool_dir, &args, Some("chain-signed"));
    let _provider = start_provider(&ticket, &provider);
    let job = submit(&ticket, submitter, &dir.path().join("out1"));
    wait_for_exit(&mut pool, "the pool dies after signing");
    // Started again, it broadcasts the stored bytes; killed once they are mined, before the
    // confirmations arrive.
    let (mut pool, _) = pool_process(pool_dir, &args, Some("chain-mined"));
    wait_for_exit(&mut pool, "the pool dies before the confirmations");
    // Started again, it signs the first payout; killed right after broadcasting the second.
    let (mut pool, _) = pool_process(pool_dir, &args, Some("chain-broadcast"));
    assert!(job.wait_with_output().unwrap().status.success());
    let second = submit(&ticket, submitter, &dir.path().join("out2"));
    wait_for_exit(&mut pool, "the pool dies after broadcasting");
    let (_pool, _) = pool_process(pool_dir, &args, None);
    assert!(second.wait_with_output().unwrap().status.success());

    wait_until(
        "both payouts are confirmed by the provider",
        Duration::from_secs(60),
        || {
            let ledger = earnings(&provider);
            ledger["payouts"].as_array().unwrap().len() == 2 && all_confirmed(&ledger)
        },
    );
    let terms = &chain.file.terms;
    let events = block_on(paid_events(chain.anvil.endpoint(), terms.contract)).unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e.seq.to::<u64>()).collect();
    assert_eq!(ids, [0, 1], "each payout paid exactly once");
    let ledger = earnings(&provider);
    let earned: u64 = ledger["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| units(&r["amount"]))
        .sum();
    assert_eq!(units(&ledger["paid"]), earned, "everything earned is paid");
    let to = address_of(&provider);
    let on_chain: u64 = events.iter().map(|e| e.units.to::<u64>()).sum();
    assert_eq!(
        on_chain, earned,
        "the chain paid what was earned, to the unit"
    );
    assert!(events.iter().all(|e| e.to == to));
}
