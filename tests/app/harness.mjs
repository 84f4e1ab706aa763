// @ts-check
// What the end-to-end tests run around the app: a private X server, D-Bus session bus and home, a
// real `idlegrid pool` on 127.0.0.1, submitters feeding it, and tauri-driver. Every process starts in
// its own process group and is ended with that group, however the test ends.

import { spawn } from "node:child_process";
import {
  accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir, homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const ARTIFACTS = join(REPO_ROOT, "artifacts", "e2e");

/** @typedef {import("node:child_process").ChildProcess} ChildProcess */

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The programs under test: IDLEGRID_APP and IDLEGRID_CLI (relative ones from the repository root),
 * or the debug builds in CARGO_TARGET_DIR (default target/); the window program is the one beside
 * the app.
 * @returns {{ app: string, window: string, cli: string }}
 */
export function programs() {
  const debug = join(process.env.CARGO_TARGET_DIR || "target", "debug");
  const app = resolve(REPO_ROOT, process.env.IDLEGRID_APP ?? join(debug, "idlegrid-desktop"));
  const window = join(dirname(app), "idlegrid-window");
  const cli = resolve(REPO_ROOT, process.env.IDLEGRID_CLI ?? join(debug, "idlegrid"));
  for (const [what, path, variable] of [
    ["the app", app, "IDLEGRID_APP"],
    ["the window", window, "IDLEGRID_APP"],
    ["the CLI", cli, "IDLEGRID_CLI"],
  ]) {
    if (!existsSync(path)) {
      const build = "npm --prefix ui run build && cargo build -p idlegrid-desktop -p idlegrid";
      throw new Error(`${what} is not built: ${path} (run \`${build}\`, or set ${variable})`);
    }
  }
  return { app, window, cli };
}

/**
 * The full path of a program on PATH (or one of `extraDirs`), or an error naming what to install.
 * @param {string} name @param {string} install @param {string[]} [extraDirs]
 */
export function tool(name, install, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), ...extraDirs];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this one
    }
  }
  throw new Error(`${name} is missing: ${install}`);
}

/** A TCP port nobody listens on now. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  if (!address || typeof address !== "object") throw new Error("no free port");
  return address.port;
}

/** Starts processes, each in its own group with its output in a log file, and ends them all. */
export class Processes {
  /** @param {string} logDir */
  constructor(logDir) {
    this.logDir = logDir;
    /** @type {{ name: string, child: ChildProcess }[]} */
    this.running = [];
  }

  /**
   * @param {string} name used for the log file
   * @param {string} program
   * @param {string[]} args
   * @param {{ env?: NodeJS.ProcessEnv, cwd?: string, stdout?: "pipe" | "log" }} [options]
   */
  start(name, program, args, { env = process.env, cwd = REPO_ROOT, stdout = "log" } = {}) {
    const log = openSync(join(this.logDir, `${name}.log`), "a");
    try {
      // detached: a new process group, so ending it also ends whatever the program started.
      const child = spawn(program, args, { env, cwd, detached: true, stdio: ["ignore", stdout === "pipe" ? "pipe" : log, log] });
      this.running.push({ name, child });
      child.once("exit", () => (this.running = this.running.filter((r) => r.child !== child)));
      return child;
    } finally {
      closeSync(log);
    }
  }

  /** Ends one process group: SIGTERM, then SIGKILL if it is still there after `graceMs`. @param {ChildProcess} child */
  async stop(child, graceMs = 3000) {
    if (child.pid === undefined) return;
    const exited = child.exitCode !== null || child.signalCode !== null;
    signalGroup(child.pid, "SIGTERM");
    if (!exited) await Promise.race([new Promise((resolve) => child.once("exit", resolve)), sleep(graceMs)]);
    // The group may outlive its leader (a worker, a web process): make sure it is gone.
    signalGroup(child.pid, "SIGKILL");
  }

  /** Ends everything still running, newest first. */
  async stopAll() {
    for (const { child } of [...this.running].reverse()) await this.stop(child);
  }
}

/** @param {number} pgid @param {NodeJS.Signals} signal */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Resolves with the first line the child prints on stdout, or rejects when it exits first.
 * @param {ChildProcess} child @param {number} timeoutMs
 * @returns {Promise<string>}
 */
function firstLine(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error("no output in time")), timeoutMs);
    child.stdout?.on("data", (chunk) => {
      text += chunk;
      const end = text.indexOf("\n");
      if (end >= 0) {
        clearTimeout(timer);
        resolve(text.slice(0, end).trim());
      }
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

/**
 * Runs a program to its end; resolves to its exit code and output.
 * @param {Processes} processes @param {string} name @param {string} program @param {string[]} args
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<{ code: number | null, stdout: string }>}
 */
export function run(processes, name, program, args, env) {
  const child = processes.start(name, program, args, { env, stdout: "pipe" });
  let stdout = "";
  child.stdout?.on("data", (chunk) => (stdout += chunk));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout }));
  });
}

