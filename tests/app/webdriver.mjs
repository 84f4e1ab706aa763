// @ts-check
// A small W3C WebDriver client over fetch: what the end-to-end tests need from tauri-driver, and no
// more. Every command answers `{ value }`; a failed one answers `{ value: { error, message } }`.

/** The key under which W3C WebDriver returns an element reference. */
const ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf";

/** @typedef {{ using: "css selector" | "xpath", value: string }} Locator */
/** @typedef {{ id: string, locator: Locator }} Element */

/** A CSS locator. @param {string} selector @returns {Locator} */
export const css = (selector) => ({ using: "css selector", value: selector });

/** An XPath locator. @param {string} expression @returns {Locator} */
export const xpath = (expression) => ({ using: "xpath", value: expression });

/**
 * A string as an XPath literal; XPath 1 has no escapes, so a text holding both quote kinds is
 * spliced together with concat().
 * @param {string} text
 */
export function xpathLiteral(text) {
  if (!text.includes("'")) return `'${text}'`;
  if (!text.includes('"')) return `"${text}"`;
  return `concat(${text.split("'").map((part) => `'${part}'`).join(`, "'", `)})`;
}

/** An XPath predicate for "has this CSS class" (Svelte adds its own scoping classes). @param {string} name */
export const hasClass = (name) => `contains(concat(' ', normalize-space(@class), ' '), ' ${name} ')`;

/** A button by its visible label; BusyButton keeps its busy label hidden beside it. @param {string} label */
export const button = (label) =>
  xpath(`//button[normalize-space()=${xpathLiteral(label)} or .//span[normalize-space()=${xpathLiteral(label)}]]`);

/** A command the driver answered with an error; `error` is the W3C error code ("no such element"). */
export class WebDriverError extends Error {
  /** @param {string} error @param {string} message @param {string} command */
  constructor(error, message, command) {
    super(`${command}: ${error}: ${message}`);
    this.error = error;
  }
}

/**
 * Polls `probe` until it returns something other than undefined/false/null, and returns that.
 * Driver errors such as a stale or missing element count as "not yet".
 * @template T
 * @param {() => Promise<T | undefined | null | false>} probe
 * @param {{ what: string, timeoutMs?: number, intervalMs?: number }} options
 * @returns {Promise<T>}
 */
export async function waitUntil(probe, { what, timeoutMs = 15_000, intervalMs = 200 }) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let lastError;
  for (;;) {
    try {
      const result = await probe();
      if (result !== undefined && result !== null && result !== false) return result;
    } catch (error) {
      if (!(error instanceof WebDriverError)) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export class Session {
  /** @param {string} base @param {string} id */
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  /**
   * Opens a session; with tauri-driver this starts the app.
   * @param {string} driverUrl like http://127.0.0.1:4444
   * @param {Record<string, unknown>} capabilities
   */
  static async start(driverUrl, capabilities) {
    const answer = await request(driverUrl, "POST", "/session", { capabilities: { alwaysMatch: capabilities } });
    const { sessionId } = /** @type {{ sessionId: string }} */ (answer);
    return new Session(driverUrl, sessionId);
  }

  /** @param {"GET" | "POST" | "DELETE"} method @param {string} path @param {unknown} [body] */
  command(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  /** @param {Locator} locator @returns {Promise<Element>} */
  async find(locator) {
    const value = /** @type {Record<string, string>} */ (await this.command("POST", "/element", locator));
    return { id: value[ELEMENT_KEY] ?? "", locator };
  }

  /** @param {Locator} locator @returns {Promise<Element[]>} */
  async findAll(locator) {
    const values = /** @type {Record<string, string>[]} */ (await this.command("POST", "/elements", locator));
    return values.map((value) => ({ id: value[ELEMENT_KEY] ?? "", locator }));
  }

  /** Waits for an element to be there, and returns it. @param {Locator} locator @param {number} [timeoutMs] */
  waitFor(locator, timeoutMs) {
    return waitUntil(() => this.find(locator), { what: `${locator.using} ${locator.value}`, timeoutMs });
  }

  /** @param {Element} element */
  async click(element) {
    await this.command("POST", `/element/${element.id}/click`, {});
  }

  /** Waits for the element, then clicks it. @param {Locator} locator */
  async clickOn(locator) {
    await this.click(await this.waitFor(locator));
  }

  /** Types into a field, after emptying it. @param {Element} element @param {string} text */
  async type(element, text) {
    await this.command("POST", `/element/${element.id}/clear`, {});
    await this.command("POST", `/element/${element.id}/value`, { text });
  }

  /** The rendered text, as a person sees it. @param {Element} element @returns {Promise<string>} */
  async text(element) {
    return /** @type {string} */ (await this.command("GET", `/element/${element.id}/text`));
  }

  /** A DOM property ("checked", "value"). @param {Element} element @param {string} name */
  property(element, name) {
    return this.command("GET", `/element/${element.id}/property/${name}`);
  }

  /** @returns {Promise<Buffer>} the window as PNG */
  async screenshot() {
    const base64 = /** @type {string} */ (await this.command("GET", "/screenshot"));
    return Buffer.from(base64, "base64");
  }

  /** Ends the session; WebKitWebDriver then ends the program it started. */
  async quit() {
    await this.command("DELETE", "");
  }
}

/**
 * @param {string} base @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<unknown>}
 */
async function request(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json; charset=utf-8" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  /** @type {{ value?: any }} */
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new WebDriverError("invalid answer", `HTTP ${response.status}: ${text.slice(0, 200)}`, `${method} ${path}`);
  }
  const value = answer.value;
  if (!response.ok || (value && typeof value === "object" && "error" in value)) {
    const error = value?.error ?? `HTTP ${response.status}`;
    throw new WebDriverError(error, value?.message ?? text.slice(0, 200), `${method} ${path}`);
  }
  return value;
}
