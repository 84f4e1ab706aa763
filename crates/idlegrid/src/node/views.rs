//! What the window is shown: the serde types of docs/desktop-ipc.md, field for field. Amounts travel as
//! the ledger's decimal strings ("0.0005"), times as Unix milliseconds. The app passes these through
//! unchanged, so this file and the contract move together; the window's `ui/src/lib/types.ts` is
//! written from these types (`node::typescript`), and a test fails while it is behind them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::typescript::AmountText;
use crate::amount::Amount;
use crate::idle::{Pace, Preferences};
pub use crate::os_readings::Unreadable;
pub use crate::provider::PoolPath;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum StateKind {
    Off,
    Connecting,
    Waiting,
    Working,
    Paused,
    Error,
}

/// The one line the tray, the overview and the logs agree on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Status {
    pub kind: StateKind,
    /// The sentence to show: "Working: matmul", "Paused: you are using the computer".
    pub reason: String,
    pub since_ms: u64,
    /// The "Share when idle" toggle: the mode is not Off.
    pub sharing: bool,
    pub snoozed_until_ms: Option<u64>,
    /// Set while `kind` is working.
    pub job: Option<JobNow>,
    /// Earnings over the last hour.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub rate_per_hour: Amount,
    /// Earned since local midnight.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub today: Amount,
    /// Receipts not yet paid out.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub balance: Amount,
    /// How the pools are reached, when one is not direct: "1 of 3 pools relayed".
    pub network: Option<String>,
    /// "Why am I not earning?": the first reason that holds, `None` while earning.
    pub not_earning: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct JobNow {
    pub pool_id: String,
    pub pool_name: String,
    /// The job's name.
    pub job: String,
    /// Passes done over passes, 0 to 1; 0 while the provider does not report passes.
    pub progress: f64,
    /// Time the job has run so far.
    pub gpu_ms: u64,
    pub pace: Pace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Range {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EarningsView {
    pub range: Range,
    pub bucket_ms: u64,
    /// Oldest first, every bucket present; a pool that earned nothing in a bucket is left out of it.
    pub buckets: Vec<Bucket>,
    /// Totals within the range.
    pub pools: Vec<PoolTotal>,
    /// Within the range.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub total: Amount,
    /// All time.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub paid: Amount,
    /// All time, unpaid.
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub balance: Amount,
    /// Newest first.
    pub problems: Vec<Problem>,
    /// Unpaid checks this provider ran (all time), once judged.
    pub checks: ChecksView,
    /// The tokens the pools earned from (all time) pay in, by symbol: the unit of the totals when
    /// there is one and `iou` is false.
    pub symbols: Vec<String>,
    /// Some pool earned from pays IOUs: its payouts are its signed word, not paid on a chain.
    pub iou: bool,
}

/// The pools' checks of this provider: jobs whose answer the pool knew, mixed in unpaid to catch
/// wrong results, told to the provider only once judged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Checks"))]
pub struct ChecksView {
    pub passed: usize,
    pub failed: usize,
    /// Newest first, at most a screenful.
    pub recent: Vec<CheckView>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Check"))]
pub struct CheckView {
    pub at_ms: u64,
    pub pool_id: String,
    pub pool_name: String,
    pub job: String,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "EarningsBucket"))]
pub struct Bucket {
    pub start_ms: u64,
    #[serde(serialize_with = "crate::amount::as_decimal_map")]
    #[cfg_attr(test, ts(as = "BTreeMap<String, AmountText>"))]
    pub by_pool: BTreeMap<String, Amount>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PoolTotal {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub total: Amount,
    /// The token the pool pays in on a chain; absent for a pool that pays IOUs.
    pub symbol: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ProblemKind {
    Unpaid,
    TimedOut,
    Rejected,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Problem {
    pub at_ms: u64,
    pub pool_id: String,
    pub pool_name: String,
    pub job: String,
    pub kind: ProblemKind,
    pub reason: String,
}

/// Where a payout stands: the ledger's own status (pending, confirmed, not found, IOU).
pub use crate::ledger::PayoutStatus as PayoutState;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Payout"))]
pub struct PayoutView {
    pub id: String,
    pub at_ms: u64,
    pub pool_id: String,
    pub pool_name: String,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub amount: Amount,
    /// The token's symbol ("USDC") for a payout on a chain; absent for an IOU, which is in no token.
    pub symbol: Option<String>,
    /// Receipts it settled.
    pub receipts: usize,
    /// Whether the pool has signed it; a notice of a payout on its way is not signed yet. Only
    /// payouts whose signature was checked are stored signed.
    pub signature_verified: bool,
    pub status: PayoutState,
    /// How it was paid: "evm" on a chain, "statement" for an IOU ("ledger" for the demo).
    pub rail: String,
    /// What the pool wrote to identify the payment; for a payout on a chain, the fields below say it
    /// in parts.
    pub reference: String,
    pub chain_id: Option<u64>,
    /// The address paid.
    pub to: Option<String>,
    pub tx_hash: Option<String>,
    /// The transaction on the block explorer the pool's chain names, if it names one.
    pub explorer_url: Option<String>,
    pub block: Option<u64>,
    pub confirmations: Option<u64>,
    /// The last check asked the RPC the pool named, which a lying pool could run too.
    pub checked_through_pool: bool,
    /// Why it is not found on chain, or why it could not be checked yet.
    pub note: Option<String>,
}

/// A verified receipt that just arrived.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Earned {
    pub pool_id: String,
    pub job: String,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub amount: Amount,
    pub at_ms: u64,
}

/// The events of docs/desktop-ipc.md, each under the name the window listens for, with its payload.
/// The app sends only these, so a name cannot be misspelt on one side alone.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", content = "payload", rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum WindowEvent {
    /// The state, job progress, sharing or snooze changed.
    Status(Status),
    /// A verified receipt arrived.
    Earned(Earned),
    /// A verified payout arrived.
    Paid(PayoutView),
    /// Work failed, timed out or was rejected.
    Problem(Problem),
    /// A pool judged one of its checks.
    Checked(CheckView),
    /// A pool was joined, left, blocked, connected or lost.
    Pools(Vec<PoolView>),
    /// Every 2 s while the window is open.
    Hardware(Hardware),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Hardware {
    pub gpus: Vec<GpuView>,
    pub cpu: CpuView,
    pub memory: MemoryView,
    /// What this machine cannot tell, and why: each is unknown (null) above.
    pub unreadable: Vec<Unreadable>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Gpu"))]
pub struct GpuView {
    /// wgpu's adapter name; the key for share switches and benchmarks.
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    pub vram_bytes: Option<u64>,
    pub usage_percent: Option<f32>,
    pub temperature_c: Option<f32>,
    pub shared: bool,
    /// Last benchmark, kept across runs.
    pub score: Option<Score>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Cpu"))]
pub struct CpuView {
    pub name: String,
    pub cores: usize,
    /// Null where this machine cannot tell (see `Hardware.unreadable`).
    pub usage_percent: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Memory"))]
pub struct MemoryView {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Score {
    pub matmul_gflops: f64,
    pub copy_gbps: f64,
    /// Absent from scores kept before the benchmark measured embeddings.
    pub embeddings: Option<EmbeddingScore>,
    pub measured_at_ms: u64,
}

/// Sentence embeddings a second through the embedding kernels, and the model they are of (the
/// installed all-MiniLM-L6-v2, or the tiny random model "tiny-bert" where none is installed).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EmbeddingScore {
    pub per_second: f64,
    pub model: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum PoolState {
    Connected,
    Connecting,
    Unreachable,
    Blocked,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Pool"))]
pub struct PoolView {
    pub id: String,
    pub name: String,
    pub ticket: String,
    /// The in-process demo pool.
    pub local: bool,
    pub blocked: bool,
    pub state: PoolState,
    /// Set when unreachable.
    pub error: Option<String>,
    /// How the pool is reached: direct, relayed (and why) or unreachable, with the round-trip time.
    pub path: PoolPath,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub earned_total: Amount,
    #[serde(serialize_with = "crate::amount::as_decimal")]
    #[cfg_attr(test, ts(as = "AmountText"))]
    pub earned_today: Amount,
    pub joined_at_ms: u64,
    /// The token the pool pays in on a chain, once it has said; absent for a pool that pays IOUs.
    pub symbol: Option<String>,
}

/// Everything the settings page edits. Unknown or missing fields take their defaults, so settings saved
/// by an older app still load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Settings {
    pub preferences: Preferences,
    pub start_at_login: bool,
    pub notices: Notices,
    pub payout: PayoutSettings,
    pub network: NetworkSettings,
}

/// Where pools that pay on a chain send this machine's earnings, and whose RPC checks them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PayoutSettings {
    pub to: PayoutTo,
    /// The address pasted, used when `to` is `address`: 0x and 40 hex digits.
    pub address: String,
    /// Check payouts through this RPC URL instead of the one each pool names; empty for the pool's.
    pub chain_rpc: String,
    /// The address payouts go to now, filled in by the app (this machine's own account once made);
    /// absent when none is bound. Ignored when settings are saved.
    #[serde(skip_deserializing)]
    pub bound_address: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum PayoutTo {
    /// An account of this machine's own, its key kept in the OS keyring.
    #[default]
    OwnAccount,
    /// The address in `address`.
    Address,
    /// None: pools on a chain hold the balance until an address is set.
    None,
}

/// Settings → Network: the relay flags of the command line (`--relay URL`..., `--relay-ca FILE`,
/// `--no-relay`) for the app's providers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NetworkSettings {
    /// Relays of one's own, as URLs; none: the relays each pool's ticket names.
    pub relays: Vec<String>,
    /// A PEM file of the certificate authorities relays may be signed by (a self-hosted relay's).
    pub relay_ca: Option<String>,
    /// Direct addresses only: no relay.
    pub no_relay: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Notices {
    pub payouts: bool,
    pub about_to_start: bool,
}

impl Default for Notices {
    fn default() -> Self {
        Notices {
            payouts: true,
            about_to_start: true,
        }
    }
}
