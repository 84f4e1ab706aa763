import { describe, expect, it } from "vitest";
import { amountValue, stackEarnings } from "./earnings-chart";
import type { EarningsView } from "./types";

const HOUR = 3_600_000;

function view(change: Partial<EarningsView> = {}): EarningsView {
  return {
    range: "24h",
    bucket_ms: HOUR,
    buckets: [
      { start_ms: 10 * HOUR, by_pool: { lab: "0.001000", farm: "0.000500" } },
      { start_ms: 11 * HOUR, by_pool: {} },
      { start_ms: 12 * HOUR, by_pool: { lab: "0.000250" } },
    ],
    pools: [
      { id: "lab", name: "Lab cluster", total: "0.001250", symbol: "tUSD" },
      { id: "farm", name: "Render farm", total: "0.000500", symbol: null },
    ],
    total: "0.001750",
    paid: "0",
    balance: "0.001750",
    problems: [],
    checks: { passed: 0, failed: 0, recent: [] },
    symbols: ["tUSD"],
    iou: true,
    ...change,
  };
}

describe("stackEarnings", () => {
  it("has an x for every bucket, in seconds, and the bucket width", () => {
    const data = stackEarnings(view());
    expect(data.xs).toEqual([36_000, 39_600, 43_200]);
    expect(data.bucketSecs).toBe(3600);
  });

  it("gives each pool a value in every bucket, zero where it earned nothing", () => {
    const [lab, farm] = stackEarnings(view()).series;
    expect(lab?.values).toEqual([0.001, 0, 0.00025]);
    expect(farm?.values).toEqual([0.0005, 0, 0]);
  });

  it("stacks pools in the order of their totals, the first on the axis", () => {
    const [lab, farm] = stackEarnings(view()).series;
    expect(lab?.name).toBe("Lab cluster");
    expect(lab?.stacked).toEqual([0.001, 0, 0.00025]);
    expect(farm?.stacked).toEqual([0.0015, 0, 0.00025]);
  });

  it("gives each pool a colour that does not depend on its totals", () => {
    const colors = (v: EarningsView) => Object.fromEntries(stackEarnings(v).series.map((s) => [s.id, s.colorIndex]));
    const before = colors(view());
    const after = colors(view({ pools: [...view().pools].reverse() }));
    expect(after).toEqual(before);
    expect(new Set(Object.values(before)).size).toBe(2);
  });

  it("keeps a pool found only in the buckets, named by its key", () => {
    const data = stackEarnings(
      view({ buckets: [{ start_ms: 0, by_pool: { lab: "1", "9f8e7d6c5b4a": "2" } }] }),
    );
    expect(data.series.map((s) => s.name)).toEqual(["Lab cluster", "Render farm", "9f8e7d6c"]);
    expect(data.series[2]?.stacked).toEqual([3]);
  });

  it("draws nothing for an empty range", () => {
    expect(stackEarnings(view({ buckets: [], pools: [] }))).toEqual({ xs: [], bucketSecs: 3600, series: [] });
  });
});

describe("amountValue", () => {
  it("parses decimal strings and treats the unreadable as zero", () => {
    expect(amountValue("0.000500")).toBe(0.0005);
    expect(amountValue(undefined)).toBe(0);
    expect(amountValue("n/a")).toBe(0);
  });
});
