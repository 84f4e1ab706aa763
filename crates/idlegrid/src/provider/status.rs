//! What the provider is doing, as a person reads it: one state with its reason, and when it began.
//! Published on a `watch` for the app and logged at each change.

use std::fmt;

use serde::Serialize;

use crate::idle::{Pace, Reason};
use crate::statement::now_ms;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProviderState {
    Connecting,
    /// Connected and allowed to work; the pool has nothing now.
    Waiting,
    Working {
        job: String,
        lease: u64,
        pace: Pace,
    },
    /// Not working, and not asking for work, for this reason. `gpu_released`: the device and its
    /// memory have gone back to the system (after a while paused).
    Paused {
        reason: Reason,
        gpu_released: bool,
    },
    /// The pool cannot be reached; the provider retries with backoff.
    Unreachable {
        error: String,
    },
}

impl fmt::Display for ProviderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderState::Connecting => write!(f, "Connecting to the pool"),
            ProviderState::Waiting => write!(f, "Waiting for work"),
            ProviderState::Working {
                job,
                pace: Pace::Full,
                ..
            } => write!(f, "Working: {job}"),
            ProviderState::Working {
                job,
                pace: Pace::Gentle,
                ..
            } => write!(f, "Working gently: {job}"),
            ProviderState::Paused { reason, .. } => reason.fmt(f),
            ProviderState::Unreachable { error } => write!(f, "Cannot reach the pool: {error}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderStatus {
    #[serde(flatten)]
    pub state: ProviderState,
    /// Unix ms when this state began.
    pub since_ms: u64,
    /// While working: how far the job has got. Kept apart from the state, which it would otherwise
    /// change (and log) at every pass.
    pub progress: Option<Progress>,
}

/// Passes of the job in hand finished, of all its passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub passes_done: u32,
    pub passes: u32,
}

impl Progress {
    /// 0 to 1.
    pub fn fraction(self) -> f64 {
        if self.passes == 0 {
            return 0.0;
        }
        f64::from(self.passes_done.min(self.passes)) / f64::from(self.passes)
    }
}

impl ProviderStatus {
    pub fn new(state: ProviderState) -> ProviderStatus {
        ProviderStatus {
            state,
            since_ms: now_ms(),
            progress: None,
        }
    }
}

/// Publishes a state when it says something new, and logs the change.
pub(super) fn publish(status: &tokio::sync::watch::Sender<ProviderStatus>, state: ProviderState) {
    status.send_if_modified(|current| {
        if says_the_same(&current.state, &state) {
            return false;
        }
        tracing::info!(state = %state, "provider state changed");
        *current = ProviderStatus::new(state);
        true
    });
}

/// Whether `next` would tell anyone anything `current` does not. A pause whose sentence is unchanged is
/// the same pause: while the person is at the keyboard the verdict's countdown to sharing moves every
/// second, which would otherwise restart the state's "since", wake every subscriber and log a line a
/// second all day.
fn says_the_same(current: &ProviderState, next: &ProviderState) -> bool {
    match (current, next) {
        (
            ProviderState::Paused {
                reason: a,
                gpu_released: released_a,
            },
            ProviderState::Paused {
                reason: b,
                gpu_released: released_b,
            },
        ) => released_a == released_b && a.to_string() == b.to_string(),
        _ => current == next,
    }
}

/// Publishes the progress of the job in hand, quietly.
pub(super) fn publish_progress(
    status: &tokio::sync::watch::Sender<ProviderStatus>,
    progress: Progress,
) {
    status.send_if_modified(|current| {
        let changed = current.progress != Some(progress);
        current.progress = Some(progress);
        changed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn away_in(resumes_in_s: u64) -> ProviderState {
        ProviderState::Paused {
            reason: Reason::UserActive { resumes_in_s },
            gpu_released: false,
        }
    }

    #[test]
    fn a_countdown_tick_is_not_news_but_a_new_sentence_or_a_released_gpu_is() {
        let (status, mut seen) = tokio::sync::watch::channel(ProviderStatus::new(away_in(180)));
        seen.borrow_and_update();
        let since = status.borrow().since_ms;
        publish(&status, away_in(179));
        assert!(!seen.has_changed().unwrap());
        assert_eq!(status.borrow().since_ms, since);

        publish(
            &status,
            ProviderState::Paused {
                reason: Reason::UserActive { resumes_in_s: 178 },
                gpu_released: true,
            },
        );
        assert!(seen.has_changed().unwrap());
        seen.borrow_and_update();
        publish(&status, ProviderState::Waiting);
        assert!(seen.has_changed().unwrap());
        assert_eq!(status.borrow().state, ProviderState::Waiting);
    }
}
