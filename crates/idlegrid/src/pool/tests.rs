//! The pool's leasing, judging and settling decisions, driven through its API on a real SQLite file
//! and without a network: providers here are keys that ask and answer as the service would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::client::own_submitter_key;
use crate::job::Fault;
use crate::protocol::{Capabilities, Delivery, LeaseOffer, WorkReply};

struct Setup {
    _dir: tempfile::TempDir,
    pool: Pool,
    submitter: PublicKey,
}

fn setup(config: PoolConfig) -> Setup {
    setup_with_rail(config, Box::new(StatementRail))
}

fn setup_with_rail(config: PoolConfig, rail: Box<dyn SettlementRail>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_bytes(&[1; 32]);
    let submitter = own_submitter_key(&key).public();
    let pool = Pool::open_with_rail(dir.path(), key, config, rail).unwrap();
    Setup {
        _dir: dir,
        pool,
        submitter,
    }
}

/// One replica a job, no canaries: each test turns on what it looks at.
fn config() -> PoolConfig {
    PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            trusted_at: 10,
        },
        canary_rate: 0.0,
        ..PoolConfig::default()
    }
}

fn provider(n: u8) -> PublicKey {
    SecretKey::from_bytes(&[n + 100; 32]).public()
}

/// A provider's GPU as the pool tests describe it (the embedding tests ask with it too).
pub(crate) fn gpu() -> Capabilities {
    Capabilities {
        adapter: "test".into(),
        device_type: "cpu".into(),
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 1 << 27,
        max_workgroups_per_dimension: 65_535,
        gflops: 1.0,
    }
}

/// A small job of known answer (the canary's shader), submitted as ordinary work.
fn submit(setup: &Setup, seed: u32, replicas: u32) -> (Id, Vec<u8>) {
    let (mut job, answer) = canary::canary(seed);
    job.name = format!("job-{seed}");
    job.verify.replicas = replicas;
    let (id, missing) = setup
        .pool
        .offer_job(&setup.submitter, &job, u64::from(seed))
        .unwrap();
    assert_eq!(missing, Some(Vec::new()));
    setup.pool.enqueue(&setup.submitter, id, &job).unwrap();
    (id, answer)
}

fn ask(pool: &Pool, who: &PublicKey, slots: u32) -> (Vec<LeaseOffer>, Vec<Delivery>) {
    match pool.ask(who, &gpu(), slots, &[], None).unwrap() {
        WorkReply::Work {
            leases, deliveries, ..
        } => (leases, deliveries),
        other => panic!("not work: {other:?}"),
    }
}

fn answer(pool: &Pool, who: &PublicKey, offer: &LeaseOffer, data: Vec<u8>) {
    pool.submit_result(who, offer.lease, vec![("data".into(), data)], 10)
        .unwrap();
}

/// The right answer to whatever job `offer` is: a canary's or a submitted one's.
fn right_answer(offer: &LeaseOffer) -> Vec<u8> {
    let seed = match &offer.manifest.buffers[1].init {
        crate::job::BufferInit::Bytes(params) => {
            u32::from_le_bytes(params[..4].try_into().unwrap())
        }
        other => panic!("params are {other:?}"),
    };
    canary::canary(seed).1
}

fn receipts_for(pool: &Pool, who: &PublicKey) -> usize {
    pool.receipts()
        .unwrap()
        .iter()
        .filter(|r| r.body.provider == *who)
        .count()
}

#[test]
fn a_job_is_leased_once_per_provider_and_only_where_it_fits() {
    let s = setup(PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 2,
            trusted_at: 10,
        },
        ..config()
    });
    let (job, _) = submit(&s, 1, 1);
    let small = Capabilities {
        max_storage_buffer_binding_size: 1024,
        ..gpu()
    };
    let reply = s.pool.ask(&provider(1), &small, 1, &[], None).unwrap();
    assert!(matches!(reply, WorkReply::Work { ref leases, .. } if leases.is_empty()));

    let (first, _) = ask(&s.pool, &provider(1), 4);
    assert_eq!(first.iter().map(|l| l.job).collect::<Vec<_>>(), vec![job]);
    // Two replicas for untrusted providers: a second provider gets it, the first never again.
    assert!(ask(&s.pool, &provider(1), 4).0.is_empty());
    assert_eq!(ask(&s.pool, &provider(2), 4).0.len(), 1);
    assert!(ask(&s.pool, &provider(3), 4).0.is_empty());
}

