//! Payouts on a real anvil chain (started by each test on 127.0.0.1, on a port the system picks), driven
//! through the pool's API as its network handlers would, and through the provider's own checks: no
//! iroh, no GPU work. Each fault ends with exactly one transfer per payout and nothing lost.

#[path = "../common/mod.rs"]
mod common;

mod harness;
mod pool_faults;
mod proof;
mod provider_checks;
