//! The three roles over real iroh endpoints on 127.0.0.1 with relays off: a pool, providers running
//! jobs on this machine's GPU (llvmpipe in CI), and a submitter, all in this process.

use crate::common;

use std::time::Duration;

use common::net::*;
use common::*;
use idlegrid::Amount;
use idlegrid::client::{Client, ClientError};
use iroh::SecretKey;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_providers_verify_and_are_paid_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), test_config()).await;
    let ticket = pool.ticket();
    let providers: Vec<Running> = (0..3)
        .map(|i| start_provider(&ticket, &dir.path().join(format!("provider{i}"))))
        .collect();

    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let jobs = [
        with_replicas(example("matmul"), 1),
        with_replicas(example("mandelbrot"), 2),
        with_replicas(example("nearest"), 3),
    ];
    let mut handles = Vec::new();
    for job in &jobs {
        handles.push(client.submit(job).await.unwrap());
    }
    let mut progress_seen = Vec::new();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.wait_with(|p| progress_seen.push(p)).await.unwrap());
    }
    assert_matmul(&results[0]);
    assert_mandelbrot(&results[1]);
    assert_nearest(&results[2]);
    assert!(
        progress_seen
            .iter()
            .any(|p| p.state == idlegrid::protocol::JobState::Verified)
    );

    // One receipt per validated replica: 1 + 2 + 3, all signed by the pool, each for the job's reward.
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 6);
    for receipt in &receipts {
        receipt.verify(&owner.public()).unwrap();
    }
    let mut per_job = std::collections::HashMap::new();
    for r in &receipts {
        *per_job.entry(r.body.job).or_insert(0) += 1;
    }
    let mut counts: Vec<_> = per_job.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![1, 2, 3]);

    // Every provider's ledger ends up holding exactly the receipts the pool issued to it, and its
    // balance plus what was paid out adds up to them to the micro-unit.
    for p in &providers {
        let mine: Vec<_> = receipts
            .iter()
            .filter(|r| r.body.provider == p.key.public())
            .collect();
        let owed = mine
            .iter()
            .fold(Amount::ZERO, |s, r| s.checked_add(r.body.amount).unwrap());
        let settled = eventually(Duration::from_secs(20), || {
            let earnings = p.ledger.lock().unwrap().earnings().unwrap();
            earnings.receipts.len() == mine.len()
                && earnings.balance.checked_add(earnings.paid) == Some(owed)
                && earnings.total == owed
        })
        .await;
        let earnings = p.ledger.lock().unwrap().earnings().unwrap();
        assert!(
            settled,
            "provider ledger {earnings:?} vs {} receipts owing {owed}",
            mine.len()
        );
        // Past the threshold the pool paid out, and the payout settles exactly the paid receipts.
        if owed >= Amount::from_micros(250) {
            assert!(!earnings.payouts.is_empty(), "{earnings:?}");
        }
        let paid_by_payouts = earnings
            .payouts
            .iter()
            .fold(Amount::ZERO, |s, x| s.checked_add(x.amount).unwrap());
        assert_eq!(paid_by_payouts, earnings.paid);
    }
    client.close().await;
    stop_all(providers).await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lying_provider_is_outvoted_unpaid_and_loses_reputation() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), test_config()).await;
    let ticket = pool.ticket();
    let (stop_liar, stop_rx) = watch::channel(false);
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 2))
        .await
        .unwrap();
    // The liar answers first, so the honest providers must outvote it.
    let liar = byzantine_provider(&ticket, stop_rx).await;
    let job = handle.id();
    let lied = eventually(Duration::from_secs(10), || {
        pool.pool
            .progress(&job)
            .is_ok_and(|r| r.progress.results == 1)
    })
    .await;
    assert!(lied, "the liar never answered");
    let honest: Vec<Running> = (0..2)
        .map(|i| start_provider(&ticket, &dir.path().join(format!("honest{i}"))))
        .collect();
    let outputs = handle.wait().await.unwrap();
    assert_matmul(&outputs);

    let receipts = pool.pool.receipts().unwrap();
    assert!(
        receipts.iter().all(|r| r.body.provider != liar.public()),
        "the liar was paid"
    );
    assert_eq!(receipts.len(), 2);
    let liar_reputation = pool.pool.reputation(&liar.public()).unwrap();
    assert!(liar_reputation < 0, "liar's reputation {liar_reputation}");
    let _ = stop_liar.send(true);
    client.close().await;
    stop_all(honest).await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_submitter_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), SecretKey::generate(), test_config()).await;
    let stranger = SecretKey::generate();
    let error = match Client::connect(&pool.ticket(), stranger.clone()).await {
        Ok(client) => client.submit(&example("matmul")).await.err().unwrap(),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(message.contains("does not accept jobs from"), "{message}");
    assert!(
        message.contains(&stranger.public().to_string()),
        "{message}"
    );
    assert!(matches!(error, ClientError::Protocol(_)), "{error:?}");
    pool.shutdown().await;
}

