//! Gas per payout (`cargo bench -p idlegrid-chain --bench gas`): the payouts contract on a fresh anvil,
//! paying one at a time and in batches of 10 and 100, to recipients that already hold the token and to
//! first-time recipients (a zero balance costs a fresh storage slot in the token). Each figure is the
//! transaction's whole `gasUsed` (base cost and calldata included) divided by its payouts. The ids are
//! consecutive in a bitmap word that an earlier payout already started, as a pool's sequence numbers are
//! 255 times out of 256. Prints a Markdown table for BENCHMARKS.md, and fails when a batched payout to a
//! holder costs more than the 40k gas goal. Gas does not depend on the machine, so `cargo test` runs it
//! in full.

#[path = "../tests/support/mod.rs"]
mod support;

use alloy::primitives::{Address, U256};
use support::{Chain, fresh_address, succeed, units};

const GOAL_PER_BATCHED_HOLDER_PAYOUT: u64 = 40_000;
const BATCHES: [usize; 3] = [1, 10, 100];
const AMOUNT: u64 = 1_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let chain = Chain::start(1_000_000_000_000).await?;
    let mut next_id = 0u64;
    // Starts bitmap word 0, as the pool's first payout did long ago.
    gas_per_payout(&chain, &mut next_id, &[fresh_address()]).await?;

    println!("| gas per payout | single | batch of 10 | batch of 100 |");
    println!("|---|---|---|---|");
    let mut holder_batched = 0;
    for holders in [true, false] {
        let mut row = Vec::new();
        for n in BATCHES {
            let recipients: Vec<Address> = (0..n).map(|_| fresh_address()).collect();
            if holders {
                for &r in &recipients {
                    chain.mint(r, 1).await?;
                }
            }
            let gas = gas_per_payout(&chain, &mut next_id, &recipients).await?;
            if holders && n > 1 {
                holder_batched = holder_batched.max(gas);
            }
            row.push(gas.to_string());
        }
        let who = if holders {
            "to a holder"
        } else {
            "first payout (zero balance)"
        };
        println!("| {who} | {} |", row.join(" | "));
    }
    anyhow::ensure!(
        holder_batched <= GOAL_PER_BATCHED_HOLDER_PAYOUT,
        "a batched payout to a holder costs {holder_batched} gas, over the {GOAL_PER_BATCHED_HOLDER_PAYOUT} goal"
    );
    Ok(())
}

/// Pays each recipient once (a single `pay` for one, else one `payBatch`), returning gas per payout.
async fn gas_per_payout(
    chain: &Chain,
    next_id: &mut u64,
    recipients: &[Address],
) -> anyhow::Result<u64> {
    let n = recipients.len() as u64;
    let ids: Vec<u64> = (*next_id..*next_id + n).collect();
    *next_id += n;
    let receipt = if let [to] = recipients {
        chain
            .payouts
            .pay(U256::from(ids[0]), *to, U256::from(AMOUNT))
            .send()
            .await?
            .get_receipt()
            .await?
    } else {
        let amounts = vec![AMOUNT; recipients.len()];
        let call = chain
            .payouts
            .payBatch(units(&ids), recipients.to_vec(), units(&amounts));
        call.send().await?.get_receipt().await?
    };
    let receipt = succeed(receipt)?;
    for &to in recipients {
        anyhow::ensure!(
            chain.balance(to).await? >= U256::from(AMOUNT),
            "{to} was not paid"
        );
    }
    Ok(receipt.gas_used / n)
}
