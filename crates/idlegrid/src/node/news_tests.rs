//! The providers' news reaches the window's events at once: the node is told, it does not poll.

use super::*;
use crate::amount::Amount;
use crate::ledger::{CheckEntry, ReceiptEntry, UnpaidWork};

async fn open_node(dir: &Path) -> Node {
    let mut options = NodeOptions::new(dir.to_owned());
    options.key_store = KeyStore::FileOnly;
    options.detect_input = false;
    Node::open(options).await.unwrap()
}

/// The next event that is not the pools' list (which follows every piece of news).
async fn next_news_event(events: &mut broadcast::Receiver<NodeEvent>) -> NodeEvent {
    loop {
        match events.recv().await.unwrap() {
            NodeEvent::Pools(_) => continue,
            event => return event,
        }
    }
}

// The clock is Tokio's paused one: it moves only when every task waits on a timer, so an event
// that waited for the node's tick (or any poll) would find it a tick later.
#[tokio::test(start_paused = true)]
async fn a_providers_news_is_an_event_before_any_tick() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node(dir.path()).await;
    let mut events = node.events();
    let told = tokio::time::Instant::now();
    let news = vec![
        LedgerNews::Receipt(ReceiptEntry {
            id: "r1".into(),
            pool: "pool-key".into(),
            job: "j1".into(),
            job_name: "matmul".into(),
            amount: Amount::from_micros(500),
            output_hash: "h".into(),
            issued_at_ms: 1_000,
            paid_by: None,
            signature_verified: true,
        }),
        LedgerNews::Unpaid(UnpaidWork {
            pool: "pool-key".into(),
            job: "j2".into(),
            job_name: "collatz".into(),
            reason: "timed out".into(),
            at_ms: 2_000,
        }),
        LedgerNews::Check(CheckEntry {
            id: "c1".into(),
            pool: "pool-key".into(),
            job: "j3".into(),
            job_name: "fft".into(),
            passed: true,
            issued_at_ms: 3_000,
        }),
    ];
    for news in news {
        node.inner.news.send(news).unwrap();
    }

    let NodeEvent::Earned(earned) = next_news_event(&mut events).await else {
        panic!("the receipt did not come first");
    };
    assert_eq!(
        (earned.job.as_str(), earned.amount, earned.at_ms),
        ("matmul", Amount::from_micros(500), 1_000)
    );
    let NodeEvent::Problem(problem) = next_news_event(&mut events).await else {
        panic!("the unpaid work is not a problem");
    };
    assert_eq!(
        (problem.job.as_str(), problem.reason.as_str()),
        ("collatz", "timed out")
    );
    let NodeEvent::Checked(check) = next_news_event(&mut events).await else {
        panic!("the check is not an event");
    };
    assert_eq!((check.job.as_str(), check.passed), ("fft", true));
    assert!(
        told.elapsed() < TICK,
        "the events waited {:?}, as for a poll",
        told.elapsed()
    );
    node.shutdown().await;
}
