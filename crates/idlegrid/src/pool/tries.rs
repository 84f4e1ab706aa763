//! What a job's failed tries mean: when the pool gives a job up, and what its submitter is told
//! while it waits. Pure functions over the tries so far, tested as tables. The rules:
//!
//! - A failure that is the job's own fault (malformed, bad WGSL, over the pool's limits, a binding
//!   mismatch: it can never run anywhere) fails the job at once, with the provider's reason.
//! - A deadline miss is nobody's fault, since a faster GPU may finish the job. The job fails as "too
//!   slow for this pool" once it has missed its deadline on [`TOO_SLOW_PROVIDERS`] (3) distinct
//!   providers, or on every provider the pool has seen in the last [`RECENT`] (10 minutes) if there
//!   are fewer.
//! - A failure of the provider's machine (device lost, out of memory there, its worker crashed), or a
//!   lease that lapsed without a word, sends the job to another provider; once `max_failures` (3)
//!   distinct providers have failed it so, it fails with the last reason.
//! - A job that gets no new try within the pool's give-up time (`idlegrid pool --give-up-secs`, 600 s
//!   by default) fails with the reason it was waiting: it never hangs silently.
//!
//! A provider never gets the same job twice, so every count here counts distinct providers.

use std::collections::HashSet;
use std::time::Duration;

use iroh::PublicKey;

use super::store::FailedTry;
use crate::job::Fault;
use crate::protocol::Blocker;

/// Deadline misses on this many distinct providers make a job too slow for the pool.
pub const TOO_SLOW_PROVIDERS: usize = 3;
/// How far back "every provider the pool has seen" looks.
pub const RECENT: Duration = Duration::from_secs(10 * 60);
/// A provider seen this recently counts as connected, for the submitter's "(2 connected)".
pub const CONNECTED: Duration = Duration::from_secs(60);

/// Why the job must fail now, or `None` while it may still succeed elsewhere.
pub fn give_up(tries: &[FailedTry], recent: &[PublicKey], max_failures: u32) -> Option<String> {
    if let Some(own) = tries.iter().rev().find(|t| t.fault == Some(Fault::Job)) {
        return Some(format!("the job cannot run: {}", own.reason));
    }
    let missed = providers(tries, |fault| fault == Some(Fault::Deadline));
    let everyone_missed = recent.iter().all(|p| missed.contains(p));
    if !missed.is_empty() && (missed.len() >= TOO_SLOW_PROVIDERS || everyone_missed) {
        return Some(format!(
            "too slow for this pool: it ran past its deadline on {} ({})",
            providers_text(missed.len()),
            last_reason(tries, |fault| fault == Some(Fault::Deadline))
        ));
    }
    let broken = providers(tries, |fault| matches!(fault, Some(Fault::Machine) | None));
    if !broken.is_empty() && broken.len() >= max_failures as usize {
        return Some(format!(
            "it failed on {}; the last said: {}",
            providers_text(broken.len()),
            last_reason(tries, |fault| matches!(fault, Some(Fault::Machine) | None))
        ));
    }
    None
}

/// What a queued job is waiting for, as its submitter sees it.
#[derive(Clone, Copy, Debug)]
pub struct Waiting<'a> {
    pub tries: &'a [FailedTry],
    /// Providers holding a lease on it now.
    pub running: u32,
    /// Distinct providers that took it so far (running, done or failed).
    pub takers: usize,
    /// Providers seen within [`CONNECTED`].
    pub connected: usize,
}

