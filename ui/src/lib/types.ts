// Written by crates/idlegrid/src/node/typescript.rs from the Rust types the app sends (the views of
// docs/desktop-ipc.md); do not edit. `IDLEGRID_WRITE_TYPES=1 cargo test -p idlegrid --lib typescript`
// writes it again, and that test fails while this file is not what the types make.

/** A decimal string in the pool's currency, shown exactly as given ("0.0005"). */
export type Amount = string;

export type StateKind = "off" | "connecting" | "waiting" | "working" | "paused" | "error";

/**
 * The one line the tray, the overview and the logs agree on.
 */
export type Status = {
  kind: StateKind,
  /**
   * The sentence to show: "Working: matmul", "Paused: you are using the computer".
   */
  reason: string,
  since_ms: number,
  /**
   * The "Share when idle" toggle: the mode is not Off.
   */
  sharing: boolean,
  snoozed_until_ms: number | null,
  /**
   * Set while `kind` is working.
   */
  job: JobNow | null,
  /**
   * Earnings over the last hour.
   */
  rate_per_hour: Amount,
  /**
   * Earned since local midnight.
   */
  today: Amount,
  /**
   * Receipts not yet paid out.
   */
  balance: Amount,
  /**
   * How the pools are reached, when one is not direct: "1 of 3 pools relayed".
   */
  network: string | null,
  /**
   * "Why am I not earning?": the first reason that holds, `None` while earning.
   */
  not_earning: string | null,
};

/**
 * How hard to work while running.
 */
export type Pace = "full" | "gentle";

export type JobNow = {
  pool_id: string,
  pool_name: string,
  /**
   * The job's name.
   */
  job: string,
  /**
   * Passes done over passes, 0 to 1; 0 while the provider does not report passes.
   */
  progress: number,
  /**
   * Time the job has run so far.
   */
  gpu_ms: number,
  pace: Pace,
};

export type Range = "24h" | "7d" | "30d";

export type EarningsBucket = {
  start_ms: number,
  by_pool: { [key in string]: Amount },
};

export type PoolTotal = {
  id: string,
  name: string,
  total: Amount,
  /**
   * The token the pool pays in on a chain; absent for a pool that pays IOUs.
   */
  symbol: string | null,
};

export type EarningsView = {
  range: Range,
  bucket_ms: number,
  /**
   * Oldest first, every bucket present; a pool that earned nothing in a bucket is left out of it.
   */
  buckets: Array<EarningsBucket>,
  /**
   * Totals within the range.
   */
  pools: Array<PoolTotal>,
  /**
   * Within the range.
   */
  total: Amount,
  /**
   * All time.
   */
  paid: Amount,
  /**
   * All time, unpaid.
   */
  balance: Amount,
  /**
   * Newest first.
   */
  problems: Array<Problem>,
  /**
   * Unpaid checks this provider ran (all time), once judged.
   */
  checks: Checks,
  /**
   * The tokens the pools earned from (all time) pay in, by symbol: the unit of the totals when
   * there is one and `iou` is false.
   */
  symbols: Array<string>,
  /**
   * Some pool earned from pays IOUs: its payouts are its signed word, not paid on a chain.
   */
  iou: boolean,
};

export type Check = {
  at_ms: number,
  pool_id: string,
  pool_name: string,
  job: string,
  passed: boolean,
};

/**
 * The pools' checks of this provider: jobs whose answer the pool knew, mixed in unpaid to catch
 * wrong results, told to the provider only once judged.
 */
export type Checks = {
  passed: number,
  failed: number,
  /**
   * Newest first, at most a screenful.
   */
  recent: Array<Check>,
};

export type ProblemKind = "unpaid" | "timed_out" | "rejected" | "failed";

export type Problem = {
  at_ms: number,
  pool_id: string,
  pool_name: string,
  job: string,
  kind: ProblemKind,
  reason: string,
};

/**
 * Where a payout stands, as the provider sees it (the window calls it `PayoutState`).
 */
export type PayoutState = "pending" | "confirmed" | "not_found" | "iou";

