//! The status line: one state and one sentence for the whole node, from each pool's provider state,
//! the verdict it follows, the person's preferences and the money figures. Pure functions, so the
//! tray, the window and the tests agree on every case.
//!
//! Working anywhere wins; then paused, when every pool is paused (the demo pool keeps working while
//! the person is at the computer, so one idle verdict does not pause the node); then waiting,
//! connecting, and last "cannot reach".

use crate::amount::Amount;
use crate::idle::{Mode, Pace, Preferences, Reason, Verdict};
use crate::provider::{PoolPath, ProviderState, ProviderStatus};

use super::earnings::Money;
use super::not_earning::{EarningFacts, why_not_earning};
use super::reach::network_line;
use super::views::{JobNow, StateKind, Status};

/// A notice goes out when sharing will start within this many seconds.
pub const ABOUT_TO_START_LEAD_S: u64 = 30;

/// One pool's provider, as the status line needs it.
pub struct PoolActivity<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: &'a ProviderStatus,
    pub verdict: &'a Verdict,
    /// How the pool is reached.
    pub path: &'a PoolPath,
}

/// What the node is doing now, in a word and a sentence, and the job if one runs.
pub fn describe(
    preferences: &Preferences,
    pools: &[PoolActivity<'_>],
    now_ms: u64,
) -> (StateKind, String, Option<JobNow>) {
    if preferences.mode == Mode::Off {
        return (StateKind::Off, "Sharing is off".into(), None);
    }
    if pools.is_empty() {
        return (
            StateKind::Waiting,
            "Join a pool to start sharing".into(),
            None,
        );
    }
    if let Some((pool, job, pace)) = pools.iter().find_map(working) {
        let verb = match pace {
            Pace::Full => "Working",
            Pace::Gentle => "Working gently",
        };
        let reason = format!("{verb}: {job} for pool {}", pool.name);
        let job_now = JobNow {
            pool_id: pool.id.to_owned(),
            pool_name: pool.name.to_owned(),
            job: job.to_owned(),
            progress: pool.status.progress.map_or(0.0, |p| p.fraction()),
            gpu_ms: now_ms.saturating_sub(pool.status.since_ms),
            pace,
        };
        return (StateKind::Working, reason, Some(job_now));
    }
    if let Some(reason) = all_paused(pools) {
        return (StateKind::Paused, reason.to_string(), None);
    }
    let first = |wanted: fn(&ProviderState) -> bool| pools.iter().find(|p| wanted(&p.status.state));
    if first(|s| matches!(s, ProviderState::Waiting)).is_some() {
        return (StateKind::Waiting, "Waiting for work".into(), None);
    }
    if let Some(pool) = first(|s| matches!(s, ProviderState::Connecting)) {
        return (
            StateKind::Connecting,
            format!("Connecting to pool {}", pool.name),
            None,
        );
    }
    let unreachable =
        pools
            .iter()
            .filter(|p| p.verdict.is_run())
            .find_map(|p| match &p.status.state {
                ProviderState::Unreachable { error } => Some((p.name, error)),
                _ => None,
            });
    if let Some((name, error)) = unreachable {
        return (
            StateKind::Error,
            format!("Cannot reach pool {name}: {error}"),
            None,
        );
    }
    // A provider still paused under a verdict that just turned to Run: it is about to ask for work.
    (StateKind::Waiting, "Starting".into(), None)
}

fn working<'a>(pool: &'a PoolActivity<'a>) -> Option<(&'a PoolActivity<'a>, &'a str, Pace)> {
    match &pool.status.state {
        ProviderState::Working { job, pace, .. } => Some((pool, job.as_str(), *pace)),
        _ => None,
    }
}

/// The reason every pool is paused for, if every one is: the first pool's that follows the person's
/// idleness (its reason is the one they can act on).
fn all_paused<'a>(pools: &'a [PoolActivity<'a>]) -> Option<&'a Reason> {
    if pools.iter().any(|p| p.verdict.is_run()) {
        return None;
    }
    pools.iter().find_map(|p| p.verdict.reason())
}

/// What "why am I not earning?" reads from the pools. `last_check_failed`: the newest check a pool
/// judged failed.
fn earning_facts<'a>(
    preferences: &Preferences,
    pools: &'a [PoolActivity<'a>],
    last_check_failed: bool,
) -> EarningFacts<'a> {
    let any = |wanted: fn(&ProviderState) -> bool| pools.iter().any(|p| wanted(&p.status.state));
    EarningFacts {
        sharing: preferences.mode != Mode::Off,
        paused: all_paused(pools),
        joined: pools.len(),
        reachable: pools
            .iter()
            .filter(|p| !matches!(p.status.state, ProviderState::Unreachable { .. }))
            .count(),
        no_work: any(|s| matches!(s, ProviderState::Waiting))
            && !any(|s| matches!(s, ProviderState::Working { .. })),
        last_check_failed,
    }
}

