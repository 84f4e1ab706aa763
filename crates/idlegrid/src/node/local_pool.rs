//! The demo: a pool run inside the app on 127.0.0.1 (relays off, like the tests), joined as "Local
//! pool", and fed the sample jobs of `examples/jobs` one after another, so that earnings, receipts and
//! payouts appear within a minute of pressing "Start a local pool".
//!
//! Where anvil is installed (`./scripts/setup` does), the pool pays on a local chain it starts, with the
//! test token, so the demo shows payouts confirmed on chain with their transactions; without anvil it
//! pays in IOUs it signs, and says so.
//!
//! The demo's provider works as in mode Always (see `status::always_verdict`): it runs while the
//! person is at the computer, or the demo would show nothing to someone trying it; sharing off,
//! "Pause for 1 hour", a GPU switched off and the temperature limit still stop it. Its jobs ask for one
//! replica (there is one provider), pay out at 0.001, and its key lives in a file in its own folder,
//! not in the keyring: it is a demo's.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use iroh::SecretKey;
use tokio::task::JoinHandle;

use crate::amount::Amount;
use crate::client::Client;
use crate::identity::{Identity, KeyStore};
use crate::job::{Access, BufferInit, BufferSpec, Job, JobLimits, Pass, Verify};
use crate::onchain::PoolChain;
use crate::pool::chain::{ChainPolicy, ChainRail};
use crate::pool::verify::ReplicationPolicy;
use crate::pool::{Pool, PoolConfig, RunningPool};
use crate::protocol::Bind;
use idlegrid_chain::anvil::{self, Anvil};
use idlegrid_chain::deploy::{DeployPlan, deploy};
use idlegrid_chain::payer::Payer;
use idlegrid_chain::{ChainError, U256};

use super::NodeError;

/// The name the demo pool is shown under.
pub const LOCAL_POOL_NAME: &str = "Local pool";

/// The pool, the task feeding it work, and the local chain it pays on, when anvil is installed.
pub struct LocalPool {
    running: RunningPool,
    feeder: JoinHandle<()>,
    // Last: the chain outlives the pool's last payouts while it stops.
    _chain: Option<Anvil>,
}

impl LocalPool {
    /// Opens (or reopens) the pool kept in `dir` and starts feeding it the jobs found in `examples`,
    /// or a built-in job where there are none, one every `interval` after the last is verified.
    pub async fn start(
        dir: &Path,
        examples: Option<&Path>,
        interval: Duration,
    ) -> Result<LocalPool, NodeError> {
        let local = |e: &dyn std::fmt::Display| NodeError::LocalPool(e.to_string());
        let key = Identity::load_or_create(dir, &KeyStore::FileOnly)?
            .secret_key()
            .clone();
        let (pool, chain) = match local_chain(dir).await {
            Ok(Some((anvil, rail))) => {
                let pool = Pool::open_on_chain(dir, key.clone(), demo_config(), rail);
                (pool.map_err(|e| local(&e))?, Some(anvil))
            }
            Ok(None) => {
                tracing::warn!(
                    "anvil is not installed (./scripts/setup installs it): the local pool's payouts are IOUs it signs, not paid on a chain"
                );
                (
                    Pool::open(dir, key.clone(), demo_config()).map_err(|e| local(&e))?,
                    None,
                )
            }
            Err(error) => {
                tracing::warn!(%error, "the local chain did not start: the local pool's payouts are IOUs it signs");
                (
                    Pool::open(dir, key.clone(), demo_config()).map_err(|e| local(&e))?,
                    None,
                )
            }
        };
        let loopback = Bind::At(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let running = pool.serve(loopback).await.map_err(|e| local(&e))?;
        let jobs = sample_jobs(examples);
        tracing::info!(jobs = jobs.len(), ticket = %running.ticket(), "local pool started");
        let feeder = tokio::spawn(feed(running.ticket(), key, jobs, interval));
        Ok(LocalPool {
            running,
            feeder,
            _chain: chain,
        })
    }

    pub fn ticket(&self) -> String {
        self.running.ticket()
    }

    pub fn id(&self) -> String {
        self.running.pool.public_key().to_string()
    }

    pub async fn stop(self) {
        self.feeder.abort();
        self.running.shutdown().await;
        tracing::info!("local pool stopped");
    }
}

/// A local anvil chain (its state kept in `dir`, so payouts survive a restart) with the test token and
/// the payouts contract, deployed on first use; `None` when anvil is not installed.
async fn local_chain(dir: &Path) -> Result<Option<(Anvil, ChainRail)>, ChainError> {
    let program = std::env::current_exe().unwrap_or_default();
    let Some(binary) = anvil::find(&program) else {
        return Ok(None);
    };
    let state = dir.join("anvil-state.json");
    let state = state.to_string_lossy();
    let anvil = Anvil::start(
        &binary,
        &[
            "--block-time",
            "1",
            "--state",
            &state,
            "--state-interval",
            "1",
        ],
    )
    .map_err(|e| ChainError::Deploy(e.to_string()))?;
    let chain_file = dir.join(crate::pool::report::CHAIN_FILE);
    let key = idlegrid_chain::parse_key(anvil::DEV_KEY)?;
    let known = PoolChain::load(&chain_file).ok().map(|file| PoolChain {
        rpc: anvil.endpoint().to_owned(),
        ..file
    });
    let file = match known {
        Some(file)
            if Payer::connect(&file, key.clone())
                .await?
                .deposit()
                .await
                .is_ok() =>
        {
            file
        }
        _ => {
            let plan = DeployPlan {
                rpc: anvil.endpoint().to_owned(),
                token: None,
                test_mint: U256::from(10_000_000_000_000u64),
                test_deposit: U256::from(1_000_000_000_000u64),
                payer: None,
                confirmations: 2,
                explorer: None,
            };
            deploy(&plan, key.clone()).await?
        }
    };
    crate::atomic_file::write(&chain_file, file.to_toml().as_bytes())
        .map_err(|e| ChainError::Deploy(e.to_string()))?;
    let payer = Payer::connect(&file, key).await?;
    tracing::info!(rpc = %file.rpc, contract = %file.terms.contract, "the local pool pays on a local chain");
    Ok(Some((
        anvil,
        ChainRail::new(payer, file, ChainPolicy::default()),
    )))
}

fn demo_config() -> PoolConfig {
    PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            ..ReplicationPolicy::default()
        },
        // Canaries earn nothing; in a demo they would only look like unpaid work.
        canary_rate: 0.0,
        payout_threshold: Amount::from_micros(1_000),
        retry_after: Duration::from_secs(1),
        ..PoolConfig::default()
    }
}

