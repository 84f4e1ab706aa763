import { describe, expect, it } from "vitest";
import {
  crossesMidnight,
  describeDays,
  describeWindow,
  formatMinuteOfDay,
  minutesToTime,
  newWindow,
  timeToMinutes,
  toggleDay,
  windowError,
} from "./schedule";

describe("times", () => {
  it("turns minutes into HH:MM and back", () => {
    expect(minutesToTime(0)).toBe("00:00");
    expect(minutesToTime(22 * 60 + 5)).toBe("22:05");
    expect(timeToMinutes("22:05")).toBe(1325);
    expect(timeToMinutes("7:30")).toBe(450);
    expect(timeToMinutes("07:30:00")).toBe(450);
  });

  it("refuses what is not a time of day", () => {
    expect(timeToMinutes("")).toBeNull();
    expect(timeToMinutes("24:00")).toBeNull();
    expect(timeToMinutes("12:60")).toBeNull();
    expect(timeToMinutes("noon")).toBeNull();
  });
});

describe("windows past midnight", () => {
  it("crosses midnight when the end is before the start", () => {
    expect(crossesMidnight({ days: [0], start_minute: 22 * 60, end_minute: 6 * 60 })).toBe(true);
    expect(crossesMidnight({ days: [0], start_minute: 9 * 60, end_minute: 17 * 60 })).toBe(false);
  });

  it("reads an equal start and end as a whole day, not as crossing", () => {
    const allDay = { days: [5, 6], start_minute: 0, end_minute: 0 };
    expect(crossesMidnight(allDay)).toBe(false);
    expect(describeWindow(allDay)).toBe("Weekends, all day");
  });

  it("says so in its description", () => {
    const t = formatMinuteOfDay;
    expect(describeWindow({ days: [0, 1, 2, 3, 4], start_minute: 22 * 60, end_minute: 6 * 60 })).toBe(
      `Weekdays, ${t(1320)} – ${t(360)} next day`,
    );
    expect(describeWindow({ days: [2], start_minute: 9 * 60, end_minute: 17 * 60 + 30 })).toBe(
      `Wed, ${t(540)} – ${t(1050)}`,
    );
  });

  it("shows times of day the way the person's locale writes them", () => {
    const expected = new Date(2000, 0, 1, 22, 5).toLocaleTimeString(undefined, { timeStyle: "short" });
    expect(formatMinuteOfDay(22 * 60 + 5)).toBe(expected);
  });
});

describe("days", () => {
  it("toggles a day, keeping the list sorted and unique", () => {
    expect(toggleDay([4, 0], 2)).toEqual([0, 2, 4]);
    expect(toggleDay([0, 2, 4], 2)).toEqual([0, 4]);
  });

  it("names common sets and runs of days", () => {
    expect(describeDays([0, 1, 2, 3, 4, 5, 6])).toBe("Every day");
    expect(describeDays([4, 3, 2, 1, 0])).toBe("Weekdays");
    expect(describeDays([5, 6])).toBe("Weekends");
    expect(describeDays([0, 1, 2, 4])).toBe("Mon–Wed, Fri");
    expect(describeDays([0, 1, 3])).toBe("Mon, Tue, Thu");
    expect(describeDays([])).toBe("No days");
  });
});

describe("windowError", () => {
  it("accepts a new window", () => {
    expect(windowError(newWindow())).toBeNull();
  });

  it("wants at least one day and times within a day", () => {
    expect(windowError({ days: [], start_minute: 0, end_minute: 60 })).toMatch(/at least one day/);
    expect(windowError({ days: [7], start_minute: 0, end_minute: 60 })).toMatch(/Monday to Sunday/);
    expect(windowError({ days: [1], start_minute: 0, end_minute: 1440 })).toMatch(/start and an end/);
  });
});
