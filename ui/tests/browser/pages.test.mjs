// Every page renders with real-shaped data from the mock backend.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, openWindow, serveMockBuild, waitForCalls } from "./harness.mjs";

let server;
let browser;
before(async () => {
  server = await serveMockBuild();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Opens a page, runs `check`, and fails on any console error the page logged. */
async function withPage(page, check, options = {}) {
  const window = await openWindow(browser, server.url, { page, ...options });
  try {
    await window.tab.getByRole("heading", { level: 1 }).first().waitFor();
    await check(window);
    assert.deepEqual(window.problems, []);
  } finally {
    await window.close();
  }
}

const visible = (tab, text) => tab.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 });

describe("pages", () => {
  it("Overview shows the state, the job running and today's figures", () =>
    withPage("overview", async ({ tab }) => {
      // Inference shows like any job: what it embeds, with which model, for which pool, and how far.
      await visible(tab, "Working: Embedding 256 texts (all-MiniLM-L6-v2) for pool Lab cluster");
      const running = tab.locator("section.job");
      assert.equal(
        (await running.locator(".what").textContent()).replace(/\s+/g, " ").trim(),
        "Embedding 256 texts (all-MiniLM-L6-v2) for pool Lab cluster",
      );
      assert.equal(await running.getByRole("progressbar").getAttribute("aria-valuenow"), "42");
      await running.getByText("42% done").waitFor({ timeout: 5000 });
      await visible(tab, "GPU time 2 min 31 s");
      await visible(tab, "0.016500");
      await visible(tab, "0.002750");
      await visible(tab, "0.041250");
      assert.equal(await tab.getByRole("switch", { name: "Share when idle" }).isChecked(), true);
      await visible(tab, "1 of 3 pools unreachable");
      // Earning: no reason to give.
      assert.equal(await tab.getByLabel("Why am I not earning?").count(), 0);
    }));

  it("Earnings shows totals, the chart, pools and problems with reasons", () =>
    withPage("earnings", async (window) => {
      const { tab } = window;
      await tab.locator(".plot canvas").first().waitFor();
      // Paid counts only what is confirmed on chain or an IOU; the Lab cluster pays in tUSD, the
      // Render farm in IOUs.
      await visible(tab, "0.118500");
      await visible(tab, "all time, tUSD and IOU added together");
      await visible(tab, "Amounts in IOU are from pools with no chain: IOUs are signed by the pool, not paid on a chain.");
      const legend = tab.locator(".legend");
      await legend.getByText("Lab cluster").waitFor();
      await legend.getByText("Render farm").waitFor();
      assert.match(await legend.locator("li", { hasText: "Lab cluster" }).innerText(), /\d\.\d{6} tUSD/);
      assert.match(await legend.locator("li", { hasText: "Render farm" }).innerText(), /\d\.\d{6} IOU/);
      await visible(tab, "the result disagreed with 2 other providers");
      await visible(tab, "Timed out");

      await tab.getByText("7 days").click();
      const calls = await waitForCalls(window, "get_earnings", 2);
      assert.deepEqual(calls.map((c) => c.args.range), ["24h", "7d"]);
      await visible(tab, "in the last 7 days");
      // The problem from three days ago shows only in the longer range.
      await visible(tab, "the pool has not paid this receipt yet");
    }));

  it("Earnings lists the pools' checks, and asks again when one is judged", () =>
    withPage("earnings", async (window) => {
      const { tab } = window;
      const checks = tab.getByRole("region", { name: "Checks" });
      await checks.getByText("2 passed").waitFor();
      assert.equal(await checks.getByText("Passed", { exact: true }).count(), 2);
      await checks.getByText("Render farm").waitFor();
      await waitForCalls(window, "get_earnings", 1);
      await window.emit("checked", {
        at_ms: Date.now(),
        pool_id: "lab",
        pool_name: "Lab cluster",
        job: "checksum",
        passed: true,
      });
      await waitForCalls(window, "get_earnings", 2);
    }));

  it("Payouts lists each payout with its token, status and transaction", () =>
    withPage("payouts", async (window) => {
      const { tab } = window;
      const rows = tab.locator("tbody tr");
      await rows.first().waitFor();
      assert.equal(await rows.count(), 6);
      const tx = (n) => `0x${n.toString(16).padStart(2, "0").repeat(32)}`;

      // Newest first: the pool's notice of a payout on its way, checked through the pool's RPC.
      const pending = rows.nth(0);
      assert.equal(await pending.getAttribute("data-status"), "pending");
      const pendingText = await pending.innerText();
      for (const text of ["Lab cluster", "0.062500 tUSD", "125", "Pending", "Sent by the pool, not yet signed", "Checked through the pool's RPC", "block 4200 · 1 confirmation"]) {
        assert.ok(pendingText.includes(text), `${text} not in ${pendingText}`);
      }

      const confirmed = rows.nth(2);
      assert.equal(await confirmed.getAttribute("data-status"), "confirmed");
      assert.match(await confirmed.innerText(), /0\.050000 tUSD/);
      assert.match(await confirmed.innerText(), /Confirmed on chain/);
      assert.match(await confirmed.innerText(), /block 3500 · 712 confirmations/);
      assert.doesNotMatch(await confirmed.innerText(), /Checked through the pool's RPC/);
      assert.equal(await confirmed.locator("code").getAttribute("title"), tx(2));
      await confirmed.getByRole("button", { name: `Copy transaction hash ${tx(2)}` }).waitFor();
      const link = confirmed.getByRole("link", { name: "Explorer" });
      assert.equal(await link.getAttribute("href"), `https://explorer.example/tx/${tx(2)}`);
      // The app opens it in the browser; the window stays where it is.
      await link.click();
      const [{ args }] = await waitForCalls(window, "open_explorer");
      assert.deepEqual(args, { id: "payout-lab-1" });
      assert.match(tab.url(), /#\/payouts$/);

      // The IOU from the pool with no chain: said plainly, and no transaction.
      const iou = rows.nth(1);
      assert.equal(await iou.getAttribute("data-status"), "iou");
      assert.match(await iou.innerText(), /Render farm/);
      assert.match(await iou.innerText(), /0\.031000 IOU/);
      assert.match(await iou.innerText(), /Signed by the pool, not paid on a chain/);
      assert.equal(await iou.getByRole("link").count(), 0);
      await visible(tab, "Payouts marked IOU are from pools with no chain: IOUs are signed by the pool, not paid on a chain.");

      const missing = rows.nth(3);
      assert.equal(await missing.getAttribute("data-status"), "not_found");
      assert.match(await missing.innerText(), /Not found on chain/);
      assert.match(await missing.innerText(), /the transaction paid 0x9999999999999999999999999999999999999999, not this provider/);

      // An address is bound, so nothing asks for one.
      assert.equal(await tab.getByText("Set a payout address to be paid").count(), 0);
    }));

  it("Hardware shows each GPU, the CPU and memory", () =>
    withPage("hardware", async ({ tab }) => {
      const rtx = tab.getByRole("article", { name: "NVIDIA GeForce RTX 4070" });
      await rtx.waitFor();
      for (const text of ["Vulkan · Discrete GPU", "12.0 GiB", "87%", "64 °C", "GFLOP/s"]) {
        await rtx.getByText(text).first().waitFor();
      }
      // The embeddings score, with its unit and the model it is for.
      const embeddings = rtx.locator(".score span", { hasText: "embeddings/s" });
      assert.equal(
        (await embeddings.textContent()).replace(/\s+/g, " ").trim(),
        "1,840.5 embeddings/s with all-MiniLM-L6-v2",
      );
      const intel = tab.getByRole("article", { name: "Intel(R) UHD Graphics 770" });
      await intel.getByText("Not measured yet").waitFor();
      assert.equal(await intel.getByRole("switch", { name: "Share this GPU" }).isChecked(), false);
      await visible(tab, "AMD Ryzen 7 7700X 8-Core Processor · 16 cores");
      await visible(tab, "32.0 GiB in all");
    }));

  it("Pools lists each pool with its state and earnings, in the unit it pays in", () =>
    withPage("pools", async ({ tab }) => {
      const lab = tab.getByRole("listitem", { name: "Lab cluster" });
      await lab.getByText("Connected").waitFor();
      await lab.getByText("0.184250 tUSD").waitFor();
      const farm = tab.getByRole("listitem", { name: "Render farm" });
      await farm.getByText("Unreachable").waitFor();
      await farm.getByText("0.031000 IOU").waitFor();
      await farm.getByText("cannot reach the pool: no route to its endpoint", { exact: false }).waitFor();
      await tab.getByRole("button", { name: "Start a local pool with sample work" }).waitFor();
    }));

  it("Pools shows how each pool is reached: direct or relayed with why and the round-trip time", () =>
    withPage("pools", async (window) => {
      const { tab } = window;
      const lab = tab.getByRole("listitem", { name: "Lab cluster" });
      const labPath = lab.getByLabel("How Lab cluster is reached");
      await labPath.waitFor();
      assert.equal(
        await labPath.textContent(),
        "Relayed · 48 ms: your router or the pool's does not allow a direct path",
      );
      // Unreachable: the state and the last error say it; no path line repeats them.
      const farm = tab.getByRole("listitem", { name: "Render farm" });
      await farm.getByText("Unreachable").waitFor();
      assert.equal(await farm.getByLabel("How Render farm is reached").count(), 0);

      // The node tells of a hole punched: the line follows.
      const pools = (await window.state()).pools.map((p) =>
        p.name === "Lab cluster" ? { ...p, path: { kind: "direct", rtt_ms: 3 } } : p,
      );
      await window.emit("pools", pools);
      await lab.getByText("Direct · 3 ms").waitFor();
      assert.equal(await labPath.textContent(), "Direct · 3 ms");
    }));

  it("Settings shows every preference as loaded", () =>
    withPage("settings", async ({ tab }) => {
      assert.equal(await tab.getByLabel("When I'm away").isChecked(), true);
      assert.equal(await tab.getByLabel("Start after this long without keyboard or mouse").inputValue(), "3");
      assert.equal(await tab.getByLabel("Other programs use more CPU than (%)").inputValue(), "25");
      assert.equal(await tab.getByLabel("The GPU is hotter than (°C)").inputValue(), "85");
      assert.equal(await tab.getByRole("switch", { name: "Only share at certain times" }).isChecked(), true);
      await visible(tab, "Weekdays, 10:00 PM – 7:00 AM next day");
      await visible(tab, "blender");
      assert.equal(await tab.getByRole("switch", { name: "Start at login" }).isChecked(), true);
      assert.equal(await tab.getByRole("button", { name: "Save" }).isDisabled(), true);
    }));
});
