//! A fresh anvil with the test token and a payouts contract, a pool paying through it, and providers
//! that earn by answering leases the way the service would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use idlegrid::Amount;
use idlegrid::client::own_submitter_key;
use idlegrid::onchain::{ChainPayment, PoolChain};
use idlegrid::pool::chain::{ChainPolicy, ChainRail};
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig};
use idlegrid::protocol::{Delivery, WorkReply};
use idlegrid::provider::{Provider, ProviderConfig};
use idlegrid::statement::{AddressBinding, Payout, Signed, now_ms};
use idlegrid_chain::anvil::{self, Anvil, DEV_KEY};
use idlegrid_chain::deploy::{DeployPlan, deploy};
use idlegrid_chain::payer::Payer;
use idlegrid_chain::{Address, U256, parse_key};
use iroh::{EndpointAddr, SecretKey};

use crate::common::net::{big_capabilities, made_up_outputs};
use crate::common::{executor, hashchain};

/// What each job pays, and the threshold: every job makes one payout.
pub const REWARD: u64 = 100;

pub struct Harness {
    pub anvil: Anvil,
    pub file: PoolChain,
    pub pool_key: SecretKey,
    pub dir: tempfile::TempDir,
    jobs: std::sync::atomic::AtomicU64,
}

impl Harness {
    /// anvil with `args`, the contract holding `deposit` token units, payouts needing
    /// `confirmations` blocks.
    pub async fn start(args: &[&str], deposit: u64, confirmations: u64) -> Harness {
        let anvil = Anvil::start(&anvil::setup_binary(), args).expect("anvil (./scripts/setup)");
        let plan = DeployPlan {
            rpc: anvil.endpoint().to_owned(),
            token: None,
            test_mint: U256::from(deposit),
            test_deposit: U256::from(deposit),
            payer: None,
            confirmations,
            explorer: None,
        };
        let file = deploy(&plan, parse_key(DEV_KEY).unwrap()).await.unwrap();
        Harness {
            anvil,
            file,
            pool_key: SecretKey::generate(),
            dir: tempfile::tempdir().unwrap(),
            jobs: Default::default(),
        }
    }