export type Payout = {
  id: string,
  at_ms: number,
  pool_id: string,
  pool_name: string,
  amount: Amount,
  /**
   * The token's symbol ("USDC") for a payout on a chain; absent for an IOU, which is in no token.
   */
  symbol: string | null,
  /**
   * Receipts it settled.
   */
  receipts: number,
  /**
   * Whether the pool has signed it; a notice of a payout on its way is not signed yet. Only
   * payouts whose signature was checked are stored signed.
   */
  signature_verified: boolean,
  status: PayoutState,
  /**
   * How it was paid: "evm" on a chain, "statement" for an IOU ("ledger" for the demo).
   */
  rail: string,
  /**
   * What the pool wrote to identify the payment; for a payout on a chain, the fields below say it
   * in parts.
   */
  reference: string,
  chain_id: number | null,
  /**
   * The address paid.
   */
  to: string | null,
  tx_hash: string | null,
  /**
   * The transaction on the block explorer the pool's chain names, if it names one.
   */
  explorer_url: string | null,
  block: number | null,
  confirmations: number | null,
  /**
   * The last check asked the RPC the pool named, which a lying pool could run too.
   */
  checked_through_pool: boolean,
  /**
   * Why it is not found on chain, or why it could not be checked yet.
   */
  note: string | null,
};

export type Hardware = {
  gpus: Array<Gpu>,
  cpu: Cpu,
  memory: Memory,
  /**
   * What this machine cannot tell, and why: each is unknown (null) above.
   */
  unreadable: Array<Unreadable>,
};

export type Cpu = {
  name: string,
  cores: number,
  /**
   * Null where this machine cannot tell (see `Hardware.unreadable`).
   */
  usage_percent: number | null,
};

export type Memory = {
  total_bytes: number,
  used_bytes: number,
};

/**
 * A reading this machine cannot give, and why: shown where the reading would be.
 */
export type Unreadable = {
  reading: string,
  reason: string,
};

export type Gpu = {
  /**
   * wgpu's adapter name; the key for share switches and benchmarks.
   */
  adapter: string,
  backend: string,
  device_type: string,
  vram_bytes: number | null,
  usage_percent: number | null,
  temperature_c: number | null,
  shared: boolean,
  /**
   * Last benchmark, kept across runs.
   */
  score: Score | null,
};

export type Score = {
  matmul_gflops: number,
  copy_gbps: number,
  /**
   * Absent from scores kept before the benchmark measured embeddings.
   */
  embeddings: EmbeddingScore | null,
  measured_at_ms: number,
};

/**
 * Sentence embeddings a second through the embedding kernels, and the model they are of (the
 * installed all-MiniLM-L6-v2, or the tiny random model "tiny-bert" where none is installed).
 */
export type EmbeddingScore = {
  per_second: number,
  model: string,
};

export type PoolState = "connected" | "connecting" | "unreachable" | "blocked";

/**
 * How a pool is reached now.
 */
export type PoolPath =
  | { "kind": "connecting" }
  | { "kind": "direct", rtt_ms: number, }
  | { "kind": "relayed", rtt_ms: number, why: string, }
  | { "kind": "unreachable", error: string, };

export type Pool = {
  id: string,
  name: string,
  ticket: string,
  /**
   * The in-process demo pool.
   */
  local: boolean,
  blocked: boolean,
  state: PoolState,
  /**
   * Set when unreachable.
   */
  error: string | null,
  /**
   * How the pool is reached: direct, relayed (and why) or unreachable, with the round-trip time.
   */
  path: PoolPath,
  earned_total: Amount,
  earned_today: Amount,
  joined_at_ms: number,
  /**
   * The token the pool pays in on a chain, once it has said; absent for a pool that pays IOUs.
   */
  symbol: string | null,
};

export type Notices = {
  payouts: boolean,
  about_to_start: boolean,
};

/**
 * Settings → Network: the relay flags of the command line (`--relay URL`..., `--relay-ca FILE`,
 * `--no-relay`) for the app's providers.
 */
export type NetworkSettings = {
  /**
   * Relays of one's own, as URLs; none: the relays each pool's ticket names.
   */
  relays: Array<string>,
  /**
   * A PEM file of the certificate authorities relays may be signed by (a self-hosted relay's).
   */
  relay_ca: string | null,
  /**
   * Direct addresses only: no relay.
   */
  no_relay: boolean,
};

