//! The sharing policy: a pure function of signals, the person's preferences and the time, returning
//! Run or Pause with a reason a person reads. No I/O here; the monitor feeds it.
//!
//! Rules, first match wins: a GPU the person does not share, sharing off, snoozed, GPU too hot (even in
//! Always), Always, on battery, an exclusive program, outside the schedule, the person at the computer,
//! other programs' CPU use, the GPU busy with something else. A signal that cannot be read never pauses.
//! Limits that measure a level (CPU, GPU use, temperature) have a band below them before work resumes,
//! so a reading that hovers at the limit does not start and stop the GPU every second.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Signals;
use super::system::GpuSignals;

/// How far below a level's limit it must fall before work resumes (percent points).
pub const PERCENT_BAND: f32 = 5.0;
/// How far below the temperature limit the GPU must cool before work resumes (°C).
pub const TEMPERATURE_BAND: f32 = 5.0;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Mode {
    /// Never share.
    Off,
    /// Share while the person is away and the machine is quiet (the default).
    #[default]
    WhenIdle,
    /// Share whenever work is there (a machine that is only for this); the GPU temperature limit and
    /// the per-GPU switches still apply.
    Always,
}

/// What the person chose. Serialized by the app; every field has a default so older files still load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Preferences {
    pub mode: Mode,
    /// "Pause for 1 hour": no work until this time (Unix ms), then back to `mode`. Kept apart from the
    /// mode so a snooze ending returns to what the person had chosen.
    pub snoozed_until_ms: Option<u64>,
    /// No keyboard or mouse input for this long counts as away (BOINC: 3 minutes).
    #[serde(with = "seconds")]
    #[cfg_attr(test, ts(type = "number"))]
    pub idle_after: Duration,
    /// Pause while other programs use more than this share of the CPU (BOINC: 25 %).
    pub max_other_cpu_percent: Option<f32>,
    pub run_on_battery: bool,
    /// Share only inside these hours; `None` for any time.
    pub schedule: Option<Schedule>,
    /// Programs that must run alone (games, renderers), matched against process names.
    pub exclusive_programs: Vec<String>,
    pub max_gpu_temperature_c: Option<f32>,
    /// Pause while other programs use more than this share of the GPU (games, video).
    pub max_other_gpu_percent: Option<f32>,
    /// "Keep running when I return": work started while away goes on, gently, instead of stopping.
    pub keep_running_when_active: bool,
    /// Per-GPU switches; a GPU not listed is shared under the rules above.
    pub gpus: Vec<GpuRule>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            mode: Mode::WhenIdle,
            snoozed_until_ms: None,
            idle_after: Duration::from_secs(180),
            max_other_cpu_percent: Some(25.0),
            run_on_battery: false,
            schedule: None,
            exclusive_programs: Vec::new(),
            max_gpu_temperature_c: Some(85.0),
            max_other_gpu_percent: Some(20.0),
            keep_running_when_active: false,
            gpus: Vec::new(),
        }
    }
}

impl Preferences {
    fn rule_for(&self, adapter: &str) -> Option<&GpuRule> {
        self.gpus.iter().find(|rule| rule.adapter == adapter)
    }
}

/// One GPU's switches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct GpuRule {
    /// The adapter's name as wgpu reports it.
    pub adapter: String,
    /// False: this GPU never works for a pool.
    pub share: bool,
    /// True: this GPU works even while the person uses the computer (a headless second GPU).
    pub while_active: bool,
}

/// Hours in the week when sharing is allowed, in local time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Schedule {
    pub windows: Vec<Window>,
}

/// From `start` to `end` (minutes after local midnight) on each of `days` (0 = Monday … 6 = Sunday).
/// An `end` at or before `start` runs past midnight into the next day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "ScheduleWindow"))]
pub struct Window {
    pub days: Vec<u8>,
    pub start_minute: u16,
    pub end_minute: u16,
}

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

impl Window {
    /// Minute-of-week ranges this window covers, each within `0..2 * MINUTES_PER_WEEK`.
    fn spans(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.days.iter().filter(|&&d| d < 7).map(move |&day| {
            let start = u32::from(day) * MINUTES_PER_DAY + u32::from(self.start_minute);
            let length = (u32::from(self.end_minute) + MINUTES_PER_DAY
                - u32::from(self.start_minute))
                % MINUTES_PER_DAY;
            let length = if length == 0 { MINUTES_PER_DAY } else { length };
            (start, start + length)
        })
    }
}

impl Schedule {
    fn allows(&self, minute_of_week: u32) -> bool {
        self.windows
            .iter()
            .flat_map(Window::spans)
            .any(|(start, end)| {
                // A span may run past Sunday midnight; check this week's minute and the same minute
                // seen as next week.
                (start..end).contains(&minute_of_week)
                    || (start..end).contains(&(minute_of_week + MINUTES_PER_WEEK))
            })
    }

