import { describe, expect, it } from "vitest";
import { addProgram, applyForm, hasErrors, toForm, validateForm } from "./settings-form";
import type { Settings } from "./types";

function settings(): Settings {
  return {
    preferences: {
      mode: "when_idle",
      snoozed_until_ms: 1_700_000_000_000,
      idle_after: 180,
      max_other_cpu_percent: 25,
      run_on_battery: false,
      schedule: null,
      exclusive_programs: ["blender"],
      max_gpu_temperature_c: null,
      max_other_gpu_percent: 20,
      keep_running_when_active: false,
      gpus: [{ adapter: "Intel(R) UHD Graphics 770", share: false, while_active: false }],
    },
    start_at_login: true,
    notices: { payouts: true, about_to_start: false },
    payout: { to: "own_account", address: "", chain_rpc: "", bound_address: `0x${"12".repeat(20)}` },
    network: { relays: ["https://relay.example/"], relay_ca: null, no_relay: false },
  };
}

describe("toForm and applyForm", () => {
  it("round-trip unchanged settings", () => {
    const s = settings();
    expect(applyForm(toForm(s), s)).toEqual(s);
  });

  it("edits the relays one a line, and sends none while direct only is on", () => {
    const form = toForm(settings());
    expect(form.relays).toBe("https://relay.example/");
    form.relays = " https://a.example/ \n\nhttps://b.example/";
    form.relayCa = " /etc/relay-ca.pem ";
    expect(applyForm(form, settings()).network).toEqual({
      relays: ["https://a.example/", "https://b.example/"],
      relay_ca: "/etc/relay-ca.pem",
      no_relay: false,
    });
    form.noRelay = true;
    expect(applyForm(form, settings()).network.relays).toEqual([]);
  });

  it("reads the idle delay in minutes and writes it in seconds", () => {
    const form = toForm(settings());
    expect(form.idleMinutes).toBe(3);
    form.idleMinutes = 10;
    expect(applyForm(form, settings()).preferences.idle_after).toBe(600);
  });

  it("offers the default for a limit that is off, and sends null while it stays off", () => {
    const form = toForm(settings());
    expect(form.limitTemperature).toBe(false);
    expect(form.temperatureC).toBe(85);
    expect(applyForm(form, settings()).preferences.max_gpu_temperature_c).toBeNull();
    form.limitTemperature = true;
    expect(applyForm(form, settings()).preferences.max_gpu_temperature_c).toBe(85);
  });

  it("keeps what the form does not edit from the base it is applied to", () => {
    const base = settings();
    base.preferences.snoozed_until_ms = null;
    base.preferences.gpus = [];
    // The payout address is saved by its own section, perhaps since the form was loaded.
    base.payout = { to: "address", address: `0x${"ab".repeat(20)}`, chain_rpc: "https://rpc.example", bound_address: null };
    const result = applyForm(toForm(settings()), base);
    expect(result.preferences.snoozed_until_ms).toBeNull();
    expect(result.preferences.gpus).toEqual([]);
    expect(result.payout).toEqual(base.payout);
  });

  it("sends a schedule only while it is switched on", () => {
    const form = toForm(settings());
    form.windows = [{ days: [5, 6], start_minute: 0, end_minute: 0 }];
    expect(applyForm(form, settings()).preferences.schedule).toBeNull();
    form.useSchedule = true;
    expect(applyForm(form, settings()).preferences.schedule).toEqual({ windows: form.windows });
  });
});

describe("validateForm", () => {
  it("passes the settings as loaded", () => {
    expect(hasErrors(validateForm(toForm(settings())))).toBe(false);
  });

  it("names each bad field", () => {
    const form = toForm(settings());
    form.idleMinutes = 0;
    form.cpuPercent = null;
    form.limitTemperature = true;
    form.temperatureC = 150;
    form.otherGpuPercent = 12.5;
    const errors = validateForm(form);
    expect(errors.fields).toEqual({
      idleMinutes: "Enter 1 to 240 minutes.",
      cpuPercent: "Enter a number.",
      temperatureC: "Enter 40 to 110 °C.",
      otherGpuPercent: "Enter a whole number.",
    });
  });

  it("ignores the number of a limit that is off", () => {
    const form = toForm(settings());
    form.limitCpu = false;
    form.cpuPercent = null;
    expect(hasErrors(validateForm(form))).toBe(false);
  });

  it("checks the schedule only when it is on, window by window", () => {
    const form = toForm(settings());
    form.windows = [
      { days: [0], start_minute: 0, end_minute: 60 },
      { days: [], start_minute: 0, end_minute: 60 },
    ];
    expect(hasErrors(validateForm(form))).toBe(false);
    form.useSchedule = true;
    expect(validateForm(form).windows).toEqual({ 1: "Pick at least one day." });
    form.windows = [];
    expect(validateForm(form).fields.windows).toMatch(/at least one time window/);
  });
});

describe("addProgram", () => {
  it("adds a trimmed name once, ignoring case", () => {
    expect(addProgram(["blender"], "  steam ")).toEqual(["blender", "steam"]);
    expect(addProgram(["blender"], "Blender")).toEqual(["blender"]);
    expect(addProgram(["blender"], "   ")).toEqual(["blender"]);
  });
});
