import { describe, expect, it } from "vitest";
import { blockLine, mixedUnits, payoutErrors, totalsUnit, upsertPayout, withUnit } from "./payouts";
import type { Payout, PayoutSettings } from "./types";

const settings = (change: Partial<PayoutSettings>): PayoutSettings => ({
  to: "own_account",
  address: "",
  chain_rpc: "",
  bound_address: null,
  ...change,
});

describe("units", () => {
  it("names the token, or IOU when there is none", () => {
    expect(withUnit("0.001200", "tUSD")).toBe("0.001200 tUSD");
    expect(withUnit("0.031000", null)).toBe("0.031000 IOU");
  });

  it("gives totals one unit only when every pool pays in it", () => {
    expect(totalsUnit(["tUSD"], false)).toBe("tUSD");
    expect(totalsUnit([], true)).toBe("IOU");
    expect(mixedUnits(["tUSD"], false)).toBeNull();
    expect(totalsUnit(["tUSD"], true)).toBeNull();
    expect(mixedUnits(["tUSD"], true)).toBe("tUSD and IOU added together");
    expect(mixedUnits(["USDC", "tUSD"], true)).toBe("USDC, tUSD and IOU added together");
    expect(totalsUnit([], false)).toBeNull();
  });
});

describe("transactions", () => {
  it("says the block and confirmations it knows", () => {
    expect(blockLine(12, 3)).toBe("block 12 · 3 confirmations");
    expect(blockLine(12, 1)).toBe("block 12 · 1 confirmation");
    expect(blockLine(null, null)).toBe("");
  });
});

describe("payoutErrors", () => {
  it("accepts an address in either case and an empty or http(s)/ws(s) RPC", () => {
    const address = "0x000000000000000000000000000000000000dEaD";
    expect(payoutErrors(settings({ to: "address", address: ` ${address} ` }))).toEqual({});
    expect(payoutErrors(settings({ chain_rpc: "wss://rpc.example/v1" }))).toEqual({});
  });

  it("refuses a missing or malformed address only when one is chosen", () => {
    expect(payoutErrors(settings({ to: "address" })).address).toBe("Paste the address to be paid at.");
    expect(payoutErrors(settings({ to: "address", address: "0xdead" })).address).toMatch(/40 hex digits/);
    expect(payoutErrors(settings({ to: "none", address: "0xdead" }))).toEqual({});
  });

  it("refuses an RPC that is not a URL", () => {
    for (const rpc of ["rpc.example", "ftp://rpc.example", "http://a b"]) {
      expect(payoutErrors(settings({ chain_rpc: rpc })).chainRpc).toMatch(/^Enter a URL/);
    }
  });
});

describe("upsertPayout", () => {
  const payout = (id: string, status: Payout["status"]): Payout => ({
    id,
    at_ms: 0,
    pool_id: "p",
    pool_name: "Lab",
    amount: "0.001000",
    symbol: "tUSD",
    receipts: 2,
    signature_verified: true,
    status,
    rail: "evm",
    reference: "{}",
    chain_id: 31337,
    to: null,
    tx_hash: null,
    explorer_url: null,
    block: null,
    confirmations: null,
    checked_through_pool: false,
    note: null,
  });

  it("puts a new payout on top and replaces a known one where it stands", () => {
    const list = [payout("b", "confirmed"), payout("a", "pending")];
    expect(upsertPayout(list, payout("c", "pending")).map((p) => p.id)).toEqual(["c", "b", "a"]);
    const updated = upsertPayout(list, payout("a", "confirmed"));
    expect(updated.map((p) => [p.id, p.status])).toEqual([["b", "confirmed"], ["a", "confirmed"]]);
  });
});