/// One line on why a job has no result yet, or `None` when nothing is amiss (it is running and
/// nothing failed).
pub fn waiting_note(waiting: &Waiting) -> Option<String> {
    let mut parts = Vec::new();
    let failed = providers(waiting.tries, |_| true);
    if !failed.is_empty() {
        parts.push(format!(
            "failed on {} ({})",
            providers_text(failed.len()),
            last_reason(waiting.tries, |_| true)
        ));
    }
    if waiting.running == 0 {
        let who = match waiting.takers {
            0 => "a provider",
            1 => "a second provider",
            2 => "a third provider",
            _ => "another provider",
        };
        let connected = match waiting.connected {
            0 => "none connected".to_owned(),
            n => format!("{n} connected"),
        };
        parts.push(format!("waiting for {who} ({connected})"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What blocks the job, as a reason a program can act on: the same facts as the note's "(none
/// connected)", so the two never disagree.
pub fn blocker(waiting: &Waiting) -> Option<Blocker> {
    (waiting.running == 0 && waiting.connected == 0).then_some(Blocker::NoProviderConnected)
}

/// Why a job that got no new try for `after` is given up.
pub fn stalled(after: Duration, note: Option<&str>) -> String {
    let waited = format!("no provider took it for {} s", after.as_secs());
    match note {
        Some(note) => format!("{waited}: {note}"),
        None => waited,
    }
}

fn providers(tries: &[FailedTry], kind: impl Fn(Option<Fault>) -> bool) -> HashSet<&PublicKey> {
    tries
        .iter()
        .filter(|t| kind(t.fault))
        .map(|t| &t.provider)
        .collect()
}

fn last_reason(tries: &[FailedTry], kind: impl Fn(Option<Fault>) -> bool) -> String {
    match tries.iter().rev().find(|t| kind(t.fault)) {
        Some(t) if t.fault.is_none() => "its lease lapsed without a word".to_owned(),
        Some(t) => t.reason.clone(),
        None => String::new(),
    }
}

fn providers_text(n: usize) -> String {
    format!("{n} provider{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    fn tried(provider: u8, fault: Option<Fault>, reason: &str) -> FailedTry {
        FailedTry {
            provider: key(provider),
            fault,
            reason: reason.into(),
        }
    }

    const DEADLINE: &str = "the job ran past its deadline of 60 s";

    #[test]
    fn the_jobs_own_fault_fails_it_at_once() {
        let tries = [tried(
            1,
            Some(Fault::Job),
            "job.wgsl:3:5: invalid WGSL: no `x`",
        )];
        assert_eq!(
            give_up(&tries, &[key(1), key(2), key(3)], 3).as_deref(),
            Some("the job cannot run: job.wgsl:3:5: invalid WGSL: no `x`")
        );
    }

    #[test]
    fn deadline_misses_fail_it_on_three_providers_or_on_everyone_seen() {
        let many: Vec<PublicKey> = (1..=5).map(key).collect();
        let miss = |p| tried(p, Some(Fault::Deadline), DEADLINE);
        // (tries, providers seen recently, gives up)
        let table: Vec<(Vec<FailedTry>, &[PublicKey], bool)> = vec![
            (vec![miss(1)], &many, false),
            (vec![miss(1), miss(2)], &many, false),
            (vec![miss(1), miss(2), miss(3)], &many, true),
            // Fewer providers than three: every one of them missed.
            (vec![miss(1)], &many[..1], true),
            (vec![miss(1), miss(2)], &many[..2], true),
            (vec![miss(1)], &many[..2], false),
        ];
        for (tries, recent, gives_up) in table {
            let verdict = give_up(&tries, recent, 3);
            assert_eq!(
                verdict.is_some(),
                gives_up,
                "{tries:?} with {} seen",
                recent.len()
            );
            if let Some(reason) = verdict {
                assert!(reason.starts_with("too slow for this pool"), "{reason}");
                assert!(reason.contains(DEADLINE), "{reason}");
            }
        }
    }

    #[test]
    fn machine_faults_and_lapses_fail_it_after_max_failures_providers() {
        let recent: Vec<PublicKey> = (1..=5).map(key).collect();
        let crash = |p| {
            tried(
                p,
                Some(Fault::Machine),
                "the GPU worker process stopped: killed",
            )
        };
        let lapse = |p| tried(p, None, "");
        assert_eq!(give_up(&[crash(1), lapse(2)], &recent, 3), None);
        assert_eq!(
            give_up(&[crash(1), lapse(2), crash(3)], &recent, 3).as_deref(),
            Some("it failed on 3 providers; the last said: the GPU worker process stopped: killed")
        );
        assert_eq!(
            give_up(&[crash(1), lapse(2)], &recent, 2).as_deref(),
            Some("it failed on 2 providers; the last said: its lease lapsed without a word")
        );
        // One provider failing twice is still one provider.
        assert_eq!(give_up(&[crash(1), crash(1)], &recent, 2), None);
        // A deadline miss alone on one of many providers is not a machine failure.
        assert_eq!(
            give_up(&[tried(1, Some(Fault::Deadline), DEADLINE)], &recent, 1),
            None
        );
    }

    #[test]
    fn the_submitter_is_told_what_failed_and_what_it_waits_for() {
        let miss = [tried(1, Some(Fault::Deadline), DEADLINE)];
        let table: Vec<(Waiting, Option<&str>)> = vec![
            (
                Waiting {
                    tries: &[],
                    running: 0,
                    takers: 0,
                    connected: 0,
                },
                Some("waiting for a provider (none connected)"),
            ),
            (
                Waiting {
                    tries: &[],
                    running: 1,
                    takers: 1,
                    connected: 1,
                },
                None,
            ),
            (
                Waiting {
                    tries: &miss,
                    running: 0,
                    takers: 1,
                    connected: 1,
                },
                Some(
                    "failed on 1 provider (the job ran past its deadline of 60 s); \
                     waiting for a second provider (1 connected)",
                ),
            ),
            (
                Waiting {
                    tries: &miss,
                    running: 1,
                    takers: 2,
                    connected: 2,
                },
                Some("failed on 1 provider (the job ran past its deadline of 60 s)"),
            ),
            (
                Waiting {
                    tries: &[],
                    running: 0,
                    takers: 3,
                    connected: 4,
                },
                Some("waiting for another provider (4 connected)"),
            ),
        ];
        for (waiting, note) in table {
            assert_eq!(waiting_note(&waiting).as_deref(), note);
        }
    }

    #[test]
    fn only_a_job_nothing_runs_with_nobody_connected_is_blocked() {
        let miss = [tried(1, Some(Fault::Deadline), DEADLINE)];
        let waiting = |tries, running, connected| Waiting {
            tries,
            running,
            takers: tries.len(),
            connected,
        };
        // (waiting, blocker)
        let table = [
            (waiting(&[], 0, 0), Some(Blocker::NoProviderConnected)),
            (waiting(&miss, 0, 0), Some(Blocker::NoProviderConnected)),
            (waiting(&[], 0, 1), None),
            // Its provider may be busy with it for longer than `CONNECTED` without asking again.
            (waiting(&[], 1, 0), None),
            (waiting(&miss, 1, 2), None),
        ];
        for (waiting, expected) in table {
            assert_eq!(blocker(&waiting), expected, "{waiting:?}");
            if expected.is_some() {
                let note = waiting_note(&waiting).unwrap();
                assert!(note.contains("(none connected)"), "{note}");
            }
        }
    }

    #[test]
    fn a_stalled_job_says_how_long_and_why() {
        assert_eq!(
            stalled(
                Duration::from_secs(600),
                Some("waiting for a second provider (1 connected)")
            ),
            "no provider took it for 600 s: waiting for a second provider (1 connected)"
        );
        assert_eq!(
            stalled(Duration::from_secs(5), None),
            "no provider took it for 5 s"
        );
    }
}
