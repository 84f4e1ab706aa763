//! The policy as a table of cases: every rule, every precedence, the bands, schedule edges, snooze.
//!
//! A case reads: name, signals, preferences → expected verdict, at Monday 12:00 UTC after a Run unless
//! `.at(…)` / `.after(…)` say otherwise. The defaults are BOINC's: away after 180 s, other CPU 25 %,
//! other GPU use 20 %, GPU 85 °C, not on battery.

use serde_json::json;

use super::*;
use crate::idle::SystemSample;

// ---------------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------------

/// The adapter the cases decide for.
const GPU: &str = "NVIDIA GeForce RTX 4070";
const OTHER_GPU: &str = "Intel(R) UHD Graphics 770";

/// 2026-11-23 00:00:00 UTC, a Monday (`date -u -d @1795392000`).
const MONDAY_UNIX_S: u64 = 1_795_392_000;

const MON: u8 = 0;
const TUE: u8 = 1;
const WED: u8 = 2;
const THU: u8 = 3;
const FRI: u8 = 4;
const SAT: u8 = 5;
const SUN: u8 = 6;
/// The Monday after, for times past the end of the week.
const NEXT_MON: u8 = 7;

/// "HH:MM" or "HH:MM:SS" as seconds after midnight.
fn clock_s(clock: &str) -> u64 {
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    match parts[..] {
        [h, m] => h * 3_600 + m * 60,
        [h, m, s] => h * 3_600 + m * 60 + s,
        _ => panic!("bad clock {clock}"),
    }
}

/// `clock` UTC on `day` of the week of Monday 2026-11-23 (0 = Mon … 6 = Sun, 7 = the next Mon).
fn at(day: u8, clock: &str) -> Now {
    Now {
        unix_ms: (MONDAY_UNIX_S + u64::from(day) * 86_400 + clock_s(clock)) * 1_000,
        utc_offset_s: 0,
    }
}

/// `clock` local time on `day` in a zone `utc_offset_s` east of UTC.
fn at_local(day: u8, clock: &str, utc_offset_s: i32) -> Now {
    let utc = at(day, clock);
    Now {
        unix_ms: utc
            .unix_ms
            .checked_add_signed(-i64::from(utc_offset_s) * 1_000)
            .unwrap(),
        utc_offset_s,
    }
}

/// `now` plus `minutes`.
fn later(now: Now, minutes: i64) -> Now {
    Now {
        unix_ms: now.unix_ms.checked_add_signed(minutes * 60_000).unwrap(),
        ..now
    }
}

fn noon() -> Now {
    at(MON, "12:00")
}

fn gpu(name: &str, other_use_percent: f32, temperature_c: f32) -> GpuSignals {
    GpuSignals {
        name: name.to_owned(),
        other_use_percent: Some(other_use_percent),
        temperature_c: Some(temperature_c),
    }
}

/// A person away (10 min without input, session unlocked) from a quiet machine on mains, with one
/// cool, unused GPU named [`GPU`].
fn quiet() -> Signals {
    Signals {
        input_idle: Some(Duration::from_secs(600)),
        system: SystemSample {
            session_locked: Some(false),
            other_cpu_percent: Some(5.0),
            on_battery: Some(false),
            exclusive_running: Vec::new(),
            gpus: vec![gpu(GPU, 0.0, 50.0)],
        },
    }
}

/// Nothing could be read.
fn unknown() -> Signals {
    Signals::default()
}

trait SignalsExt {
    fn idle(self, seconds: u64) -> Self;
    fn idle_ms(self, ms: u64) -> Self;
    fn no_input(self) -> Self;
    fn locked(self) -> Self;
    fn cpu(self, percent: f32) -> Self;
    fn battery(self) -> Self;
    fn running(self, program: &str) -> Self;
    /// Temperature of the first GPU.
    fn temp(self, celsius: f32) -> Self;
    /// Other programs' use of the first GPU.
    fn busy(self, percent: f32) -> Self;
    fn gpus(self, gpus: Vec<GpuSignals>) -> Self;
}

impl SignalsExt for Signals {
    fn idle(self, seconds: u64) -> Self {
        self.idle_ms(seconds * 1_000)
    }
    fn idle_ms(mut self, ms: u64) -> Self {
        self.input_idle = Some(Duration::from_millis(ms));
        self
    }
    fn no_input(mut self) -> Self {
        self.input_idle = None;
        self
    }
    fn locked(mut self) -> Self {
        self.system.session_locked = Some(true);
        self
    }
    fn cpu(mut self, percent: f32) -> Self {
        self.system.other_cpu_percent = Some(percent);
        self
    }
    fn battery(mut self) -> Self {
        self.system.on_battery = Some(true);
        self
    }
    fn running(mut self, program: &str) -> Self {
        self.system.exclusive_running.push(program.to_owned());
        self
    }
    fn temp(mut self, celsius: f32) -> Self {
        self.system.gpus[0].temperature_c = Some(celsius);
        self
    }
    fn busy(mut self, percent: f32) -> Self {
        self.system.gpus[0].other_use_percent = Some(percent);
        self
    }
    fn gpus(mut self, gpus: Vec<GpuSignals>) -> Self {
        self.system.gpus = gpus;
        self
    }
}

/// The defaults.
fn prefs() -> Preferences {
    Preferences::default()
}

/// A window on `days` from `start` to `end` ("HH:MM" local).
fn window(days: &[u8], start: &str, end: &str) -> Window {
    let minute = |clock| u16::try_from(clock_s(clock) / 60).unwrap();
    Window {
        days: days.to_vec(),
        start_minute: minute(start),
        end_minute: minute(end),
    }
}

