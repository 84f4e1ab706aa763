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
  signature_verified: true,
  rail: "ledger",
  reference: "lab-2025-w47",
  ...change,
});

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
    expect(payoutsCsv([])).toBe("date,pool,amount,receipts,signature_verified,reference\n");
  });

  it("writes one row per payout, in the order given, with ISO UTC dates", () => {
    const csv = payoutsCsv([
      payout(),
      payout({ id: "p2", at_ms: Date.UTC(2025, 0, 2, 3, 4, 5), pool_name: "Local pool", amount: "0.000500", receipts: 1, signature_verified: false, reference: "" }),
    ]);
    expect(csv.split("\n")).toEqual([
      "date,pool,amount,receipts,signature_verified,reference",
      "2025-11-24T17:05:09.120Z,Lab cluster,0.062500,125,true,lab-2025-w47",
      "2025-01-02T03:04:05.000Z,Local pool,0.000500,1,false,",
      "",
    ]);
  });

  it("keeps amounts exactly as the ledger wrote them", () => {
    expect(payoutsCsv([payout({ amount: "12.345678901234567890" })])).toContain(",12.345678901234567890,");
  });

  it("quotes pool names and references that need it", () => {
    const row = payoutsCsv([payout({ pool_name: "Farm, east", reference: 'invoice 12, "frames"' })]).split("\n")[1];
    expect(row).toBe('2025-11-24T17:05:09.120Z,"Farm, east",0.062500,125,true,"invoice 12, ""frames"""');
  });
});

describe("payoutsCsvName", () => {
  it("names the file after the local date", () => {
    expect(payoutsCsvName(new Date(2025, 0, 5, 23, 59).getTime())).toBe("idlegrid-payouts-2025-01-05.csv");
  });
});
