//! The payouts contract on a real anvil: each id pays once, only the payer pays, a batch skips ids
//! already paid, a transfer the deposit cannot cover reverts everything, and only the owner withdraws.

mod support;

use alloy::primitives::U256;
use idlegrid_chain::contracts::Payouts::{self, PayoutsErrors};
use support::{Chain, events, fresh_address, succeed, units};

/// Explicit gas, so a call that reverts is still mined (as the pool's pre-signed transactions are) and the
/// test sees the chain's verdict, not the node's estimate.
const GAS: u64 = 1_000_000;

fn rejection(error: &alloy::contract::Error) -> Option<PayoutsErrors> {
    error.as_decoded_interface_error::<PayoutsErrors>()
}

#[tokio::test]
async fn a_payout_is_paid_exactly_once_by_its_id() -> anyhow::Result<()> {
    let chain = Chain::start(1_000_000).await?;
    let to = fresh_address();

    let receipt = chain
        .payouts
        .pay(U256::from(7), to, U256::from(250_000))
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = succeed(receipt)?;
    assert_eq!(
        events::<Payouts::Paid>(&receipt),
        vec![Payouts::Paid {
            id: U256::from(7),
            to,
            amount: U256::from(250_000)
        }]
    );
    assert_eq!(chain.balance(to).await?, U256::from(250_000));
    assert!(chain.paid(7).await?);
    assert!(
        !chain.paid(6).await? && !chain.paid(8).await?,
        "only id 7 is marked"
    );

    let again = chain
        .payouts
        .pay(U256::from(7), to, U256::from(250_000))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&again),
        Some(PayoutsErrors::AlreadyPaid(Payouts::AlreadyPaid {
            id: U256::from(7)
        }))
    );
    let mined = chain
        .payouts
        .pay(U256::from(7), to, U256::from(250_000))
        .gas(GAS)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(!mined.status(), "a second payment of id 7 reverts on chain");
    assert_eq!(chain.balance(to).await?, U256::from(250_000));
    assert_eq!(chain.deposit_left().await?, U256::from(750_000));
    Ok(())
}

