// What the window sends when a person uses it, and how it follows what the app pushes back.

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

async function withWindow(options, run) {
  const window = await openWindow(browser, server.url, options);
  try {
    await window.tab.getByRole("heading", { level: 1 }).first().waitFor();
    await run(window);
    assert.deepEqual(window.problems, []);
  } finally {
    await window.close();
  }
}

const visible = (scope, text) => scope.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 });

describe("overview", () => {
  it("toggling sharing sends set_sharing and shows the status the app pushes", () =>
    withWindow({ page: "overview" }, async (window) => {
      const { tab } = window;
      const toggle = tab.getByRole("switch", { name: "Share when idle" });
      assert.equal(await toggle.isChecked(), true);

      await toggle.click();
      assert.deepEqual((await waitForCalls(window, "set_sharing")).map((c) => c.args), [{ on: false }]);
      await visible(tab, "Paused: sharing is off");
      assert.equal(await toggle.isChecked(), false);
      await visible(tab, "No work is running right now.");

      // The app changes its mind on its own (say, from the tray menu): the window follows the event.
      const status = await window.state().then((s) => s.status);
      await window.emit("status", { ...status, kind: "waiting", sharing: true, reason: "Waiting: you are using the computer" });
      await visible(tab, "Waiting: you are using the computer");
      assert.equal(await toggle.isChecked(), true);

      await toggle.click();
      assert.deepEqual((await waitForCalls(window, "set_sharing", 2)).map((c) => c.args), [{ on: false }, { on: false }]);
    }));

  it("Pause for 1 hour sends snooze 60, and Resume now ends it", () =>
    withWindow({ page: "overview" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("button", { name: "Pause for 1 hour" }).click();
      assert.deepEqual((await waitForCalls(window, "snooze")).map((c) => c.args), [{ minutes: 60 }]);
      await visible(tab, "Paused until");

      await tab.getByRole("button", { name: "Resume now" }).click();
      await waitForCalls(window, "resume");
      await tab.getByRole("button", { name: "Pause for 1 hour" }).waitFor();
    }));

  it("keeps the page still when the job ends", () =>
    withWindow({ page: "overview" }, async (window) => {
      const { tab } = window;
      const card = tab.locator("section.job");
      const before = await card.boundingBox();
      const status = await window.state().then((s) => s.status);
      await window.emit("status", { ...status, kind: "waiting", job: null, reason: "Waiting for work" });
      await visible(tab, "No work is running right now.");
      assert.deepEqual(await card.boundingBox(), before);
    }));
});