    /// Minutes from `minute_of_week` to the next start of a window, within a week.
    fn minutes_to_next_start(&self, minute_of_week: u32) -> Option<u32> {
        self.windows
            .iter()
            .flat_map(Window::spans)
            .map(|(start, _)| (start + MINUTES_PER_WEEK - minute_of_week) % MINUTES_PER_WEEK)
            .min()
    }
}

/// The time, as the policy needs it: Unix milliseconds and the local offset from UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub unix_ms: u64,
    pub utc_offset_s: i32,
}

impl Now {
    /// The clock and time zone of this machine.
    pub fn system() -> Now {
        let local = chrono::Local::now();
        Now {
            unix_ms: u64::try_from(local.timestamp_millis()).unwrap_or(0),
            utc_offset_s: local.offset().local_minus_utc(),
        }
    }

    fn local_minutes(self, unix_ms: u64) -> u32 {
        let local_s = unix_ms as i64 / 1000 + i64::from(self.utc_offset_s);
        // 1970-01-01 was a Thursday (day 3 counting from Monday).
        let days = local_s.div_euclid(86_400) + 3;
        let minute = local_s.rem_euclid(86_400) / 60;
        (days.rem_euclid(7) as u32) * MINUTES_PER_DAY + minute as u32
    }

    fn minute_of_week(self) -> u32 {
        self.local_minutes(self.unix_ms)
    }
}

/// How hard to work while running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Pace {
    Full,
    /// The person came back and asked to keep running: leave the GPU idle half of the time.
    Gentle,
}

/// Why the machine does not work now. `Display` is the sentence the tray and the logs show.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    GpuNotShared {
        adapter: String,
    },
    Off,
    /// `until` is local "HH:MM", with the weekday when it is not within the next day.
    Snoozed {
        until_ms: u64,
        until: String,
    },
    GpuHot {
        celsius: f32,
        limit: f32,
    },
    OnBattery,
    ExclusiveProgram {
        name: String,
    },
    /// `next` as local "Mon 18:00"; `None` for an empty schedule.
    OutsideSchedule {
        next: Option<String>,
    },
    /// Work may start once the person has been away for `idle_after`.
    UserActive {
        resumes_in_s: u64,
    },
    OtherCpu {
        percent: f32,
        limit: f32,
    },
    GpuBusy {
        percent: f32,
        limit: f32,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::GpuNotShared { adapter } => write!(f, "Paused: sharing is off for {adapter}"),
            Reason::Off => write!(f, "Paused: sharing is off"),
            Reason::Snoozed { until, .. } => write!(f, "Paused until {until}"),
            Reason::GpuHot { celsius, limit } => {
                write!(
                    f,
                    "Paused: the GPU is at {celsius:.0} °C (limit {limit:.0} °C)"
                )
            }
            Reason::OnBattery => write!(f, "Paused: on battery"),
            Reason::ExclusiveProgram { name } => write!(f, "Paused: {name} is running"),
            Reason::OutsideSchedule { next: Some(next) } => {
                write!(f, "Paused: outside your schedule (next {next})")
            }
            Reason::OutsideSchedule { next: None } => write!(f, "Paused: outside your schedule"),
            Reason::UserActive { .. } => write!(f, "Paused: you are using the computer"),
            Reason::OtherCpu { percent, .. } => {
                write!(
                    f,
                    "Paused: other programs are using {percent:.0}% of the CPU"
                )
            }
            Reason::GpuBusy { percent, .. } => {
                write!(
                    f,
                    "Paused: the GPU is busy with something else ({percent:.0}%)"
                )
            }
        }
    }
}

/// The policy's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Run { pace: Pace },
    Pause { reason: Reason },
}

impl Verdict {
    pub const RUN: Verdict = Verdict::Run { pace: Pace::Full };

    pub fn is_run(&self) -> bool {
        matches!(self, Verdict::Run { .. })
    }

    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Verdict::Run { .. } => None,
            Verdict::Pause { reason } => Some(reason),
        }
    }

    fn paused_for(&self, kind: fn(&Reason) -> bool) -> bool {
        self.reason().is_some_and(kind)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Run { pace: Pace::Full } => write!(f, "Sharing"),
            Verdict::Run { pace: Pace::Gentle } => {
                write!(f, "Sharing gently: you are back and asked to keep running")
            }
            Verdict::Pause { reason } => reason.fmt(f),
        }
    }
}

/// Whether `adapter` may work now. `previous` is the last verdict for the same adapter; it gives the
/// limits their band and lets "keep running when I return" tell work already running from work not
/// yet started.
pub fn decide(
    signals: &Signals,
    preferences: &Preferences,
    adapter: &str,
    now: Now,
    previous: &Verdict,
) -> Verdict {
    match pause_reason(signals, preferences, adapter, now, previous) {
        Ok(pace) => Verdict::Run { pace },
        Err(reason) => Verdict::Pause { reason },
    }
}

