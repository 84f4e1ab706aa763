import { describe, expect, it } from "vitest";
import { pageFromHash } from "./router.svelte";

describe("pageFromHash", () => {
  it("reads the page from the hash", () => {
    expect(pageFromHash("#/payouts")).toBe("payouts");
    expect(pageFromHash("#settings")).toBe("settings");
  });

  it("falls back to the overview", () => {
    expect(pageFromHash("")).toBe("overview");
    expect(pageFromHash("#/nowhere")).toBe("overview");
  });
});