#[test]
fn no_canary_for_an_ask_without_paid_work_and_one_per_paid_lease_hit() {
    let s = setup(PoolConfig {
        canary_rate: 1.0,
        ..config()
    });
    let idle = provider(1);
    for _ in 0..50 {
        assert!(
            ask(&s.pool, &idle, 1).0.is_empty(),
            "unpaid work on an empty pool"
        );
    }
    let (job, _) = submit(&s, 2, 1);
    let (paid, _) = ask(&s.pool, &idle, 1);
    assert_eq!(paid[0].job, job);
    // The canary drawn for that lease comes with the next free slot, looking like any lease.
    let (next, _) = ask(&s.pool, &idle, 1);
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].job, job);
    // One drawn, one leased: nothing more without more paid work.
    assert!(ask(&s.pool, &idle, 1).0.is_empty());
    assert_eq!(s.pool.submitted_jobs().unwrap(), 1);
}

#[test]
fn a_checked_provider_learns_of_the_check_only_once_it_is_judged() {
    let s = setup(PoolConfig {
        canary_rate: 1.0,
        ..config()
    });
    let me = provider(1);
    submit(&s, 3, 1);
    let (paid, _) = ask(&s.pool, &me, 1);
    answer(&s.pool, &me, &paid[0], right_answer(&paid[0]));
    let (check, deliveries) = ask(&s.pool, &me, 1);
    assert!(deliveries.iter().all(|d| matches!(d, Delivery::Receipt(_))));
    answer(&s.pool, &me, &check[0], right_answer(&check[0]));
    let (_, deliveries) = ask(&s.pool, &me, 1);
    let checks: Vec<_> = deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Check(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].body.passed);
    assert_eq!(checks[0].body.job, check[0].job);
    checks[0].verify(&s.pool.public_key()).unwrap();
    // Paid for the real job only.
    assert_eq!(receipts_for(&s.pool, &me), 1);
    assert_eq!(s.pool.reputation(&me).unwrap(), 2);
}

#[test]
fn a_wrong_canary_answer_is_a_strike_and_a_failed_check() {
    let s = setup(PoolConfig {
        canary_rate: 1.0,
        ..config()
    });
    let liar = provider(1);
    submit(&s, 4, 1);
    let (paid, _) = ask(&s.pool, &liar, 1);
    answer(&s.pool, &liar, &paid[0], right_answer(&paid[0]));
    let (check, _) = ask(&s.pool, &liar, 1);
    answer(&s.pool, &liar, &check[0], vec![0; 16_384]);
    let (_, deliveries) = ask(&s.pool, &liar, 1);
    assert!(
        deliveries
            .iter()
            .any(|d| matches!(d, Delivery::Check(c) if !c.body.passed))
    );
    assert!(s.pool.reputation(&liar).unwrap() < 0);
}

#[test]
fn replicas_that_agree_are_paid_and_one_that_disagrees_is_struck() {
    let s = setup(config());
    let (job, right) = submit(&s, 5, 2);
    let first = ask(&s.pool, &provider(1), 1).0.remove(0);
    let second = ask(&s.pool, &provider(2), 1).0.remove(0);
    // Two replicas out: nobody else gets one until they disagree.
    assert!(ask(&s.pool, &provider(3), 1).0.is_empty());
    answer(&s.pool, &provider(1), &first, right.clone());
    answer(&s.pool, &provider(2), &second, vec![7; right.len()]);
    assert_eq!(
        s.pool.progress(&job).unwrap().progress.state,
        JobState::Queued
    );
    let third = ask(&s.pool, &provider(3), 1).0.remove(0);
    answer(&s.pool, &provider(3), &third, right.clone());
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Verified);
    assert_eq!(report.outputs.unwrap()[0].1, right);
    assert_eq!(receipts_for(&s.pool, &provider(1)), 1);
    assert_eq!(receipts_for(&s.pool, &provider(2)), 0);
    assert_eq!(receipts_for(&s.pool, &provider(3)), 1);
    assert!(s.pool.reputation(&provider(2)).unwrap() < 0);
}

