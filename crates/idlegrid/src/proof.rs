//! Proof of earnings: a provider's pool-signed receipts and payouts and its own address bindings in one
//! file, which anyone can check with nothing but the file (and, for payouts on a chain, an RPC of
//! their own): every signature, that each payout settles receipts in the file exactly once and adds
//! up, that each chain payout pays an address the provider bound, and, where an RPC for its chain is
//! given, that the chain shows the transfer.

use std::collections::{BTreeMap, HashMap, HashSet};

use idlegrid_chain::check::{Finding, check_payment};
use iroh::PublicKey;
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::ledger::SignedStatements;
use crate::onchain::{ChainPayment, IOU_RAIL};
use crate::statement::{AddressBinding, Id, Payout, Receipt, Signed, Statement};

const VERSION: u32 = 1;

/// The file `idlegrid earnings --proof` writes: statements as hex of their signed bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub version: u32,
    pub provider: String,
    pub receipts: Vec<SignedEntry>,
    pub payouts: Vec<SignedEntry>,
    pub bindings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    /// The key that signed it: the pool.
    pub signer: String,
    pub signed: String,
}

impl SignedEntry {
    pub fn new<T: Statement>(statement: &Signed<T>) -> SignedEntry {
        SignedEntry {
            signer: statement.body.signer().to_string(),
            signed: hex(&statement.to_bytes()),
        }
    }
}

impl ProofBundle {
    pub fn new(provider: &PublicKey, statements: &SignedStatements) -> ProofBundle {
        let entries = |list: &[(String, Vec<u8>)]| {
            list.iter()
                .map(|(signer, bytes)| SignedEntry {
                    signer: signer.clone(),
                    signed: hex(bytes),
                })
                .collect()
        };
        ProofBundle {
            version: VERSION,
            provider: provider.to_string(),
            receipts: entries(&statements.receipts),
            payouts: entries(&statements.payouts),
            bindings: statements.bindings.iter().map(|b| hex(b)).collect(),
        }
    }
}

/// What one pool signed: earned in receipts, and paid by what it was paid in ("tUSD on chain 31337",
/// or "IOU").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    #[serde(serialize_with = "crate::amount::as_decimal")]
    pub earned: Amount,
    #[serde(serialize_with = "crate::amount::as_decimal_map")]
    pub paid: BTreeMap<String, Amount>,
}

/// What checking a bundle found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub provider: String,
    /// By pool.
    pub totals: BTreeMap<String, Totals>,
    /// Chains with payouts no RPC was given for: their transfers are unchecked.
    pub unchecked_chains: Vec<u64>,
    /// Everything that does not hold, each naming the statement.
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut out = format!("provider {}\n", self.provider);
        for (pool, totals) in &self.totals {
            out += &format!("pool {pool}: earned {}\n", totals.earned);
            for (unit, paid) in &totals.paid {
                out += &format!("  paid {paid} ({unit})\n");
            }
        }
        for chain in &self.unchecked_chains {
            out += &format!("chain {chain}: transfers not checked (no --rpc for it)\n");
        }
        if self.holds() {
            out += "every signature and payout holds\n";
        }
        for problem in &self.problems {
            out += &format!("does not hold: {problem}\n");
        }
        out
    }
}

/// Checks every signature and sum in `bundle`; chain payouts are checked on chain for each chain an
/// RPC in `rpcs` serves.
pub async fn verify(bundle: &ProofBundle, rpcs: &[String]) -> Verdict {
    let mut verdict = Verdict {
        provider: bundle.provider.clone(),
        ..Verdict::default()
    };
    let Ok(provider) = bundle.provider.parse::<PublicKey>() else {
        verdict
            .problems
            .push(format!("{:?} is not a provider key", bundle.provider));
        return verdict;
    };
    if bundle.version != VERSION {
        verdict
            .problems
            .push(format!("unknown bundle version {}", bundle.version));
        return verdict;
    }
    let addresses = bound_addresses(bundle, &provider, &mut verdict.problems);
    let receipts = receipts(bundle, &provider, &mut verdict);
    let mut chains = ChainRpcs::new(rpcs).await;
    let mut settled = HashSet::new();
    for (index, entry) in bundle.payouts.iter().enumerate() {
        let name = format!("payout {}", index + 1);
        let Some(payout) = signed::<Payout>(entry, &provider, &name, &mut verdict.problems) else {
            continue;
        };
        check_payout(
            &payout,
            &name,
            &receipts,
            &mut settled,
            &mut verdict.problems,
        );
        let unit = match ChainPayment::of(&payout.body) {
            Some(payment) => {
                if !addresses.contains(&payment.to.0.0) {
                    verdict.problems.push(format!(
                        "{name} pays {}, an address the provider never bound",
                        payment.to
                    ));
                }
                if let Some(problem) = chains.check(&payment, payout.body.amount, &name).await {
                    verdict.problems.push(problem);
                }
                format!("{} on chain {}", payment.symbol, payment.chain_id)
            }
            None if payout.body.rail == IOU_RAIL => "IOU".to_owned(),
            None => {
                verdict
                    .problems
                    .push(format!("{name} names no payment that can be checked"));
                continue;
            }
        };
        let paid = verdict
            .totals
            .entry(payout.body.pool.to_string())
            .or_default()
            .paid
            .entry(unit)
            .or_default();
        *paid = paid.saturating_add(payout.body.amount);
    }
    verdict.unchecked_chains = chains.unchecked();
    verdict
}

