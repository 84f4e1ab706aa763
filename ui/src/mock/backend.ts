// A stand-in for the app shell, for the browser tests and for working on the window without Tauri.
// It answers every command of docs/desktop-ipc.md from state held here, changes that state the way
// the app would, and pushes the same events. Every command is recorded so tests can check what the
// window sent. Only mock.html loads this; the production bundle never does.

import { mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import * as fixtures from "./fixtures";
import type {
  EventName,
  EventPayloads,
  Hardware,
  Payout,
  Pool,
  Problem,
  Range,
  Settings,
  Status,
} from "../lib/types";

export type Scenario = "default" | "first-run";

export interface MockState {
  status: Status;
  pools: Pool[];
  payouts: Payout[];
  problems: Problem[];
  hardware: Hardware;
  settings: Settings;
}

export interface RecordedCall {
  cmd: string;
  args: Record<string, unknown>;
}

/** What the tests reach through `window.__idlegridMock`. */
export interface MockControl {
  calls: RecordedCall[];
  state: MockState;
  emit<E extends EventName>(event: E, payload: EventPayloads[E]): Promise<void>;
  /** How long run_benchmark takes, in ms. */
  benchmarkMs: number;
}

declare global {
  interface Window {
    __idlegridMock?: MockControl;
  }
}

/** What an iroh endpoint ticket looks like as the engine prints it: "endpoint" and lowercase base32. */
const TICKET = /^endpoint[a-z2-7]{40,}$/;
const DOWNLOADS = "/home/alex/Downloads";
const MINUTE = 60_000;

function initialState(scenario: Scenario, now: number): MockState {
  if (scenario === "first-run") {
    return {
      status: fixtures.idleStatus(now),
      pools: [],
      payouts: [],
      problems: [],
      hardware: fixtures.hardware(now),
      settings: fixtures.settings(),
    };
  }
  const lab = fixtures.labPool(now);
  return {
    status: fixtures.workingStatus(now, lab),
    pools: [lab, fixtures.farmPool(now)],
    payouts: fixtures.payouts(now),
    problems: fixtures.problems(now),
    hardware: fixtures.hardware(now),
    settings: fixtures.settings(),
  };
}

export function installMockBackend(scenario: Scenario): MockControl {
  const state = initialState(scenario, Date.now());
  const control: MockControl = {
    calls: [],
    state,
    emit: (event, payload) => emit(event, payload),
    benchmarkMs: 1200,
  };

  const pushStatus = (change: Partial<Status>) => {
    state.status = { ...state.status, ...change, since_ms: Date.now() };
    void control.emit("status", state.status);
    return state.status;
  };
  const pushPools = (pools: Pool[]) => {
    state.pools = pools;
    void control.emit("pools", pools);
    return pools;
  };

  const commands: Record<string, (args: Record<string, unknown>) => unknown> = {
    get_status: () => state.status,
    set_sharing: ({ on }) =>
      pushStatus(
        on
          ? { sharing: true, kind: "waiting", reason: "Waiting: you are using the computer" }
          : { sharing: false, kind: "off", reason: "Paused: sharing is off", job: null },
      ),
    snooze: ({ minutes }) => {
      const until = Date.now() + Number(minutes) * MINUTE;
      const at = new Date(until).toTimeString().slice(0, 5);
      return pushStatus({ kind: "paused", reason: `Paused until ${at}`, snoozed_until_ms: until, job: null });
    },
    resume: () => pushStatus({ kind: "waiting", reason: "Waiting: you are using the computer", snoozed_until_ms: null }),

    get_earnings: ({ range }) =>
      fixtures.earnings(range as Range, Date.now(), state.pools, state.problems, state.payouts, state.status.balance),
    get_payouts: () => state.payouts,
    save_csv: ({ name }) => `${DOWNLOADS}/${String(name)}`,

    get_hardware: () => state.hardware,
    run_benchmark: ({ adapter }) =>
      new Promise((resolve) =>
        setTimeout(() => {
          const score = {
            matmul_gflops: 14310.2,
            copy_gbps: 415.3,
            embeddings: { per_second: 212.4, model: "tiny-bert" },
            measured_at_ms: Date.now(),
          };
          state.hardware = {
            ...state.hardware,
            gpus: state.hardware.gpus.map((g) => (g.adapter === adapter ? { ...g, score } : g)),
          };
          resolve(score);
        }, control.benchmarkMs),
      ),
    set_gpu_shared: ({ adapter, shared }) => {
      state.hardware = {
        ...state.hardware,
        gpus: state.hardware.gpus.map((g) => (g.adapter === adapter ? { ...g, shared: Boolean(shared) } : g)),
      };
      void control.emit("hardware", state.hardware);
      return state.hardware;
    },

    get_pools: () => state.pools,
    join_pool: ({ ticket, name }) => {
      const text = String(ticket);
      if (!TICKET.test(text)) {
        throw "not a pool ticket: expected \"endpoint\" followed by base32 text, as the pool printed it";
      }
      if (state.pools.some((p) => p.ticket === text)) throw "already joined: this ticket is for a pool you are in";
      const id = text.slice(8, 72).padEnd(64, "0");
      const pool: Pool = {
        ...fixtures.labPool(Date.now()),
        id,
        name: (name as string | null) ?? id.slice(0, 8),
        ticket: text,
        state: "connecting",
        earned_total: "0.000000",
        earned_today: "0.000000",
        joined_at_ms: Date.now(),
      };
      pushPools([...state.pools, pool]);
      return pool;
    },
    leave_pool: ({ id }) => pushPools(state.pools.filter((p) => p.id !== id)),
    block_pool: ({ id }) =>
      pushPools(state.pools.map((p) => (p.id === id ? { ...p, blocked: true, state: "blocked" as const } : p))),
    start_local_pool: () => {
      const pool = fixtures.localPool(Date.now());
      pushPools([...state.pools, pool]);
      const working = fixtures.workingStatus(Date.now(), pool);
      pushStatus({ ...working, since_ms: Date.now() });
      return pool;
    },

    get_settings: () => state.settings,
    set_settings: ({ settings }) => {
      const next = settings as Settings;
      const path = next.preferences.exclusive_programs.find((p) => /[\\/]/.test(p));
      if (path) throw `exclusive program "${path}": give the program's name, not a path`;
      const payout = next.payout;
      if (payout.to === "address" && !/^0x[0-9a-fA-F]{40}$/.test(payout.address.trim())) {
        throw `the payout address: "${payout.address}" is not an address (0x and 40 hex digits)`;
      }
      // The app fills in the address it bound; the one sent is ignored.
      const bound = { own_account: fixtures.OWN_ACCOUNT, address: payout.address.trim().toLowerCase(), none: null }[payout.to];
      state.settings = structuredClone({ ...next, payout: { ...payout, bound_address: bound } });
      return state.settings;
    },
    open_logs_folder: () => null,
    open_explorer: ({ id }) => {
      if (!state.payouts.some((p) => p.id === id && p.explorer_url)) throw "the pool's chain names no block explorer";
      return null;
    },
  };

  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      control.calls.push({ cmd, args: structuredClone(args) });
      const command = commands[cmd];
      if (!command) throw `unknown command: ${cmd}`;
      return command(args);
    },
    { shouldMockEvents: true },
  );
  window.__idlegridMock = control;
  return control;
}