trait PreferencesExt {
    fn mode(self, mode: Mode) -> Self;
    fn snooze_until(self, until: Now) -> Self;
    fn battery_ok(self) -> Self;
    fn schedule(self, windows: Vec<Window>) -> Self;
    fn keep_running(self) -> Self;
    fn not_shared(self, adapter: &str) -> Self;
    fn while_active(self, adapter: &str) -> Self;
    fn idle_after(self, seconds: u64) -> Self;
    fn no_limits(self) -> Self;
}

impl PreferencesExt for Preferences {
    fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    fn snooze_until(mut self, until: Now) -> Self {
        self.snoozed_until_ms = Some(until.unix_ms);
        self
    }
    fn battery_ok(mut self) -> Self {
        self.run_on_battery = true;
        self
    }
    fn schedule(mut self, windows: Vec<Window>) -> Self {
        self.schedule = Some(Schedule { windows });
        self
    }
    fn keep_running(mut self) -> Self {
        self.keep_running_when_active = true;
        self
    }
    fn not_shared(mut self, adapter: &str) -> Self {
        self.gpus.push(GpuRule {
            adapter: adapter.to_owned(),
            share: false,
            while_active: false,
        });
        self
    }
    fn while_active(mut self, adapter: &str) -> Self {
        self.gpus.push(GpuRule {
            adapter: adapter.to_owned(),
            share: true,
            while_active: true,
        });
        self
    }
    fn idle_after(mut self, seconds: u64) -> Self {
        self.idle_after = Duration::from_secs(seconds);
        self
    }
    fn no_limits(mut self) -> Self {
        self.max_other_cpu_percent = None;
        self.max_other_gpu_percent = None;
        self.max_gpu_temperature_c = None;
        self
    }
}

const RUN: Verdict = Verdict::RUN;
const GENTLE: Verdict = Verdict::Run { pace: Pace::Gentle };

/// Expected pauses, with the default limits.
mod pause {
    use super::*;

    fn pause(reason: Reason) -> Verdict {
        Verdict::Pause { reason }
    }
    pub fn not_shared(adapter: &str) -> Verdict {
        pause(Reason::GpuNotShared {
            adapter: adapter.to_owned(),
        })
    }
    pub fn off() -> Verdict {
        pause(Reason::Off)
    }
    pub fn snoozed(until: Now, label: &str) -> Verdict {
        pause(Reason::Snoozed {
            until_ms: until.unix_ms,
            until: label.to_owned(),
        })
    }
    pub fn hot(celsius: f32) -> Verdict {
        pause(Reason::GpuHot {
            celsius,
            limit: 85.0,
        })
    }
    pub fn battery() -> Verdict {
        pause(Reason::OnBattery)
    }
    pub fn exclusive(name: &str) -> Verdict {
        pause(Reason::ExclusiveProgram {
            name: name.to_owned(),
        })
    }
    pub fn outside(next: Option<&str>) -> Verdict {
        pause(Reason::OutsideSchedule {
            next: next.map(str::to_owned),
        })
    }
    pub fn active(resumes_in_s: u64) -> Verdict {
        pause(Reason::UserActive { resumes_in_s })
    }
    pub fn cpu(percent: f32) -> Verdict {
        pause(Reason::OtherCpu {
            percent,
            limit: 25.0,
        })
    }
    pub fn busy(percent: f32) -> Verdict {
        pause(Reason::GpuBusy {
            percent,
            limit: 20.0,
        })
    }
}

struct Case {
    name: &'static str,
    signals: Signals,
    prefs: Preferences,
    adapter: &'static str,
    now: Now,
    previous: Verdict,
    expected: Verdict,
}

/// A case for [`GPU`] at Monday 12:00 UTC, after a Run.
fn case(name: &'static str, signals: Signals, prefs: Preferences, expected: Verdict) -> Case {
    Case {
        name,
        signals,
        prefs,
        adapter: GPU,
        now: noon(),
        previous: RUN,
        expected,
    }
}

impl Case {
    fn at(mut self, now: Now) -> Self {
        self.now = now;
        self
    }
    fn after(mut self, previous: Verdict) -> Self {
        self.previous = previous;
        self
    }
    fn adapter(mut self, adapter: &'static str) -> Self {
        self.adapter = adapter;
        self
    }
}