/** A private X server on a display nobody uses. Resolves to its display name (":93"). @param {Processes} processes */
export async function startXvfb(processes) {
  const xvfb = tool("Xvfb", "apt-get install xvfb");
  for (let number = 90; number < 200; number++) {
    if (existsSync(`/tmp/.X11-unix/X${number}`) || existsSync(`/tmp/.X${number}-lock`)) continue;
    const display = `:${number}`;
    const child = processes.start("xvfb", xvfb, [display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"]);
    const up = await pollFor(() => existsSync(`/tmp/.X11-unix/X${number}`), 5000);
    if (up && child.exitCode === null) return display;
    // Another server took the number between the check and the start: try the next one.
    await processes.stop(child);
  }
  throw new Error("no free X display between :90 and :199");
}

/** A private D-Bus session bus; resolves to its address. @param {Processes} processes @param {NodeJS.ProcessEnv} env */
export async function startDbus(processes, env) {
  const dbus = tool("dbus-daemon", "apt-get install dbus");
  const child = processes.start("dbus", dbus, ["--session", "--nofork", "--print-address=1"], { env, stdout: "pipe" });
  return firstLine(child, 5000);
}

/**
 * tauri-driver in front of WebKitWebDriver, on free ports; resolves once it answers, to its URL and
 * process. Whatever it starts (WebKitWebDriver, the app) inherits `env` and its process group.
 * @param {Processes} processes @param {NodeJS.ProcessEnv} env
 */
export async function startTauriDriver(processes, env) {
  const cargoBin = join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin");
  const driver = tool("tauri-driver", "cargo install tauri-driver --locked", [cargoBin]);
  const native = tool("WebKitWebDriver", "apt-get install webkit2gtk-driver");
  const port = await freePort();
  const nativePort = await freePort();
  const args = ["--port", String(port), "--native-port", String(nativePort), "--native-driver", native];
  const child = processes.start("tauri-driver", driver, args, { env });
  const url = `http://127.0.0.1:${port}`;
  const ready = await pollFor(async () => (await fetch(`${url}/status`).catch(() => null))?.ok ?? false, 10_000);
  if (!ready) throw new Error("tauri-driver did not answer in 10 s (see artifacts/e2e/logs/tauri-driver.log)");
  return { url, child };
}

/**
 * @param {() => boolean | Promise<boolean>} check @param {number} timeoutMs
 * @returns {Promise<boolean>} whether `check` came true in time
 */
export async function pollFor(check, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * A home of its own for everything the test starts: data, config, cache and runtime dirs under a
 * temporary directory, a private X display and bus, file-kept identity keys, no accessibility bus.
 * @param {string} root @param {string} display
 * @returns {NodeJS.ProcessEnv}
 */
export function privateEnv(root, display) {
  const dirs = {
    HOME: "home",
    XDG_DATA_HOME: "data",
    XDG_CONFIG_HOME: "config",
    XDG_CACHE_HOME: "cache",
    XDG_RUNTIME_DIR: "run",
  };
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env };
  for (const [variable, dir] of Object.entries(dirs)) {
    const path = join(root, dir);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    env[variable] = path;
  }
  delete env.WAYLAND_DISPLAY;
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.XAUTHORITY;
  return {
    ...env,
    DISPLAY: display,
    GDK_BACKEND: "x11",
    // Keys in files, never a keyring a person uses.
    IDLEGRID_KEYSTORE: "file",
    // GTK would otherwise start an accessibility bus on the private session bus, one more process
    // to clean up that the test does not look at.
    NO_AT_BRIDGE: "1",
  };
}

/** A fresh temporary directory. */
export const tempDir = () => mkdtempSync(join(tmpdir(), "idlegrid-e2e-"));

/** @param {string} dir */
export const removeDir = (dir) => rmSync(dir, { recursive: true, force: true });

/**
 * A pool on 127.0.0.1 that accepts `submitterKey`'s jobs, needs one replica from a new provider,
 * sends no canaries and pays out at `payoutThreshold`. Resolves to its ticket.
 * @param {Processes} processes @param {string} cli @param {string} dataDir @param {string} submitterKey
 * @param {NodeJS.ProcessEnv} env @param {string} payoutThreshold
 */
export async function startPool(processes, cli, dataDir, submitterKey, env, payoutThreshold) {
  const args = ["pool", "--data", dataDir, "--bind", "127.0.0.1:0", "--allow", submitterKey];
  args.push("--replicas-for-new", "1", "--canary-rate", "0", "--payout-threshold", payoutThreshold);
  const pool = processes.start("pool", cli, args, { env, stdout: "pipe" });
  const line = await firstLine(pool, 20_000);
  if (!line.startsWith("ticket: ")) throw new Error(`the pool printed ${JSON.stringify(line)}, not its ticket`);
  return line.slice("ticket: ".length);
}

/** @typedef {{ job: string, ticket: string, dataDir: string, outDir: string, env: NodeJS.ProcessEnv, count: number }} Feed */

/**
 * Keeps `count` submitters sending `job` to the pool, one job after another each, until `stop()`.
 * Their exit codes are kept in `results`.
 * @param {Processes} processes @param {string} cli @param {Feed} options
 */
export function feedJobs(processes, cli, { job, ticket, dataDir, outDir, env, count }) {
  let stopped = false;
  /** @type {(number | null)[]} */
  const results = [];
  /** @type {Set<ChildProcess>} */
  const running = new Set();
  const loop = async (/** @type {number} */ lane) => {
    for (let n = 0; !stopped; n++) {
      // --replicas 1: this machine is the pool's only provider; the job asks for two.
      const out = join(outDir, `lane${lane}-${n}`);
      const args = ["submit", job, "--pool", ticket, "--out", out, "--data", dataDir, "--replicas", "1"];
      const child = processes.start(`submit-${lane}`, cli, args, { env });
      running.add(child);
      const code = await new Promise((resolve) => child.once("close", resolve));
      running.delete(child);
      if (stopped) return;
      results.push(code);
      if (code !== 0) await sleep(1000);
    }
  };
  const lanes = Array.from({ length: count }, (_, lane) => loop(lane));
  return {
    results,
    stop: async () => {
      stopped = true;
      await Promise.all([...running].map((child) => processes.stop(child)));
      await Promise.all(lanes);
    },
  };
}

/** @typedef {{ pid: number, name: string, state: string, parent: number, group: number }} ProcessInfo */

/** One process from /proc/PID/stat, or null when it is gone. @param {number} pid @returns {ProcessInfo | null} */
function processInfo(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // "pid (name) state ppid pgrp ..."; the name may hold spaces and parentheses: split at the last ')'.
  const close = stat.lastIndexOf(")");
  const [state = "", parent, group] = stat.slice(close + 2).split(" ");
  return { pid, name: stat.slice(stat.indexOf("(") + 1, close), state, parent: Number(parent), group: Number(group) };
}

/** Every live process (zombies left out). @returns {ProcessInfo[]} */
function allProcesses() {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => processInfo(Number(entry)))
    .filter(/** @returns {info is ProcessInfo} */ (info) => info !== null && info.state !== "Z");
}

/** The processes below `pid` (children, their children…). @param {number} pid */
function descendants(pid) {
  const all = allProcesses();
  const found = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift();
    for (const child of all.filter((p) => p.parent === parent)) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** The window's processes below `pid` (idlegrid-window). @param {number} pid */
export const windowProcesses = (pid) => descendants(pid).filter((p) => p.name.startsWith("idlegrid-windo"));

/** The web engine's processes below `pid` (WebKitWebProcess, WebKitNetworkProcess…). @param {number} pid */
export const webkitProcesses = (pid) => descendants(pid).filter((p) => p.name.startsWith("WebKit"));

/** The live processes of a process group. @param {number} pgid */
export const groupMembers = (pgid) => allProcesses().filter((p) => p.group === pgid);

/** Whether a process is alive (and not a zombie). @param {number} pid */
export function alive(pid) {
  const info = processInfo(pid);
  return info !== null && info.state !== "Z";
}

/**
 * The app's X windows (named "Idlegrid") on the test's display; `visible` only those mapped.
 * @param {Processes} processes @param {NodeJS.ProcessEnv} env @param {{ visible?: boolean }} [options]
 * @returns {Promise<number[]>}
 */
export async function findWindows(processes, env, { visible = false } = {}) {
  const xdotool = tool("xdotool", "apt-get install xdotool");
  // Anchored: xdotool matches names case-insensitively, and GTK names its hidden leader windows
  // after the program ("idlegrid-desktop").
  const args = ["search", ...(visible ? ["--onlyvisible"] : []), "--name", "^Idlegrid$"];
  const { stdout } = await run(processes, "xdotool", xdotool, args, env);
  return stdout.split("\n").filter(Boolean).map(Number);
}