fn fail(pool: &Pool, who: &PublicKey, offer: &LeaseOffer, fault: Fault, reason: &str) {
    pool.lease_failed(who, offer.lease, fault, reason).unwrap();
}

#[test]
fn the_jobs_own_fault_fails_it_at_once_and_the_submitter_is_told_why() {
    let s = setup(config());
    let (job, _) = submit(&s, 6, 1);
    let (offer, _) = ask(&s.pool, &provider(1), 1);
    fail(
        &s.pool,
        &provider(1),
        &offer[0],
        Fault::Job,
        "job.wgsl:1:1: invalid WGSL",
    );
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Failed);
    assert_eq!(
        report.reason.as_deref(),
        Some("the job cannot run: job.wgsl:1:1: invalid WGSL")
    );
}

#[test]
fn a_machine_fault_sends_the_job_elsewhere_and_says_so_meanwhile() {
    let s = setup(config());
    let (job, right) = submit(&s, 7, 1);
    let (offer, _) = ask(&s.pool, &provider(1), 1);
    fail(
        &s.pool,
        &provider(1),
        &offer[0],
        Fault::Machine,
        "the GPU device was lost: reset",
    );
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Queued);
    assert_eq!(
        report.progress.note.as_deref(),
        Some(
            "failed on 1 provider (the GPU device was lost: reset); \
             waiting for a second provider (1 connected)"
        )
    );
    let (again, _) = ask(&s.pool, &provider(2), 1);
    answer(&s.pool, &provider(2), &again[0], right);
    assert_eq!(
        s.pool.progress(&job).unwrap().progress.state,
        JobState::Verified
    );
}

#[test]
fn a_deadline_miss_on_every_provider_seen_fails_the_job_as_too_slow() {
    let s = setup(config());
    let (job, _) = submit(&s, 8, 1);
    // Two providers are about; the first misses, the job waits for the second.
    ask(&s.pool, &provider(2), 0);
    let (offer, _) = ask(&s.pool, &provider(1), 1);
    let missed = "the job ran past its deadline of 60 s";
    fail(&s.pool, &provider(1), &offer[0], Fault::Deadline, missed);
    assert_eq!(
        s.pool.progress(&job).unwrap().progress.state,
        JobState::Queued
    );
    let (offer, _) = ask(&s.pool, &provider(2), 1);
    fail(&s.pool, &provider(2), &offer[0], Fault::Deadline, missed);
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Failed);
    assert_eq!(
        report.reason.as_deref(),
        Some(
            "too slow for this pool: it ran past its deadline on 2 providers \
             (the job ran past its deadline of 60 s)"
        )
    );
}

#[test]
fn a_cancelled_run_is_a_lease_given_back_not_a_failure() {
    let s = setup(config());
    let (job, _) = submit(&s, 9, 1);
    let (offer, _) = ask(&s.pool, &provider(1), 1);
    fail(
        &s.pool,
        &provider(1),
        &offer[0],
        Fault::Cancelled,
        "you came back",
    );
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Queued);
    assert_eq!(
        report.progress.note.as_deref(),
        Some("waiting for a provider (1 connected)")
    );
    // Given back, so the same provider may take it again.
    assert_eq!(ask(&s.pool, &provider(1), 1).0.len(), 1);
}

#[test]
fn a_job_nobody_takes_for_the_give_up_time_fails_with_what_it_waited_for() {
    let s = setup(PoolConfig {
        give_up_after: Duration::from_secs(1),
        ..config()
    });
    let (job, _) = submit(&s, 10, 1);
    assert_eq!(
        s.pool.progress(&job).unwrap().progress.state,
        JobState::Queued
    );
    std::thread::sleep(Duration::from_millis(1200));
    let report = s.pool.progress(&job).unwrap();
    assert_eq!(report.progress.state, JobState::Failed);
    assert_eq!(
        report.reason.as_deref(),
        Some("no provider took it for 1 s: waiting for a provider (none connected)")
    );
}