describe("payouts", () => {
  it("Export CSV hands save_csv one row per payout and shows where it went", () =>
    withWindow({ page: "payouts" }, async (window) => {
      const { tab } = window;
      await tab.locator("tbody tr").first().waitFor();
      await tab.getByRole("button", { name: "Export CSV" }).click();
      const [{ args }] = await waitForCalls(window, "save_csv");

      assert.match(args.name, /^idlegrid-payouts-\d{4}-\d{2}-\d{2}\.csv$/);
      const { payouts } = await window.state();
      const lines = args.contents.split("\n");
      assert.equal(
        lines[0],
        "date,pool,amount,symbol,receipts,status,tx_hash,block,confirmations,checked_through_pool,explorer_url,chain_id,to,signature_verified,reference",
      );
      assert.equal(lines.length, payouts.length + 2, "a header, one line per payout, and a final newline");
      assert.equal(lines.at(-1), "");
      payouts.forEach((payout, i) => {
        const date = new Date(payout.at_ms).toISOString();
        const start = `${date},${payout.pool_name},${payout.amount},${payout.symbol ?? "IOU"},${payout.receipts},${payout.status},${payout.tx_hash ?? ""},`;
        assert.ok(lines[i + 1].startsWith(start), `${lines[i + 1]} should start with ${start}`);
      });
      const tx = `0x${"02".repeat(32)}`;
      assert.ok(lines.some((l) => l.includes(`,confirmed,${tx},3500,712,false,https://explorer.example/tx/${tx},31337,`)), "the confirmed payout's transaction");
      assert.ok(lines.some((l) => l.endsWith(',iou,,,,false,,,,true,"invoice 12, ""frames"""')), "the IOU, its reference quoted");

      await visible(tab, `Saved to /home/alex/Downloads/${args.name}`);
    }));

  it("puts a payout the app pushes at the top", () =>
    withWindow({ page: "payouts" }, async (window) => {
      const { tab } = window;
      await tab.locator("tbody tr").first().waitFor();
      const [newest] = await window.state().then((s) => s.payouts);
      await window.emit("paid", { ...newest, id: "payout-new", at_ms: Date.now(), amount: "0.777000", receipts: 9 });
      await tab.locator("tbody tr").first().getByText("0.777000 tUSD").waitFor();
      assert.equal(await tab.locator("tbody tr").count(), 7);
    }));

  it("shows a pending payout confirmed when its check comes, where it stands", () =>
    withWindow({ page: "payouts" }, async (window) => {
      const { tab } = window;
      const rows = tab.locator("tbody tr");
      await rows.first().waitFor();
      const [pending] = await window.state().then((s) => s.payouts);
      assert.equal(pending.status, "pending");
      await window.emit("paid", { ...pending, status: "confirmed", signature_verified: true, confirmations: 2, checked_through_pool: false });
      await rows.first().getByText("Confirmed on chain").waitFor();
      assert.match(await rows.first().innerText(), /block 4200 · 2 confirmations/);
      assert.equal(await rows.count(), 6);
    }));

  it("asks for a payout address when none is bound, linking to Settings", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      const section = tab.getByRole("region", { name: "Payout address" });
      await section.getByText("Payouts go to 0x5e1f8a2b3c4d5e6f708192a3b4c5d6e7f8091a2b").waitFor();
      await section.getByRole("radio", { name: /None for now/ }).check();
      await section.getByRole("button", { name: "Use this payout address" }).click();
      const [{ args }] = await waitForCalls(window, "set_settings");
      assert.equal(args.settings.payout.to, "none");
      await section.getByText("No payout address: pools that pay on a chain hold what you earn.").waitFor();

      await tab.getByRole("link", { name: "Payouts" }).click();
      const ask = tab.getByRole("link", { name: "Set a payout address to be paid" });
      await ask.click();
      await tab.getByRole("heading", { name: "Settings", level: 1 }).waitFor();
    }));
});

