//! The pool's chain rail against what a chain does: confirmations that take their time, a dropped
//! transaction, a reorg, fees too low to be mined, a deposit that runs out, a provider with no address
//! and one that changes it.

use std::time::Duration;

use idlegrid::pool::{Pool, PoolError, report};
use idlegrid::protocol::WorkReply;
use idlegrid_chain::U256;
use iroh::SecretKey;
use serde_json::{Value, json};

use crate::common::net::big_capabilities;
use crate::harness::{Harness, REWARD, binding, fresh_address, payment};

const NO_BUMP: Duration = Duration::from_secs(3600);

/// A provider with an address bound, that earned `jobs` payouts.
fn earner(h: &Harness, pool: &Pool, jobs: usize) -> SecretKey {
    let provider = SecretKey::generate();
    h.earn(
        pool,
        &provider,
        Some(&binding(&provider, fresh_address(), 1)),
        jobs,
    );
    provider
}

fn pending(pool: &Pool, provider: &SecretKey) -> Vec<idlegrid::onchain::PendingPayout> {
    match pool
        .ask(&provider.public(), &big_capabilities(), 0, &[], None)
        .unwrap()
    {
        WorkReply::Work { pending, .. } => pending,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_payout_is_signed_only_once_its_transaction_has_the_confirmations_asked_for() {
    let h = Harness::start(&[], 1_000_000, 3).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = SecretKey::generate();
    let to = fresh_address();
    h.earn(&pool, &provider, Some(&binding(&provider, to, 1)), 1);

    pool.chain_round().await.unwrap(); // signed, stored, broadcast; anvil mines it at once
    pool.chain_round().await.unwrap(); // in a block: 1 of 3
    let notices = pending(&pool, &provider);
    assert_eq!(notices.len(), 1, "the provider is told of the transaction");
    assert!(notices[0].payment.block.is_some());
    for _ in 0..2 {
        assert!(
            h.payouts_for(&pool, &provider).is_empty(),
            "signed before its confirmations"
        );
        h.anvil.mine(1).await.unwrap();
        pool.chain_round().await.unwrap();
    }
    let payouts = h.payouts_for(&pool, &provider);
    assert_eq!(payouts.len(), 1);
    let paid = payment(&payouts[0]);
    let terms = &h.file.terms;
    assert_eq!(
        (
            paid.chain_id,
            paid.contract,
            paid.token,
            paid.to,
            paid.units
        ),
        (
            terms.chain_id,
            terms.contract,
            terms.token,
            to,
            U256::from(REWARD)
        )
    );
    assert_eq!(paid.tx_hash, notices[0].payment.tx_hash);
    assert!(
        pending(&pool, &provider).is_empty(),
        "a signed payout is no longer pending"
    );
    h.assert_each_paid_once(1).await;
}

#[tokio::test]
async fn a_dropped_transaction_is_sent_again() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let _: Value = h.rpc("evm_setAutomine", json!([false])).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = earner(&h, &pool, 1);
    pool.chain_round().await.unwrap();
    let hash = pending(&pool, &provider)[0].payment.tx_hash;
    let _: Value = h.rpc("anvil_dropTransaction", json!([hash])).await;
    let known: Value = h.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert!(known.is_null(), "anvil dropped it");

    h.rounds_until(&pool, 10, || !h.payouts_for(&pool, &provider).is_empty())
        .await;
    h.assert_each_paid_once(1).await;
}

#[tokio::test]
async fn a_reorg_that_removes_the_payout_has_it_sent_again() {
    let h = Harness::start(&[], 1_000_000, 3).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = earner(&h, &pool, 1);
    pool.chain_round().await.unwrap();
    pool.chain_round().await.unwrap();
    let hash = pending(&pool, &provider)[0].payment.tx_hash;
    let _: Value = h.rpc("anvil_reorg", json!([1, []])).await;
    let receipt: Value = h.rpc("eth_getTransactionReceipt", json!([hash])).await;
    assert!(receipt.is_null(), "the reorg removed the payout's block");

    h.rounds_until(&pool, 12, || !h.payouts_for(&pool, &provider).is_empty())
        .await;
    let signed = payment(&h.payouts_for(&pool, &provider)[0]);
    let receipt: Value = h
        .rpc("eth_getTransactionReceipt", json!([signed.tx_hash]))
        .await;
    assert_eq!(
        receipt["status"], "0x1",
        "the signed payout names a mined transaction"
    );
    h.assert_each_paid_once(1).await;
}

#[tokio::test]
async fn a_transaction_priced_under_the_base_fee_is_replaced_with_higher_fees() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let _: Value = h.rpc("evm_setAutomine", json!([false])).await;
    let pool = h.pool(Duration::from_secs(1)).await;
    let provider = earner(&h, &pool, 1);
    pool.chain_round().await.unwrap();
    let first = pending(&pool, &provider)[0].payment.tx_hash;
    let sent: Value = h.rpc("eth_getTransactionByHash", json!([first])).await;
    let max_fee = u128::from_str_radix(
        sent["maxFeePerGas"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let _: Value = h
        .rpc(
            "anvil_setNextBlockBaseFeePerGas",
            json!([format!("0x{:x}", max_fee * 10)]),
        )
        .await;
    let _: Value = h.rpc("evm_mine", json!([])).await;
    let receipt: Value = h.rpc("eth_getTransactionReceipt", json!([first])).await;
    assert!(receipt.is_null(), "fees under the base fee are not mined");

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    pool.chain_round().await.unwrap();
    let bumped = pending(&pool, &provider)[0].payment.tx_hash;
    assert_ne!(bumped, first, "replaced at the same nonce");
    h.rounds_until(&pool, 10, || !h.payouts_for(&pool, &provider).is_empty())
        .await;
    assert_eq!(payment(&h.payouts_for(&pool, &provider)[0]).tx_hash, bumped);
    h.assert_each_paid_once(1).await;
}

#[tokio::test]
async fn a_deposit_that_runs_out_holds_payouts_until_it_is_topped_up() {
    let h = Harness::start(&[], REWARD * 3 / 2, 1).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = earner(&h, &pool, 2);
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &provider).len() == 1)
        .await;
    for _ in 0..3 {
        pool.chain_round().await.unwrap();
        h.anvil.mine(1).await.unwrap();
    }
    assert_eq!(
        h.payouts_for(&pool, &provider).len(),
        1,
        "the second does not fit the deposit"
    );
    let without_chain = Pool::open(&h.pool_dir(), h.pool_key.clone(), Default::default());
    assert!(
        matches!(without_chain, Err(PoolError::ChainNeeded)),
        "a payout due on a chain is never paid as an IOU"
    );
    let books = report::books(&h.pool_dir()).unwrap();
    assert_eq!((books.pending_count, books.broadcast_count), (1, 0));
    let books = report::with_deposit(books, &h.file).await;
    assert!(
        books
            .describe()
            .contains("the deposit cannot cover the 0.0001 tUSD of payouts waiting"),
        "{}",
        books.describe()
    );
    let chain = books.chain.unwrap();
    assert_eq!(chain.deposit.as_deref(), Some("0.00005"));
    assert!(chain.deposit_short);

    h.anvil.deposit(&h.file, U256::from(REWARD)).await.unwrap();
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &provider).len() == 2)
        .await;
    h.assert_each_paid_once(2).await;
    let books = report::with_deposit(report::books(&h.pool_dir()).unwrap(), &h.file).await;
    assert!(!books.chain.unwrap().deposit_short);
}