/**
 * Everything the settings page edits. Unknown or missing fields take their defaults, so settings saved
 * by an older app still load.
 */
export type Settings = {
  preferences: Preferences,
  start_at_login: boolean,
  notices: Notices,
  payout: PayoutSettings,
  network: NetworkSettings,
};

/**
 * Where pools that pay on a chain send this machine's earnings, and whose RPC checks them.
 */
export type PayoutSettings = {
  to: PayoutTo,
  /**
   * The address pasted, used when `to` is `address`: 0x and 40 hex digits.
   */
  address: string,
  /**
   * Check payouts through this RPC URL instead of the one each pool names; empty for the pool's.
   */
  chain_rpc: string,
  /**
   * The address payouts go to now, filled in by the app (this machine's own account once made);
   * absent when none is bound. Ignored when settings are saved.
   */
  bound_address: string | null,
};

export type PayoutTo = "own_account" | "address" | "none";

export type Mode = "off" | "when_idle" | "always";

/**
 * From `start` to `end` (minutes after local midnight) on each of `days` (0 = Monday … 6 = Sunday).
 * An `end` at or before `start` runs past midnight into the next day.
 */
export type ScheduleWindow = {
  days: Array<number>,
  start_minute: number,
  end_minute: number,
};

/**
 * Hours in the week when sharing is allowed, in local time.
 */
export type Schedule = {
  windows: Array<ScheduleWindow>,
};

/**
 * One GPU's switches.
 */
export type GpuRule = {
  /**
   * The adapter's name as wgpu reports it.
   */
  adapter: string,
  /**
   * False: this GPU never works for a pool.
   */
  share: boolean,
  /**
   * True: this GPU works even while the person uses the computer (a headless second GPU).
   */
  while_active: boolean,
};

/**
 * What the person chose. Serialized by the app; every field has a default so older files still load.
 */
export type Preferences = {
  mode: Mode,
  /**
   * "Pause for 1 hour": no work until this time (Unix ms), then back to `mode`. Kept apart from the
   * mode so a snooze ending returns to what the person had chosen.
   */
  snoozed_until_ms: number | null,
  /**
   * No keyboard or mouse input for this long counts as away (BOINC: 3 minutes).
   */
  idle_after: number,
  /**
   * Pause while other programs use more than this share of the CPU (BOINC: 25 %).
   */
  max_other_cpu_percent: number | null,
  run_on_battery: boolean,
  /**
   * Share only inside these hours; `None` for any time.
   */
  schedule: Schedule | null,
  /**
   * Programs that must run alone (games, renderers), matched against process names.
   */
  exclusive_programs: Array<string>,
  max_gpu_temperature_c: number | null,
  /**
   * Pause while other programs use more than this share of the GPU (games, video).
   */
  max_other_gpu_percent: number | null,
  /**
   * "Keep running when I return": work started while away goes on, gently, instead of stopping.
   */
  keep_running_when_active: boolean,
  /**
   * Per-GPU switches; a GPU not listed is shared under the rules above.
   */
  gpus: Array<GpuRule>,
};

/**
 * A verified receipt that just arrived.
 */
export type Earned = {
  pool_id: string,
  job: string,
  amount: Amount,
  at_ms: number,
};

/**
 * The events of docs/desktop-ipc.md, each under the name the window listens for, with its payload.
 * The app sends only these, so a name cannot be misspelt on one side alone.
 */
export type WindowEvent =
  | { "name": "status", "payload": Status }
  | { "name": "earned", "payload": Earned }
  | { "name": "paid", "payload": Payout }
  | { "name": "problem", "payload": Problem }
  | { "name": "checked", "payload": Check }
  | { "name": "pools", "payload": Array<Pool> }
  | { "name": "hardware", "payload": Hardware };

/** Every event the app pushes, by name, with its payload. */
export type EventPayloads = { [E in WindowEvent as E["name"]]: E["payload"] };

export type EventName = keyof EventPayloads;