#[tokio::test]
async fn ids_in_the_same_bit_of_different_words_are_separate_payouts() -> anyhow::Result<()> {
    let chain = Chain::start(1_000).await?;
    let to = fresh_address();
    // 44, 300 = 256 + 44 and 2^64 + 44 share their low byte.
    let far = (U256::from(1) << 64) + U256::from(44);
    succeed(
        chain
            .payouts
            .pay(U256::from(44), to, U256::from(1))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    assert!(!chain.paid(300).await?);
    assert!(!chain.payouts.paid(far).call().await?);
    succeed(
        chain
            .payouts
            .pay(U256::from(300), to, U256::from(2))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    succeed(
        chain
            .payouts
            .pay(far, to, U256::from(4))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    assert!(
        chain.paid(44).await? && chain.paid(300).await? && chain.payouts.paid(far).call().await?
    );
    assert_eq!(chain.balance(to).await?, U256::from(7));
    Ok(())
}

#[tokio::test]
async fn only_the_payer_may_pay() -> anyhow::Result<()> {
    let chain = Chain::start(1_000).await?;
    let to = fresh_address();
    for someone in [&chain.owner, &chain.stranger] {
        let payouts = chain.payouts_as(someone);
        let single = payouts
            .pay(U256::from(1), to, U256::from(10))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            rejection(&single),
            Some(PayoutsErrors::NotPayer(Payouts::NotPayer {}))
        );
        let batch = payouts
            .payBatch(units(&[1]), vec![to], units(&[10]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            rejection(&batch),
            Some(PayoutsErrors::NotPayer(Payouts::NotPayer {}))
        );
        let mined = payouts
            .pay(U256::from(1), to, U256::from(10))
            .gas(GAS)
            .send()
            .await?
            .get_receipt()
            .await?;
        assert!(!mined.status());
    }
    assert_eq!(chain.balance(to).await?, U256::ZERO);
    assert!(
        !chain.paid(1).await?,
        "a refused payment does not use up the id"
    );

    succeed(
        chain
            .payouts
            .pay(U256::from(1), to, U256::from(10))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    assert_eq!(chain.balance(to).await?, U256::from(10));
    Ok(())
}

#[tokio::test]
async fn a_batch_skips_an_id_already_paid_and_pays_the_rest() -> anyhow::Result<()> {
    let chain = Chain::start(1_000).await?;
    let [a, b, c] = [fresh_address(), fresh_address(), fresh_address()];
    succeed(
        chain
            .payouts
            .pay(U256::from(2), a, U256::from(100))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;

    // Id 2 is paid already, and id 4 comes twice: both extra entries are skipped, not paid.
    let batch = chain.payouts.payBatch(
        units(&[1, 2, 3, 4, 4]),
        vec![a, b, c, a, b],
        units(&[10, 20, 30, 40, 50]),
    );
    let receipt = succeed(batch.send().await?.get_receipt().await?)?;
    let paid: Vec<_> = events::<Payouts::Paid>(&receipt)
        .into_iter()
        .map(|p| (p.id, p.to, p.amount))
        .collect();
    assert_eq!(
        paid,
        vec![
            (U256::from(1), a, U256::from(10)),
            (U256::from(3), c, U256::from(30)),
            (U256::from(4), a, U256::from(40)),
        ]
    );
    let skipped: Vec<_> = events::<Payouts::Skipped>(&receipt)
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(skipped, units(&[2, 4]));
    assert_eq!(chain.balance(a).await?, U256::from(150));
    assert_eq!(chain.balance(b).await?, U256::ZERO);
    assert_eq!(chain.balance(c).await?, U256::from(30));
    assert_eq!(chain.deposit_left().await?, U256::from(1_000 - 180));
    Ok(())
}

#[tokio::test]
async fn a_batch_with_lists_of_different_lengths_is_refused() -> anyhow::Result<()> {
    let chain = Chain::start(1_000).await?;
    let to = fresh_address();
    let error = chain
        .payouts
        .payBatch(units(&[1, 2]), vec![to], units(&[1, 2]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        rejection(&error),
        Some(PayoutsErrors::LengthMismatch(Payouts::LengthMismatch {}))
    );
    assert!(!chain.paid(1).await?);
    Ok(())
}

#[tokio::test]
async fn a_transfer_the_deposit_cannot_cover_reverts_and_leaves_the_ids_unpaid()
-> anyhow::Result<()> {
    let chain = Chain::start(100).await?;
    let [a, b] = [fresh_address(), fresh_address()];

    let batch = chain
        .payouts
        .payBatch(units(&[1, 2]), vec![a, b], units(&[60, 60]))
        .gas(GAS);
    let receipt = batch.send().await?.get_receipt().await?;
    assert!(
        !receipt.status(),
        "the second transfer fails, so the whole batch reverts"
    );
    let single = chain
        .payouts
        .pay(U256::from(3), a, U256::from(101))
        .gas(GAS);
    assert!(!single.send().await?.get_receipt().await?.status());
    for id in 1..=3 {
        assert!(!chain.paid(id).await?, "id {id} stays unpaid");
    }
    assert_eq!(chain.balance(a).await?, U256::ZERO);
    assert_eq!(chain.deposit_left().await?, U256::from(100));

    // Once topped up, the same batch pays.
    chain.mint(chain.owner.address, 20).await?;
    chain.deposit(20).await?;
    let batch = chain
        .payouts
        .payBatch(units(&[1, 2]), vec![a, b], units(&[60, 60]));
    succeed(batch.send().await?.get_receipt().await?)?;
    assert_eq!(
        (chain.balance(a).await?, chain.balance(b).await?),
        (U256::from(60), U256::from(60))
    );
    assert_eq!(chain.deposit_left().await?, U256::ZERO);
    Ok(())
}

#[tokio::test]
async fn only_the_owner_may_withdraw() -> anyhow::Result<()> {
    let chain = Chain::start(1_000).await?;
    for someone in [&chain.payer, &chain.stranger] {
        let payouts = chain.payouts_as(someone);
        let error = payouts
            .withdraw(someone.address, U256::from(1_000))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            rejection(&error),
            Some(PayoutsErrors::NotOwner(Payouts::NotOwner {}))
        );
        let mined = payouts
            .withdraw(someone.address, U256::from(1_000))
            .gas(GAS)
            .send()
            .await?;
        assert!(!mined.get_receipt().await?.status());
        assert_eq!(chain.balance(someone.address).await?, U256::ZERO);
    }
    assert_eq!(chain.deposit_left().await?, U256::from(1_000));

    let owner = chain.owner.address;
    let receipt = chain
        .payouts_as(&chain.owner)
        .withdraw(owner, U256::from(400))
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = succeed(receipt)?;
    assert_eq!(
        events::<Payouts::Withdrawn>(&receipt),
        vec![Payouts::Withdrawn {
            to: owner,
            amount: U256::from(400)
        }]
    );
    assert_eq!(chain.balance(owner).await?, U256::from(400));
    assert_eq!(chain.deposit_left().await?, U256::from(600));
    Ok(())
}