    pub fn pool_dir(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    /// The pool (again, after a "crash": the same data dir and key).
    pub async fn pool(&self, bump_after: Duration) -> Pool {
        let payer = Payer::connect(&self.file, parse_key(DEV_KEY).unwrap())
            .await
            .unwrap();
        let config = PoolConfig {
            replication: ReplicationPolicy {
                untrusted_replicas: 1,
                trusted_at: 10,
            },
            canary_rate: 0.0,
            default_reward: Amount::from_micros(REWARD),
            payout_threshold: Amount::from_micros(REWARD),
            ..PoolConfig::default()
        };
        let policy = ChainPolicy {
            bump_after,
            ..ChainPolicy::default()
        };
        let rail = ChainRail::new(payer, self.file.clone(), policy);
        Pool::open_on_chain(&self.pool_dir(), self.pool_key.clone(), config, rail).unwrap()
    }

    /// `provider` asks (with `binding`) and returns made-up outputs for `jobs` new jobs: one receipt,
    /// and one payout, each.
    pub fn earn(
        &self,
        pool: &Pool,
        provider: &SecretKey,
        binding: Option<&Signed<AddressBinding>>,
        jobs: usize,
    ) {
        let submitter = own_submitter_key(&self.pool_key).public();
        for _ in 0..jobs {
            let nonce = self.jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let job = hashchain(64);
            let (id, missing) = pool.offer_job(&submitter, &job, nonce).unwrap();
            assert_eq!(missing, Some(Vec::new()));
            pool.enqueue(&submitter, id, &job).unwrap();
            let WorkReply::Work { leases, .. } = pool
                .ask(&provider.public(), &big_capabilities(), 1, &[], binding)
                .unwrap()
            else {
                panic!("no work reply")
            };
            let lease = &leases[0];
            pool.submit_result(&provider.public(), lease.lease, made_up_outputs(lease), 1)
                .unwrap();
        }
    }

    /// Asks as `provider` (nothing leased) and returns the payouts delivered.
    pub fn payouts_for(&self, pool: &Pool, provider: &SecretKey) -> Vec<Signed<Payout>> {
        let WorkReply::Work { deliveries, .. } = pool
            .ask(&provider.public(), &big_capabilities(), 0, &[], None)
            .unwrap()
        else {
            panic!("no work reply")
        };
        deliveries
            .into_iter()
            .filter_map(|d| match d {
                Delivery::Payout(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Runs the chain rail's rounds, mining a block between them, until `done` or `rounds` run out.
    pub async fn rounds_until(&self, pool: &Pool, rounds: usize, mut done: impl FnMut() -> bool) {
        for _ in 0..rounds {
            pool.chain_round().await.unwrap();
            if done() {
                return;
            }
            self.anvil.mine(1).await.unwrap();
        }
        panic!("the payouts were not settled in {rounds} rounds");
    }

    /// A provider bound to `binding`, its ledger holding the pool's chain and everything the pool
    /// has delivered to it so far.
    pub fn provider(
        &self,
        pool: &Pool,
        me: &SecretKey,
        binding: Signed<AddressBinding>,
    ) -> (tempfile::TempDir, Provider) {
        let dir = tempfile::tempdir().unwrap();
        let config = ProviderConfig {
            binding: Some(binding),
            ..ProviderConfig::default()
        };
        let pool_id = self.pool_key.public();
        let provider = Provider::new(
            me.clone(),
            EndpointAddr::new(pool_id),
            dir.path(),
            executor(),
            config,
        )
        .unwrap();
        let ledger = provider.ledger();
        let mut ledger = ledger.lock().unwrap();
        ledger
            .record_pool_chain(&pool_id.to_string(), &self.file)
            .unwrap();
        let WorkReply::Work { deliveries, .. } = pool
            .ask(&me.public(), &big_capabilities(), 0, &[], None)
            .unwrap()
        else {
            panic!("no work reply")
        };
        for delivery in deliveries {
            match delivery {
                Delivery::Receipt(r) => {
                    ledger.record_receipt(&pool_id, &r).unwrap();
                }
                Delivery::Payout(p) => {
                    ledger.record_payout(&pool_id, &p).unwrap();
                }
                Delivery::Check(_) => {}
            }
        }
        drop(ledger);
        (dir, provider)
    }

    /// How many times the contract paid each sequence id, and to whom.
    pub async fn paid(&self) -> HashMap<u64, Vec<(Address, U256)>> {
        let mut paid: HashMap<u64, Vec<(Address, U256)>> = HashMap::new();
        for event in
            idlegrid_chain::check::paid_events(self.anvil.endpoint(), self.file.terms.contract)
                .await
                .unwrap()
        {
            paid.entry(event.seq.to::<u64>())
                .or_default()
                .push((event.to, event.units));
        }
        paid
    }

    /// Each sequence id paid exactly once, `n` in all.
    pub async fn assert_each_paid_once(&self, n: usize) {
        let paid = self.paid().await;
        assert_eq!(paid.len(), n, "payouts on chain: {paid:?}");
        for (seq, transfers) in &paid {
            assert_eq!(
                transfers.len(),
                1,
                "payout {seq} paid {} times",
                transfers.len()
            );
        }
    }

    pub async fn rpc<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> T {
        serde_json::from_value(self.anvil.call(method, params).await.unwrap()).unwrap()
    }
}

pub fn binding(provider: &SecretKey, address: Address, seq: u64) -> Signed<AddressBinding> {
    Signed::sign(
        AddressBinding {
            provider: provider.public(),
            address: address.0.0,
            seq,
            issued_at_ms: now_ms(),
        },
        provider,
    )
}

pub fn fresh_address() -> Address {
    idlegrid_chain::account_address(&idlegrid_chain::new_account_key()).unwrap()
}

pub fn payment(payout: &Signed<Payout>) -> ChainPayment {
    ChainPayment::of(&payout.body).expect("a chain payout")
}