describe("pools", () => {
  it("shows a malformed ticket's error next to the field", () =>
    withWindow({ page: "pools" }, async (window) => {
      const { tab } = window;
      const ticket = tab.getByLabel("Pool ticket");
      await tab.getByRole("button", { name: "Join pool" }).click();
      await visible(tab, "Paste the ticket you got from the pool's operator.");
      assert.equal((await window.calls("join_pool")).length, 0, "an empty ticket is not sent");

      await ticket.fill("https://example.com/not-a-ticket");
      await tab.getByRole("button", { name: "Join pool" }).click();
      const [{ args }] = await waitForCalls(window, "join_pool");
      assert.deepEqual(args, { ticket: "https://example.com/not-a-ticket", name: null });
      const error = tab.locator("#" + (await ticket.getAttribute("aria-describedby")));
      assert.match(await error.innerText(), /^not a pool ticket: /);
      assert.equal(await ticket.getAttribute("aria-invalid"), "true");
    }));

  it("joins with a good ticket and a name", () =>
    withWindow({ page: "pools" }, async (window) => {
      const { tab } = window;
      await tab.getByLabel("Pool ticket").fill("endpoint" + "abcdefghijklmnopqrstuvwxyz234567".repeat(2));
      await tab.getByLabel("Name (optional)").fill("Physics lab");
      await tab.getByRole("button", { name: "Join pool" }).click();
      assert.equal((await waitForCalls(window, "join_pool"))[0].args.name, "Physics lab");
      // A joined pool lands on the overview; the pool is then listed.
      await tab.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
      await tab.getByRole("link", { name: "Pools" }).click();
      await tab.getByRole("listitem", { name: "Physics lab" }).getByText("Connecting").waitFor();
    }));

  it("leaves a pool only after confirming", () =>
    withWindow({ page: "pools" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("button", { name: "Leave Render farm" }).click();
      const dialog = tab.getByRole("dialog", { name: "Leave Render farm?" });
      await dialog.waitFor();
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "hidden" });
      assert.equal((await window.calls("leave_pool")).length, 0);

      await tab.getByRole("button", { name: "Leave Render farm" }).click();
      await dialog.getByRole("button", { name: "Leave" }).click();
      const [{ args }] = await waitForCalls(window, "leave_pool");
      const { pools } = await window.state();
      assert.ok(!pools.some((p) => p.id === args.id));
      await tab.getByRole("listitem", { name: "Render farm" }).waitFor({ state: "detached" });
    }));

  it("blocks a pool after confirming", () =>
    withWindow({ page: "pools" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("button", { name: "Block Lab cluster" }).click();
      await tab.getByRole("dialog", { name: "Block Lab cluster?" }).getByRole("button", { name: "Block" }).click();
      await waitForCalls(window, "block_pool");
      await tab.getByRole("listitem", { name: "Lab cluster" }).getByText("Blocked").waitFor();
      assert.equal(await tab.getByRole("button", { name: "Leave Lab cluster" }).count(), 0);
    }));
});

describe("hardware", () => {
  it("runs a benchmark with a busy button, then shows the new score", () =>
    withWindow({ page: "hardware" }, async (window) => {
      const { tab } = window;
      const intel = tab.getByRole("article", { name: "Intel(R) UHD Graphics 770" });
      const button = intel.getByRole("button", { name: "Run benchmark" });
      await button.click();
      assert.deepEqual((await waitForCalls(window, "run_benchmark"))[0].args, { adapter: "Intel(R) UHD Graphics 770" });
      const busy = intel.locator("button[aria-busy='true']");
      await busy.waitFor();
      assert.equal(await busy.isDisabled(), true);
      await intel.getByText("14,310").waitFor();
      await intel.getByText("212.4").waitFor();
      await intel.getByText("with tiny-bert").waitFor();
      await intel.locator("button[aria-busy='false']").waitFor();
    }));

  it("switches a GPU's sharing and follows pushed readings", () =>
    withWindow({ page: "hardware" }, async (window) => {
      const { tab } = window;
      const intel = tab.getByRole("article", { name: "Intel(R) UHD Graphics 770" });
      const share = intel.getByRole("switch", { name: "Share this GPU" });
      await share.click();
      assert.deepEqual((await waitForCalls(window, "set_gpu_shared"))[0].args, {
        adapter: "Intel(R) UHD Graphics 770",
        shared: true,
      });
      await tab.waitForFunction(() => document.querySelectorAll("[role=switch]:checked").length === 2);

      const { hardware } = await window.state();
      const [rtx, ...rest] = hardware.gpus;
      await window.emit("hardware", { ...hardware, gpus: [{ ...rtx, usage_percent: 3, temperature_c: 41 }, ...rest] });
      const card = tab.getByRole("article", { name: "NVIDIA GeForce RTX 4070" });
      await card.getByText("3%").waitFor();
      await card.getByText("41 °C").waitFor();
    }));

  it("says what this machine cannot read, and why, instead of a made-up figure", () =>
    withWindow({ page: "hardware" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("heading", { name: "CPU" }).waitFor();
      assert.equal(await tab.getByRole("heading", { name: "Not readable on this machine" }).count(), 0);

      const { hardware } = await window.state();
      const reason = "not implemented by Wine 8.0, under which this Windows program runs (asking would end the program)";
      await window.emit("hardware", {
        ...hardware,
        cpu: { ...hardware.cpu, usage_percent: null },
        unreadable: [{ reading: "CPU use", reason }],
      });
      const cpu = tab.getByRole("region", { name: "CPU" });
      await cpu.getByText("unknown").waitFor();
      assert.equal(await cpu.getByRole("meter").count(), 0, "no bar for an unknown figure");
      const unreadable = tab.getByRole("region", { name: "Not readable on this machine" });
      await unreadable.getByText("CPU use:").waitFor();
      await unreadable.getByText(reason).waitFor();
    }));
});

