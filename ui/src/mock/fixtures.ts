// Real-shaped data for the mock backend: what a machine with one discrete GPU, two pools and a week
// of history would show. Times are relative to the moment the page opened.

import type {
  Check,
  Checks,
  EarningsView,
  Hardware,
  Payout,
  Pool,
  Problem,
  Range,
  Settings,
  Status,
} from "../lib/types";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Iroh-style identifiers: a 64-hex endpoint id and a long base32 ticket. */
const LAB_ID = "3f9c2a71d84be0651c7f2e9ab04d6c18e5f7a3b29c0d41e8f6a2b7c9d0e1f234";
const LOCAL_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const FARM_ID = "77e0d9c1b2a3948576f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938";

const ticketFor = (id: string) => `endpoint${id.slice(0, 52).replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!)}aaqcaydqmbqwy3dpeaqgs4zaojswg2lmmfrsazdpm5ygk`;

export function labPool(now: number): Pool {
  return {
    id: LAB_ID,
    name: "Lab cluster",
    ticket: ticketFor(LAB_ID),
    local: false,
    blocked: false,
    state: "connected",
    error: null,
    path: { kind: "relayed", rtt_ms: 48, why: "your router or the pool's does not allow a direct path" },
    earned_total: "0.184250",
    earned_today: "0.012500",
    joined_at_ms: now - 19 * DAY,
    symbol: "tUSD",
  };
}

export function farmPool(now: number): Pool {
  return {
    id: FARM_ID,
    name: "Render farm",
    ticket: ticketFor(FARM_ID),
    local: false,
    blocked: false,
    state: "unreachable",
    error: "cannot reach the pool: no route to its endpoint (timed out after 10 s)",
    path: { kind: "unreachable", error: "cannot reach the pool: no route to its endpoint (timed out after 10 s)" },
    earned_total: "0.031000",
    earned_today: "0.000000",
    joined_at_ms: now - 6 * DAY,
    symbol: null,
  };
}

export function localPool(now: number): Pool {
  return {
    id: LOCAL_ID,
    name: "Local pool",
    ticket: ticketFor(LOCAL_ID),
    local: true,
    blocked: false,
    state: "connected",
    error: null,
    path: { kind: "direct", rtt_ms: 0 },
    earned_total: "0.004000",
    earned_today: "0.004000",
    joined_at_ms: now - 2 * HOUR,
    symbol: null,
  };
}

/** Inference work as the engine names it: a batch of texts and the model. */
export const EMBEDDING_JOB = "Embedding 256 texts (all-MiniLM-L6-v2)";

export function workingStatus(now: number, pool: Pool): Status {
  return {
    kind: "working",
    reason: `Working: ${EMBEDDING_JOB} for pool ${pool.name}`,
    since_ms: now - 7 * MINUTE,
    sharing: true,
    snoozed_until_ms: null,
    job: {
      pool_id: pool.id,
      pool_name: pool.name,
      job: EMBEDDING_JOB,
      progress: 0.42,
      gpu_ms: 2 * MINUTE + 31_000,
      pace: "full",
    },
    rate_per_hour: "0.002750",
    today: "0.016500",
    balance: "0.041250",
    network: "1 of 3 pools unreachable",
    not_earning: null,
  };
}

export function idleStatus(now: number): Status {
  return {
    kind: "waiting",
    reason: "Waiting: no pool joined yet",
    since_ms: now - 2 * MINUTE,
    sharing: true,
    snoozed_until_ms: null,
    job: null,
    rate_per_hour: "0.000000",
    today: "0.000000",
    balance: "0.000000",
    network: null,
    not_earning: "No pool joined: join one on the Pools page",
  };
}

/** The Lab cluster pays in a test token on a local chain, with an explorer; the Render farm pays IOUs. */
const LAB_CHAIN = 31337;
/** This machine's own payout account, as the app would have made it. */
export const OWN_ACCOUNT = "0x5e1f8a2b3c4d5e6f708192a3b4c5d6e7f8091a2b";
const LAB_ADDRESS = OWN_ACCOUNT;
const EXPLORER = "https://explorer.example/tx/";
const txHash = (i: number) => `0x${(i + 1).toString(16).padStart(2, "0").repeat(32)}`;