/// A job nothing can run because no provider is connected: a submit/3 submitter is told so as a typed
/// blocker (`Blocked`, then the `Progress` it belongs to, which the client joins), while a submitter
/// speaking submit/2, from before blockers, gets the frames it always did: the note in words and no
/// frame it could not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_provider_connected_is_a_typed_blocker_in_submit_3_and_words_in_submit_2() {
    use idlegrid::client::own_submitter_key;
    use idlegrid::protocol::{
        self, Blocker, JobProgress, MAX_REPLY_FRAME, SUBMIT_ALPN, SUBMIT_ALPN_2, SubmitReply,
        SubmitRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), test_config()).await;
    let ticket = pool.ticket();
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let matmul = example("matmul");
    let handle = client.submit(&matmul).await.unwrap();
    let job = handle.id();

    let pool_addr = protocol::ticket_addr(&ticket).unwrap();
    let endpoint = protocol::bind_endpoint(
        protocol::endpoint_builder(own_submitter_key(&owner), LOOPBACK, Some(&pool_addr)).unwrap(),
    )
    .await
    .unwrap();
    let first_frames = |alpn: &'static [u8], count: usize| {
        let (endpoint, pool_addr) = (endpoint.clone(), pool_addr.clone());
        async move {
            let connection = endpoint.connect(pool_addr, alpn).await.unwrap();
            let (mut send, mut recv) = connection.open_bi().await.unwrap();
            protocol::write_frame(&mut send, &SubmitRequest::Watch { job })
                .await
                .unwrap();
            send.finish().unwrap();
            let mut frames = Vec::new();
            for _ in 0..count {
                let frame: SubmitReply = protocol::read_frame(&mut recv, MAX_REPLY_FRAME)
                    .await
                    .unwrap();
                frames.push(frame);
            }
            connection.close(0u32.into(), b"");
            frames
        }
    };
    let queued = JobProgress {
        state: idlegrid::protocol::JobState::Queued,
        running: 0,
        results: 0,
        needed: (pool.pool.config().replication).needed(matmul.verify.replicas.max(1), false),
        note: Some("waiting for a provider (none connected)".into()),
        blocked: None,
    };
    assert_eq!(
        first_frames(SUBMIT_ALPN, 2).await,
        [
            SubmitReply::Blocked(Blocker::NoProviderConnected),
            SubmitReply::Progress(queued.clone()),
        ]
    );
    // submit/2 sends one frame per change: the first is the progress, the note saying it in words.
    assert_eq!(
        first_frames(SUBMIT_ALPN_2, 1).await,
        [SubmitReply::Progress(queued.clone())]
    );

    // The client joins the blocker to its progress.
    let (seen, mut told) = watch::channel(None);
    let waiting = handle.wait_with(|p| {
        if p.blocked.is_some() {
            seen.send_replace(Some(p));
        }
    });
    tokio::select! {
        result = waiting => panic!("the job ended with no provider: {:?}", result.map(|_| ())),
        blocked = told.wait_for(Option::is_some) => {
            let blocked = blocked.unwrap().clone().unwrap();
            assert_eq!(blocked.blocked, Some(Blocker::NoProviderConnected));
            assert_eq!(blocked.note, queued.note);
        }
    }
    endpoint.close().await;
    client.close().await;
    pool.shutdown().await;
}
