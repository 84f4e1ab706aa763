import { afterEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import * as ipc from "./ipc";
import type { Status } from "./types";

afterEach(() => clearMocks());

/** Records every command the wrappers send; answers each with `answer`. */
function recordCommands(answer: unknown = null) {
  const sent: { cmd: string; args: unknown }[] = [];
  mockIPC((cmd, args) => {
    sent.push({ cmd, args });
    return answer;
  });
  return sent;
}

describe("command wrappers", () => {
  const cases: [string, () => Promise<unknown>, string, Record<string, unknown>][] = [
    ["getStatus", () => ipc.getStatus(), "get_status", {}],
    ["setSharing", () => ipc.setSharing(false), "set_sharing", { on: false }],
    ["snooze", () => ipc.snooze(60), "snooze", { minutes: 60 }],
    ["resume", () => ipc.resume(), "resume", {}],
    ["getEarnings", () => ipc.getEarnings("7d"), "get_earnings", { range: "7d" }],
    ["getPayouts", () => ipc.getPayouts(), "get_payouts", {}],
    ["saveCsv", () => ipc.saveCsv("p.csv", "a\n"), "save_csv", { name: "p.csv", contents: "a\n" }],
    ["getHardware", () => ipc.getHardware(), "get_hardware", {}],
    ["runBenchmark", () => ipc.runBenchmark("RTX"), "run_benchmark", { adapter: "RTX" }],
    ["setGpuShared", () => ipc.setGpuShared("RTX", true), "set_gpu_shared", { adapter: "RTX", shared: true }],
    ["getPools", () => ipc.getPools(), "get_pools", {}],
    ["joinPool", () => ipc.joinPool("endpointabc", null), "join_pool", { ticket: "endpointabc", name: null }],
    ["leavePool", () => ipc.leavePool("id1"), "leave_pool", { id: "id1" }],
    ["blockPool", () => ipc.blockPool("id1"), "block_pool", { id: "id1" }],
    ["startLocalPool", () => ipc.startLocalPool(), "start_local_pool", {}],
    ["getSettings", () => ipc.getSettings(), "get_settings", {}],
    ["openLogsFolder", () => ipc.openLogsFolder(), "open_logs_folder", {}],
    ["openExplorer", () => ipc.openExplorer("p1"), "open_explorer", { id: "p1" }],
  ];

  it.each(cases)("%s sends %s", async (_name, call, cmd, args) => {
    const sent = recordCommands();
    await call();
    expect(sent).toEqual([{ cmd, args }]);
  });

  it("setSettings sends the whole settings under `settings`", async () => {
    const sent = recordCommands();
    const settings = { start_at_login: true } as unknown as Parameters<typeof ipc.setSettings>[0];
    await ipc.setSettings(settings);
    expect(sent).toEqual([{ cmd: "set_settings", args: { settings } }]);
  });

  it("resolves to what the app answered", async () => {
    recordCommands("/home/alex/Downloads/p.csv");
    await expect(ipc.saveCsv("p.csv", "")).resolves.toBe("/home/alex/Downloads/p.csv");
  });

  it("rejects with the app's one-line reason", async () => {
    mockIPC(() => {
      throw "not a pool ticket: expected base32";
    });
    const failure = ipc.joinPool("nonsense", null);
    await expect(failure).rejects.toBe("not a pool ticket: expected base32");
    expect(ipc.errorMessage(await failure.catch((e: unknown) => e))).toBe("not a pool ticket: expected base32");
  });
});

describe("outside the app", () => {
  it("rejects every command with a sentence, not a TypeError", async () => {
    clearMocks();
    await expect(ipc.getStatus()).rejects.toBe(ipc.OUTSIDE_APP);
  });
});

describe("errorMessage", () => {
  it("reads strings, errors and anything else", () => {
    expect(ipc.errorMessage("cannot reach the pool")).toBe("cannot reach the pool");
    expect(ipc.errorMessage(new Error("boom"))).toBe("boom");
    expect(ipc.errorMessage(42)).toBe("42");
  });
});

describe("on", () => {
  const status = { kind: "off", reason: "Paused: sharing is off" } as Status;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  it("hands each payload of the event to the handler until unsubscribed", async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const handler = vi.fn();
    const stop = ipc.on("status", handler);
    await settle();

    await emit("status", status);
    await emit("pools", []);
    expect(handler).toHaveBeenCalledExactlyOnceWith(status);

    stop();
    await emit("status", status);
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it("still unsubscribes when stopped before listening finished", async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const handler = vi.fn();
    ipc.on("status", handler)();
    await settle();
    await emit("status", status);
    expect(handler).not.toHaveBeenCalled();
  });
});
