// The Settings page edits a flat form, not the Preferences struct: limits that may be off become a
// checkbox plus a number (so turning one off and on again keeps the number), and the idle delay reads
// in minutes. This module converts both ways and says what is wrong with a form before it is sent.

import { windowError } from "./schedule";
import type { Mode, ScheduleWindow, Settings } from "./types";

export interface SettingsForm {
  mode: Mode;
  /** Minutes without keyboard or mouse input that count as away. */
  idleMinutes: number | null;
  limitCpu: boolean;
  cpuPercent: number | null;
  runOnBattery: boolean;
  useSchedule: boolean;
  windows: ScheduleWindow[];
  exclusivePrograms: string[];
  limitTemperature: boolean;
  temperatureC: number | null;
  limitOtherGpu: boolean;
  otherGpuPercent: number | null;
  keepRunningWhenActive: boolean;
  startAtLogin: boolean;
  noticePayouts: boolean;
  noticeAboutToStart: boolean;
  /** Settings → Network: one relay URL a line; empty follows each pool's ticket. */
  relays: string;
  relayCa: string;
  noRelay: boolean;
}

/** The engine's defaults (BOINC's), offered when a limit that was off is turned on. */
const DEFAULT_CPU_PERCENT = 25;
const DEFAULT_TEMPERATURE_C = 85;
const DEFAULT_OTHER_GPU_PERCENT = 20;

export const LIMITS = {
  idleMinutes: { min: 1, max: 240 },
  cpuPercent: { min: 1, max: 100 },
  temperatureC: { min: 40, max: 110 },
  otherGpuPercent: { min: 1, max: 100 },
} as const;

export function toForm(settings: Settings): SettingsForm {
  const p = settings.preferences;
  return {
    mode: p.mode,
    idleMinutes: Math.max(LIMITS.idleMinutes.min, Math.round(p.idle_after / 60)),
    limitCpu: p.max_other_cpu_percent !== null,
    cpuPercent: p.max_other_cpu_percent ?? DEFAULT_CPU_PERCENT,
    runOnBattery: p.run_on_battery,
    useSchedule: p.schedule !== null,
    windows: structuredClone(p.schedule?.windows ?? []),
    exclusivePrograms: [...p.exclusive_programs],
    limitTemperature: p.max_gpu_temperature_c !== null,
    temperatureC: p.max_gpu_temperature_c ?? DEFAULT_TEMPERATURE_C,
    limitOtherGpu: p.max_other_gpu_percent !== null,
    otherGpuPercent: p.max_other_gpu_percent ?? DEFAULT_OTHER_GPU_PERCENT,
    keepRunningWhenActive: p.keep_running_when_active,
    startAtLogin: settings.start_at_login,
    noticePayouts: settings.notices.payouts,
    noticeAboutToStart: settings.notices.about_to_start,
    relays: settings.network.relays.join("\n"),
    relayCa: settings.network.relay_ca ?? "",
    noRelay: settings.network.no_relay,
  };
}

/**
 * The settings to send: `base` with the form's fields written over it. Fields the form does not edit
 * (the snooze, the per-GPU switches, the payout address) come from `base`, which should be read just
 * before saving so a change made elsewhere in the meantime is not undone. Call only with a form that
 * has no errors.
 */
export function applyForm(form: SettingsForm, base: Settings): Settings {
  const number = (value: number | null) => value ?? 0;
  return {
    // Sections saved on their own (the payout address) keep what `base` has.
    ...base,
    preferences: {
      ...base.preferences,
      mode: form.mode,
      idle_after: number(form.idleMinutes) * 60,
      max_other_cpu_percent: form.limitCpu ? number(form.cpuPercent) : null,
      run_on_battery: form.runOnBattery,
      schedule: form.useSchedule ? { windows: structuredClone(form.windows) } : null,
      exclusive_programs: [...form.exclusivePrograms],
      max_gpu_temperature_c: form.limitTemperature ? number(form.temperatureC) : null,
      max_other_gpu_percent: form.limitOtherGpu ? number(form.otherGpuPercent) : null,
      keep_running_when_active: form.keepRunningWhenActive,
    },
    start_at_login: form.startAtLogin,
    notices: { payouts: form.noticePayouts, about_to_start: form.noticeAboutToStart },
    network: {
      relays: form.noRelay ? [] : relayLines(form.relays),
      relay_ca: form.relayCa.trim() === "" ? null : form.relayCa.trim(),
      no_relay: form.noRelay,
    },
  };
}

/** The relay URLs typed one a line, blank lines left out. */
function relayLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

export type FieldName = "idleMinutes" | "cpuPercent" | "temperatureC" | "otherGpuPercent" | "windows";

export interface FormErrors {
  fields: Partial<Record<FieldName, string>>;
  /** Per schedule window, by index. */
  windows: Record<number, string>;
}

export function hasErrors(errors: FormErrors): boolean {
  return Object.keys(errors.fields).length > 0 || Object.keys(errors.windows).length > 0;
}

function rangeError(
  value: number | null,
  { min, max }: { min: number; max: number },
  unit: string,
): string | undefined {
  if (value === null || !Number.isFinite(value)) return "Enter a number.";
  if (!Number.isInteger(value)) return "Enter a whole number.";
  if (value < min || value > max) return `Enter ${min} to ${max} ${unit}.`;
  return undefined;
}

export function validateForm(form: SettingsForm): FormErrors {
  const fields: FormErrors["fields"] = {};
  const set = (name: FieldName, message: string | undefined) => {
    if (message) fields[name] = message;
  };
  set("idleMinutes", rangeError(form.idleMinutes, LIMITS.idleMinutes, "minutes"));
  if (form.limitCpu) set("cpuPercent", rangeError(form.cpuPercent, LIMITS.cpuPercent, "%"));
  if (form.limitTemperature) {
    set("temperatureC", rangeError(form.temperatureC, LIMITS.temperatureC, "°C"));
  }
  if (form.limitOtherGpu) {
    set("otherGpuPercent", rangeError(form.otherGpuPercent, LIMITS.otherGpuPercent, "%"));
  }

  const windows: FormErrors["windows"] = {};
  if (form.useSchedule) {
    if (form.windows.length === 0) set("windows", "Add at least one time window, or share at any time.");
    form.windows.forEach((w, i) => {
      const message = windowError(w);
      if (message) windows[i] = message;
    });
  }
  return { fields, windows };
}

/** Adds a program name unless it is blank or already listed (compared without case). */
export function addProgram(programs: readonly string[], name: string): string[] {
  const trimmed = name.trim();
  if (!trimmed || programs.some((p) => p.toLowerCase() === trimmed.toLowerCase())) {
    return [...programs];
  }
  return [...programs, trimmed];
}