/// A rail that can be told to fail, and remembers what it paid.
#[derive(Clone, Default)]
struct TestRail {
    failing: Arc<AtomicBool>,
    paid: Arc<Mutex<Vec<Id>>>,
}

impl SettlementRail for TestRail {
    fn name(&self) -> &str {
        "test"
    }

    fn pay(&self, provider: &PublicKey, amount: Amount, payout: &Id) -> Result<String, RailError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(RailError {
                rail: "test".into(),
                amount,
                provider: provider.to_string(),
                message: "the bank is closed".into(),
            });
        }
        self.paid.lock().unwrap().push(*payout);
        Ok(format!("transfer {}", &payout.to_hex()[..8]))
    }
}

fn payouts(deliveries: &[Delivery]) -> Vec<&Signed<crate::statement::Payout>> {
    deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Payout(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn a_payout_the_rail_cannot_make_stays_due_and_is_paid_once_later() {
    let rail = TestRail::default();
    rail.failing.store(true, Ordering::SeqCst);
    let s = setup_with_rail(
        PoolConfig {
            payout_threshold: Amount::from_micros(200),
            default_reward: Amount::from_micros(100),
            ..config()
        },
        Box::new(rail.clone()),
    );
    let me = provider(1);
    for seed in [11, 12] {
        submit(&s, seed, 1);
        let (offer, _) = ask(&s.pool, &me, 1);
        answer(&s.pool, &me, &offer[0], right_answer(&offer[0]));
    }
    let (_, deliveries) = ask(&s.pool, &me, 1);
    assert!(
        payouts(&deliveries).is_empty(),
        "paid while the rail failed"
    );
    assert_eq!(deliveries.len(), 2, "the receipts still arrive");

    // The rail works again: the payout fixed earlier is paid with the next settling.
    rail.failing.store(false, Ordering::SeqCst);
    submit(&s, 13, 1);
    let (offer, _) = ask(&s.pool, &me, 1);
    answer(&s.pool, &me, &offer[0], right_answer(&offer[0]));
    let (_, deliveries) = ask(&s.pool, &me, 1);
    let paid = payouts(&deliveries);
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].body.amount, Amount::from_micros(200));
    assert_eq!(paid[0].body.receipts.len(), 2);
    assert_eq!(
        paid[0].body.reference,
        format!("transfer {}", &paid[0].id().to_hex()[..8])
    );
    assert_eq!(*rail.paid.lock().unwrap(), vec![paid[0].id()]);
}

#[test]
fn a_payout_due_when_the_pool_stopped_is_paid_when_it_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_bytes(&[1; 32]);
    let rail = TestRail::default();
    rail.failing.store(true, Ordering::SeqCst);
    let config = PoolConfig {
        payout_threshold: Amount::from_micros(100),
        default_reward: Amount::from_micros(100),
        ..config()
    };
    let me = provider(1);
    {
        let s = Setup {
            pool: Pool::open_with_rail(
                dir.path(),
                key.clone(),
                config.clone(),
                Box::new(rail.clone()),
            )
            .unwrap(),
            submitter: own_submitter_key(&key).public(),
            _dir: tempfile::tempdir().unwrap(),
        };
        submit(&s, 14, 1);
        let (offer, _) = ask(&s.pool, &me, 1);
        answer(&s.pool, &me, &offer[0], right_answer(&offer[0]));
        assert!(rail.paid.lock().unwrap().is_empty());
    }
    rail.failing.store(false, Ordering::SeqCst);
    let pool = Pool::open_with_rail(dir.path(), key, config, Box::new(rail.clone())).unwrap();
    assert_eq!(rail.paid.lock().unwrap().len(), 1);
    let (_, deliveries) = ask(&pool, &me, 1);
    assert_eq!(payouts(&deliveries).len(), 1);
    // Opening once more pays nothing twice.
    drop(pool);
    let _pool = Pool::open_with_rail(
        dir.path(),
        SecretKey::from_bytes(&[1; 32]),
        PoolConfig::default(),
        Box::new(rail.clone()),
    )
    .unwrap();
    assert_eq!(rail.paid.lock().unwrap().len(), 1);
}
