// The one place that talks to the app shell: every command and event of docs/desktop-ipc.md, typed.
// Pages call these functions; nothing else imports @tauri-apps/api.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type {
  EarningsView,
  EventName,
  EventPayloads,
  Hardware,
  Payout,
  Pool,
  Range,
  Score,
  Settings,
  Status,
} from "./types";

// --- commands -----------------------------------------------------------------------------------

/** Why every command fails when the window is opened outside the app (a plain browser tab). */
export const OUTSIDE_APP = "this window is not running inside the Idlegrid app";

/** A command; a rejection is the app's one-line reason. Without Tauri's IPC (no app around the
 * window) `invoke` throws a TypeError, which is turned into a sentence a person can read. */
function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  return invoke<T>(cmd, args).catch((error: unknown) => {
    throw error instanceof TypeError ? OUTSIDE_APP : error;
  });
}

export const getStatus = () => call<Status>("get_status");
export const setSharing = (on: boolean) => call<Status>("set_sharing", { on });
export const snooze = (minutes: number) => call<Status>("snooze", { minutes });
export const resume = () => call<Status>("resume");

export const getEarnings = (range: Range) => call<EarningsView>("get_earnings", { range });

export const getPayouts = () => call<Payout[]>("get_payouts");
/** Writes `contents` to the downloads folder; resolves to the path written. */
export const saveCsv = (name: string, contents: string) =>
  call<string>("save_csv", { name, contents });

export const getHardware = () => call<Hardware>("get_hardware");
export const runBenchmark = (adapter: string) => call<Score>("run_benchmark", { adapter });
export const setGpuShared = (adapter: string, shared: boolean) =>
  call<Hardware>("set_gpu_shared", { adapter, shared });

export const getPools = () => call<Pool[]>("get_pools");
export const joinPool = (ticket: string, name: string | null) =>
  call<Pool>("join_pool", { ticket, name });
export const leavePool = (id: string) => call<Pool[]>("leave_pool", { id });
export const blockPool = (id: string) => call<Pool[]>("block_pool", { id });
export const startLocalPool = () => call<Pool>("start_local_pool");

export const getSettings = () => call<Settings>("get_settings");
export const setSettings = (settings: Settings) => call<Settings>("set_settings", { settings });
export const openLogsFolder = () => call<null>("open_logs_folder");
/** Opens payout `id`'s transaction on the block explorer its pool's chain names, in the browser. */
export const openExplorer = (id: string) => call<null>("open_explorer", { id });

// --- events -------------------------------------------------------------------------------------

export type Unsubscribe = () => void;

/**
 * Calls `handler` with each payload of `event` until the returned function is called.
 * Subscribing is asynchronous in Tauri; unsubscribing before it finished still removes the listener.
 */
export function on<E extends EventName>(
  event: E,
  handler: (payload: EventPayloads[E]) => void,
): Unsubscribe {
  let stopped = false;
  let unlisten: (() => void) | undefined;
  listen<EventPayloads[E]>(event, (e) => handler(e.payload)).then(
    (fn) => {
      if (stopped) fn();
      else unlisten = fn;
    },
    () => {
      // No event channel (opened outside the app): there is nothing to listen to.
    },
  );
  return () => {
    stopped = true;
    unlisten?.();
  };
}

/** The one-line message a rejected command carries, for showing next to what caused it. */
export function errorMessage(error: unknown): string {
  if (typeof error === "string") return error;
  if (error instanceof Error) return error.message;
  return String(error);
}
