//! Test doubles and waits for the idle tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use idlegrid::idle::{SystemSample, SystemSignals, Verdict};
use idlegrid::provider::{ProviderState, ProviderStatus};
use tokio::sync::watch;

/// A machine whose readings the test sets.
pub struct ScriptedMachine(pub Arc<Mutex<SystemSample>>);

impl SystemSignals for ScriptedMachine {
    fn sample(&mut self, _exclusive: &[String]) -> SystemSample {
        self.0.lock().unwrap().clone()
    }
}

pub async fn verdict_becomes(
    verdicts: &mut watch::Receiver<Verdict>,
    wanted: impl Fn(&Verdict) -> bool,
) -> Verdict {
    tokio::time::timeout(Duration::from_secs(10), verdicts.wait_for(|v| wanted(v)))
        .await
        .expect("the verdict did not come")
        .unwrap()
        .clone()
}

pub async fn state_becomes(
    status: &mut watch::Receiver<ProviderStatus>,
    wanted: impl Fn(&ProviderState) -> bool,
) -> ProviderState {
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| wanted(&s.state)),
    )
    .await
    .expect("the provider never reached the state")
    .unwrap()
    .state
    .clone()
}

/// Whether the pool shows `job` back in the queue with no lease, within five seconds.
pub async fn lease_returned(pool: &idlegrid::pool::Pool, job: &idlegrid::statement::Id) -> bool {
    super::net::eventually(Duration::from_secs(5), || {
        let report = pool.progress(job).unwrap();
        report.progress.running == 0
            && report.progress.state == idlegrid::protocol::JobState::Queued
    })
    .await
}
