// How the window looks: every page at 800×600 and 400×600, light and dark, without sideways
// scrolling. Saves a screenshot of each to test-results/ for a person to look at.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { launchBrowser, openWindow, RESULTS, serveMockBuild } from "./harness.mjs";

const PAGES = ["overview", "earnings", "payouts", "hardware", "pools", "settings"];
const SIZES = [
  { width: 800, height: 600 },
  { width: 400, height: 600 },
];
const SCHEMES = ["light", "dark"];

let server;
let browser;
before(async () => {
  await mkdir(RESULTS, { recursive: true });
  server = await serveMockBuild();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Every element that scrolls, with how far its content overflows sideways. */
const sidewaysOverflow = (tab) =>
  tab.evaluate(() =>
    [document.documentElement, document.body, ...document.querySelectorAll("main, section, article, table")]
      .map((el) => ({ what: el.tagName + (el.className ? `.${String(el.className).split(" ")[0]}` : ""), by: el.scrollWidth - el.clientWidth }))
      .filter((o) => o.by > 0),
  );

/** Opens a page, waits until its data is in, and saves a screenshot. */
async function shoot(options, file) {
  const window = await openWindow(browser, server.url, options);
  const { tab } = window;
  await tab.getByRole("heading", { level: 1 }).first().waitFor();
  await tab.waitForLoadState("networkidle");
  // Figures load after the title; wait until no placeholder is left.
  await tab.waitForFunction(() => !document.body.innerText.includes("…"));
  await tab.screenshot({ path: join(RESULTS, file) });
  return window;
}

describe("layout", () => {
  for (const page of PAGES) {
    for (const { width, height } of SIZES) {
      for (const colorScheme of SCHEMES) {
        it(`${page} at ${width}×${height}, ${colorScheme}: no sideways scrolling`, async () => {
          const window = await shoot({ page, width, height, colorScheme }, `${page}-${width}x${height}-${colorScheme}.png`);
          try {
            assert.deepEqual(await sidewaysOverflow(window.tab), []);
            assert.deepEqual(window.problems, []);
          } finally {
            await window.close();
          }
        });
      }
    }
  }

  for (const { width, height } of SIZES) {
    for (const colorScheme of SCHEMES) {
      it(`first run at ${width}×${height}, ${colorScheme}: no sideways scrolling`, async () => {
        const window = await shoot({ scenario: "first-run", width, height, colorScheme }, `first-run-${width}x${height}-${colorScheme}.png`);
        try {
          assert.deepEqual(await sidewaysOverflow(window.tab), []);
        } finally {
          await window.close();
        }
      });
    }
  }

  it("follows the system's dark mode", async () => {
    const luminance = (tab, selector, property) =>
      tab.evaluate(
        ([sel, prop]) => {
          const [r, g, b] = getComputedStyle(document.querySelector(sel))[prop].match(/\d+/g).map(Number);
          return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
        },
        [selector, property],
      );
    const dark = await openWindow(browser, server.url, { colorScheme: "dark" });
    const light = await openWindow(browser, server.url, { colorScheme: "light" });
    try {
      for (const { tab } of [dark, light]) await tab.getByRole("heading", { level: 1 }).waitFor();
      assert.ok((await luminance(dark.tab, "html", "backgroundColor")) < 0.2);
      assert.ok((await luminance(dark.tab, "h1", "color")) > 0.8);
      assert.ok((await luminance(light.tab, "html", "backgroundColor")) > 0.9);
      assert.ok((await luminance(dark.tab, ".card", "backgroundColor")) < 0.25);
    } finally {
      await dark.close();
      await light.close();
    }
  });

  it("folds the sidebar into a top bar in a narrow window", async () => {
    const wide = await openWindow(browser, server.url, { width: 800, height: 600 });
    const narrow = await openWindow(browser, server.url, { width: 400, height: 600 });
    try {
      const box = async ({ tab }) => {
        await tab.getByRole("heading", { level: 1 }).waitFor();
        return tab.getByRole("navigation").boundingBox();
      };
      const side = await box(wide);
      assert.equal(side.height, 600);
      assert.ok(side.width < 240);
      const top = await box(narrow);
      assert.equal(top.width, 400);
      assert.ok(top.height < 70);
      for (const name of ["Overview", "Earnings", "Payouts", "Hardware", "Pools", "Settings"]) {
        assert.ok(await narrow.tab.getByRole("link", { name }).isVisible(), `${name} is reachable`);
      }
    } finally {
      await wide.close();
      await narrow.close();
    }
  });
});
