//! Proof of earnings: a bundle from a provider paid on chain holds for anyone with the file and an
//! RPC; one byte changed, a receipt missing, a forged payout and a transfer that never happened are
//! each named.

use std::time::Duration;

use idlegrid::Amount;
use idlegrid::onchain::{ChainPayment, RAIL};
use idlegrid::proof::{ProofBundle, SignedEntry, verify};
use idlegrid::statement::{Id, Payout, Receipt, Signed, now_ms};
use idlegrid_chain::B256;
use iroh::SecretKey;

use crate::harness::{Harness, REWARD, binding, fresh_address, payment};

#[tokio::test]
async fn a_proof_of_earnings_holds_and_every_kind_of_tampering_is_named() {
    let h = Harness::start(&[], 1_000_000, 1).await;
    let pool = h.pool(Duration::from_secs(3600)).await;
    let me = SecretKey::generate();
    let bound = binding(&me, fresh_address(), 1);
    h.earn(&pool, &me, Some(&bound), 2);
    h.rounds_until(&pool, 10, || h.payouts_for(&pool, &me).len() == 2)
        .await;
    let (_dir, provider) = h.provider(&pool, &me, bound);
    let statements = provider
        .ledger()
        .lock()
        .unwrap()
        .signed_statements()
        .unwrap();
    let bundle = ProofBundle::new(&me.public(), &statements);
    assert_eq!(
        (
            bundle.receipts.len(),
            bundle.payouts.len(),
            bundle.bindings.len()
        ),
        (2, 2, 1)
    );
    let rpc = vec![h.anvil.endpoint().to_owned()];

    let good = verify(&bundle, &rpc).await;
    assert!(good.holds(), "{:?}", good.problems);
    let totals = &good.totals[&h.pool_key.public().to_string()];
    assert_eq!(totals.earned.micros(), 2 * REWARD);
    assert_eq!(totals.paid["tUSD on chain 31337"].micros(), 2 * REWARD);
    assert!(good.unchecked_chains.is_empty());
    let offline = verify(&bundle, &[]).await;
    assert!(offline.holds());
    assert_eq!(
        offline.unchecked_chains,
        [31337],
        "names the chain it could not check"
    );

    let mut changed = bundle.clone();
    let signed = &mut changed.receipts[1].signed;
    let flipped = if signed.ends_with('0') { '1' } else { '0' };
    signed.pop();
    signed.push(flipped);
    assert_names(&verify(&changed, &rpc).await.problems, "receipt 2");

    let mut missing = bundle.clone();
    missing.receipts.remove(0);
    assert_names(
        &verify(&missing, &rpc).await.problems,
        "which the bundle lacks",
    );

    // A payout the pool never signed: another key's signature over the pool's name.
    let genuine = h.payouts_for(&pool, &me)[0].clone();
    let forger = SecretKey::generate();
    let mut forged = bundle.clone();
    forged.payouts[0].signed = SignedEntry::new(&Signed {
        body: genuine.body.clone(),
        signature: forger.sign(b"not the pool"),
    })
    .signed;
    assert_names(&verify(&forged, &rpc).await.problems, "payout 1");

    // A payout the pool did sign, for a transfer that never happened.
    let receipt = Signed::sign(
        Receipt {
            pool: h.pool_key.public(),
            provider: me.public(),
            job: Id([9; 32]),
            job_name: "never paid".into(),
            amount: Amount::from_micros(REWARD),
            output_hash: Id([0; 32]),
            issued_at_ms: now_ms(),
        },
        &h.pool_key,
    );
    let claim = ChainPayment {
        tx_hash: B256::repeat_byte(0x77),
        seq: 99,
        ..payment(&genuine)
    };
    let unpaid = Signed::sign(
        Payout {
            pool: h.pool_key.public(),
            provider: me.public(),
            receipts: vec![receipt.id()],
            amount: Amount::from_micros(REWARD),
            rail: RAIL.into(),
            reference: claim.to_reference(),
            issued_at_ms: now_ms(),
        },
        &h.pool_key,
    );
    let mut never = bundle.clone();
    never.receipts.push(SignedEntry::new(&receipt));
    never.payouts.push(SignedEntry::new(&unpaid));
    let problems = verify(&never, &rpc).await.problems;
    assert_names(&problems, "payout 3");
    assert_names(&problems, "is not on chain");
    assert!(
        verify(&never, &[]).await.holds(),
        "without an RPC the chain is not claimed checked"
    );
}

fn assert_names(problems: &[String], what: &str) {
    assert!(
        problems.iter().any(|p| p.contains(what)),
        "expected a problem naming {what:?}, got {problems:?}"
    );
}
