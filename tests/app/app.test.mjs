// @ts-check
// The desktop app end to end, as a person uses it: the real app (idlegrid-desktop, in the tray) under
// a private X server, driven through its window (idlegrid-window, which tauri-driver starts and which
// finds the app) by tauri-driver, working for a real `idlegrid pool` on 127.0.0.1 that submitters
// feed. Then, without the driver, the window's life: the app opens it as a process of its own, closing
// it ends that process and its web engine while the app stays in the tray, and a second launch opens
// it again.
//
// Needs: the app and CLI built (IDLEGRID_APP / IDLEGRID_CLI, default $CARGO_TARGET_DIR/debug/), Xvfb,
// dbus, xdotool, WebKitWebDriver (webkit2gtk-driver) and tauri-driver. Screenshots of every page and
// the logs of everything started land in artifacts/e2e/.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  alive, ARTIFACTS, feedJobs, findWindows, groupMembers, pollFor, privateEnv, Processes, programs, REPO_ROOT, removeDir, run,
  sleep, startDbus, startPool, startTauriDriver, startXvfb, tempDir, webkitProcesses, windowProcesses,
} from "./harness.mjs";
import { button, css, hasClass, Session, waitUntil, xpath, xpathLiteral } from "./webdriver.mjs";
import { closeWindows } from "./x11.mjs";

const POOL_NAME = "E2E pool";
const JOB = join(REPO_ROOT, "examples", "jobs", "matmul", "job.toml");
// The job pays 0.0005; a payout after two verified results.
const PAYOUT_THRESHOLD = "0.001";
const LOGS = join(ARTIFACTS, "logs");

const SHARE_SWITCH = xpath(`//label[.//span[normalize-space()='Share when idle']]/following-sibling::input[@role='switch']`);
const STATE_REASON = xpath(`//p[${hasClass("reason")}]`);

/** A decimal amount as the window shows it ("0.0005"); NaN for anything else. @param {string} text */
/** A figure as the window shows it, "0.0005" or with its unit, "0.0005 IOU"; NaN for anything else. */
const amount = (text) => {
  const figure = /^(\d+(?:\.\d+)?)(?:\s+[A-Za-z][\w.-]*)?$/.exec(text.trim());
  return figure ? Number(figure[1]) : NaN;
};

/**
 * Saves what the window shows, once it has painted: an element that has just appeared may not be on
 * screen yet (the first-run screen came out blank without this).
 * @param {Session} session @param {string} name
 */
async function screenshot(session, name) {
  const afterTwoFrames =
    "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true))); setTimeout(done, 1000, false);";
  await session.command("POST", "/execute/async", { script: afterTwoFrames, args: [] });
  writeFileSync(join(ARTIFACTS, `${name}.png`), await session.screenshot());
}

/** Opens a page from the navigation and waits for its title. @param {Session} session @param {string} title */
async function goTo(session, title) {
  await session.clickOn(xpath(`//nav//a[normalize-space()=${xpathLiteral(title)}]`));
  await session.waitFor(xpath(`//main//h1[normalize-space()=${xpathLiteral(title)}]`));
}

/** The value of one of the figures cards ("Today", "Earned"). @param {Session} session @param {string} label */
async function figure(session, label) {
  const card = `//div[${hasClass("stat")}][span[${hasClass("label")} and normalize-space()=${xpathLiteral(label)}]]`;
  return session.text(await session.find(xpath(`${card}/span[${hasClass("value")}]`)));
}

/**
 * Asks the app a command the way the window does; only to explain a failure, never to drive the test.
 * @param {Session} session @param {string} command
 */
function invoke(session, command) {
  const script =
    "const done = arguments[1]; window.__TAURI_INTERNALS__.invoke(arguments[0]).then(done, (e) => done(`rejected: ${e}`));";
  return session.command("POST", "/execute/async", { script, args: [command] });
}

/** Whether the Overview's switch is on. @param {Session} session */
async function sharing(session) {
  return (await session.property(await session.find(SHARE_SWITCH), "checked")) === true;
}

/**
 * The scenario's steps as subtests, in order. A failed step skips the steps after it (they build on
 * it) and leaves a screenshot; a failed check does not.
 */
class Steps {
  /** @param {import("node:test").TestContext} t @param {Session} session */
  constructor(t, session) {
    this.t = t;
    this.session = session;
    /** @type {string | null} */
    this.failed = null;
  }

  /** @param {string} name @param {() => Promise<unknown>} body */
  run(name, body) {
    return this.#subtest(name, body, true);
  }

  /** @param {string} name @param {() => Promise<unknown>} body */
  check(name, body) {
    return this.#subtest(name, body, false);
  }

