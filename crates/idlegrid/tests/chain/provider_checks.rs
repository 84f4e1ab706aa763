//! The provider's own check of chain payouts against a pool that lies: a payout naming a transaction
//! that paid someone else, or one that never happened, is flagged not found and never counted as paid;
//! the genuine one beside them is confirmed.

use std::time::Duration;

use idlegrid::Amount;
use idlegrid::ledger::PayoutStatus;
use idlegrid::onchain::{ChainPayment, RAIL};
use idlegrid::provider::Provider;
use idlegrid::statement::{Id, Payout, Receipt, Signed, now_ms};
use idlegrid_chain::B256;
use iroh::SecretKey;

use crate::harness::{Harness, REWARD, binding, fresh_address, payment};

/// A receipt the pool signs for `provider` and the provider stores.
fn stored_receipt(h: &Harness, provider: &Provider, me: &SecretKey, job: u8) -> Id {
    let receipt = Signed::sign(
        Receipt {
            pool: h.pool_key.public(),
            provider: me.public(),
            job: Id([job; 32]),
            job_name: format!("job {job}"),
            amount: Amount::from_micros(REWARD),
            output_hash: Id([0; 32]),
            issued_at_ms: now_ms(),
        },
        &h.pool_key,
    );
    let ledger = provider.ledger();
    let mut ledger = ledger.lock().unwrap();
    ledger
        .record_receipt(&h.pool_key.public(), &receipt)
        .unwrap();
    receipt.id()
}

/// A payout the pool signs for `receipt`, claiming `payment`.
fn forged_payout(
    h: &Harness,
    me: &SecretKey,
    receipt: Id,
    payment: &ChainPayment,
) -> Signed<Payout> {
    Signed::sign(
        Payout {
            pool: h.pool_key.public(),
            provider: me.public(),
            receipts: vec![receipt],
            amount: Amount::from_micros(REWARD),
            rail: RAIL.into(),
            reference: payment.to_reference(),
            issued_at_ms: now_ms(),
        },
        &h.pool_key,
    )
}

#[tokio::test]
async fn payouts_the_chain_does_not_show_are_flagged_and_never_counted_as_paid() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let pool = h.pool(Duration::from_secs(3600)).await;
    // Someone else is paid honestly: a real transaction, to another address.
    let other = SecretKey::generate();
    h.earn(&pool, &other, Some(&binding(&other, fresh_address(), 1)), 1);
    // And this provider is paid honestly once.
    let me = SecretKey::generate();
    let mine = fresh_address();
    let my_binding = binding(&me, mine, 1);
    h.earn(&pool, &me, Some(&my_binding), 1);
    h.rounds_until(&pool, 10, || {
        !h.payouts_for(&pool, &me).is_empty() && !h.payouts_for(&pool, &other).is_empty()
    })
    .await;

    let (_dir, provider) = h.provider(&pool, &me, my_binding);
    let pool_id = h.pool_key.public();
    let someone_elses = payment(&h.payouts_for(&pool, &other)[0]);
    let paid_someone_else = ChainPayment {
        to: mine,
        ..someone_elses.clone()
    };
    let never_happened = ChainPayment {
        to: mine,
        tx_hash: B256::repeat_byte(0x42),
        ..someone_elses
    };
    for (job, claim) in [(1, &paid_someone_else), (2, &never_happened)] {
        let receipt = stored_receipt(&h, &provider, &me, job);
        let forged = forged_payout(&h, &me, receipt, claim);
        let ledger = provider.ledger();
        ledger
            .lock()
            .unwrap()
            .record_payout(&pool_id, &forged)
            .unwrap();
    }

    provider.check_payouts_now().await;
    let earnings = provider.ledger().lock().unwrap().earnings().unwrap();
    let statuses: Vec<PayoutStatus> = earnings.payouts.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            PayoutStatus::Confirmed,
            PayoutStatus::NotFound,
            PayoutStatus::NotFound
        ]
    );
    assert!(
        earnings.payouts[0].checked_through_pool,
        "checked through the pool's RPC, and said so"
    );
    let notes: Vec<&str> = earnings.payouts[1..]
        .iter()
        .map(|p| p.note.as_deref().unwrap_or_default())
        .collect();
    assert!(notes[0].contains("logged no payout"), "{notes:?}");
    assert!(notes[1].contains("is not on chain"), "{notes:?}");
    assert_eq!(
        earnings.paid.micros(),
        REWARD,
        "only the genuine payout counts as paid"
    );
    assert_eq!(earnings.balance.micros(), 2 * REWARD);
}