describe("settings", () => {
  it("shows validation errors and sends nothing until they are fixed", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      const idle = tab.getByLabel("Start after this long without keyboard or mouse");
      await idle.fill("0");
      await tab.getByRole("button", { name: "Save" }).click();
      await visible(tab, "Enter 1 to 240 minutes.");
      await visible(tab, "Fix the fields marked above, then save.");
      assert.equal(await idle.getAttribute("aria-invalid"), "true");
      assert.equal((await window.calls("set_settings")).length, 0);

      await idle.fill("10");
      await tab.getByRole("switch", { name: "Keep running when I return" }).click();
      await tab.getByRole("button", { name: "Save" }).click();
      const [{ args }] = await waitForCalls(window, "set_settings");
      assert.equal(args.settings.preferences.idle_after, 600);
      assert.equal(args.settings.preferences.keep_running_when_active, true);
      // Fields the page does not edit are sent as the app has them.
      assert.deepEqual(args.settings.preferences.gpus, [{ adapter: "Intel(R) UHD Graphics 770", share: false, while_active: false }]);
      await visible(tab, "Saved");
    }));

  it("edits the weekly schedule, across midnight, and the exclusive programs", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("button", { name: "Add time window" }).click();
      const second = tab.locator("fieldset").nth(1);
      await second.getByText("Weekdays, 9:00 AM – 5:00 PM").waitFor();
      await second.getByRole("button", { name: "Saturday" }).click();
      await second.getByLabel("From").fill("23:30");
      await second.getByLabel("to").fill("06:15");
      await second.getByText("Mon–Sat, 11:30 PM – 6:15 AM next day").waitFor();

      const program = tab.getByLabel("Program name");
      await program.fill("obs");
      await program.press("Enter");
      await tab.getByRole("button", { name: "Remove steam" }).click();

      await tab.getByRole("button", { name: "Save" }).click();
      const [{ args }] = await waitForCalls(window, "set_settings");
      assert.deepEqual(args.settings.preferences.schedule.windows[1], { days: [0, 1, 2, 3, 4, 5], start_minute: 1410, end_minute: 375 });
      assert.deepEqual(args.settings.preferences.exclusive_programs, ["blender", "obs"]);
    }));

  it("sets the relays under Network, and direct only", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      await tab.getByLabel("Your own relays, one URL a line").fill("https://relay.example:8443/\nhttps://backup.example/");
      await tab.getByLabel("Trust relay certificates signed by (a PEM file)").fill("/home/alex/relay-ca.pem");
      await tab.getByRole("button", { name: "Save" }).click();
      const [{ args }] = await waitForCalls(window, "set_settings");
      assert.deepEqual(args.settings.network, {
        relays: ["https://relay.example:8443/", "https://backup.example/"],
        relay_ca: "/home/alex/relay-ca.pem",
        no_relay: false,
      });
      await visible(tab, "Saved");

      await tab.getByRole("switch", { name: "Direct only (no relays)" }).click();
      assert.equal(await tab.getByLabel("Your own relays, one URL a line").count(), 0);
      await tab.getByRole("button", { name: "Save" }).click();
      const calls = await waitForCalls(window, "set_settings", 2);
      assert.deepEqual(calls[1].args.settings.network.relays, []);
      assert.equal(calls[1].args.settings.network.no_relay, true);
    }));

  it("shows the app's reason when it refuses the settings", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      // The app knows rules the page does not check itself, such as names rather than paths.
      const program = tab.getByLabel("Program name");
      await program.fill("/usr/bin/blender");
      await program.press("Enter");
      await tab.getByRole("button", { name: "Save" }).click();
      await waitForCalls(window, "set_settings");
      await visible(tab, 'Not saved: exclusive program "/usr/bin/blender": give the program\'s name, not a path');
      assert.equal(await tab.getByRole("button", { name: "Save" }).isEnabled(), true);
    }));

  it("takes a pasted payout address and a chain RPC, checking both first", () =>
    withWindow({ page: "settings" }, async (window) => {
      const { tab } = window;
      const section = tab.getByRole("region", { name: "Payout address" });
      await section.getByRole("radio", { name: /An address I paste/ }).check();
      const address = section.getByLabel("Address", { exact: true });
      await address.fill("0xdead");
      const rpc = section.getByLabel("Check payouts through this RPC");
      await rpc.fill("rpc.example");
      await section.getByRole("button", { name: "Use this payout address" }).click();
      await section.getByText("An address is 0x followed by 40 hex digits.").waitFor();
      await section.getByText("Enter a URL starting with http://, https://, ws:// or wss://, or leave it empty.").waitFor();
      assert.equal(await address.getAttribute("aria-invalid"), "true");
      assert.equal((await window.calls("set_settings")).length, 0);

      const pasted = "0x00000000000000000000000000000000000000AA";
      await address.fill(` ${pasted} `);
      await rpc.fill("https://rpc.example/v1");
      await section.getByRole("button", { name: "Use this payout address" }).click();
      const [{ args }] = await waitForCalls(window, "set_settings");
      assert.deepEqual(
        { ...args.settings.payout, bound_address: undefined },
        { to: "address", address: pasted, chain_rpc: "https://rpc.example/v1", bound_address: undefined },
      );
      // The rest of the settings go back as the app has them.
      assert.deepEqual(args.settings.preferences, (await window.state()).settings.preferences);
      await section.getByText(`Payouts go to ${pasted.toLowerCase()}`).waitFor();
      await section.getByText("Saved").waitFor();
    }));

  it("opens the logs folder", () =>
    withWindow({ page: "settings" }, async (window) => {
      await window.tab.getByRole("button", { name: "Open logs folder" }).click();
      await waitForCalls(window, "open_logs_folder");
    }));
});