/// The next status: `since_ms` stays while the state and its sentence stay the same.
pub fn next_status(
    previous: Option<&Status>,
    preferences: &Preferences,
    pools: &[PoolActivity<'_>],
    money: Money,
    last_check_failed: bool,
    now_ms: u64,
) -> Status {
    let paths: Vec<&PoolPath> = pools.iter().map(|p| p.path).collect();
    let not_earning = why_not_earning(&earning_facts(preferences, pools, last_check_failed));
    let (kind, reason, job) = describe(preferences, pools, now_ms);
    let since_ms = previous
        .filter(|p| p.kind == kind && p.reason == reason)
        .map_or(now_ms, |p| p.since_ms);
    Status {
        kind,
        reason,
        since_ms,
        sharing: preferences.mode != Mode::Off,
        snoozed_until_ms: preferences.snoozed_until_ms.filter(|&t| t > now_ms),
        job,
        rate_per_hour: money.rate_per_hour,
        today: money.today,
        balance: money.balance,
        network: network_line(&paths),
        not_earning,
    }
}

/// The status before the providers have said anything.
pub fn starting(preferences: &Preferences, now_ms: u64) -> Status {
    Status {
        kind: StateKind::Connecting,
        reason: "Starting".into(),
        since_ms: now_ms,
        sharing: preferences.mode != Mode::Off,
        snoozed_until_ms: preferences.snoozed_until_ms.filter(|&t| t > now_ms),
        job: None,
        rate_per_hour: Amount::ZERO,
        today: Amount::ZERO,
        balance: Amount::ZERO,
        network: None,
        not_earning: None,
    }
}

/// The verdict for a pool that works as in mode Always: the demo pool, which must show earnings while
/// the person is at the computer. Only what also stops Always stops it: a GPU switched off, sharing
/// off, a snooze, a hot GPU (the rules `decide` checks before Always).
pub fn always_verdict(verdict: &Verdict) -> Verdict {
    match verdict.reason() {
        Some(
            Reason::GpuNotShared { .. }
            | Reason::Off
            | Reason::Snoozed { .. }
            | Reason::GpuHot { .. },
        ) => verdict.clone(),
        _ => Verdict::RUN,
    }
}

/// Seconds until sharing starts, when `current` newly says it will start within the lead time: once
/// each time the person walks away, not every second of the countdown.
pub fn about_to_start(previous: &Verdict, current: &Verdict) -> Option<u64> {
    let soon = |v: &Verdict| match v.reason() {
        Some(Reason::UserActive { resumes_in_s }) => (1..=ABOUT_TO_START_LEAD_S)
            .contains(resumes_in_s)
            .then_some(*resumes_in_s),
        _ => None,
    };
    match (soon(previous), soon(current)) {
        (None, Some(seconds)) => Some(seconds),
        _ => None,
    }
}

/// The tray menu's first line: the sentence, the rate while working, and how the pools are reached
/// when one is not direct ("Working: matmul for pool Home, 0.42/h · 1 of 3 pools relayed").
pub fn tray_line(status: &Status) -> String {
    let line = match status.kind {
        StateKind::Working => format!("{}, {}/h", status.reason, status.rate_per_hour),
        _ => status.reason.clone(),
    };
    match &status.network {
        Some(network) => format!("{line} · {network}"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(state: ProviderState) -> ProviderStatus {
        status(state)
    }

    fn status(state: ProviderState) -> ProviderStatus {
        ProviderStatus {
            since_ms: 1_000,
            ..ProviderStatus::new(state)
        }
    }

    fn paused_active() -> Verdict {
        Verdict::Pause {
            reason: Reason::UserActive { resumes_in_s: 100 },
        }
    }

    const DIRECT: PoolPath = PoolPath::Direct { rtt_ms: 2 };

    fn activity<'a>(name: &'a str, s: &'a ProviderStatus, v: &'a Verdict) -> PoolActivity<'a> {
        PoolActivity {
            id: name,
            name,
            status: s,
            verdict: v,
            path: &DIRECT,
        }
    }

    #[test]
    fn off_and_no_pools_come_first() {
        let off = Preferences {
            mode: Mode::Off,
            ..Preferences::default()
        };
        assert_eq!(describe(&off, &[], 0).0, StateKind::Off);
        let (kind, reason, _) = describe(&Preferences::default(), &[], 0);
        assert_eq!(
            (kind, reason.as_str()),
            (StateKind::Waiting, "Join a pool to start sharing")
        );
    }

    #[test]
    fn working_anywhere_wins_and_names_job_and_pool() {
        let mut working = status(ProviderState::Working {
            job: "matmul".into(),
            lease: 1,
            pace: Pace::Full,
        });
        working.progress = Some(crate::provider::Progress {
            passes_done: 16,
            passes: 64,
        });
        let paused = status(ProviderState::Paused {
            reason: Reason::UserActive { resumes_in_s: 9 },
            gpu_released: false,
        });
        let (run, pause) = (Verdict::RUN, paused_active());
        let pools = [
            activity("Home", &paused, &pause),
            activity("Local pool", &working, &run),
        ];
        let (kind, reason, job) = describe(&Preferences::default(), &pools, 4_000);
        assert_eq!(kind, StateKind::Working);
        assert_eq!(reason, "Working: matmul for pool Local pool");
        let job = job.unwrap();
        assert_eq!((job.gpu_ms, job.pool_name.as_str()), (3_000, "Local pool"));
        assert_eq!(job.progress, 0.25);
    }

    /// An embedding job is shown like any job: named for its texts and model, for its pool, with the
    /// progress a real run reports (after each submission, as the provider publishes it to the window).
    #[test]
    fn an_embedding_job_shows_its_texts_model_pool_and_progress_from_its_run() {
        use crate::gpu::{AdapterChoice, Change, Executor, RunControl};
        use std::sync::{Arc, Mutex};
        let job = crate::embed::sample_embedding_job(8, 1);
        let passes = u32::try_from(job.passes.len()).unwrap();
        let control = RunControl::default();
        let reported = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reported);
        control.listen(move |change| {
            if let Change::Progress { passes_done } = change {
                sink.lock().unwrap().push(passes_done);
            }
        });
        let mut executor = Executor::new(&AdapterChoice::default()).unwrap();
        let before = executor.stats().submissions;
        executor.run_with(&job, &control).unwrap();
        let submissions = executor.stats().submissions - before;
        let reported = reported.lock().unwrap().clone();
        // One report a submission (a pass each, or a group of passes under a GPU watchdog), rising
        // to the last pass.
        assert!(
            reported.windows(2).all(|w| w[0] < w[1]) && reported.last() == Some(&passes),
            "{reported:?} of {passes} passes"
        );
        assert_eq!(u64::try_from(reported.len()).unwrap(), submissions);

        let run = Verdict::RUN;
        for passes_done in [reported[0], passes / 2, passes] {
            let mut working = status(ProviderState::Working {
                job: job.name.clone(),
                lease: 1,
                pace: Pace::Full,
            });
            working.progress = Some(crate::provider::Progress {
                passes_done,
                passes,
            });
            let pools = [activity("Home", &working, &run)];
            let (kind, reason, now) = describe(&Preferences::default(), &pools, 2_000);
            assert_eq!(kind, StateKind::Working);
            assert_eq!(
                reason,
                "Working: Embedding 8 texts (tiny-bert) for pool Home"
            );
            let now = now.unwrap();
            assert_eq!(now.job, "Embedding 8 texts (tiny-bert)");
            assert_eq!(now.pool_name, "Home");
            assert_eq!(now.progress, f64::from(passes_done) / f64::from(passes));
        }
    }

    #[test]
    fn paused_only_when_every_pool_is() {
        let waiting = status(ProviderState::Waiting);
        let (run, pause) = (Verdict::RUN, paused_active());
        let one = [
            activity("a", &waiting, &pause),
            activity("b", &waiting, &run),
        ];
        assert_eq!(
            describe(&Preferences::default(), &one, 0).0,
            StateKind::Waiting
        );
        let all = [activity("a", &waiting, &pause)];
        let (kind, reason, _) = describe(&Preferences::default(), &all, 0);
        assert_eq!(kind, StateKind::Paused);
        assert_eq!(reason, "Paused: you are using the computer");
    }

    #[test]
    fn connecting_then_unreachable() {
        let run = Verdict::RUN;
        let connecting = status(ProviderState::Connecting);
        let lost = status(ProviderState::Unreachable {
            error: "timed out".into(),
        });
        let pools = [activity("a", &lost, &run), activity("b", &connecting, &run)];
        assert_eq!(
            describe(&Preferences::default(), &pools, 0).1,
            "Connecting to pool b"
        );
        let pools = [activity("a", &lost, &run)];
        let (kind, reason, _) = describe(&Preferences::default(), &pools, 0);
        assert_eq!(
            (kind, reason.as_str()),
            (StateKind::Error, "Cannot reach pool a: timed out")
        );
    }

    #[test]
    fn since_stays_while_the_sentence_stays() {
        let waiting = status(ProviderState::Waiting);
        let run = Verdict::RUN;
        let pools = [activity("a", &waiting, &run)];
        let prefs = Preferences::default();
        let first = next_status(None, &prefs, &pools, Money::default(), false, 10);
        let money = Money {
            rate_per_hour: Amount::from_micros(5),
            ..Money::default()
        };
        let second = next_status(Some(&first), &prefs, &pools, money, false, 20);
        assert_eq!(second.since_ms, 10);
        assert_eq!(second.rate_per_hour, Amount::from_micros(5));
        let off = Preferences {
            mode: Mode::Off,
            snoozed_until_ms: Some(5),
            ..prefs
        };
        let third = next_status(Some(&second), &off, &pools, money, false, 30);
        assert_eq!((third.since_ms, third.sharing), (30, false));
        assert_eq!(third.snoozed_until_ms, None);
    }

    #[test]
    fn the_demo_pool_runs_unless_always_would_stop() {
        assert_eq!(always_verdict(&paused_active()), Verdict::RUN);
        let battery = Verdict::Pause {
            reason: Reason::OnBattery,
        };
        assert_eq!(always_verdict(&battery), Verdict::RUN);
        for reason in [
            Reason::Off,
            Reason::GpuHot {
                celsius: 90.0,
                limit: 85.0,
            },
            Reason::Snoozed {
                until_ms: 1,
                until: "14:30".into(),
            },
        ] {
            let verdict = Verdict::Pause { reason };
            assert_eq!(always_verdict(&verdict), verdict);
        }
    }

    #[test]
    fn about_to_start_fires_once_per_countdown() {
        let left = |s| Verdict::Pause {
            reason: Reason::UserActive { resumes_in_s: s },
        };
        assert_eq!(about_to_start(&left(31), &left(30)), Some(30));
        assert_eq!(about_to_start(&left(30), &left(29)), None);
        assert_eq!(about_to_start(&Verdict::RUN, &left(10)), Some(10));
        assert_eq!(about_to_start(&left(29), &Verdict::RUN), None);
        assert_eq!(about_to_start(&left(100), &left(90)), None);
    }

    #[test]
    fn tray_line_adds_the_rate_while_working() {
        let waiting = status(ProviderState::Working {
            job: "matmul".into(),
            lease: 1,
            pace: Pace::Full,
        });
        let run = Verdict::RUN;
        let pools = [activity("Home", &waiting, &run)];
        let money = Money {
            rate_per_hour: Amount::from_micros(420_000),
            ..Money::default()
        };
        let status = next_status(None, &Preferences::default(), &pools, money, false, 0);
        assert_eq!(tray_line(&status), "Working: matmul for pool Home, 0.42/h");
        let relayed = PoolPath::Relayed {
            rtt_ms: 40,
            why: crate::provider::NO_DIRECT_PATH.into(),
        };
        let idle = status_of(ProviderState::Waiting);
        let pools = [
            activity("Home", &waiting, &run),
            PoolActivity {
                path: &relayed,
                ..activity("Lab", &idle, &run)
            },
        ];
        let status = next_status(None, &Preferences::default(), &pools, money, false, 0);
        assert_eq!(
            tray_line(&status),
            "Working: matmul for pool Home, 0.42/h · 1 of 2 pools relayed"
        );
    }
}