/// The receipts by id, after checking each; their sums go into the totals.
fn receipts(
    bundle: &ProofBundle,
    provider: &PublicKey,
    verdict: &mut Verdict,
) -> HashMap<Id, Signed<Receipt>> {
    let mut receipts = HashMap::new();
    for (index, entry) in bundle.receipts.iter().enumerate() {
        let name = format!("receipt {}", index + 1);
        if let Some(receipt) = signed::<Receipt>(entry, provider, &name, &mut verdict.problems) {
            let earned = &mut verdict
                .totals
                .entry(receipt.body.pool.to_string())
                .or_default()
                .earned;
            *earned = earned.saturating_add(receipt.body.amount);
            receipts.insert(receipt.id(), receipt);
        }
    }
    receipts
}

fn check_payout(
    payout: &Signed<Payout>,
    name: &str,
    receipts: &HashMap<Id, Signed<Receipt>>,
    settled: &mut HashSet<Id>,
    problems: &mut Vec<String>,
) {
    let mut sum = Amount::ZERO;
    for id in &payout.body.receipts {
        match receipts.get(id) {
            Some(receipt) if receipt.body.pool == payout.body.pool => {
                sum = sum.saturating_add(receipt.body.amount);
            }
            _ => problems.push(format!(
                "{name} settles receipt {id}, which the bundle lacks"
            )),
        }
        if !settled.insert(*id) {
            problems.push(format!("{name} settles receipt {id} a second time"));
        }
    }
    if sum != payout.body.amount {
        problems.push(format!(
            "{name} is for {} but its receipts add up to {sum}",
            payout.body.amount
        ));
    }
}

/// The addresses the provider bound, from its signed bindings.
fn bound_addresses(
    bundle: &ProofBundle,
    provider: &PublicKey,
    problems: &mut Vec<String>,
) -> HashSet<[u8; 20]> {
    bundle
        .bindings
        .iter()
        .enumerate()
        .filter_map(|(index, text)| {
            let name = format!("address binding {}", index + 1);
            let entry = SignedEntry {
                signer: provider.to_string(),
                signed: text.clone(),
            };
            signed::<AddressBinding>(&entry, provider, &name, problems)
        })
        .map(|binding| binding.body.address)
        .collect()
}

/// Decodes and verifies one statement; it must be about (or, for a binding, by) `provider`.
fn signed<T: Statement + Subject>(
    entry: &SignedEntry,
    provider: &PublicKey,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<Signed<T>> {
    let Some(bytes) = unhex(&entry.signed) else {
        problems.push(format!("{name} is not hex"));
        return None;
    };
    let statement = match Signed::<T>::from_bytes(&bytes) {
        Ok(statement) => statement,
        Err(error) => {
            problems.push(format!("{name}: {error}"));
            return None;
        }
    };
    let Ok(signer) = entry.signer.parse::<PublicKey>() else {
        problems.push(format!("{name} names no signer key"));
        return None;
    };
    if let Err(error) = statement.verify(&signer) {
        problems.push(format!("{name}: {error}"));
        return None;
    }
    if statement.body.subject() != *provider {
        problems.push(format!("{name} is about another provider"));
        return None;
    }
    Some(statement)
}

/// Whom a statement is about.
trait Subject {
    fn subject(&self) -> PublicKey;
}

impl Subject for Receipt {
    fn subject(&self) -> PublicKey {
        self.provider
    }
}

impl Subject for Payout {
    fn subject(&self) -> PublicKey {
        self.provider
    }
}

impl Subject for AddressBinding {
    fn subject(&self) -> PublicKey {
        self.provider
    }
}

/// The RPCs given, by the chain each serves; and the chains met without one.
struct ChainRpcs {
    by_chain: HashMap<u64, String>,
    unchecked: std::collections::BTreeSet<u64>,
}

impl ChainRpcs {
    async fn new(rpcs: &[String]) -> ChainRpcs {
        let mut by_chain = HashMap::new();
        for rpc in rpcs {
            match idlegrid_chain::check::chain_id(rpc).await {
                Ok(id) => {
                    by_chain.insert(id, rpc.clone());
                }
                Err(error) => tracing::warn!(%error, "an RPC given does not answer"),
            }
        }
        ChainRpcs {
            by_chain,
            unchecked: Default::default(),
        }
    }

    /// What is wrong with `payment` on chain, if an RPC for its chain was given.
    async fn check(
        &mut self,
        payment: &ChainPayment,
        amount: Amount,
        name: &str,
    ) -> Option<String> {
        if !payment.matches(amount) {
            return Some(format!("{name}'s transfer is not its amount"));
        }
        let Some(rpc) = self.by_chain.get(&payment.chain_id) else {
            self.unchecked.insert(payment.chain_id);
            return None;
        };
        match check_payment(rpc, &payment.terms(1), &payment.claim()).await {
            Ok(Finding::Confirmed { .. }) => None,
            Ok(Finding::Waiting { .. }) => Some(format!(
                "{name}: transaction {} is not in a block yet",
                payment.tx_hash
            )),
            Ok(Finding::NotFound(why)) => Some(format!("{name}: {why}")),
            Err(error) => Some(format!("{name}: {error}")),
        }
    }

    fn unchecked(&self) -> Vec<u64> {
        self.unchecked.iter().copied().collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
