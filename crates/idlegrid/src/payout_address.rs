//! Where a provider is paid on a chain: an account of its own, whose secp256k1 key is kept like the
//! identity (OS keyring, or an owner-only file), or an address the person pasted. Either way the
//! provider signs a binding of its identity to the address, with a sequence number that grows when the
//! address changes, so pools pay only the latest address.
//!
//! `DATA_DIR/payout-address.json` remembers the address bound last and its sequence number.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::identity::{self, IdentityError, KeySlot, KeyStore};
use crate::statement::{AddressBinding, Signed, hex_address, now_ms};

/// The provider's payout account key, beside its identity.
pub const PAYOUT_ACCOUNT: KeySlot = KeySlot {
    what: "payout account",
    file: "payout.key",
    user: "payout",
    generate: idlegrid_chain::new_account_key,
};

const STATE_FILE: &str = "payout-address.json";

/// Which address to be paid at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutChoice {
    /// This provider's own account, made on first use.
    OwnAccount,
    /// An address the person gave.
    Address([u8; 20]),
    /// No address: the person declined; pools hold the balance.
    Declined,
}

impl PayoutChoice {
    /// The choice a person made, on the command line or in the app's settings: declined, an address
    /// typed or pasted (checked here, surrounding spaces allowed), or, with neither, this provider's
    /// own account.
    pub fn from_input(address: Option<&str>, declined: bool) -> Result<PayoutChoice, String> {
        match (address, declined) {
            (_, true) => Ok(PayoutChoice::Declined),
            (Some(text), false) => crate::onchain::parse_address(text).map(PayoutChoice::Address),
            (None, false) => Ok(PayoutChoice::OwnAccount),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayoutAddressError {
    #[error(transparent)]
    Key(#[from] IdentityError),
    #[error(transparent)]
    Chain(#[from] idlegrid_chain::ChainError),
    #[error("cannot keep the payout address in {path}: {source}")]
    State {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Bound {
    address: String,
    seq: u64,
}

/// The binding to send with asks, signed by `identity`; `None` when the person declined.
pub fn binding(
    data_dir: &Path,
    store: &KeyStore,
    identity: &iroh::SecretKey,
    choice: &PayoutChoice,
) -> Result<Option<Signed<AddressBinding>>, PayoutAddressError> {
    let address = match choice {
        PayoutChoice::Declined => return Ok(None),
        PayoutChoice::Address(address) => *address,
        PayoutChoice::OwnAccount => own_address(data_dir, store)?,
    };
    let seq = sequence_for(data_dir, &address)?;
    let body = AddressBinding {
        provider: identity.public(),
        address,
        seq,
        issued_at_ms: now_ms(),
    };
    Ok(Some(Signed::sign(body, identity)))
}

/// The address of this provider's own payout account (made now if it has none).
pub fn own_address(data_dir: &Path, store: &KeyStore) -> Result<[u8; 20], PayoutAddressError> {
    let (key, _) = identity::load_or_create_key(data_dir, store, &PAYOUT_ACCOUNT)?;
    Ok(idlegrid_chain::account_address(&key)?.0.0)
}

/// The address this provider bound last, if any.
pub fn bound_address(data_dir: &Path) -> Option<[u8; 20]> {
    let bytes = std::fs::read(data_dir.join(STATE_FILE)).ok()?;
    let bound: Bound = serde_json::from_slice(&bytes).ok()?;
    crate::onchain::parse_address(&bound.address).ok()
}

/// The sequence number for binding `address`: the last one if it is the address bound last, a
/// higher one otherwise.
fn sequence_for(data_dir: &Path, address: &[u8; 20]) -> Result<u64, PayoutAddressError> {
    let path = data_dir.join(STATE_FILE);
    let text = hex_address(address);
    let last: Option<Bound> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(last) = &last
        && last.address == text
    {
        return Ok(last.seq);
    }
    // Time-based, so a binding made after a lost state file still outranks the older ones.
    let seq = now_ms().max(last.map_or(0, |l| l.seq + 1));
    let state = serde_json::to_vec(&Bound { address: text, seq }).unwrap_or_default();
    crate::atomic_file::write(&path, &state).map_err(|source| PayoutAddressError::State {
        path: path.display().to_string(),
        source,
    })?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_address_outranks_the_old_and_the_same_keeps_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let key = iroh::SecretKey::generate();
        let store = KeyStore::FileOnly;
        let a = PayoutChoice::Address([1; 20]);
        let b = PayoutChoice::Address([2; 20]);
        let first = binding(dir.path(), &store, &key, &a).unwrap().unwrap();
        let again = binding(dir.path(), &store, &key, &a).unwrap().unwrap();
        assert_eq!(first.body.seq, again.body.seq);
        let changed = binding(dir.path(), &store, &key, &b).unwrap().unwrap();
        assert!(changed.body.seq > first.body.seq);
        changed.verify(&key.public()).unwrap();
        assert_eq!(
            binding(dir.path(), &store, &key, &PayoutChoice::Declined).unwrap(),
            None
        );
    }

    #[test]
    fn input_becomes_a_choice_or_a_reason() {
        let address = "0x000000000000000000000000000000000000dEaD";
        let mut dead = [0; 20];
        dead[18..].copy_from_slice(&[0xde, 0xad]);
        assert_eq!(
            PayoutChoice::from_input(Some(address), false),
            Ok(PayoutChoice::Address(dead))
        );
        // An address given empty is a mistake, not a wish for an account of its own.
        assert!(PayoutChoice::from_input(Some(" "), false).is_err());
        assert_eq!(
            PayoutChoice::from_input(None, false),
            Ok(PayoutChoice::OwnAccount)
        );
        assert_eq!(
            PayoutChoice::from_input(Some(address), true),
            Ok(PayoutChoice::Declined)
        );
        let refused = PayoutChoice::from_input(Some("0xdead"), false).unwrap_err();
        assert!(refused.contains("not an address"), "{refused}");
    }

    #[test]
    fn the_own_account_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = own_address(dir.path(), &KeyStore::FileOnly).unwrap();
        let again = own_address(dir.path(), &KeyStore::FileOnly).unwrap();
        assert_eq!(first, again);
        assert!(dir.path().join("payout.key").exists());
    }
}
