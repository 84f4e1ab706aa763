// Shapes an EarningsView into what a stacked chart draws: one series per pool, a value for every
// bucket, and the running sum that puts each pool on top of the ones before it.

import type { EarningsView } from "./types";

export interface PoolSeries {
  id: string;
  name: string;
  /** This pool's earnings in each bucket, as numbers (for drawing only). */
  values: number[];
  /** This pool's value plus those of every series before it: the top edge of its band. */
  stacked: number[];
  /** Which colour to draw it in: its place among the pools ordered by id, so a pool keeps its
   * colour when another overtakes it in the totals. */
  colorIndex: number;
}

export interface StackedEarnings {
  /** Bucket starts in Unix seconds (what uPlot's time axis takes). */
  xs: number[];
  /** The width of one bucket in seconds. */
  bucketSecs: number;
  /** In stacking order: the first sits on the axis. */
  series: PoolSeries[];
}

/** Parses a decimal amount for drawing; anything unreadable draws as nothing. */
export function amountValue(amount: string | undefined): number {
  const value = Number(amount ?? "0");
  return Number.isFinite(value) ? value : 0;
}

/**
 * Pools are stacked in the order of `view.pools` (their totals within the range); a pool found in
 * a bucket but missing from that list still gets a series, named by the start of its key, so no
 * earnings disappear from the chart.
 */
export function stackEarnings(view: EarningsView): StackedEarnings {
  const pools = view.pools.map((p) => ({ id: p.id, name: p.name }));
  const known = new Set(pools.map((p) => p.id));
  for (const bucket of view.buckets) {
    for (const id of Object.keys(bucket.by_pool)) {
      if (!known.has(id)) {
        known.add(id);
        pools.push({ id, name: id.slice(0, 8) });
      }
    }
  }

  const byId = pools.map((p) => p.id).sort();
  const running = view.buckets.map(() => 0);
  const series = pools.map(({ id, name }) => {
    const values = view.buckets.map((b) => amountValue(b.by_pool[id]));
    const stacked = values.map((v, i) => (running[i] = (running[i] ?? 0) + v));
    return { id, name, values, stacked, colorIndex: byId.indexOf(id) };
  });

  return {
    xs: view.buckets.map((b) => Math.floor(b.start_ms / 1000)),
    bucketSecs: view.bucket_ms / 1000,
    series,
  };
}