function labPayout(now: number, i: number, amount: number): Payout {
  const tx = txHash(i);
  return {
    id: `payout-lab-${i}`,
    at_ms: now - (i * 7 + 1) * DAY - 3 * HOUR,
    pool_id: LAB_ID,
    pool_name: "Lab cluster",
    amount: amount.toFixed(6),
    symbol: "tUSD",
    receipts: Math.round(amount / 0.0005),
    signature_verified: true,
    status: "confirmed",
    rail: "evm",
    reference: JSON.stringify({ chain_id: LAB_CHAIN, tx_hash: tx }),
    chain_id: LAB_CHAIN,
    to: LAB_ADDRESS,
    tx_hash: tx,
    explorer_url: `${EXPLORER}${tx}`,
    block: 4200 - i * 700,
    confirmations: 12 + i * 700,
    checked_through_pool: false,
    note: null,
  };
}

export function payouts(now: number): Payout[] {
  const weekly = [0.0625, 0.05, 0.0375, 0.0250, 0.0125];
  const lab = weekly.map((amount, i) => labPayout(now, i, amount));
  // The newest: broadcast, not yet signed by the pool nor confirmed by this machine's check.
  lab[0] = {
    ...lab[0]!,
    signature_verified: false,
    status: "pending",
    block: 4200,
    confirmations: 1,
    checked_through_pool: true,
  };
  // One the chain does not show: flagged, never counted as paid.
  lab[2] = {
    ...lab[2]!,
    status: "not_found",
    block: null,
    confirmations: null,
    note: "the transaction paid 0x9999999999999999999999999999999999999999, not this provider",
  };
  const farm: Payout = {
    id: "payout-farm-0",
    at_ms: now - 4 * DAY,
    pool_id: FARM_ID,
    pool_name: "Render farm",
    amount: "0.031000",
    symbol: null,
    receipts: 31,
    signature_verified: true,
    status: "iou",
    rail: "statement",
    // A reference with a comma and quotes: real pools write free text here.
    reference: 'invoice 12, "frames"',
    chain_id: null,
    to: null,
    tx_hash: null,
    explorer_url: null,
    block: null,
    confirmations: null,
    checked_through_pool: false,
    note: null,
  };
  return [...lab, farm].sort((a, b) => b.at_ms - a.at_ms);
}

export function problems(now: number): Problem[] {
  return [
    {
      at_ms: now - 40 * MINUTE,
      pool_id: LAB_ID,
      pool_name: "Lab cluster",
      job: "collatz-2048",
      kind: "timed_out",
      reason: "the lease ran out before the result came back (you returned to the computer)",
    },
    {
      at_ms: now - 5 * HOUR,
      pool_id: LAB_ID,
      pool_name: "Lab cluster",
      job: "matmul-512",
      kind: "rejected",
      reason: "the result disagreed with 2 other providers",
    },
    {
      at_ms: now - 20 * HOUR,
      pool_id: FARM_ID,
      pool_name: "Render farm",
      job: "denoise-tile-17",
      kind: "failed",
      reason: "the GPU ran out of memory (needed 6.0 GiB)",
    },
    {
      at_ms: now - 3 * DAY,
      pool_id: FARM_ID,
      pool_name: "Render farm",
      job: "denoise-tile-04",
      kind: "unpaid",
      reason: "the pool has not paid this receipt yet",
    },
  ];
}

export function checks(now: number): Checks {
  const recent: Check[] = [
    { at_ms: now - 25 * MINUTE, pool_id: LAB_ID, pool_name: "Lab cluster", job: "checksum", passed: true },
    { at_ms: now - 6 * HOUR, pool_id: FARM_ID, pool_name: "Render farm", job: "checksum", passed: true },
  ];
  return { passed: recent.length, failed: 0, recent };
}

