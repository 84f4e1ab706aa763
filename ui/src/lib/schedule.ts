// The weekly schedule editor's logic: windows of local time on chosen days (0 = Monday), where an
// end at or before the start runs past midnight into the next day, as the engine's policy reads them.

import type { ScheduleWindow } from "./types";

export const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
const WEEKDAYS = [0, 1, 2, 3, 4];
const WEEKEND = [5, 6];
const MINUTES_PER_DAY = 24 * 60;

/** Minutes after midnight as the "HH:MM" an `<input type="time">` holds. */
export function minutesToTime(minutes: number): string {
  const m = ((Math.round(minutes) % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

// A time of day in the person's own style ("22:00" or "10:00 PM"), as the time fields show it.
// Formatted as UTC on a fixed day, so no time zone or daylight saving shift can move it.
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short", timeZone: "UTC" });

/** Minutes after midnight as the person reads a time of day. */
export function formatMinuteOfDay(minutes: number): string {
  return clock.format(Date.UTC(2000, 0, 1, 0, minutes));
}

/** "HH:MM" (seconds ignored) to minutes after midnight; null when it is not a time of day. */
export function timeToMinutes(time: string): number | null {
  const match = /^(\d{1,2}):(\d{2})(?::\d{2})?$/.exec(time.trim());
  if (!match) return null;
  const hours = Number(match[1]);
  const minutes = Number(match[2]);
  if (hours > 23 || minutes > 59) return null;
  return hours * 60 + minutes;
}

/** True when the window ends on the next day (an equal start and end is a whole day, not this). */
export function crossesMidnight(window: ScheduleWindow): boolean {
  return window.end_minute < window.start_minute;
}

/** Adds or removes one day, keeping the list sorted and free of repeats. */
export function toggleDay(days: readonly number[], day: number): number[] {
  const set = new Set(days);
  if (set.has(day)) set.delete(day);
  else set.add(day);
  return [...set].sort((a, b) => a - b);
}

const sameDays = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** "Every day", "Weekdays", "Weekends", or runs of days: "Mon–Wed, Fri". */
export function describeDays(days: readonly number[]): string {
  const sorted = [...new Set(days)].filter((d) => d >= 0 && d < 7).sort((a, b) => a - b);
  if (sorted.length === 0) return "No days";
  if (sorted.length === 7) return "Every day";
  if (sameDays(sorted, WEEKDAYS)) return "Weekdays";
  if (sameDays(sorted, WEEKEND)) return "Weekends";
  const runs: number[][] = [];
  for (const day of sorted) {
    const run = runs.at(-1);
    if (run && run.at(-1) === day - 1) run.push(day);
    else runs.push([day]);
  }
  return runs
    .map((run) => {
      const first = DAY_NAMES[run[0]!];
      if (run.length === 1) return first;
      const last = DAY_NAMES[run.at(-1)!];
      return run.length === 2 ? `${first}, ${last}` : `${first}–${last}`;
    })
    .join(", ");
}

/** "Weekdays, 22:00 – 06:00 next day"; "Weekends, all day" (times in the person's style). */
export function describeWindow(window: ScheduleWindow): string {
  const days = describeDays(window.days);
  if (window.start_minute === window.end_minute) {
    return window.start_minute === 0
      ? `${days}, all day`
      : `${days}, 24 h from ${formatMinuteOfDay(window.start_minute)}`;
  }
  const span = `${formatMinuteOfDay(window.start_minute)} – ${formatMinuteOfDay(window.end_minute)}`;
  return `${days}, ${crossesMidnight(window) ? `${span} next day` : span}`;
}

/** What a new window starts as: office hours on weekdays, when most people are away from home. */
export function newWindow(): ScheduleWindow {
  return { days: [...WEEKDAYS], start_minute: 9 * 60, end_minute: 17 * 60 };
}

/** Why a window cannot be saved, or null. */
export function windowError(window: ScheduleWindow): string | null {
  if (window.days.length === 0) return "Pick at least one day.";
  if (window.days.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) return "Days run from Monday to Sunday.";
  const inDay = (m: number) => Number.isInteger(m) && m >= 0 && m < MINUTES_PER_DAY;
  if (!inDay(window.start_minute) || !inDay(window.end_minute)) return "Enter a start and an end time.";
  return null;
}
