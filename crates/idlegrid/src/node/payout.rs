//! Where the app's providers are paid on a chain: the person's choice in Settings → Payout address
//! (this machine's own account, an address they pasted, or none) made into the signed binding every
//! provider sends with its asks, the same way `idlegrid provide` makes it (`payout_address`). A
//! change reaches the running providers through one `watch`; the new binding carries a higher
//! sequence number, so pools pay the new address from then on.

use std::path::Path;

use iroh::SecretKey;

use crate::identity::KeyStore;
use crate::payout_address;
use crate::provider::PayoutTarget;
use crate::statement::{AddressBinding, Signed};

use super::ledger_view::LedgerView;
use super::settings as rules;
use super::views::PayoutSettings;
use super::{Node, NodeError, lock};

/// The binding and RPC `payout` asks for. The address bound is recorded in the ledger as this
/// provider's own first: the providers' checks accept payouts only to addresses recorded there.
pub(super) fn target(
    data_dir: &Path,
    store: &KeyStore,
    key: &SecretKey,
    ledger: &LedgerView,
    payout: &PayoutSettings,
) -> Result<PayoutTarget, NodeError> {
    let choice = rules::payout_choice(payout).map_err(NodeError::InvalidSettings)?;
    let binding = payout_address::binding(data_dir, store, key, &choice)?;
    match &binding {
        Some(binding) => {
            ledger.record_own_binding(binding)?;
            tracing::info!(address = %binding.body.address_hex(), seq = binding.body.seq, "payouts on a chain go to this address");
        }
        None => tracing::warn!(
            "no payout address: pools that pay on a chain hold this provider's balance until one is set"
        ),
    }
    Ok(PayoutTarget {
        binding,
        chain_rpc: rules::chain_rpc(payout),
    })
}

/// What the providers run with when the saved choice cannot be made into a binding at open (the
/// keyring locked, say): no address, so nothing is paid anywhere the person did not choose.
pub(super) fn fallback(payout: &PayoutSettings) -> PayoutTarget {
    PayoutTarget {
        binding: None,
        chain_rpc: rules::chain_rpc(payout),
    }
}

impl Node {
    /// The binding the providers send now, if any.
    pub fn payout_binding(&self) -> Option<Signed<AddressBinding>> {
        self.inner.payout.borrow().binding.clone()
    }

    /// Makes `payout` the providers' from their next ask on. Fails, changing nothing, when it cannot
    /// be bound.
    pub(super) fn apply_payout(&self, payout: &PayoutSettings) -> Result<(), NodeError> {
        let target = {
            let ledger = lock(&self.inner.ledger);
            target(
                &self.inner.data_dir,
                &self.inner.key_store,
                &self.inner.key,
                &ledger,
                payout,
            )?
        };
        self.inner.payout.send_if_modified(|current| {
            let changed = *current != target;
            *current = target;
            changed
        });
        Ok(())
    }

    /// `payout` with the address bound now filled in, as the settings page shows it.
    pub(super) fn with_bound_address(&self, mut payout: PayoutSettings) -> PayoutSettings {
        payout.bound_address = self
            .payout_binding()
            .map(|binding| binding.body.address_hex());
        payout
    }
}