/// Submits the jobs in turn, forever: each waits until verified, then `interval` passes.
async fn feed(ticket: String, key: SecretKey, jobs: Vec<Job>, interval: Duration) {
    let mut next = 0;
    loop {
        let job = &jobs[next % jobs.len()];
        next += 1;
        match submit_and_wait(&ticket, &key, job).await {
            Ok(()) => tracing::debug!(job = %job.name, "demo job verified"),
            Err(error) => tracing::warn!(job = %job.name, %error, "demo job did not finish"),
        }
        tokio::time::sleep(interval).await;
    }
}

async fn submit_and_wait(ticket: &str, key: &SecretKey, job: &Job) -> Result<(), NodeError> {
    let failed = |e: crate::client::ClientError| NodeError::LocalPool(e.to_string());
    let client = Client::connect(ticket, key.clone()).await.map_err(failed)?;
    let outcome = async {
        let handle = client.submit(job).await?;
        handle.wait().await.map(drop)
    }
    .await;
    client.close().await;
    outcome.map_err(failed)
}

/// `examples/jobs` beside the program or above it (a build tree's `target/debug`), or in the working
/// directory; `None` when there is none.
pub fn find_examples(program: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    program
        .ancestors()
        .skip(1)
        .take(5)
        .chain(cwd.as_deref())
        .map(|dir| dir.join("examples").join("jobs"))
        .find(|dir| dir.is_dir())
}

/// Every `*/job.toml` under `examples` that loads, with one replica; the built-in job if none does.
pub fn sample_jobs(examples: Option<&Path>) -> Vec<Job> {
    let mut jobs: Vec<Job> = examples
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("job.toml"))
        .filter(|path| path.is_file())
        .filter_map(|path| match Job::load(&path, &JobLimits::default()) {
            Ok(job) => Some(job),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "sample job skipped");
                None
            }
        })
        .collect();
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    if jobs.is_empty() {
        jobs.push(built_in_job());
    }
    // Inference is work like any other: a small embedding request on a tiny random model.
    jobs.push(crate::embed::sample_embedding_job(8, 1));
    for job in &mut jobs {
        job.verify.replicas = 1;
    }
    jobs
}

/// A small job that needs no files: 16,384 Collatz step counts.
pub fn built_in_job() -> Job {
    const WGSL: &str = "
@group(0) @binding(0) var<storage, read_write> steps: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    var n = id.x + 1u;
    var count = 0u;
    while (n != 1u && count < 1000u) {
        if (n % 2u == 0u) { n = n / 2u; } else { n = 3u * n + 1u; }
        count = count + 1u;
    }
    steps[id.x] = count;
}
";
    Job {
        name: "collatz".into(),
        source_name: "built-in".into(),
        wgsl: WGSL.into(),
        buffers: vec![BufferSpec {
            name: "steps".into(),
            binding: 0,
            init: BufferInit::Zeros(16_384 * 4),
            access: Access::ReadWrite,
            output: true,
        }],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [256, 1, 1],
        }],
        verify: Verify {
            replicas: 1,
            tolerance: 0.0,
            cosine: None,
        },
        reward: Some(Amount::from_micros(200)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_job_passes_the_checks() {
        crate::job::check(&built_in_job(), &JobLimits::default()).unwrap();
    }

    #[test]
    fn without_examples_the_built_in_job_is_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = sample_jobs(Some(dir.path()));
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["collatz", "Embedding 8 texts (tiny-bert)"]);
        assert_eq!(sample_jobs(None).len(), 2);
        // Both run as they are: the embedding job carries its weights.
        for job in &jobs {
            crate::job::check(job, &JobLimits::default()).unwrap();
        }
    }

    #[test]
    fn the_repository_examples_are_found_and_loaded() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/app");
        let examples = find_examples(&here).expect("examples/jobs above the build tree");
        let jobs = sample_jobs(Some(&examples));
        assert!(jobs.len() >= 3, "{}", jobs.len());
        assert!(jobs.iter().all(|j| j.verify.replicas == 1));
    }
}