fn pause_reason(
    signals: &Signals,
    preferences: &Preferences,
    adapter: &str,
    now: Now,
    previous: &Verdict,
) -> Result<Pace, Reason> {
    let rule = preferences.rule_for(adapter);
    if rule.is_some_and(|r| !r.share) {
        return Err(Reason::GpuNotShared {
            adapter: adapter.to_owned(),
        });
    }
    if preferences.mode == Mode::Off {
        return Err(Reason::Off);
    }
    if let Some(until_ms) = preferences.snoozed_until_ms.filter(|&t| t > now.unix_ms) {
        return Err(Reason::Snoozed {
            until_ms,
            until: local_time_label(now, until_ms),
        });
    }
    let gpu = gpu_signals(signals, adapter);
    check_level(
        gpu.and_then(|g| g.temperature_c),
        preferences.max_gpu_temperature_c,
        TEMPERATURE_BAND,
        previous.paused_for(|r| matches!(r, Reason::GpuHot { .. })),
        |celsius, limit| Reason::GpuHot { celsius, limit },
    )?;
    if preferences.mode == Mode::Always {
        return Ok(Pace::Full);
    }
    if signals.system.on_battery == Some(true) && !preferences.run_on_battery {
        return Err(Reason::OnBattery);
    }
    if let Some(name) = signals.system.exclusive_running.first() {
        return Err(Reason::ExclusiveProgram { name: name.clone() });
    }
    check_schedule(preferences.schedule.as_ref(), now)?;
    let pace = check_presence(signals, preferences, rule, previous)?;
    check_level(
        signals.system.other_cpu_percent,
        preferences.max_other_cpu_percent,
        PERCENT_BAND,
        previous.paused_for(|r| matches!(r, Reason::OtherCpu { .. })),
        |percent, limit| Reason::OtherCpu { percent, limit },
    )?;
    check_level(
        gpu.and_then(|g| g.other_use_percent),
        preferences.max_other_gpu_percent,
        PERCENT_BAND,
        previous.paused_for(|r| matches!(r, Reason::GpuBusy { .. })),
        |percent, limit| Reason::GpuBusy { percent, limit },
    )?;
    Ok(pace)
}

/// The GPU the signals name like the adapter; with a single GPU in view, that one.
fn gpu_signals<'a>(signals: &'a Signals, adapter: &str) -> Option<&'a GpuSignals> {
    let gpus = &signals.system.gpus;
    gpus.iter()
        .find(|g| g.name == adapter)
        .or_else(|| (gpus.len() == 1).then(|| &gpus[0]))
}

fn check_schedule(schedule: Option<&Schedule>, now: Now) -> Result<(), Reason> {
    let Some(schedule) = schedule else {
        return Ok(());
    };
    let minute = now.minute_of_week();
    if schedule.allows(minute) {
        return Ok(());
    }
    let next = schedule
        .minutes_to_next_start(minute)
        .map(|m| local_time_label(now, now.unix_ms + u64::from(m) * 60_000));
    Err(Reason::OutsideSchedule { next })
}

/// Whether the person is at the computer, and what that means for this GPU.
fn check_presence(
    signals: &Signals,
    preferences: &Preferences,
    rule: Option<&GpuRule>,
    previous: &Verdict,
) -> Result<Pace, Reason> {
    let away = signals.system.session_locked == Some(true)
        || signals
            .input_idle
            .is_none_or(|idle| idle >= preferences.idle_after);
    if away || rule.is_some_and(|r| r.while_active) {
        return Ok(Pace::Full);
    }
    if preferences.keep_running_when_active && previous.is_run() {
        return Ok(Pace::Gentle);
    }
    let idle = signals.input_idle.unwrap_or_default();
    // Rounded up: with half a second to go, work does not resume "in 0 s".
    let left = preferences.idle_after.saturating_sub(idle);
    Err(Reason::UserActive {
        resumes_in_s: left.as_secs() + u64::from(left.subsec_nanos() > 0),
    })
}

/// A level over its limit pauses; after such a pause it must fall `band` below the limit to resume.
fn check_level(
    level: Option<f32>,
    limit: Option<f32>,
    band: f32,
    paused_for_it: bool,
    reason: fn(f32, f32) -> Reason,
) -> Result<(), Reason> {
    let (Some(level), Some(limit)) = (level, limit) else {
        return Ok(());
    };
    let over = if paused_for_it {
        level > limit - band
    } else {
        level > limit
    };
    if over {
        return Err(reason(level, limit));
    }
    Ok(())
}

/// "14:30" for a time within the next day, "Mon 14:30" beyond.
fn local_time_label(now: Now, unix_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let minutes = now.local_minutes(unix_ms);
    let clock = format!("{:02}:{:02}", minutes % MINUTES_PER_DAY / 60, minutes % 60);
    if unix_ms.saturating_sub(now.unix_ms) < 24 * 3_600_000 {
        clock
    } else {
        format!("{} {clock}", DAYS[(minutes / MINUTES_PER_DAY) as usize % 7])
    }
}

/// `Duration` as whole seconds in files people may edit.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