#[tokio::test]
async fn a_provider_without_an_address_is_held_until_it_binds_one() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = SecretKey::generate();
    h.earn(&pool, &provider, None, 2);
    for _ in 0..2 {
        pool.chain_round().await.unwrap();
    }
    let books = report::books(&h.pool_dir()).unwrap();
    assert_eq!(books.pending_count, 0, "nothing is paid to nobody");
    assert_eq!(books.without_address.len(), 1);
    assert_eq!(books.without_address[0].owed.micros(), 2 * REWARD);

    let to = fresh_address();
    let bound = binding(&provider, to, 1);
    pool.ask(
        &provider.public(),
        &big_capabilities(),
        0,
        &[],
        Some(&bound),
    )
    .unwrap();
    h.rounds_until(&pool, 10, || !h.payouts_for(&pool, &provider).is_empty())
        .await;
    let paid = h.paid().await;
    assert_eq!(paid.len(), 1, "one payout of everything held");
    assert_eq!(
        paid.values().next().unwrap(),
        &vec![(to, U256::from(2 * REWARD))]
    );
}

#[tokio::test]
async fn a_replaced_address_binding_pays_the_new_address_and_a_replayed_old_one_changes_nothing() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let pool = h.pool(NO_BUMP).await;
    let provider = SecretKey::generate();
    let (old, new) = (fresh_address(), fresh_address());
    h.earn(&pool, &provider, Some(&binding(&provider, old, 1)), 1);
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &provider).len() == 1)
        .await;
    h.earn(&pool, &provider, Some(&binding(&provider, new, 2)), 1);
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &provider).len() == 2)
        .await;
    h.earn(&pool, &provider, Some(&binding(&provider, old, 1)), 1);
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &provider).len() == 3)
        .await;

    let paid = h.paid().await;
    let to = |seq: u64| paid[&seq][0].0;
    assert_eq!((to(0), to(1), to(2)), (old, new, new));
    h.assert_each_paid_once(3).await;
}
