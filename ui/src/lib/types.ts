// The types of docs/desktop-ipc.md, mirrored by serde structs in src-tauri/. Keys are snake_case
// because that is what the engine serializes; keep this file in step with that document.

/** A decimal string in the pool's currency, shown exactly as given ("0.000500"). */
export type Amount = string;

export type StateKind = "off" | "connecting" | "waiting" | "working" | "paused" | "error";

export interface Status {
  kind: StateKind;
  /** The sentence to show: "Working: matmul", "Paused: you are using the computer". */
  reason: string;
  since_ms: number;
  /** The "Share when idle" toggle (preferences.mode != "off"). */
  sharing: boolean;
  snoozed_until_ms: number | null;
  /** Set while kind == "working". */
  job: JobNow | null;
  /** Earnings over the last hour. */
  rate_per_hour: Amount;
  /** Earned since local midnight. */
  today: Amount;
  /** Receipts not yet paid out. */
  balance: Amount;
}

export type Pace = "full" | "gentle";

export interface JobNow {
  pool_id: string;
  pool_name: string;
  job: string;
  /** 0..1 (passes done / passes). */
  progress: number;
  gpu_ms: number;
  pace: Pace;
}

export type Range = "24h" | "7d" | "30d";

export interface EarningsBucket {
  start_ms: number;
  by_pool: Record<string, Amount>;
}

export interface PoolTotal {
  id: string;
  name: string;
  total: Amount;
}

export interface EarningsView {
  range: Range;
  bucket_ms: number;
  /** Oldest first, every bucket present. */
  buckets: EarningsBucket[];
  /** Totals within the range. */
  pools: PoolTotal[];
  total: Amount;
  /** All time. */
  paid: Amount;
  /** All time, unpaid. */
  balance: Amount;
  /** Newest first. */
  problems: Problem[];
  /** All time; `recent` newest first, at most 20. */
  checks: Checks;
}

/** A pool's check: a job whose answer it knew, run unpaid, told to the provider once judged. */
export interface Check {
  at_ms: number;
  pool_id: string;
  pool_name: string;
  job: string;
  passed: boolean;
}

export interface Checks {
  passed: number;
  failed: number;
  recent: Check[];
}

export type ProblemKind = "unpaid" | "timed_out" | "rejected" | "failed";

export interface Problem {
  at_ms: number;
  pool_id: string;
  pool_name: string;
  job: string;
  kind: ProblemKind;
  reason: string;
}

export interface Payout {
  id: string;
  at_ms: number;
  pool_id: string;
  pool_name: string;
  amount: Amount;
  /** Receipts it settled. */
  receipts: number;
  signature_verified: boolean;
  /** How it was paid ("ledger" for the demo). */
  rail: string;
  reference: string;
}

export interface Hardware {
  gpus: Gpu[];
  cpu: Cpu;
  memory: Memory;
}

export interface Cpu {
  name: string;
  cores: number;
  usage_percent: number;
}

export interface Memory {
  total_bytes: number;
  used_bytes: number;
}

export interface Gpu {
  /** wgpu's adapter name; the key for share switches and benchmarks. */
  adapter: string;
  backend: string;
  device_type: string;
  vram_bytes: number | null;
  usage_percent: number | null;
  temperature_c: number | null;
  shared: boolean;
  /** Last benchmark, kept across runs. */
  score: Score | null;
}

export interface Score {
  matmul_gflops: number;
  copy_gbps: number;
  measured_at_ms: number;
}

export type PoolState = "connected" | "connecting" | "unreachable" | "blocked";

export interface Pool {
  id: string;
  name: string;
  ticket: string;
  /** The in-process demo pool. */
  local: boolean;
  blocked: boolean;
  state: PoolState;
  /** Set when unreachable. */
  error: string | null;
  earned_total: Amount;
  earned_today: Amount;
  joined_at_ms: number;
}

export interface Notices {
  payouts: boolean;
  about_to_start: boolean;
}

export interface Settings {
  preferences: Preferences;
  start_at_login: boolean;
  notices: Notices;
}

export type Mode = "off" | "when_idle" | "always";

/** A span of the week: `start_minute`..`end_minute` after local midnight on each of `days`
 * (0 = Monday). An end at or before the start runs past midnight into the next day. */
export interface ScheduleWindow {
  days: number[];
  start_minute: number;
  end_minute: number;
}

export interface Schedule {
  windows: ScheduleWindow[];
}

export interface GpuRule {
  adapter: string;
  share: boolean;
  while_active: boolean;
}

/** The engine's idle::Preferences as serde writes it (crates/idlegrid/src/idle/policy.rs). */
export interface Preferences {
  mode: Mode;
  snoozed_until_ms: number | null;
  /** Seconds. */
  idle_after: number;
  max_other_cpu_percent: number | null;
  run_on_battery: boolean;
  /** Null: any time. */
  schedule: Schedule | null;
  exclusive_programs: string[];
  max_gpu_temperature_c: number | null;
  max_other_gpu_percent: number | null;
  keep_running_when_active: boolean;
  gpus: GpuRule[];
}

/** Payload of the `earned` event: a verified receipt arrived. */
export interface Earned {
  pool_id: string;
  job: string;
  amount: Amount;
  at_ms: number;
}

/** Every event the app pushes, by name, with its payload. */
export interface EventPayloads {
  status: Status;
  earned: Earned;
  paid: Payout;
  problem: Problem;
  checked: Check;
  pools: Pool[];
  hardware: Hardware;
}

export type EventName = keyof EventPayloads;