/// Runs every case and reports all that fail, by name.
fn check(cases: Vec<Case>) {
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {:?}", case.name);
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = decide(&c.signals, &c.prefs, c.adapter, c.now, &c.previous);
            (got != c.expected).then(|| {
                format!(
                    "case {:?}:\n    expected {:?}\n         got {:?}",
                    c.name, c.expected, got
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------------

#[test]
fn dates_are_what_the_cases_say() {
    // 2026-11-23 is a Monday; the policy's own weekday arithmetic agrees.
    assert_eq!(at(MON, "00:00").minute_of_week(), 0);
    assert_eq!(at(SUN, "23:59").minute_of_week(), MINUTES_PER_WEEK - 1);
    assert_eq!(at(NEXT_MON, "00:00").minute_of_week(), 0);
    assert_eq!(
        at_local(TUE, "08:30", 3_600).minute_of_week(),
        MINUTES_PER_DAY + 8 * 60 + 30
    );
    assert_eq!(at_local(MON, "00:30", -18_000).minute_of_week(), 30);
}

#[test]
#[rustfmt::skip]
fn each_rule_on_its_own() {
    let hour_later = at(MON, "13:00");
    let minute_ago = at(MON, "11:59");
    check(vec![
        case("all fine", quiet(), prefs(), RUN),
        case("GPU not shared", quiet(), prefs().not_shared(GPU), pause::not_shared(GPU)),
        case("another GPU not shared", quiet(), prefs().not_shared(OTHER_GPU), RUN),
        case("mode off", quiet(), prefs().mode(Mode::Off), pause::off()),
        case("snoozed", quiet(), prefs().snooze_until(hour_later), pause::snoozed(hour_later, "13:00")),
        case("snooze in the past", quiet(), prefs().snooze_until(minute_ago), RUN),
        case("snooze ending now", quiet(), prefs().snooze_until(noon()), RUN),
        case("snooze over, mode off", quiet(), prefs().snooze_until(minute_ago).mode(Mode::Off), pause::off()),
        case("snooze over, outside schedule", quiet(), prefs().snooze_until(minute_ago).schedule(vec![window(&[MON], "18:00", "23:00")]), pause::outside(Some("18:00"))),
        case("GPU too hot", quiet().temp(90.0), prefs(), pause::hot(90.0)),
        case("GPU at the temperature limit", quiet().temp(85.0), prefs(), RUN),
        case("on battery", quiet().battery(), prefs(), pause::battery()),
        case("on battery, allowed", quiet().battery(), prefs().battery_ok(), RUN),
        case("exclusive program", quiet().running("Blender"), prefs(), pause::exclusive("Blender")),
        case("two exclusive programs: the first named", quiet().running("Blender").running("steam"), prefs(), pause::exclusive("Blender")),
        case("outside the schedule", quiet(), prefs().schedule(vec![window(&[MON], "18:00", "23:00")]), pause::outside(Some("18:00"))),
        case("inside the schedule", quiet(), prefs().schedule(vec![window(&[MON], "09:00", "17:00")]), RUN),
        case("person active", quiet().idle(60), prefs(), pause::active(120)),
        case("person typing now", quiet().idle(0), prefs(), pause::active(180)),
        case("person active, 1 s to go", quiet().idle(179), prefs(), pause::active(1)),
        case("away exactly idle_after", quiet().idle(180), prefs(), RUN),
        case("person active, idle_after 5 min", quiet().idle(200), prefs().idle_after(300), pause::active(100)),
        case("away, idle_after 1 min", quiet().idle(61), prefs().idle_after(60), RUN),
        case("other CPU above the limit", quiet().cpu(30.0), prefs(), pause::cpu(30.0)),
        case("other CPU at the limit", quiet().cpu(25.0), prefs(), RUN),
        case("GPU busy", quiet().busy(40.0), prefs(), pause::busy(40.0)),
        case("GPU use at the limit", quiet().busy(20.0), prefs(), RUN),
        case("no limits set", quiet().cpu(99.0).busy(99.0).temp(120.0), prefs().no_limits(), RUN),
        case("locked with recent input", quiet().locked().idle(2), prefs(), RUN),
        case("no input source", quiet().no_input(), prefs(), RUN),
        case("lock state unknown, recent input", Signals { system: SystemSample { session_locked: None, ..quiet().system }, ..quiet() }.idle(2), prefs(), pause::active(178)),
    ]);
}

#[test]
#[rustfmt::skip]
fn signals_that_cannot_be_read_never_pause() {
    check(vec![
        case("nothing known", unknown(), prefs(), RUN),
        case("nothing known, every limit tight", unknown(), prefs().idle_after(3_600), RUN),
        case("GPU signals unknown", quiet().gpus(vec![GpuSignals { name: GPU.into(), ..GpuSignals::default() }]), prefs(), RUN),
        case("no GPU signals", quiet().gpus(vec![]), prefs(), RUN),
        case("battery unknown", Signals { system: SystemSample { on_battery: None, ..quiet().system }, ..quiet() }, prefs(), RUN),
        case("CPU unknown", Signals { system: SystemSample { other_cpu_percent: None, ..quiet().system }, ..quiet() }, prefs(), RUN),
        case("unknown, hot band ignored", unknown(), prefs(), RUN).after(pause::hot(90.0)),
        case("unknown, CPU band ignored", unknown(), prefs(), RUN).after(pause::cpu(30.0)),
    ]);
}

#[test]
#[rustfmt::skip]
fn each_rule_wins_over_the_next() {
    let snooze = at(MON, "13:00");
    let evening = || vec![window(&[MON], "18:00", "23:00")];
    check(vec![
        case("not shared > off", quiet(), prefs().not_shared(GPU).mode(Mode::Off), pause::not_shared(GPU)),
        case("off > snoozed", quiet(), prefs().mode(Mode::Off).snooze_until(snooze), pause::off()),
        case("snoozed > hot", quiet().temp(95.0), prefs().snooze_until(snooze), pause::snoozed(snooze, "13:00")),
        case("hot > always", quiet().temp(95.0), prefs().mode(Mode::Always), pause::hot(95.0)),
        case("always > battery", quiet().battery(), prefs().mode(Mode::Always), RUN),
        case("battery > exclusive", quiet().battery().running("Blender"), prefs(), pause::battery()),
        case("exclusive > schedule", quiet().running("Blender"), prefs().schedule(evening()), pause::exclusive("Blender")),
        case("schedule > presence", quiet().idle(60), prefs().schedule(evening()), pause::outside(Some("18:00"))),
        case("presence > CPU", quiet().idle(60).cpu(90.0), prefs(), pause::active(120)),
        case("CPU > GPU busy", quiet().cpu(90.0).busy(90.0), prefs(), pause::cpu(90.0)),
        // Rules further apart, where a mistake in the order would most likely hide.
        case("hot > battery", quiet().temp(95.0).battery(), prefs(), pause::hot(95.0)),
        case("battery > presence", quiet().battery().idle(60), prefs(), pause::battery()),
        case("presence > GPU busy", quiet().idle(60).busy(90.0), prefs(), pause::active(120)),
        case("keep running, person back, CPU over", quiet().idle(60).cpu(90.0), prefs().keep_running(), pause::cpu(90.0)),
    ]);
}

/// Everything wrong at once, then the conditions put right one at a time, in the documented order:
/// each time the next rule's reason must show.
#[test]
#[rustfmt::skip]
fn first_match_wins_down_the_whole_ladder() {
    type Fix = fn(&mut Signals, &mut Preferences);
    let snooze = at(MON, "13:00");
    let ladder: [(&str, Fix, Verdict); 10] = [
        ("not shared", |_, p| p.gpus.clear(), pause::not_shared(GPU)),
        ("off", |_, p| p.mode = Mode::WhenIdle, pause::off()),
        ("snoozed", |_, p| p.snoozed_until_ms = None, pause::snoozed(snooze, "13:00")),
        ("hot", |s, _| s.system.gpus[0].temperature_c = Some(50.0), pause::hot(95.0)),
        ("battery", |s, _| s.system.on_battery = Some(false), pause::battery()),
        ("exclusive", |s, _| s.system.exclusive_running.clear(), pause::exclusive("Blender")),
        ("schedule", |_, p| p.schedule = None, pause::outside(Some("18:00"))),
        ("presence", |s, _| s.input_idle = Some(Duration::from_secs(600)), pause::active(170)),
        ("CPU", |s, _| s.system.other_cpu_percent = Some(5.0), pause::cpu(90.0)),
        ("GPU busy", |s, _| s.system.gpus[0].other_use_percent = Some(0.0), pause::busy(90.0)),
    ];
    let mut signals = quiet()
        .temp(95.0)
        .battery()
        .running("Blender")
        .idle(10)
        .cpu(90.0)
        .busy(90.0);
    let mut preferences = prefs()
        .not_shared(GPU)
        .mode(Mode::Off)
        .snooze_until(snooze)
        .schedule(vec![window(&[MON], "18:00", "23:00")]);
    for (name, fix, expected) in ladder {
        let got = decide(&signals, &preferences, GPU, noon(), &RUN);
        assert_eq!(got, expected, "with every rule from {name:?} on broken");
        fix(&mut signals, &mut preferences);
    }
    assert_eq!(decide(&signals, &preferences, GPU, noon(), &RUN), RUN, "with every rule put right");
}

#[test]
#[rustfmt::skip]
fn always_ignores_the_machine_but_not_heat_snooze_or_the_gpu_switch() {
    let always = || prefs().mode(Mode::Always);
    let snooze = at(MON, "13:00");
    check(vec![
        case("always: battery", quiet().battery(), always(), RUN),
        case("always: exclusive program", quiet().running("Blender"), always(), RUN),
        case("always: outside schedule", quiet(), always().schedule(vec![window(&[MON], "18:00", "23:00")]), RUN),
        case("always: empty schedule", quiet(), always().schedule(vec![]), RUN),
        case("always: person active", quiet().idle(0), always(), RUN),
        case("always: CPU", quiet().cpu(99.0), always(), RUN),
        case("always: GPU busy", quiet().busy(99.0), always(), RUN),
        case("always: everything at once", quiet().battery().running("Blender").idle(0).cpu(99.0).busy(99.0), always().schedule(vec![]), RUN),
        case("always: hot", quiet().temp(90.0), always(), pause::hot(90.0)),
        case("always: cooling inside the band", quiet().temp(82.0), always(), pause::hot(82.0)).after(pause::hot(90.0)),
        case("always: cooled below the band", quiet().temp(79.0), always(), RUN).after(pause::hot(90.0)),
        case("always: not shared", quiet(), always().not_shared(GPU), pause::not_shared(GPU)),
        case("always: snoozed", quiet(), always().snooze_until(snooze), pause::snoozed(snooze, "13:00")),
        case("always: snooze over", quiet(), always().snooze_until(at(MON, "11:00")), RUN),
        case("always: person active is full pace", quiet().idle(0), always().keep_running(), RUN),
    ]);
}

#[test]
#[rustfmt::skip]
fn per_gpu_rules_and_matching() {
    let two = || vec![gpu(GPU, 0.0, 50.0), gpu(OTHER_GPU, 90.0, 95.0)];
    check(vec![
        case("while_active runs while the person is active", quiet().idle(0), prefs().while_active(GPU), RUN),
        case("while_active for another GPU", quiet().idle(60), prefs().while_active(OTHER_GPU), pause::active(120)),
        case("while_active still obeys battery", quiet().idle(0).battery(), prefs().while_active(GPU), pause::battery()),
        case("while_active still obeys the schedule", quiet().idle(0), prefs().while_active(GPU).schedule(vec![window(&[TUE], "00:00", "00:00")]), pause::outside(Some("00:00"))),
        case("while_active still obeys CPU", quiet().idle(0).cpu(50.0), prefs().while_active(GPU), pause::cpu(50.0)),
        case("while_active still obeys GPU busy", quiet().idle(0).busy(50.0), prefs().while_active(GPU), pause::busy(50.0)),
        case("while_active still obeys heat", quiet().idle(0).temp(90.0), prefs().while_active(GPU), pause::hot(90.0)),
        case("the other GPU's rule does not apply", quiet(), prefs().not_shared(OTHER_GPU).while_active(OTHER_GPU), RUN),
        case("two GPUs: this one is matched by name", quiet().gpus(two()), prefs(), RUN),
        case("two GPUs: the other one by its name", quiet().gpus(two()), prefs(), pause::hot(95.0)).adapter(OTHER_GPU),
        case("two GPUs, listed the other way round", quiet().gpus(two().into_iter().rev().collect()), prefs(), RUN),
        case("one GPU, another name: it is ours", quiet().gpus(vec![gpu("GeForce RTX 4070 (driver name)", 0.0, 95.0)]), prefs(), pause::hot(95.0)),
        case("one GPU, another name, busy", quiet().gpus(vec![gpu("card0", 50.0, 40.0)]), prefs(), pause::busy(50.0)),
        case("two GPUs, neither matches", quiet().gpus(vec![gpu("card0", 90.0, 95.0), gpu("card1", 90.0, 95.0)]), prefs(), RUN),
        case("no GPU signals at all", quiet().gpus(vec![]), prefs(), RUN),
    ]);
}

#[test]
#[rustfmt::skip]
fn levels_have_a_band_before_work_resumes() {
    let cpu_pause = || pause::cpu(27.0);
    let busy_pause = || pause::busy(27.0);
    let hot_pause = || pause::hot(87.0);
    check(vec![
        // Other programs' CPU: limit 25, band 5.
        case("CPU 27 pauses", quiet().cpu(27.0), prefs(), pause::cpu(27.0)),
        case("CPU 22 after a CPU pause", quiet().cpu(22.0), prefs(), pause::cpu(22.0)).after(cpu_pause()),
        case("CPU 20.1 after a CPU pause", quiet().cpu(20.1), prefs(), pause::cpu(20.1)).after(cpu_pause()),
        case("CPU 20 after a CPU pause", quiet().cpu(20.0), prefs(), RUN).after(cpu_pause()),
        case("CPU 19.9 after a CPU pause", quiet().cpu(19.9), prefs(), RUN).after(cpu_pause()),
        case("CPU 24 after a run", quiet().cpu(24.0), prefs(), RUN),
        case("CPU 22 after a presence pause", quiet().cpu(22.0), prefs(), RUN).after(pause::active(10)),
        case("CPU 22 after a GPU-busy pause", quiet().cpu(22.0), prefs(), RUN).after(busy_pause()),
        case("CPU 22 after a heat pause", quiet().cpu(22.0), prefs(), RUN).after(hot_pause()),
        // Other programs' GPU use: limit 20, band 5.
        case("GPU busy 22 pauses", quiet().busy(22.0), prefs(), pause::busy(22.0)),
        case("GPU busy 17 after a busy pause", quiet().busy(17.0), prefs(), pause::busy(17.0)).after(busy_pause()),
        case("GPU busy 14.9 after a busy pause", quiet().busy(14.9), prefs(), RUN).after(busy_pause()),
        case("GPU busy 19 after a run", quiet().busy(19.0), prefs(), RUN),
        case("GPU busy 17 after a CPU pause", quiet().busy(17.0), prefs(), RUN).after(cpu_pause()),
        // Temperature: limit 85, band TEMPERATURE_BAND.
        case("87 °C pauses", quiet().temp(87.0), prefs(), pause::hot(87.0)),
        case("82 °C after a heat pause", quiet().temp(82.0), prefs(), pause::hot(82.0)).after(hot_pause()),
        case("79.9 °C after a heat pause", quiet().temp(85.0 - TEMPERATURE_BAND - 0.1), prefs(), RUN).after(hot_pause()),
        case("84 °C after a run", quiet().temp(84.0), prefs(), RUN),
        case("82 °C after a CPU pause", quiet().temp(82.0), prefs(), RUN).after(cpu_pause()),
        case("82 °C after a gentle run", quiet().temp(82.0), prefs(), RUN).after(GENTLE),
    ]);
}

#[test]
#[rustfmt::skip]
fn keep_running_when_the_person_returns() {
    check(vec![
        case("running, person returns: gentle", quiet().idle(5), prefs().keep_running(), GENTLE),
        case("running gently, still there: gentle", quiet().idle(5), prefs().keep_running(), GENTLE).after(GENTLE),
        case("gentle, person leaves: full", quiet(), prefs().keep_running(), RUN).after(GENTLE),
        case("paused for presence: never starts", quiet().idle(5), prefs().keep_running(), pause::active(175)).after(pause::active(100)),
        case("paused for CPU: never starts while there", quiet().idle(5), prefs().keep_running(), pause::active(175)).after(pause::cpu(30.0)),
        case("paused for schedule: never starts while there", quiet().idle(5), prefs().keep_running(), pause::active(175)).after(pause::outside(Some("18:00"))),
        case("without keep_running: pauses", quiet().idle(5), prefs(), pause::active(175)),
        case("gentle still obeys GPU busy", quiet().idle(5).busy(50.0), prefs().keep_running(), pause::busy(50.0)),
        case("gentle still obeys battery", quiet().idle(5).battery(), prefs().keep_running(), pause::battery()),
        case("while_active GPU runs at full pace", quiet().idle(5), prefs().keep_running().while_active(GPU), RUN),
    ]);
}

#[test]
#[rustfmt::skip]
fn resumes_in_counts_whole_seconds_up() {
    // Work starts once the person has been away for idle_after: with half a second to go the pause
    // must not claim to end in 0 s.
    check(vec![
        case("179.5 s idle: 1 s to go", quiet().idle_ms(179_500), prefs(), pause::active(1)),
        case("60.4 s idle: 120 s to go", quiet().idle_ms(60_400), prefs(), pause::active(120)),
        case("60 s idle: 120 s to go", quiet().idle_ms(60_000), prefs(), pause::active(120)),
        case("0.001 s idle: 180 s to go", quiet().idle_ms(1), prefs(), pause::active(180)),
        case("179.999 s idle: 1 s to go", quiet().idle_ms(179_999), prefs(), pause::active(1)),
    ]);
}

#[test]
#[rustfmt::skip]
fn schedule_edges() {
    let evening = || prefs().schedule(vec![window(&[MON], "18:00", "23:00")]);
    let night = || prefs().schedule(vec![window(&[MON], "22:00", "06:00")]);
    let sunday_night = || prefs().schedule(vec![window(&[SUN], "22:00", "02:00")]);
    let all_monday = || prefs().schedule(vec![window(&[MON], "00:00", "00:00")]);
    let wednesday_from_8 = || prefs().schedule(vec![window(&[WED], "08:00", "08:00")]);
    let weekdays_and_weekend = || {
        prefs().schedule(vec![
            window(&[MON, TUE, WED, THU, FRI], "18:00", "23:00"),
            window(&[SAT, SUN], "00:00", "00:00"),
        ])
    };
    check(vec![
        // Mon 18:00–23:00: start included, end excluded.
        case("evening: 17:59", quiet(), evening(), pause::outside(Some("18:00"))).at(at(MON, "17:59")),
        case("evening: 17:59:59", quiet(), evening(), pause::outside(Some("18:00"))).at(at(MON, "17:59:59")),
        case("evening: 18:00", quiet(), evening(), RUN).at(at(MON, "18:00")),
        case("evening: 22:59", quiet(), evening(), RUN).at(at(MON, "22:59")),
        case("evening: 22:59:59", quiet(), evening(), RUN).at(at(MON, "22:59:59")),
        case("evening: 23:00, next a week on", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(at(MON, "23:00")),
        case("evening: Tue 18:30", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(at(TUE, "18:30")),
        case("evening: Sun 19:00, within a day", quiet(), evening(), pause::outside(Some("18:00"))).at(at(SUN, "19:00")),
        case("evening: Sun 17:59, just beyond a day", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(at(SUN, "17:59")),
        case("evening: Sun 18:00, exactly a day", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(at(SUN, "18:00")),
        case("evening: Sun 18:01", quiet(), evening(), pause::outside(Some("18:00"))).at(at(SUN, "18:01")),
        // Mon 22:00–06:00 runs past midnight into Tuesday.
        case("night: Mon 21:59", quiet(), night(), pause::outside(Some("22:00"))).at(at(MON, "21:59")),
        case("night: Mon 22:00", quiet(), night(), RUN).at(at(MON, "22:00")),
        case("night: Mon 23:30", quiet(), night(), RUN).at(at(MON, "23:30")),
        case("night: Tue 00:00", quiet(), night(), RUN).at(at(TUE, "00:00")),
        case("night: Tue 05:59", quiet(), night(), RUN).at(at(TUE, "05:59")),
        case("night: Tue 06:00", quiet(), night(), pause::outside(Some("Mon 22:00"))).at(at(TUE, "06:00")),
        case("night: Mon 05:00 (Sunday not in the days)", quiet(), night(), pause::outside(Some("22:00"))).at(at(MON, "05:00")),
        // Sun 22:00–02:00 wraps past the end of the week.
        case("sunday night: Sun 21:59", quiet(), sunday_night(), pause::outside(Some("22:00"))).at(at(SUN, "21:59")),
        case("sunday night: Sun 23:00", quiet(), sunday_night(), RUN).at(at(SUN, "23:00")),
        case("sunday night: Mon 00:00", quiet(), sunday_night(), RUN).at(at(NEXT_MON, "00:00")),
        case("sunday night: Mon 01:00", quiet(), sunday_night(), RUN).at(at(NEXT_MON, "01:00")),
        case("sunday night: Mon 01:00 of this week", quiet(), sunday_night(), RUN).at(at(MON, "01:00")),
        case("sunday night: Mon 02:00", quiet(), sunday_night(), pause::outside(Some("Sun 22:00"))).at(at(NEXT_MON, "02:00")),
        // end == start: the whole day, from start to the same time the next day.
        case("all Monday: 00:00", quiet(), all_monday(), RUN).at(at(MON, "00:00")),
        case("all Monday: 23:59", quiet(), all_monday(), RUN).at(at(MON, "23:59")),
        case("all Monday: Tue 00:00", quiet(), all_monday(), pause::outside(Some("Mon 00:00"))).at(at(TUE, "00:00")),
        case("all Monday: Sun 23:59", quiet(), all_monday(), pause::outside(Some("00:00"))).at(at(SUN, "23:59")),
        case("Wed from 08:00 for a day: Wed 07:59", quiet(), wednesday_from_8(), pause::outside(Some("08:00"))).at(at(WED, "07:59")),
        case("Wed from 08:00 for a day: Wed 08:00", quiet(), wednesday_from_8(), RUN).at(at(WED, "08:00")),
        case("Wed from 08:00 for a day: Thu 07:59", quiet(), wednesday_from_8(), RUN).at(at(THU, "07:59")),
        case("Wed from 08:00 for a day: Thu 08:00", quiet(), wednesday_from_8(), pause::outside(Some("Wed 08:00"))).at(at(THU, "08:00")),
        // Several windows: any allows; the next label is the nearest start.
        case("several: Fri 23:00, next Sat 00:00", quiet(), weekdays_and_weekend(), pause::outside(Some("00:00"))).at(at(FRI, "23:00")),
        case("several: Sat 12:00", quiet(), weekdays_and_weekend(), RUN).at(at(SAT, "12:00")),
        case("several: Mon 00:00 after the weekend", quiet(), weekdays_and_weekend(), pause::outside(Some("18:00"))).at(at(NEXT_MON, "00:00")),
        case("several: Wed 19:00", quiet(), weekdays_and_weekend(), RUN).at(at(WED, "19:00")),
        // A schedule with nothing in it allows nothing and has no next start.
        case("empty schedule", quiet(), prefs().schedule(vec![]), pause::outside(None)),
        case("window without days", quiet(), prefs().schedule(vec![window(&[], "00:00", "00:00")]), pause::outside(None)),
        case("window on day 7 only (ignored)", quiet(), prefs().schedule(vec![window(&[7], "00:00", "00:00")]), pause::outside(None)),
    ]);
}

#[test]
#[rustfmt::skip]
fn schedule_in_local_time() {
    let evening = || prefs().schedule(vec![window(&[MON], "18:00", "23:00")]);
    let all_monday = || prefs().schedule(vec![window(&[MON], "00:00", "00:00")]);
    let cet = |day, clock| at_local(day, clock, 3_600);
    let est = |day, clock| at_local(day, clock, -5 * 3_600);
    check(vec![
        // UTC+1: Mon 18:00 local is 17:00 UTC.
        case("UTC+1: 16:59 UTC is 17:59 local", quiet(), evening(), pause::outside(Some("18:00"))).at(cet(MON, "17:59")),
        case("UTC+1: 17:00 UTC is 18:00 local", quiet(), evening(), RUN).at(cet(MON, "18:00")),
        case("UTC+1: 21:59 UTC is 22:59 local", quiet(), evening(), RUN).at(cet(MON, "22:59")),
        case("UTC+1: 22:00 UTC is 23:00 local", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(cet(MON, "23:00")),
        case("UTC+1: Sun 23:30 UTC is Mon 00:30 local", quiet(), all_monday(), RUN).at(cet(MON, "00:30")),
        case("UTC+1: Mon 23:30 UTC is Tue 00:30 local", quiet(), all_monday(), pause::outside(Some("Mon 00:00"))).at(cet(TUE, "00:30")),
        // UTC−5: Mon 22:59 local is Tue 03:59 UTC.
        case("UTC-5: Tue 03:59 UTC is Mon 22:59 local", quiet(), evening(), RUN).at(est(MON, "22:59")),
        case("UTC-5: Tue 04:00 UTC is Mon 23:00 local", quiet(), evening(), pause::outside(Some("Mon 18:00"))).at(est(MON, "23:00")),
        case("UTC-5: Mon 12:00 UTC is Mon 07:00 local", quiet(), evening(), pause::outside(Some("18:00"))).at(est(MON, "07:00")),
        case("UTC-5: Mon 03:00 UTC is Sun 22:00 local", quiet(), all_monday(), pause::outside(Some("00:00"))).at(est(SUN, "22:00")),
    ]);
    // The helper shifts the instant, not only the offset.
    assert_eq!(cet(MON, "18:00").unix_ms, at(MON, "17:00").unix_ms);
    assert_eq!(est(MON, "22:59").unix_ms, at(TUE, "03:59").unix_ms);
}

#[test]
#[rustfmt::skip]
fn snooze_labels() {
    let cet = |day, clock| at_local(day, clock, 3_600);
    let now = cet(MON, "13:00");
    let until = cet(MON, "14:30");
    check(vec![
        case("local 14:30", quiet(), prefs().snooze_until(until), pause::snoozed(until, "14:30")).at(now),
        case("UTC 14:30", quiet(), prefs().snooze_until(at(MON, "14:30")), pause::snoozed(at(MON, "14:30"), "14:30")),
        case("past local midnight", quiet(), prefs().snooze_until(cet(TUE, "00:30")), pause::snoozed(cet(TUE, "00:30"), "00:30")).at(cet(MON, "23:00")),
        case("23:59 away: no weekday", quiet(), prefs().snooze_until(later(now, 24 * 60 - 1)), pause::snoozed(later(now, 24 * 60 - 1), "12:59")).at(now),
        case("a day away: weekday", quiet(), prefs().snooze_until(later(now, 24 * 60)), pause::snoozed(later(now, 24 * 60), "Tue 13:00")).at(now),
        case("three days away", quiet(), prefs().snooze_until(cet(THU, "09:15")), pause::snoozed(cet(THU, "09:15"), "Thu 09:15")).at(now),
        case("into next week", quiet(), prefs().snooze_until(cet(NEXT_MON, "08:00")), pause::snoozed(cet(NEXT_MON, "08:00"), "Mon 08:00")).at(cet(SAT, "08:00")),
        case("UTC-5, local day before UTC", quiet(), prefs().snooze_until(at_local(SUN, "22:00", -18_000)), pause::snoozed(at_local(SUN, "22:00", -18_000), "Sun 22:00")).at(at_local(FRI, "10:00", -18_000)),
    ]);
    let verdict = decide(&quiet(), &prefs().snooze_until(until), GPU, now, &RUN);
    assert_eq!(verdict.to_string(), "Paused until 14:30");
    assert_eq!(verdict.reason().map(ToString::to_string).as_deref(), Some("Paused until 14:30"));
    let verdict = decide(&quiet(), &prefs().snooze_until(cet(WED, "09:00")), GPU, now, &RUN);
    assert_eq!(verdict.to_string(), "Paused until Wed 09:00");
}

#[test]
#[rustfmt::skip]
fn display_is_the_sentence_people_read() {
    let table: [(Verdict, &str); 16] = [
        (RUN, "Sharing"),
        (GENTLE, "Sharing gently: you are back and asked to keep running"),
        (pause::not_shared(GPU), "Paused: sharing is off for NVIDIA GeForce RTX 4070"),
        (pause::off(), "Paused: sharing is off"),
        (pause::snoozed(at(MON, "14:30"), "14:30"), "Paused until 14:30"),
        (pause::snoozed(at(TUE, "09:00"), "Tue 09:00"), "Paused until Tue 09:00"),
        (pause::hot(91.4), "Paused: the GPU is at 91 °C (limit 85 °C)"),
        (pause::battery(), "Paused: on battery"),
        (pause::exclusive("Blender"), "Paused: Blender is running"),
        (pause::outside(Some("Mon 18:00")), "Paused: outside your schedule (next Mon 18:00)"),
        (pause::outside(Some("18:00")), "Paused: outside your schedule (next 18:00)"),
        (pause::outside(None), "Paused: outside your schedule"),
        (pause::active(120), "Paused: you are using the computer"),
        (pause::cpu(27.4), "Paused: other programs are using 27% of the CPU"),
        (pause::cpu(99.6), "Paused: other programs are using 100% of the CPU"),
        (pause::busy(40.0), "Paused: the GPU is busy with something else (40%)"),
    ];
    for (verdict, sentence) in table {
        assert_eq!(verdict.to_string(), sentence, "Display of {verdict:?}");
        if let Some(reason) = verdict.reason() {
            assert_eq!(reason.to_string(), sentence, "Display of {reason:?}");
        }
    }
    // The sentences as decide produces them.
    let said = |signals: Signals, preferences: Preferences| {
        decide(&signals, &preferences, GPU, noon(), &RUN).to_string()
    };
    assert_eq!(said(quiet().idle(3), prefs()), "Paused: you are using the computer");
    assert_eq!(said(quiet().battery(), prefs()), "Paused: on battery");
    assert_eq!(said(quiet().running("Blender"), prefs()), "Paused: Blender is running");
    assert_eq!(said(quiet().temp(90.0), prefs()), "Paused: the GPU is at 90 °C (limit 85 °C)");
    assert_eq!(
        said(quiet(), prefs().schedule(vec![window(&[MON], "18:00", "23:00")])),
        "Paused: outside your schedule (next 18:00)"
    );
    assert_eq!(said(quiet(), prefs()), "Sharing");
}

#[test]
fn verdicts_serialize_with_their_kind() {
    assert_eq!(
        serde_json::to_value(RUN).unwrap(),
        json!({ "verdict": "run", "pace": "full" })
    );
    assert_eq!(
        serde_json::to_value(pause::active(120)).unwrap(),
        json!({ "verdict": "pause", "reason": { "kind": "user_active", "resumes_in_s": 120 } })
    );
    assert_eq!(
        serde_json::to_value(pause::battery()).unwrap(),
        json!({ "verdict": "pause", "reason": { "kind": "on_battery" } })
    );
}

#[test]
fn preferences_default_to_boinc() {
    let empty: Preferences = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Preferences::default());
    assert_eq!(empty.mode, Mode::WhenIdle);
    assert_eq!(empty.snoozed_until_ms, None);
    assert_eq!(empty.idle_after, Duration::from_secs(180));
    assert_eq!(empty.max_other_cpu_percent, Some(25.0));
    assert!(!empty.run_on_battery);
    assert_eq!(empty.schedule, None);
    assert!(empty.exclusive_programs.is_empty());
    assert_eq!(empty.max_gpu_temperature_c, Some(85.0));
    assert_eq!(empty.max_other_gpu_percent, Some(20.0));
    assert!(!empty.keep_running_when_active);
    assert!(empty.gpus.is_empty());

    // A file with a few fields keeps the defaults for the rest.
    let some: Preferences =
        serde_json::from_str(r#"{ "mode": "always", "idle_after": 300 }"#).unwrap();
    assert_eq!(
        some,
        Preferences {
            mode: Mode::Always,
            idle_after: Duration::from_secs(300),
            ..Preferences::default()
        }
    );
}

#[test]
fn preferences_round_trip_through_json() {
    let everything = Preferences {
        mode: Mode::Always,
        snoozed_until_ms: Some(at(MON, "14:30").unix_ms),
        idle_after: Duration::from_secs(300),
        max_other_cpu_percent: Some(40.0),
        run_on_battery: true,
        schedule: Some(Schedule {
            windows: vec![
                window(&[MON, TUE, WED, THU, FRI], "22:00", "06:00"),
                window(&[SAT, SUN], "00:00", "00:00"),
            ],
        }),
        exclusive_programs: vec!["Blender".into(), "steam".into()],
        max_gpu_temperature_c: None,
        max_other_gpu_percent: Some(12.5),
        keep_running_when_active: true,
        gpus: vec![
            GpuRule {
                adapter: GPU.into(),
                share: true,
                while_active: true,
            },
            GpuRule {
                adapter: OTHER_GPU.into(),
                share: false,
                while_active: false,
            },
        ],
    };
    for (name, preferences) in [
        ("defaults", Preferences::default()),
        ("everything set", everything),
    ] {
        let text = serde_json::to_string(&preferences).unwrap();
        let back: Preferences = serde_json::from_str(&text).unwrap();
        assert_eq!(back, preferences, "{name} through {text}");
    }
    for (mode, text) in [
        (Mode::Off, "off"),
        (Mode::WhenIdle, "when_idle"),
        (Mode::Always, "always"),
    ] {
        assert_eq!(serde_json::to_value(mode).unwrap(), json!(text), "{mode:?}");
    }
}

#[test]
fn idle_after_is_whole_seconds_in_json() {
    let value = serde_json::to_value(Preferences::default()).unwrap();
    assert_eq!(value["idle_after"], json!(180));
    let value = serde_json::to_value(prefs().idle_after(600)).unwrap();
    assert_eq!(value["idle_after"], json!(600));
    let read: Preferences = serde_json::from_str(r#"{ "idle_after": 45 }"#).unwrap();
    assert_eq!(read.idle_after, Duration::from_secs(45));
    assert!(serde_json::from_str::<Preferences>(r#"{ "idle_after": "3m" }"#).is_err());
    assert!(serde_json::from_str::<Preferences>(r#"{ "idle_after": -1 }"#).is_err());
}
