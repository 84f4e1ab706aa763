import { describe, expect, it } from "vitest";
import {
  formatBytes,
  formatDuration,
  formatElapsed,
  formatMoment,
  formatPercent,
  formatTemperature,
  formatTime,
  gpuKindLabel,
  poolPathLabel,
  poolStateLabel,
  problemLabel,
  stateLabel,
  UNKNOWN,
} from "./format";

describe("formatDuration", () => {
  it("reads seconds, minutes and hours", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(45_900)).toBe("45 s");
    expect(formatDuration(151_000)).toBe("2 min 31 s");
    expect(formatDuration(2 * 3_600_000 + 7 * 60_000 + 5_000)).toBe("2 h 07 min");
  });

  it("never goes negative", () => {
    expect(formatDuration(-5_000)).toBe("0 s");
  });
});

describe("formatElapsed", () => {
  it("rounds down to the largest unit", () => {
    expect(formatElapsed(30_000)).toBe("a moment");
    expect(formatElapsed(5 * 60_000 + 59_000)).toBe("5 min");
    expect(formatElapsed(3 * 3_600_000 + 1)).toBe("3 h");
    expect(formatElapsed(24 * 3_600_000)).toBe("1 day");
    expect(formatElapsed(50 * 3_600_000)).toBe("2 days");
  });
});

describe("formatBytes", () => {
  it("uses binary units with one decimal below 100", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(12 * 1024 ** 3)).toBe("12.0 GiB");
    expect(formatBytes(512 * 1024 ** 2)).toBe("512 MiB");
  });
});

describe("readings that may be unknown", () => {
  it("shows a dash for null", () => {
    expect(formatPercent(null)).toBe(UNKNOWN);
    expect(formatTemperature(null)).toBe(UNKNOWN);
  });

  it("rounds known readings", () => {
    expect(formatPercent(86.6)).toBe("87%");
    expect(formatTemperature(63.7)).toBe("64 °C");
  });
});

describe("formatMoment", () => {
  const now = new Date(2025, 10, 24, 14, 0).getTime();

  it("is the time alone for today", () => {
    const later = new Date(2025, 10, 24, 15, 30).getTime();
    expect(formatMoment(later, now)).toBe(formatTime(later));
  });

  it("adds the weekday within the week", () => {
    const tomorrow = new Date(2025, 10, 25, 9, 0).getTime();
    const text = formatMoment(tomorrow, now);
    expect(text).toContain(formatTime(tomorrow));
    expect(text.startsWith(new Date(tomorrow).toLocaleDateString(undefined, { weekday: "short" }))).toBe(true);
  });
});

describe("labels", () => {
  it("names every state, problem and pool state", () => {
    expect(stateLabel("working")).toBe("Working");
    expect(stateLabel("error")).toBe("Problem");
    expect(problemLabel("timed_out")).toBe("Timed out");
    expect(poolStateLabel("unreachable")).toBe("Unreachable");
  });

  it("says how a pool is reached, leaving out what its state already says", () => {
    expect(poolPathLabel({ kind: "direct", rtt_ms: 4 })).toBe("Direct · 4 ms");
    expect(poolPathLabel({ kind: "relayed", rtt_ms: 48, why: "looking for a direct path" })).toBe(
      "Relayed · 48 ms: looking for a direct path",
    );
    expect(poolPathLabel({ kind: "unreachable", error: "timed out" })).toBeNull();
    expect(poolPathLabel({ kind: "connecting" })).toBeNull();
  });

  it("names every kind of GPU wgpu reports", () => {
    expect(gpuKindLabel("DiscreteGpu")).toBe("Discrete GPU");
    expect(gpuKindLabel("IntegratedGpu")).toBe("Integrated GPU");
    expect(gpuKindLabel("VirtualGpu")).toBe("Virtual GPU");
    expect(gpuKindLabel("Cpu")).toBe("Software GPU (on the CPU)");
    expect(gpuKindLabel("Other")).toBe("Other");
  });
});
