// How a payout and its money read in the window: the unit every amount is shown in (the token's
// symbol, or IOU for a pool that pays only its signed word), each status in words, and a payout
// address or chain RPC checked before it is sent. Pure functions; the pages render them.

import type { Payout, PayoutSettings, PayoutState } from "./types";

/** The unit of an amount from a pool that pays IOUs: the pool's signed word, in no token. */
export const IOU_UNIT = "IOU";

/** What an IOU is, said plainly wherever one is shown. */
export const IOU_EXPLAINED = "IOUs are signed by the pool, not paid on a chain.";

export const STATUS_LABELS: Record<PayoutState, string> = {
  pending: "Pending",
  confirmed: "Confirmed on chain",
  not_found: "Not found on chain",
  iou: "IOU",
};

/** "0.0012 tUSD", or "0.0012 IOU" when no token is named. */
export function withUnit(amount: string, symbol: string | null): string {
  return `${amount} ${symbol ?? IOU_UNIT}`;
}

/**
 * The unit of totals summed over pools: the one token they all pay in, "IOU" when none pays on a
 * chain, or null when they differ (or nothing was earned yet).
 */
export function totalsUnit(symbols: readonly string[], iou: boolean): string | null {
  const units = iou ? [...symbols, IOU_UNIT] : [...symbols];
  return units.length === 1 ? units[0]! : null;
}

/** For totals that add different units together, which ones: "tUSD and IOU added together". */
export function mixedUnits(symbols: readonly string[], iou: boolean): string | null {
  const units = iou ? [...symbols, IOU_UNIT] : [...symbols];
  if (units.length < 2) return null;
  return `${units.slice(0, -1).join(", ")} and ${units.at(-1)} added together`;
}

/** "block 12 · 3 confirmations", or "" when the chain has said nothing yet. */
export function blockLine(block: number | null, confirmations: number | null): string {
  const parts: string[] = [];
  if (block !== null) parts.push(`block ${block}`);
  if (confirmations !== null) {
    parts.push(`${confirmations} confirmation${confirmations === 1 ? "" : "s"}`);
  }
  return parts.join(" · ");
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const RPC = /^(https?|wss?):\/\/\S+$/;

export type PayoutField = "address" | "chainRpc";

/** What is wrong with the payout settings before they are sent; the app checks them again. */
export function payoutErrors(payout: PayoutSettings): Partial<Record<PayoutField, string>> {
  const errors: Partial<Record<PayoutField, string>> = {};
  const address = payout.address.trim();
  if (payout.to === "address") {
    if (!address) errors.address = "Paste the address to be paid at.";
    else if (!ADDRESS.test(address)) errors.address = "An address is 0x followed by 40 hex digits.";
  }
  const rpc = payout.chain_rpc.trim();
  if (rpc && !RPC.test(rpc)) {
    errors.chainRpc = "Enter a URL starting with http://, https://, ws:// or wss://, or leave it empty.";
  }
  return errors;
}

/**
 * The list after the app pushed `payout`: a payout already listed (its status changed, say) is
 * replaced where it is; a new one goes on top. Payouts are idempotent by id.
 */
export function upsertPayout(list: readonly Payout[], payout: Payout): Payout[] {
  const at = list.findIndex((p) => p.id === payout.id);
  if (at < 0) return [payout, ...list];
  return list.map((p, i) => (i === at ? payout : p));
}
