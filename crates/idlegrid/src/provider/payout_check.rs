//! The provider's own check of every payout a pool says it made on a chain, through an RPC of the
//! provider's choosing (the pool's by default): the chain is the one the pool named, the payment is in
//! the pool's token through the pool's contract, to an address this provider bound, for the payout's
//! amount, and the chain shows it with the confirmations asked for. Until then a payout is pending; a
//! signed payout the chain does not show is flagged not found and never counts as paid.

use std::time::Duration;

use idlegrid_chain::check::{Finding, check_payment};
use tokio::sync::watch;

use super::Provider;
use crate::ledger::{LedgerNews, PayoutToCheck};
use crate::onchain::PoolChain;

/// How often payouts still to confirm are looked at.
const EVERY: Duration = Duration::from_secs(2);

impl Provider {
    /// Checks payouts until `stop` turns true.
    pub(super) async fn check_payouts(&self, mut stop: watch::Receiver<bool>) {
        loop {
            self.check_payouts_now().await;
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = stop.wait_for(|&s| s) => return,
            }
        }
    }

    /// Checks every payout still to confirm once, now (the loop does it every few seconds).
    pub async fn check_payouts_now(&self) {
        let (to_check, chains) = {
            let ledger = crate::sync::lock(&self.ledger);
            match (ledger.payouts_to_check(), ledger.pool_chains()) {
                (Ok(to_check), Ok(chains)) => (to_check, chains),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot read the payouts to check");
                    return;
                }
            }
        };
        for payout in to_check {
            let Some((_, chain)) = chains.iter().find(|(pool, _)| *pool == payout.pool) else {
                continue;
            };
            let rpc = self.chain_rpc().unwrap_or_else(|| chain.rpc.clone());
            let finding = match self.find(&payout, chain, &rpc).await {
                Ok(finding) => finding,
                Err(error) => {
                    tracing::warn!(payout = %payout.id, %error, "cannot check a payout on chain yet");
                    continue;
                }
            };
            let ledger = crate::sync::lock(&self.ledger);
            match ledger.record_finding(&payout, &finding, &rpc) {
                Ok(changed) => {
                    if changed {
                        log_finding(&payout, &finding, &rpc, chain);
                    }
                    if changed || !payout.signed {
                        self.tell(|| Ok(ledger.payout(&payout.id)?.map(LedgerNews::Payout)));
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot record a payout's check"),
            }
        }
    }

    /// What the chain at `rpc` shows of `payout`, after the checks that need no chain.
    async fn find(
        &self,
        payout: &PayoutToCheck,
        chain: &PoolChain,
        rpc: &str,
    ) -> Result<Finding, idlegrid_chain::ChainError> {
        let Some(payment) = &payout.payment else {
            return Ok(Finding::NotFound(
                "the payout names no payment on a chain that could be checked".to_owned(),
            ));
        };
        let terms = &chain.terms;
        if (payment.chain_id, payment.contract, payment.token)
            != (terms.chain_id, terms.contract, terms.token)
        {
            return Ok(Finding::NotFound(format!(
                "the payout names chain {} contract {} token {}, not the pool's chain {} contract {} token {}",
                payment.chain_id,
                payment.contract,
                payment.token,
                terms.chain_id,
                terms.contract,
                terms.token
            )));
        }
        let to = payment.to.to_string();
        let own = crate::sync::lock(&self.ledger)
            .is_own_address(&to)
            .unwrap_or(false);
        if !own {
            return Ok(Finding::NotFound(format!(
                "the payout pays {to}, which is not an address this provider bound"
            )));
        }
        if !payment.matches(payout.amount) {
            return Ok(Finding::NotFound(format!(
                "the payout is for {} but its transfer is for {} units",
                payout.amount, payment.units
            )));
        }
        check_payment(rpc, terms, &payment.claim()).await
    }
}

fn log_finding(payout: &PayoutToCheck, finding: &Finding, rpc: &str, chain: &PoolChain) {
    let through = if rpc == chain.rpc {
        "checked through the pool's RPC"
    } else {
        "checked through this provider's RPC"
    };
    match finding {
        Finding::Confirmed {
            block,
            confirmations,
        } => {
            tracing::info!(payout = %payout.id, block, confirmations, "payout confirmed on chain ({through})");
        }
        Finding::Waiting { .. } => {}
        Finding::NotFound(why) => {
            tracing::warn!(payout = %payout.id, "payout not found on chain ({through}): {why}");
        }
    }
}
