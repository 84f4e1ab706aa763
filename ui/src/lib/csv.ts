// The payout history as CSV, built here and handed to `save_csv` (docs/desktop-ipc.md): one header
// line, one row per payout in the order given, ISO-8601 UTC dates, fields quoted only when they must be.
// The columns are the Payouts page's, with the status as `idlegrid earnings --json` writes it.

import type { Payout } from "./types";

const PAYOUTS_CSV_HEADER = [
  "date",
  "pool",
  "amount",
  "symbol",
  "receipts",
  "status",
  "tx_hash",
  "block",
  "confirmations",
  "checked_through_pool",
  "explorer_url",
  "chain_id",
  "to",
  "signature_verified",
  "reference",
] as const;

/** RFC 4180 quoting: a field with a comma, quote or line break is wrapped in quotes, quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function csvLine(fields: readonly string[]): string {
  return fields.map(csvField).join(",");
}

/** A field the payout may lack: empty then. */
const optional = (value: string | number | null) => (value === null ? "" : String(value));

/** The whole file: header and rows, each line ending in "\n". */
export function payoutsCsv(payouts: readonly Payout[]): string {
  const rows = payouts.map((p) =>
    csvLine([
      new Date(p.at_ms).toISOString(),
      p.pool_name,
      p.amount,
      // An IOU is in no token; the column says so rather than staying empty.
      p.symbol ?? "IOU",
      String(p.receipts),
      p.status,
      optional(p.tx_hash),
      optional(p.block),
      optional(p.confirmations),
      String(p.checked_through_pool),
      optional(p.explorer_url),
      optional(p.chain_id),
      optional(p.to),
      String(p.signature_verified),
      p.reference,
    ]),
  );
  return [csvLine(PAYOUTS_CSV_HEADER), ...rows].map((line) => `${line}\n`).join("");
}

/** "idlegrid-payouts-2025-11-24.csv", dated in local time (the day the person exported it). */
export function payoutsCsvName(nowMs: number): string {
  const d = new Date(nowMs);
  const date = [d.getFullYear(), d.getMonth() + 1, d.getDate()]
    .map((n) => String(n).padStart(2, "0"))
    .join("-");
  return `idlegrid-payouts-${date}.csv`;
}
