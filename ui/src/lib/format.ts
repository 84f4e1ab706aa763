// How numbers, sizes, durations and times read in the window. Times are shown in local time, in the
// person's locale; amounts are never formatted here, they are shown as the ledger wrote them.

import type { PoolPath, PoolState, ProblemKind, StateKind } from "./types";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** GPU time and similar short spans: "45 s", "3 min 05 s", "2 h 07 min". */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / SECOND));
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours} h ${pad2(minutes)} min`;
  if (minutes > 0) return `${minutes} min ${pad2(seconds)} s`;
  return `${seconds} s`;
}

/** How long something has lasted, in the words a status line uses: "a moment", "5 min", "3 h", "2 days". */
export function formatElapsed(ms: number): string {
  if (ms < MINUTE) return "a moment";
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)} min`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)} h`;
  const days = Math.floor(ms / DAY);
  return days === 1 ? "1 day" : `${days} days`;
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** Memory sizes in binary units: "512 MiB", "11.9 GiB". */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** A reading that may be unreadable on this machine. */
export const UNKNOWN = "—";

export function formatPercent(percent: number | null): string {
  return percent === null ? UNKNOWN : `${Math.round(percent)}%`;
}

export function formatTemperature(celsius: number | null): string {
  return celsius === null ? UNKNOWN : `${Math.round(celsius)} °C`;
}

/** A number with a fixed count of decimals and the locale's separators: benchmark scores. */
export function formatNumber(value: number, decimals = 0): string {
  return value.toLocaleString(undefined, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

export const formatDateTime = (ms: number) => dateTime.format(ms);
export const formatTime = (ms: number) => timeOnly.format(ms);
export const formatDate = (ms: number) => dateOnly.format(ms);

/** "14:30" today, "Tue 14:30" within a week, a full date beyond. For "paused until …". */
export function formatMoment(ms: number, nowMs: number): string {
  const then = new Date(ms);
  const now = new Date(nowMs);
  if (then.toDateString() === now.toDateString()) return formatTime(ms);
  if (Math.abs(ms - nowMs) < 6 * DAY) {
    const weekday = then.toLocaleDateString(undefined, { weekday: "short" });
    return `${weekday} ${formatTime(ms)}`;
  }
  return formatDateTime(ms);
}

const STATE_LABELS: Record<StateKind, string> = {
  off: "Off",
  connecting: "Connecting",
  waiting: "Waiting",
  working: "Working",
  paused: "Paused",
  error: "Problem",
};

export const stateLabel = (kind: StateKind) => STATE_LABELS[kind];

const PROBLEM_LABELS: Record<ProblemKind, string> = {
  unpaid: "Unpaid",
  timed_out: "Timed out",
  rejected: "Rejected",
  failed: "Failed",
};

export const problemLabel = (kind: ProblemKind) => PROBLEM_LABELS[kind];

const POOL_STATE_LABELS: Record<PoolState, string> = {
  connected: "Connected",
  connecting: "Connecting",
  unreachable: "Unreachable",
  blocked: "Blocked",
};

export const poolStateLabel = (state: PoolState) => POOL_STATE_LABELS[state];

/**
 * How a pool is reached, in one line: "Direct · 4 ms", "Relayed · 48 ms: your router or the pool's
 * does not allow a direct path"; `null` where the pool's state already says it all (connecting,
 * unreachable with its error beside it).
 */
export function poolPathLabel(path: PoolPath): string | null {
  switch (path.kind) {
    case "direct":
      return `Direct · ${path.rtt_ms} ms`;
    case "relayed":
      return `Relayed · ${path.rtt_ms} ms: ${path.why}`;
    default:
      return null;
  }
}

function pad2(n: number): string {
  return n.toString().padStart(2, "0");
}

/**
 * wgpu's device type for people: "DiscreteGpu" reads "Discrete GPU"; "Cpu" is a GPU made in software
 * (llvmpipe, WARP, SwiftShader), which runs jobs on the processor.
 */
export function gpuKindLabel(deviceType: string): string {
  if (deviceType === "Cpu") return "Software GPU (on the CPU)";
  return deviceType.replace(/Gpu$/, " GPU").replace(/([a-z])([A-Z])/g, "$1 $2");
}