export function hardware(now: number): Hardware {
  return {
    gpus: [
      {
        adapter: "NVIDIA GeForce RTX 4070",
        backend: "Vulkan",
        device_type: "DiscreteGpu",
        vram_bytes: 12 * 1024 ** 3,
        usage_percent: 87,
        temperature_c: 64,
        shared: true,
        score: {
          matmul_gflops: 14250.4,
          copy_gbps: 412.7,
          embeddings: { per_second: 1840.5, model: "all-MiniLM-L6-v2" },
          measured_at_ms: now - 2 * DAY,
        },
      },
      {
        adapter: "Intel(R) UHD Graphics 770",
        backend: "Vulkan",
        device_type: "IntegratedGpu",
        vram_bytes: null,
        usage_percent: null,
        temperature_c: null,
        shared: false,
        score: null,
      },
    ],
    cpu: { name: "AMD Ryzen 7 7700X 8-Core Processor", cores: 16, usage_percent: 12 },
    memory: { total_bytes: 32 * 1024 ** 3, used_bytes: 11.4 * 1024 ** 3 },
    unreadable: [],
  };
}

export function settings(): Settings {
  return {
    preferences: {
      mode: "when_idle",
      snoozed_until_ms: null,
      idle_after: 180,
      max_other_cpu_percent: 25,
      run_on_battery: false,
      schedule: {
        windows: [{ days: [0, 1, 2, 3, 4], start_minute: 22 * 60, end_minute: 7 * 60 }],
      },
      exclusive_programs: ["blender", "steam"],
      max_gpu_temperature_c: 85,
      max_other_gpu_percent: 20,
      keep_running_when_active: false,
      gpus: [{ adapter: "Intel(R) UHD Graphics 770", share: false, while_active: false }],
    },
    start_at_login: true,
    notices: { payouts: true, about_to_start: false },
    payout: { to: "own_account", address: "", chain_rpc: "", bound_address: LAB_ADDRESS },
    network: { relays: [], relay_ca: null, no_relay: false },
  };
}

const BUCKETS: Record<Range, { count: number; ms: number }> = {
  "24h": { count: 24, ms: HOUR },
  "7d": { count: 28, ms: 6 * HOUR },
  "30d": { count: 30, ms: DAY },
};

/** A small, repeatable wobble so the chart looks like real work without random numbers. */
const wobble = (i: number, seed: number) => (Math.sin(i * 1.7 + seed) + 1.3) / 2.3;

export function earnings(
  range: Range,
  now: number,
  pools: Pool[],
  found: Problem[],
  paid: Payout[],
  balance: string,
): EarningsView {
  const { count, ms } = BUCKETS[range];
  const last = Math.floor(now / ms) * ms;
  const active = pools.filter((p) => !p.blocked);
  const buckets = Array.from({ length: count }, (_, i) => {
    const start_ms = last - (count - 1 - i) * ms;
    const by_pool: Record<string, string> = {};
    active.forEach((pool, p) => {
      // Unreachable pools earned in the past but not lately; nights earn more than days.
      if (pool.state === "unreachable" && i > count / 2) return;
      const perHour = pool.local ? 0.0004 : 0.0011 / (p + 1);
      by_pool[pool.id] = (perHour * (ms / HOUR) * wobble(i, p * 2.1)).toFixed(6);
    });
    return { start_ms, by_pool };
  });
  const totals = active.map((pool) => ({
    id: pool.id,
    name: pool.name,
    total: buckets.reduce((sum, b) => sum + Number(b.by_pool[pool.id] ?? 0), 0).toFixed(6),
    symbol: pool.symbol,
  }));
  const symbols = [...new Set(active.flatMap((p) => (p.symbol ? [p.symbol] : [])))].sort();
  const total = totals.reduce((sum, t) => sum + Number(t.total), 0).toFixed(6);
  // Only what counts as paid: confirmed on chain, or an IOU.
  const paidTotal = paid
    .filter((p) => p.status === "confirmed" || p.status === "iou")
    .reduce((sum, p) => sum + Number(p.amount), 0)
    .toFixed(6);
  return {
    range,
    bucket_ms: ms,
    buckets,
    pools: totals.sort((a, b) => Number(b.total) - Number(a.total)),
    total,
    paid: paidTotal,
    balance,
    problems: found.filter((p) => p.at_ms >= last - (count - 1) * ms),
    checks: checks(now),
    symbols,
    iou: active.some((p) => !p.symbol),
  };
}