  /** @param {string} name @param {() => Promise<unknown>} body @param {boolean} needed */
  #subtest(name, body, needed) {
    const skip = this.failed ? `skipped: "${this.failed}" failed` : false;
    return this.t.test(name, { skip }, async () => {
      try {
        await body();
      } catch (error) {
        if (needed) this.failed = name;
        const file = `failed-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}`;
        await screenshot(this.session, file).catch(() => undefined);
        throw error;
      }
    });
  }
}

describe("the desktop app, end to end", { timeout: 300_000 }, () => {
  /** @type {Processes} */
  let processes;
  /** @type {NodeJS.ProcessEnv} */
  let env;
  let root = "";
  let display = "";
  let ticket = "";
  let appData = "";
  let submitterData = "";
  const { app, window, cli } = programs();

  before(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(LOGS, { recursive: true });
    root = tempDir();
    appData = join(root, "app");
    submitterData = join(root, "submitter");
    processes = new Processes(LOGS);
    display = await startXvfb(processes);
    env = privateEnv(root, display);
    env.DBUS_SESSION_BUS_ADDRESS = await startDbus(processes, env);
    const id = await run(processes, "id", cli, ["id", "--data", submitterData], env);
    assert.equal(id.code, 0, "idlegrid id failed (see artifacts/e2e/logs/id.log)");
    ticket = await startPool(processes, cli, join(root, "pool"), id.stdout.trim(), env, PAYOUT_THRESHOLD);
  });

  after(async () => {
    await processes?.stopAll();
    if (root) removeDir(root);
  });

  it("a person joins a pool, shares while away, and sees the job, the receipt and a verified payout", async (t) => {
    // The app in the tray, as at login; tauri-driver then starts its window program, which finds it.
    const tray = processes.start("app-tray", app, ["--hidden", "--data", appData], { env });
    await waitUntil(async () => readFileSync(join(LOGS, "app-tray.log"), "utf8").includes("node open"), {
      what: "the app in the tray",
      timeoutMs: 30_000,
    });
    const driver = await startTauriDriver(processes, env);
    const session = await Session.start(driver.url, { "tauri:options": { application: window, args: ["--data", appData] } });
    const outDir = join(root, "out");
    const jobs = feedJobs(processes, cli, { job: JOB, ticket, dataDir: submitterData, outDir, env, count: 2 });
    const steps = new Steps(t, session);
    try {
      await steps.run("the first-run screen shows, and joining with the pool's ticket lists the pool", () =>
        firstRunAndJoin(session),
      );
      // Not a step the others need: a window that missed the update still works.
      await steps.check("the joined pool shows as connected", () => poolConnected(session));
      await steps.run("the Overview's switch turns sharing off", () => turnSharingOff(session));
      await steps.run("Settings saves a one-minute idle delay and no CPU limit", () => shareAfterOneIdleMinute(session));
      await steps.run("the Overview's switch turns sharing on again", () => turnSharingOn(session));
      await steps.run("the Overview shows the job running or done, and today's earnings", async () => {
        t.diagnostic("sharing is on; a minute without input, then work");
        t.diagnostic(`the Overview showed ${await jobRunningOrDone(session)}`);
        await waitUntil(async () => amount(await figure(session, "Today")) > 0, { what: "today's earnings", timeoutMs: 60_000 });
        await screenshot(session, "overview");
      });
      await steps.run("Earnings shows what the pool paid for", () => earningsShowThePool(session));
      await steps.run("Payouts shows the pool's signed IOU with its amount and unit", () => payoutsShowTheIou(session));
      await steps.run("Hardware shows the GPU, CPU and memory", () => hardwareShowsTheMachine(session));
      await steps.run("Pools and Settings show", async () => {
        await goTo(session, "Pools");
        await screenshot(session, "pools");
        await goTo(session, "Settings");
        await screenshot(session, "settings");
      });
      await steps.check("Pools shows what the pool earned", () => poolShowsEarnings(session));
      t.diagnostic(`submit exit codes: ${jobs.results.join(" ")}`);
    } finally {
      await jobs.stop();
      await session.quit().catch(() => undefined);
      await processes.stop(driver.child);
      await processes.stop(tray);
    }
  });

  it("lives in the tray when its window closes, and a second launch opens the window again", async (t) => {
    const first = processes.start("app", app, ["--data", appData], { env });
    const pid = /** @type {number} */ (first.pid);
    try {
      const windows = await waitUntil(
        async () => {
          const found = await findWindows(processes, env, { visible: true });
          return found.length > 0 && found;
        },
        { what: "the window", timeoutMs: 30_000 },
      );
      const webProcess = () => webkitProcesses(pid).some((p) => p.name.startsWith("WebKitWebProces"));
      assert.ok(await pollFor(webProcess, 20_000), "the open window runs a WebKit web process");
      // A person closes a window they have looked at: let the page load first.
      await sleep(3000);
      await closeWindows(display, windows);

      // Each property reports on its own: one failing does not hide the others.
      await t.test("closing the window leaves the app running in the tray, with no window", async () => {
        const noWindow = async () => (await findWindows(processes, env)).length === 0;
        assert.ok(await pollFor(noWindow, 10_000), "no window is left, hidden or not");
        await sleep(2000);
        assert.ok(alive(pid), "the app goes on in the tray after its window closed");
        assert.match(readFileSync(join(LOGS, "app.log"), "utf8"), /window closed; Idlegrid goes on in the tray/);
      });
      await t.test("no window process and no WebKit process is left a few seconds after the window closed", async () => {
        const gone = await pollFor(() => webkitProcesses(pid).length + windowProcesses(pid).length === 0, 10_000);
        const left = [...windowProcesses(pid), ...webkitProcesses(pid)];
        assert.ok(gone, `still running: ${JSON.stringify(left)}`);
      });
      await t.test("a second launch exits and the first app opens its window again", async () => {
        const second = await run(processes, "app-second-launch", app, ["--data", appData], env);
        assert.equal(second.code, 0, "a second launch hands over to the first and exits");
        await waitUntil(async () => (await findWindows(processes, env, { visible: true })).length > 0, {
          what: "the first app to open its window again",
          timeoutMs: 20_000,
        });
        assert.ok(alive(pid), "the first app is still the one running");
        assert.ok(await pollFor(webProcess, 20_000), "the reopened window runs a web process");
      });
      await t.test("SIGTERM (a session ending) stops the app cleanly", async () => {
        process.kill(pid, "SIGTERM");
        assert.ok(await pollFor(() => !alive(pid), 10_000), "the app stops within 10 s of SIGTERM");
        assert.match(readFileSync(join(LOGS, "app.log"), "utf8"), /Idlegrid stopped/);
        // Its GPU workers, its window and the window's web engine end with it (the app was started as
        // a group of its own).
        const ended = await pollFor(() => groupMembers(pid).length === 0, 5000);
        assert.ok(ended, `left behind: ${JSON.stringify(groupMembers(pid))}`);
      });
    } finally {
      await processes.stop(first);
    }
  });

  /** The first-run screen, then joining the pool with its ticket: the pool appears on Pools. @param {Session} session */
  async function firstRunAndJoin(session) {
    await session.waitFor(xpath("//h1[normalize-space()='Welcome to Idlegrid']"), 60_000);
    await screenshot(session, "first-run");
    await session.type(await session.find(css("textarea")), ticket);
    const name = await session.find(xpath("//label[starts-with(normalize-space(), 'Name')]/following-sibling::input"));
    await session.type(name, POOL_NAME);
    await session.clickOn(button("Join pool"));
    await session.waitFor(xpath("//main//h1[normalize-space()='Overview']"), 30_000);
    await goTo(session, "Pools");
    await session.waitFor(xpath(`//li[@aria-label=${xpathLiteral(POOL_NAME)}]`));
  }

  /** @param {Session} session */
  async function poolConnected(session) {
    const row = xpath(`//li[@aria-label=${xpathLiteral(POOL_NAME)}]`);
    try {
      await waitUntil(async () => (await session.text(await session.find(row))).includes("Connected"), {
        what: `${POOL_NAME} to show as connected`,
        timeoutMs: 30_000,
      });
    } catch (error) {
      // Tell a window that missed an update from an app that did not connect.
      const states = await invoke(session, "get_pools").catch((e) => `(cannot ask: ${e.message})`);
      throw new Error(`${/** @type {Error} */ (error).message}; the app's get_pools says ${JSON.stringify(states)}`);
    }
  }

  /** Sharing is on at first (mode "when idle"): the switch turns it off. @param {Session} session */
  async function turnSharingOff(session) {
    await goTo(session, "Overview");
    assert.equal(await sharing(session), true, "a new install shares when idle");
    await session.click(await session.find(SHARE_SWITCH));
    await waitUntil(async () => !(await sharing(session)), { what: "the switch to turn off" });
    await waitUntil(async () => /sharing is off/i.test(await session.text(await session.find(STATE_REASON))), {
      what: "the reason to say sharing is off",
    });
  }

  /** @param {Session} session */
  async function turnSharingOn(session) {
    await goTo(session, "Overview");
    assert.equal(await sharing(session), false, "sharing stays off after saving settings with mode Never");
    await session.click(await session.find(SHARE_SWITCH));
    await waitUntil(() => sharing(session), { what: "the switch to turn on" });
  }

  /**
   * Settings: the shortest idle delay the window allows (1 minute; WebDriver's clicks are not X
   * input, so the X server's idle time only grows), and no limit on other programs' CPU use (the
   * test machine compiles, the pool and submitters run beside the app).
   * @param {Session} session
   */
  async function shareAfterOneIdleMinute(session) {
    await goTo(session, "Settings");
    const idle = await session.waitFor(
      xpath("//label[normalize-space()='Start after this long without keyboard or mouse']/following-sibling::span//input"),
    );
    await session.type(idle, "1");
    const cpuLimit = await session.find(
      xpath(`//label[${hasClass("check")}][normalize-space()='Other programs use more CPU than']/input[@type='checkbox']`),
    );
    if ((await session.property(cpuLimit, "checked")) === true) await session.click(cpuLimit);
    await session.clickOn(button("Save"));
    await waitUntil(async () => (await session.text(await session.find(css("p[role=status]")))).trim() === "Saved", {
      what: "the settings to be saved",
    });
    assert.equal(await session.property(idle, "value"), "1");
  }

  /**
   * Waits for the Overview to show work: "Working: …" with the job card, or today's earnings above
   * zero when the job ran between two looks. Returns what it saw.
   * @param {Session} session
   */
  async function jobRunningOrDone(session) {
    return waitUntil(
      async () => {
        const reason = await session.text(await session.find(STATE_REASON));
        if (reason.startsWith("Working")) {
          // The job card fills in with the job's first progress report, a moment after the state.
          const job = await session.text(await session.find(xpath("//section[@aria-labelledby='job-title']")));
          if (/matmul/.test(job)) {
            await screenshot(session, "overview-working");
            return `"${reason}" with the job card naming matmul`;
          }
        }
        const today = await figure(session, "Today");
        return amount(today) > 0 && `today's earnings ${today} (state: "${reason}")`;
      },
      { what: "the Overview to show the job running or done", timeoutMs: 180_000, intervalMs: 150 },
    );
  }

  /** @param {Session} session */
  async function earningsShowThePool(session) {
    await goTo(session, "Earnings");
    const entry = `//ul[${hasClass("legend")}]/li[span[${hasClass("name")}][normalize-space()=${xpathLiteral(POOL_NAME)}]]`;
    const total = xpath(`${entry}/span[${hasClass("num")}]`);
    await waitUntil(async () => amount(await session.text(await session.find(total))) > 0, {
      what: `${POOL_NAME}'s earnings in the legend`,
      timeoutMs: 30_000,
    });
    assert.ok(amount(await figure(session, "Earned")) > 0, "the Earned figure is above zero");
    await screenshot(session, "earnings");
  }

  /** @param {Session} session */
  async function payoutsShowTheIou(session) {
    await goTo(session, "Payouts");
    // The test's pool pays with no chain: its payouts are IOUs it signed, and the row says so.
    const row = xpath(
      `//table/tbody/tr[td/span[${hasClass("pool")}][normalize-space()=${xpathLiteral(POOL_NAME)}]]`,
    );
    const payout = await session.waitFor(row, 120_000);
    const figureIn = async (/** @type {string} */ path) =>
      session.text(await session.find(xpath(`${row.value}[1]${path}`)));
    const paid = await figureIn(`//span[${hasClass("amount")}]`);
    assert.ok(amount(paid) > 0 && paid.endsWith("IOU"), `the payout's amount and unit: ${paid}`);
    const receipts = await figureIn(`/td[2]/span[${hasClass("detail")}]`);
    assert.ok(Number.parseInt(receipts, 10) >= 1, `the receipts it settles: ${receipts}`);
    const status = await figureIn(`//span[${hasClass("label")}]`);
    assert.equal(status, "IOU", `the payout's status: ${await session.text(payout)}`);
    await screenshot(session, "payouts");
  }

  /** @param {Session} session */
  async function hardwareShowsTheMachine(session) {
    await goTo(session, "Hardware");
    await session.waitFor(xpath(`//article[${hasClass("gpu")}]//h2`), 20_000);
    await session.waitFor(xpath("//h2[normalize-space()='CPU']"));
    await session.waitFor(xpath("//h2[normalize-space()='Memory']"));
    // Give the first 2-second hardware event time to arrive, so the meters show live figures.
    await sleep(2500);
    await screenshot(session, "hardware");
  }

  /** @param {Session} session */
  async function poolShowsEarnings(session) {
    await goTo(session, "Pools");
    const earned = xpath(`//li[@aria-label=${xpathLiteral(POOL_NAME)}]//dt[normalize-space()='Earned']/following-sibling::dd`);
    try {
      await waitUntil(async () => amount(await session.text(await session.find(earned))) > 0, {
        what: "the pool's earnings on Pools",
      });
    } catch (error) {
      const pools = /** @type {{ name: string, earned_total: string }[]} */ (await invoke(session, "get_pools").catch(() => []));
      const totals = pools.map((p) => `${p.name}: ${p.earned_total}`).join(", ");
      throw new Error(`${/** @type {Error} */ (error).message}; the app's get_pools says ${totals}`);
    }
  }
});
