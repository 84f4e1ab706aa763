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
      await visible(tab, "Working: matmul-512 for Lab cluster");
      assert.equal(await tab.getByRole("progressbar").getAttribute("aria-valuenow"), "42");
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
      await visible(tab, "0.218500");
      const legend = tab.locator(".legend");
      await legend.getByText("Lab cluster").waitFor();
      await legend.getByText("Render farm").waitFor();
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

  it("Payouts lists each payout with its receipts and a verified signature", () =>
    withPage("payouts", async ({ tab }) => {
      const rows = tab.locator("tbody tr");
      await rows.first().waitFor();
      assert.equal(await rows.count(), 6);
      const first = rows.first();
      assert.match(await first.innerText(), /Lab cluster/);
      assert.match(await first.innerText(), /0\.062500/);
      assert.match(await first.innerText(), /125/);
      assert.equal(await tab.getByTitle("Signature verified").count(), 6);
    }));

  it("Hardware shows each GPU, the CPU and memory", () =>
    withPage("hardware", async ({ tab }) => {
      const rtx = tab.getByRole("article", { name: "NVIDIA GeForce RTX 4070" });
      await rtx.waitFor();
      for (const text of ["Vulkan · Discrete GPU", "12.0 GiB", "87%", "64 °C", "GFLOP/s"]) {
        await rtx.getByText(text).first().waitFor();
      }
      const intel = tab.getByRole("article", { name: "Intel(R) UHD Graphics 770" });
      await intel.getByText("Not measured yet").waitFor();
      assert.equal(await intel.getByRole("switch", { name: "Share this GPU" }).isChecked(), false);
      await visible(tab, "AMD Ryzen 7 7700X 8-Core Processor · 16 cores");
      await visible(tab, "32.0 GiB in all");
    }));

  it("Pools lists each pool with its state and earnings", () =>
    withPage("pools", async ({ tab }) => {
      const lab = tab.getByRole("listitem", { name: "Lab cluster" });
      await lab.getByText("Connected").waitFor();
      await lab.getByText("0.184250").waitFor();
      const farm = tab.getByRole("listitem", { name: "Render farm" });
      await farm.getByText("Unreachable").waitFor();
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