describe("first run", () => {
  it("explains how to join and starts the local pool, landing on the overview", () =>
    withWindow({ scenario: "first-run" }, async (window) => {
      const { tab } = window;
      await visible(tab, "Welcome to Idlegrid");
      await visible(tab, "Paste it below");
      assert.equal(await tab.getByRole("navigation").count(), 0);

      await tab.getByRole("button", { name: "Start a local pool with sample work" }).click();
      await waitForCalls(window, "start_local_pool");
      await tab.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
      await visible(tab, "Working: Embedding 256 texts (all-MiniLM-L6-v2) for pool Local pool");
      await tab.getByRole("navigation").waitFor();
    }));

  it("lets a person look around before joining", () =>
    withWindow({ scenario: "first-run" }, async (window) => {
      const { tab } = window;
      await tab.getByRole("button", { name: "Look around first" }).click();
      await tab.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
      await visible(tab, "Waiting: no pool joined yet");
    }));
});

describe("keyboard", () => {
  it("reaches the pages from the keyboard, with a visible focus ring", () =>
    withWindow({ page: "overview" }, async (window) => {
      const { tab } = window;
      await tab.keyboard.press("Tab");
      const focused = () => tab.evaluate(() => document.activeElement?.textContent?.trim());
      assert.equal(await focused(), "Overview");
      const outline = await tab.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, "none");

      await tab.keyboard.press("Tab");
      assert.equal(await focused(), "Earnings");
      await tab.keyboard.press("Enter");
      await tab.getByRole("heading", { name: "Earnings", level: 1 }).waitFor();
    }));
});
