// Shared by the browser tests: serves the mock build (dist-mock/) on 127.0.0.1 and drives Debian's
// chromium through playwright-core. No browser download, no network: the page loads only from here.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const UI_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const RESULTS = join(UI_ROOT, "test-results");
const MOCK_DIST = join(UI_ROOT, "dist-mock");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** A static server for dist-mock/ on a free port; resolves to its base URL and a way to stop it. */
export async function serveMockBuild() {
  if (!existsSync(join(MOCK_DIST, "mock.html"))) {
    throw new Error("dist-mock/ is missing: run `npm run build:mock` first (test:browser does)");
  }
  const server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname));
    const file = join(MOCK_DIST, path === "/" ? "mock.html" : path);
    if (!file.startsWith(MOCK_DIST)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

/** Headless chromium with everything that could reach the network switched off. Playwright gives
 * each launch a fresh, temporary user-data-dir. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Opens the window on `page` ("overview", "payouts", …) with the mock backend, at a size and colour
 * scheme, and waits for the page's title. Console errors and uncaught exceptions fail the test.
 */
export async function openWindow(browser, baseUrl, { page = "overview", scenario, width = 800, height = 600, colorScheme = "light" } = {}) {
  // A fixed locale and zone, so dates and times read the same on every machine.
  const context = await browser.newContext({
    viewport: { width, height },
    colorScheme,
    reducedMotion: "reduce",
    locale: "en-US",
    timezoneId: "Europe/Berlin",
  });
  const tab = await context.newPage();
  const problems = [];
  tab.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  tab.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`);
  });
  tab.on("request", (request) => {
    if (!request.url().startsWith(baseUrl)) problems.push(`request outside the test server: ${request.url()}`);
  });
  const query = scenario ? `?scenario=${scenario}` : "";
  await tab.goto(`${baseUrl}/mock.html${query}#/${page}`);
  return {
    tab,
    problems,
    /** The commands the window sent, as the mock backend recorded them. */
    calls: (cmd) => tab.evaluate((name) => window.__idlegridMock.calls.filter((c) => !name || c.cmd === name), cmd),
    /** Pushes an event from the "app" to the window. */
    emit: (event, payload) => tab.evaluate(([e, p]) => window.__idlegridMock.emit(e, p), [event, payload]),
    state: () => tab.evaluate(() => window.__idlegridMock.state),
    close: () => context.close(),
  };
}

/** Waits until the window has sent `cmd` at least `count` times; resolves to those calls. */
export async function waitForCalls(window, cmd, count = 1, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const calls = await window.calls(cmd);
    if (calls.length >= count) return calls;
    if (Date.now() > deadline) throw new Error(`the window sent ${cmd} ${calls.length} times, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
