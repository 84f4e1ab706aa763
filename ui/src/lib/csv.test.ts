import { describe, expect, it } from "vitest";
import { csvField, payoutsCsv, payoutsCsvName } from "./csv";
import type { Payout } from "./types";

const payout = (change: Partial<Payout> = {}): Payout => ({
  id: "p1",
  at_ms: Date.UTC(2025, 10, 24, 17, 5, 9, 120),
  pool_id: "3f9c2a71",
  pool_name: "Lab cluster",
  amount: "0.062500",
  receipts: 125,
  symbol: null,
  signature_verified: true,
  status: "iou",
  rail: "statement",
  reference: "lab-2025-w47",
  chain_id: null,
  to: null,
  tx_hash: null,
  explorer_url: null,
  block: null,
  confirmations: null,
  checked_through_pool: false,
  note: null,
  ...change,
});

const HEADER =
  "date,pool,amount,symbol,receipts,status,tx_hash,block,confirmations,checked_through_pool,explorer_url,chain_id,to,signature_verified,reference";
const TX = `0x${"ab".repeat(32)}`;
const TO = `0x${"11".repeat(20)}`;

describe("csvField", () => {
  it("leaves plain text alone", () => {
    expect(csvField("Lab cluster")).toBe("Lab cluster");
    expect(csvField("0.000500")).toBe("0.000500");
  });

  it("quotes commas, quotes and line breaks, doubling quotes", () => {
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField("cr\r")).toBe('"cr\r"');
  });
});

describe("payoutsCsv", () => {
  it("is the header alone when there are no payouts", () => {
    expect(payoutsCsv([])).toBe(`${HEADER}\n`);
  });

  it("writes one row per payout, in the order given, with ISO UTC dates", () => {
    const csv = payoutsCsv([
      payout(),
      payout({ id: "p2", at_ms: Date.UTC(2025, 0, 2, 3, 4, 5), pool_name: "Local pool", amount: "0.000500", receipts: 1, signature_verified: false, reference: "" }),
    ]);
    expect(csv.split("\n")).toEqual([
      HEADER,
      "2025-11-24T17:05:09.120Z,Lab cluster,0.062500,IOU,125,iou,,,,false,,,,true,lab-2025-w47",
      "2025-01-02T03:04:05.000Z,Local pool,0.000500,IOU,1,iou,,,,false,,,,false,",
      "",
    ]);
  });

  it("writes a chain payout's token, status, transaction, block and where it was checked", () => {
    const confirmed = payout({
      symbol: "tUSD",
      status: "confirmed",
      rail: "evm",
      reference: "{}",
      chain_id: 31337,
      to: TO,
      tx_hash: TX,
      explorer_url: `https://explorer.example/tx/${TX}`,
      block: 12,
      confirmations: 3,
      checked_through_pool: true,
    });
    const pending = payout({ ...confirmed, status: "pending", signature_verified: false, block: null, confirmations: null, checked_through_pool: false });
    const rows = payoutsCsv([confirmed, pending]).split("\n");
    expect(rows[1]).toBe(
      `2025-11-24T17:05:09.120Z,Lab cluster,0.062500,tUSD,125,confirmed,${TX},12,3,true,https://explorer.example/tx/${TX},31337,${TO},true,{}`,
    );
    expect(rows[2]).toBe(
      `2025-11-24T17:05:09.120Z,Lab cluster,0.062500,tUSD,125,pending,${TX},,,false,https://explorer.example/tx/${TX},31337,${TO},false,{}`,
    );
  });

  it("keeps amounts exactly as the ledger wrote them", () => {
    expect(payoutsCsv([payout({ amount: "12.345678901234567890" })])).toContain(",12.345678901234567890,");
  });

  it("quotes pool names and references that need it", () => {
    const row = payoutsCsv([payout({ pool_name: "Farm, east", reference: 'invoice 12, "frames"' })]).split("\n")[1];
    expect(row).toBe('2025-11-24T17:05:09.120Z,"Farm, east",0.062500,IOU,125,iou,,,,false,,,,true,"invoice 12, ""frames"""');
  });
});

describe("payoutsCsvName", () => {
  it("names the file after the local date", () => {
    expect(payoutsCsvName(new Date(2025, 0, 5, 23, 59).getTime())).toBe("idlegrid-payouts-2025-01-05.csv");
  });
});
