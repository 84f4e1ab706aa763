//! Signed statements a pool makes to a provider: a `Receipt` for each validated result, a `Payout`
//! that settles receipts, and a `Check` on each unpaid canary once it is judged; and the one a provider
//! makes to its pools, an `AddressBinding` naming where it wants to be paid on a chain. Each is signed
//! with its maker's identity key (ed25519, the iroh key) over a domain-separated encoding, so a
//! signature on one kind of statement can never pass as another.
//!
//! Ids are derived from content (a receipt's from its pool, job and provider), so a statement delivered
//! twice, after a crash or a reconnect, is recognisably the same statement and counts once.

use std::fmt;

use iroh::{PublicKey, SecretKey, Signature};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::amount::Amount;

/// A 32-byte content-derived id, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id(pub [u8; 32]);

impl Id {
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(text: &str) -> Option<Id> {
        blake3::Hash::from_hex(text).ok().map(|h| Id(*h.as_bytes()))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", &self.to_hex()[..12])
    }
}

/// The pool's word that `provider` did `job` correctly and is owed `amount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub pool: PublicKey,
    pub provider: PublicKey,
    pub job: Id,
    pub job_name: String,
    pub amount: Amount,
    /// BLAKE3 over the outputs the quorum agreed on.
    pub output_hash: Id,
    /// Milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
}

/// The pool's word that the listed receipts are settled: `amount` (their sum) was paid over `rail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub pool: PublicKey,
    pub provider: PublicKey,
    pub receipts: Vec<Id>,
    pub amount: Amount,
    /// The settlement rail's name ("ledger" for the first one, which only records the statement).
    pub rail: String,
    /// The rail's own reference for the transfer.
    pub reference: String,
    pub issued_at_ms: u64,
}

/// The pool's word on a check: a job whose answer the pool knew (a canary), mixed into the provider's
/// work unpaid, and whether the provider's result was right. Sent only once the result is judged, so
/// a provider cannot tell a check from paid work while it runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub pool: PublicKey,
    pub provider: PublicKey,
    pub job: Id,
    pub job_name: String,
    pub passed: bool,
    pub issued_at_ms: u64,
}

/// The provider's word that its payouts go to `address` (a 20-byte EVM address) from now on. A binding
/// with a higher `seq` replaces any earlier one, so a person can change the address and a pool that
/// sees an old binding replayed keeps the newer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBinding {
    pub provider: PublicKey,
    pub address: [u8; 20],
    pub seq: u64,
    pub issued_at_ms: u64,
}

impl AddressBinding {
    /// The address as people write it: `0x` and 40 hex digits.
    pub fn address_hex(&self) -> String {
        hex_address(&self.address)
    }
}

/// `0x` and 40 lowercase hex digits.
pub fn hex_address(address: &[u8; 20]) -> String {
    let mut out = String::from("0x");
    for byte in address {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A statement kind: what it is called in the signed bytes, who signs it, and its id.
pub trait Statement: Serialize + DeserializeOwned + PartialEq {
    const DOMAIN: &'static str;
    fn signer(&self) -> PublicKey;
    fn id(&self) -> Id;
    /// When it was signed; not part of the id, so the same statement re-signed later is the same.
    fn issued_at_ms(&self) -> u64;
    fn set_issued_at_ms(&mut self, ms: u64);

    /// What it is called in messages: "receipt", "payout".
    fn kind() -> &'static str {
        Self::DOMAIN
            .trim_start_matches("idlegrid/")
            .split('/')
            .next()
            .unwrap_or("statement")
    }
}

impl Receipt {
    /// The id a receipt for this pool, job and provider has, whenever and however often it is issued.
    pub fn id_for(pool: &PublicKey, job: &Id, provider: &PublicKey) -> Id {
        let mut hasher = blake3::Hasher::new_derive_key("idlegrid receipt id v1");
        hasher
            .update(pool.as_bytes())
            .update(&job.0)
            .update(provider.as_bytes());
        Id(*hasher.finalize().as_bytes())
    }
}

impl Statement for Receipt {
    const DOMAIN: &'static str = "idlegrid/receipt/1";
    fn signer(&self) -> PublicKey {
        self.pool
    }
    fn id(&self) -> Id {
        Receipt::id_for(&self.pool, &self.job, &self.provider)
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn set_issued_at_ms(&mut self, ms: u64) {
        self.issued_at_ms = ms;
    }
}

impl Statement for Payout {
    const DOMAIN: &'static str = "idlegrid/payout/1";
    fn signer(&self) -> PublicKey {
        self.pool
    }
    fn id(&self) -> Id {
        let mut hasher = blake3::Hasher::new_derive_key("idlegrid payout id v1");
        hasher
            .update(self.pool.as_bytes())
            .update(self.provider.as_bytes());
        for receipt in &self.receipts {
            hasher.update(&receipt.0);
        }
        Id(*hasher.finalize().as_bytes())
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn set_issued_at_ms(&mut self, ms: u64) {
        self.issued_at_ms = ms;
    }
}

impl Statement for Check {
    const DOMAIN: &'static str = "idlegrid/check/1";
    fn signer(&self) -> PublicKey {
        self.pool
    }
    fn id(&self) -> Id {
        let mut hasher = blake3::Hasher::new_derive_key("idlegrid check id v1");
        hasher
            .update(self.pool.as_bytes())
            .update(&self.job.0)
            .update(self.provider.as_bytes());
        Id(*hasher.finalize().as_bytes())
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn set_issued_at_ms(&mut self, ms: u64) {
        self.issued_at_ms = ms;
    }
}

impl Statement for AddressBinding {
    const DOMAIN: &'static str = "idlegrid/address/1";
    fn signer(&self) -> PublicKey {
        self.provider
    }
    /// One id per provider and sequence number.
    fn id(&self) -> Id {
        let mut hasher = blake3::Hasher::new_derive_key("idlegrid address binding id v1");
        hasher
            .update(self.provider.as_bytes())
            .update(&self.seq.to_le_bytes());
        Id(*hasher.finalize().as_bytes())
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
    fn set_issued_at_ms(&mut self, ms: u64) {
        self.issued_at_ms = ms;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("the {kind} is signed by {signer}, not by {expected}")]
    WrongSigner {
        kind: &'static str,
        signer: String,
        expected: String,
    },
    #[error("the {kind}'s signature does not verify: it was forged or altered")]
    BadSignature { kind: &'static str },
    #[error("malformed {kind}: {message}")]
    Malformed { kind: &'static str, message: String },
}

/// A statement with its signer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub body: T,
    pub signature: Signature,
}

impl<T: Statement> Signed<T> {
    /// Signs `body`; `key` must be the key of `body.signer()`.
    pub fn sign(body: T, key: &SecretKey) -> Signed<T> {
        debug_assert_eq!(key.public(), body.signer());
        let signature = key.sign(&signing_bytes(&body));
        Signed { body, signature }
    }

    /// Checks that `expected` signed exactly this body.
    pub fn verify(&self, expected: &PublicKey) -> Result<(), StatementError> {
        let kind = T::kind();
        let signer = self.body.signer();
        if signer != *expected {
            return Err(StatementError::WrongSigner {
                kind,
                signer: signer.to_string(),
                expected: expected.to_string(),
            });
        }
        signer
            .verify(&signing_bytes(&self.body), &self.signature)
            .map_err(|_| StatementError::BadSignature { kind })
    }

    pub fn id(&self) -> Id {
        self.body.id()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Signed<T>, StatementError> {
        postcard::from_bytes(bytes).map_err(|e| StatementError::Malformed {
            kind: T::kind(),
            message: e.to_string(),
        })
    }
}

fn signing_bytes<T: Statement>(body: &T) -> Vec<u8> {
    let mut bytes = T::DOMAIN.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend(postcard::to_allocvec(body).unwrap_or_default());
    bytes
}

/// Milliseconds since the Unix epoch, for statement times.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(pool: &SecretKey, provider: PublicKey) -> Receipt {
        Receipt {
            pool: pool.public(),
            provider,
            job: Id([7; 32]),
            job_name: "matmul".into(),
            amount: Amount::from_micros(500),
            output_hash: Id([9; 32]),
            issued_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn signed_receipt_verifies_and_round_trips() {
        let pool = SecretKey::generate();
        let signed = Signed::sign(receipt(&pool, SecretKey::generate().public()), &pool);
        signed.verify(&pool.public()).unwrap();
        let decoded = Signed::<Receipt>::from_bytes(&signed.to_bytes()).unwrap();
        assert_eq!(decoded, signed);
        decoded.verify(&pool.public()).unwrap();
    }

    #[test]
    fn altered_or_forged_receipts_are_refused() {
        let pool = SecretKey::generate();
        let provider = SecretKey::generate().public();
        let mut altered = Signed::sign(receipt(&pool, provider), &pool);
        altered.body.amount = Amount::from_micros(5_000_000);
        assert_eq!(
            altered.verify(&pool.public()),
            Err(StatementError::BadSignature { kind: "receipt" })
        );

        // Signed by someone else, claiming to be from the pool.
        let forger = SecretKey::generate();
        let mut forged = Signed::sign(receipt(&forger, provider), &forger);
        forged.body.pool = pool.public();
        assert!(matches!(
            forged.verify(&pool.public()),
            Err(StatementError::BadSignature { .. })
        ));
        // Honestly signed by another pool.
        let other = Signed::sign(receipt(&forger, provider), &forger);
        assert!(matches!(
            other.verify(&pool.public()),
            Err(StatementError::WrongSigner { .. })
        ));
    }

    #[test]
    fn a_receipt_signature_does_not_pass_as_a_payout() {
        // Same bytes under another domain must not verify.
        let pool = SecretKey::generate();
        let body = receipt(&pool, SecretKey::generate().public());
        let signature = pool.sign(&postcard::to_allocvec(&body).unwrap());
        assert!(Signed { body, signature }.verify(&pool.public()).is_err());
    }

    #[test]
    fn receipt_ids_depend_on_pool_job_and_provider_only() {
        let pool = SecretKey::generate();
        let provider = SecretKey::generate().public();
        let a = receipt(&pool, provider);
        let mut later = a.clone();
        later.issued_at_ms += 1000;
        assert_eq!(a.id(), later.id());
        let mut other_job = a.clone();
        other_job.job = Id([8; 32]);
        assert_ne!(a.id(), other_job.id());
    }
}
