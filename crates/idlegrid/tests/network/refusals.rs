//! What the pool and providers refuse, over real iroh endpoints on 127.0.0.1: providers that vanish
//! or give work back, replayed results, oversized and garbled frames, forged receipts, bad shaders,
//! and providers that lie to canaries. Each test checks what an operator or a provider would look at:
//! the job's outputs, the pool's receipts and reputations, and the provider's ledger.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::net::*;
use common::*;
use idlegrid::Amount;
use idlegrid::client::{Client, ClientError, own_submitter_key};
use idlegrid::idle::Verdict;
use idlegrid::ledger::{Earnings, Ledger, LedgerError};
use idlegrid::pool::PoolConfig;
use idlegrid::protocol::{
    self, Delivery, ErrorCode, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, ProtocolError, SUBMIT_ALPN,
    SubmitReply, SubmitRequest, WORK_ALPN, WorkReply, WorkRequest,
};
use idlegrid::provider::{Provider, ProviderConfig};
use idlegrid::statement::{Id, Payout, Receipt, Signed, StatementError};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{PublicKey, SecretKey};
use tokio::sync::watch;

/// Long enough for any wait in these tests on a loaded two-core machine, short enough that a hang
/// fails with a message instead of the harness's timeout.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_vanishes_mid_lease_loses_the_job_to_an_honest_one() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let lease_time = Duration::from_secs(2);
    let config = PoolConfig {
        lease_time,
        ..test_config()
    };
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let ticket = pool.ticket();
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 1))
        .await
        .unwrap();

    // Takes the lease, then goes away without a word.
    let ghost = RawProvider::connect(&ticket).await;
    let ghost_key = ghost.key.public();
    // The lease is granted after this instant, so it lapses at least `lease_time` after it.
    let asked_at = Instant::now();
    let leases = ghost.ask().await;
    assert_eq!(leases.len(), 1, "the ghost got no lease");
    assert_eq!(leases[0].job, handle.id());
    assert_eq!(leases[0].expires_in_ms, 2000);
    ghost.vanish().await;

    let honest = start_provider(&ticket, &dir.path().join("honest"));
    let job = handle.id();
    let Ok(outputs) = tokio::time::timeout(PATIENCE, handle.wait()).await else {
        panic!(
            "the job was never handed on after its lease lapsed: {:?}, ledger {:?}",
            pool.pool.progress(&job),
            earnings(&honest.ledger)
        );
    };
    let outputs = outputs.unwrap();
    assert_matmul(&outputs);
    // It could only be handed on once the ghost's lease had lapsed (the pool's clock counts whole
    // milliseconds, hence the slack).
    let verified_after = asked_at.elapsed();
    assert!(
        verified_after + Duration::from_millis(5) >= lease_time,
        "verified {verified_after:?} after the lease was asked for, before it lapsed"
    );

    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].body.provider, honest.key.public());
    assert!(receipts.iter().all(|r| r.body.provider != ghost_key));
    // Lapsing is not lying: the ghost is neither paid nor struck.
    assert_eq!(pool.pool.reputation(&ghost_key).unwrap(), 0);

    client.close().await;
    stop_all(vec![honest]).await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_given_back_goes_to_another_provider_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let lease_time = Duration::from_secs(60);
    let config = PoolConfig {
        lease_time,
        ..test_config()
    };
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let ticket = pool.ticket();
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 1))
        .await
        .unwrap();
    let job = handle.id();

    let leaver = RawProvider::connect(&ticket).await;
    let leases = leaver.ask().await;
    assert_eq!(leases.len(), 1, "the first provider got no lease");

    // While the lease is held, a second provider asking gets nothing.
    let honest = start_provider(&ticket, &dir.path().join("honest"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = pool.pool.progress(&job).unwrap().progress;
    assert_eq!((held.running, held.results), (1, 0), "{held:?}");

    let given_back_at = Instant::now();
    let reply = leaver
        .request(&WorkRequest::GiveBack {
            leases: vec![leases[0].lease],
            reason: "the person came back".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply, WorkReply::Ack);
    let Ok(outputs) = tokio::time::timeout(PATIENCE, handle.wait()).await else {
        panic!(
            "the lease given back was not handed on within {PATIENCE:?} (the lease itself runs {lease_time:?})"
        );
    };
    let handed_on_in = given_back_at.elapsed();
    assert_matmul(&outputs.unwrap());
    assert!(
        handed_on_in < lease_time / 4,
        "handed on after {handed_on_in:?}"
    );

    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].body.provider, honest.key.public());

    leaver.vanish().await;
    client.close().await;
    stop_all(vec![honest]).await;
    pool.shutdown().await;
}

/// A receipt as `signer` signs it, claiming to come from `pool`.
fn receipt(signer: &SecretKey, pool: PublicKey, provider: PublicKey, job: u8) -> Signed<Receipt> {
    let body = Receipt {
        pool,
        provider,
        job: Id([job; 32]),
        job_name: format!("job-{job}"),
        amount: Amount::from_micros(1_000_000),
        output_hash: Id([0; 32]),
        issued_at_ms: 1_700_000_000_000,
    };
    let mut signed = Signed::sign(
        Receipt {
            pool: signer.public(),
            ..body.clone()
        },
        signer,
    );
    signed.body = body;
    signed
}

/// Records a delivery as a provider does with what its pool sends.
fn record(ledger: &Mutex<Ledger>, pool: &PublicKey, delivery: &Delivery) -> LedgerError {
    let mut ledger = ledger.lock().unwrap();
    match delivery {
        Delivery::Receipt(r) => ledger.record_receipt(pool, r),
        Delivery::Payout(p) => ledger.record_payout(pool, p),
        Delivery::Check(c) => ledger.record_check(pool, c),
    }
    .expect_err("a forged statement was recorded")
}

fn earnings(ledger: &Mutex<Ledger>) -> Earnings {
    ledger.lock().unwrap().earnings().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_providers_ledger_keeps_the_pools_receipts_and_refuses_forged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    // No payout yet: a forged payout could otherwise only settle what is already settled.
    let config = PoolConfig {
        payout_threshold: Amount::from_micros(1_000_000),
        ..test_config()
    };
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let ticket = pool.ticket();
    let honest = start_provider(&ticket, &dir.path().join("honest"));
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 1))
        .await
        .unwrap();
    assert_matmul(&handle.wait().await.unwrap());

    // The real receipt reaches the provider's ledger over the network.
    let issued = pool.pool.receipts().unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].body.provider, honest.key.public());
    let stored = eventually(PATIENCE, || earnings(&honest.ledger).receipts.len() == 1).await;
    assert!(stored, "{:?}", earnings(&honest.ledger));
    let ledger = Arc::clone(&honest.ledger);
    // Nothing else is on its way; the provider stops so the ledger holds still.
    client.close().await;
    stop_all(vec![honest]).await;
    let before = earnings(&ledger);
    assert_eq!(before.receipts[0].id, issued[0].id().to_hex());
    assert_eq!(before.total, issued[0].body.amount);
    assert_eq!(before.balance, issued[0].body.amount);
    assert!(before.payouts.is_empty(), "{before:?}");

    let me = issued[0].body.provider;
    let pool_key = owner.public();
    let forger = SecretKey::generate();
    // Signed by someone else, claiming to be the pool.
    let forged = Delivery::Receipt(receipt(&forger, pool_key, me, 7));
    let refused = record(&ledger, &pool_key, &forged);
    assert!(
        matches!(
            refused,
            LedgerError::Statement(StatementError::BadSignature { kind: "receipt" })
        ),
        "{refused}"
    );
    // Signed by someone else as themselves: not this pool's receipt.
    let foreign = Delivery::Receipt(receipt(&forger, forger.public(), me, 8));
    let refused = record(&ledger, &pool_key, &foreign);
    assert!(
        matches!(
            refused,
            LedgerError::Statement(StatementError::WrongSigner { .. })
        ),
        "{refused}"
    );
    // The pool's own receipt with its amount raised after signing.
    let mut inflated = issued[0].clone();
    inflated.body.amount = Amount::from_micros(1_000_000_000);
    let inflated = Delivery::Receipt(inflated);
    let refused = record(&ledger, &pool_key, &inflated);
    assert!(
        matches!(
            refused,
            LedgerError::Statement(StatementError::BadSignature { .. })
        ),
        "{refused}"
    );
    // A forged payout claiming the real receipt was settled.
    let mut payout = Signed::sign(
        Payout {
            pool: forger.public(),
            provider: me,
            receipts: vec![issued[0].id()],
            amount: issued[0].body.amount,
            rail: "ledger".into(),
            reference: "forged".into(),
            issued_at_ms: 1_700_000_000_000,
        },
        &forger,
    );
    payout.body.pool = pool_key;
    let refused = record(&ledger, &pool_key, &Delivery::Payout(payout));
    assert!(
        matches!(
            refused,
            LedgerError::Statement(StatementError::BadSignature { kind: "payout" })
        ),
        "{refused}"
    );
    assert_eq!(earnings(&ledger), before, "a refusal changed the ledger");
    assert_eq!(ledger.lock().unwrap().audit().unwrap(), 1);
    pool.shutdown().await;
}

/// A pool that has no work, only statements: the ones it was given, delivered with every reply until
/// the provider confirms them. Records every confirmation.
#[derive(Clone, Debug)]
struct StatementPool {
    deliveries: Vec<Delivery>,
    confirmed: Arc<Mutex<Vec<Id>>>,
}

impl ProtocolHandler for StatementPool {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let Ok(WorkRequest::Ask { stored, .. }) =
                protocol::read_frame(&mut recv, MAX_REQUEST_FRAME).await
            else {
                continue;
            };
            let deliveries = {
                let mut confirmed = self.confirmed.lock().unwrap();
                confirmed.extend(stored);
                self.deliveries
                    .iter()
                    .filter(|d| !confirmed.contains(&d.id()))
                    .cloned()
                    .collect()
            };
            let reply = WorkReply::Work {
                leases: vec![],
                deliveries,
                retry_after_ms: 50,
                chain: None,
                pending: vec![],
            };
            if protocol::write_frame(&mut send, &reply).await.is_ok() {
                let _ = send.finish();
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_confirms_only_the_receipts_its_pool_really_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pool_key = SecretKey::generate();
    let forger = SecretKey::generate();
    let provider_key = SecretKey::generate();
    let me = provider_key.public();
    let genuine = receipt(&pool_key, pool_key.public(), me, 1);
    let mut altered = receipt(&pool_key, pool_key.public(), me, 2);
    altered.body.amount = Amount::from_micros(999_000_000);
    let forged = receipt(&forger, pool_key.public(), me, 3);
    let foreign = receipt(&forger, forger.public(), me, 4);
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let handler = StatementPool {
        deliveries: [&altered, &forged, &genuine, &foreign]
            .map(|r| Delivery::Receipt(r.clone()))
            .to_vec(),
        confirmed: Arc::clone(&confirmed),
    };
    let endpoint = protocol::bind_endpoint(
        protocol::endpoint_builder(pool_key.clone(), LOOPBACK, None).unwrap(),
    )
    .await
    .unwrap();
    let router = Router::builder(endpoint).accept(WORK_ALPN, handler).spawn();

    let provider = Provider::new(
        provider_key,
        router.endpoint().addr(),
        &dir.path().join("provider"),
        executor(),
        ProviderConfig {
            backoff: (Duration::from_millis(50), Duration::from_millis(500)),
            ..ProviderConfig::default()
        },
    )
    .unwrap();
    let ledger = provider.ledger();
    let (stop, stop_rx) = watch::channel(false);
    let (_verdict, verdict_rx) = watch::channel(Verdict::RUN);
    let task = tokio::spawn(provider.run(verdict_rx, stop_rx));

    let genuine_confirmed = eventually(PATIENCE, || {
        confirmed.lock().unwrap().contains(&genuine.id())
    })
    .await;
    assert!(genuine_confirmed, "the genuine receipt was never confirmed");
    // A few more rounds, in which the refused ones are offered again and refused again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*confirmed.lock().unwrap(), vec![genuine.id()]);
    let held = earnings(&ledger);
    assert_eq!(held.receipts.len(), 1, "{held:?}");
    assert_eq!(held.receipts[0].id, genuine.id().to_hex());
    assert_eq!(held.total, genuine.body.amount);

    let _ = stop.send(true);
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    router.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_result_is_refused_and_paid_once() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let job = with_replicas(example("matmul"), 1);
    // This provider runs the job honestly, on this machine's GPU, before asking for it.
    let outputs: Vec<(String, Vec<u8>)> = executor()
        .run(&job)
        .unwrap()
        .outputs
        .into_iter()
        .map(|o| (o.name, o.bytes))
        .collect();
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), test_config()).await;
    let ticket = pool.ticket();
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client.submit(&job).await.unwrap();
    let raw = RawProvider::connect(&ticket).await;
    let leases = raw.ask().await;
    assert_eq!(leases.len(), 1);
    let lease = leases[0].lease;
    assert_eq!(
        raw.send_result(lease, &outputs).await.unwrap(),
        WorkReply::Ack
    );
    assert_matmul(&handle.wait().await.unwrap());
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].body.provider, raw.key.public());
    let reputation = pool.pool.reputation(&raw.key.public()).unwrap();

    for _ in 0..2 {
        let reply = raw.send_result(lease, &outputs).await.unwrap();
        let WorkReply::Error { message } = reply else {
            panic!("a replayed result was taken: {reply:?}");
        };
        assert!(message.contains("already returned"), "{message}");
    }
    assert_eq!(pool.pool.receipts().unwrap(), receipts, "paid twice");
    assert_eq!(
        pool.pool.reputation(&raw.key.public()).unwrap(),
        reputation,
        "credited twice"
    );

    raw.vanish().await;
    client.close().await;
    pool.shutdown().await;
}

/// Writes `bytes` on a fresh stream (finishing it if `finish`) and returns the code the pool reset
/// its reply with, and the code it stopped our half with (none when it had read everything we sent).
async fn refused_codes(connection: &Connection, bytes: &[u8], finish: bool) -> (u64, Option<u64>) {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    // The pool may stop the stream before all of it arrives; that is the point.
    match send.write_all(bytes).await {
        Ok(()) => {
            if finish {
                let _ = send.finish();
            }
        }
        Err(iroh::endpoint::WriteError::Stopped(_)) => {}
        Err(other) => panic!("writing the frame failed: {other}"),
    }
    let read = tokio::time::timeout(
        PATIENCE,
        protocol::read_frame::<WorkReply>(&mut recv, MAX_REPLY_FRAME),
    )
    .await
    .expect("the pool neither answered nor ended the stream");
    let Err(ProtocolError::Reset(code)) = read else {
        panic!("expected the stream to be reset, got {read:?}");
    };
    let stopped = tokio::time::timeout(PATIENCE, send.stopped())
        .await
        .expect("our half of the stream was neither stopped nor read")
        .unwrap();
    (code, stopped.map(|c| c.into_inner()))
}

fn frame(len: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_frame_ends_only_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), SecretKey::generate(), test_config()).await;
    let ticket = pool.ticket();
    let raw = RawProvider::connect(&ticket).await;
    let claimed = 64 << 20;
    assert!(claimed as usize > MAX_REQUEST_FRAME);
    // The length alone is refused: the 64 MiB it announces are never sent, so a pool that waited
    // for them (or allocated them) would not answer in time.
    let too_large = ErrorCode::TooLarge as u64;
    let codes = refused_codes(&raw.connection, &frame(claimed, &[0x55; 1024]), false).await;
    assert_eq!(codes, (too_large, Some(too_large)));
    // Just over the cap is refused too, with the body all there.
    let just_over = MAX_REQUEST_FRAME as u32 + 1;
    let (code, _) = refused_codes(
        &raw.connection,
        &frame(just_over, &vec![0; just_over as usize]),
        true,
    )
    .await;
    assert_eq!(code, too_large);

    // The same connection still asks for work, and another provider is served too.
    assert!(raw.ask().await.is_empty());
    let other = RawProvider::connect(&ticket).await;
    assert!(other.ask().await.is_empty());
    assert!(pool.pool.receipts().unwrap().is_empty());

    raw.vanish().await;
    other.vanish().await;
    pool.shutdown().await;
}

/// Bytes that look random, from a fixed seed so a failure can be reproduced.
fn garbage(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    blake3::Hasher::new()
        .update(b"network_refusals garbage")
        .finalize_xof()
        .fill(&mut bytes);
    // A first byte that names no request, so the bytes cannot happen to decode.
    bytes[0] = 0x7F;
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_after_a_valid_length_ends_only_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = start_pool(dir.path(), owner.clone(), test_config()).await;
    let ticket = pool.ticket();
    let malformed = ErrorCode::Malformed as u64;

    let raw = RawProvider::connect(&ticket).await;
    let bytes = garbage(200);
    let (code, _) = refused_codes(&raw.connection, &frame(200, &bytes), true).await;
    assert_eq!(code, malformed);
    // A frame whose stream ends before its announced length is malformed too.
    let (code, _) = refused_codes(&raw.connection, &frame(200, &bytes[..10]), true).await;
    assert_eq!(code, malformed);
    assert!(raw.ask().await.is_empty(), "the connection did not survive");

    // The same on the submit protocol, as a submitter the pool allows.
    let submitter = own_submitter_key(&owner);
    let pool_addr = protocol::ticket_addr(&ticket).unwrap();
    let endpoint = protocol::bind_endpoint(
        protocol::endpoint_builder(submitter, LOOPBACK, Some(&pool_addr)).unwrap(),
    )
    .await
    .unwrap();
    let connection = endpoint.connect(pool_addr, SUBMIT_ALPN).await.unwrap();
    let (code, _) = refused_codes(&connection, &frame(200, &bytes), true).await;
    assert_eq!(code, malformed);
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let watch = SubmitRequest::Watch { job: Id([9; 32]) };
    protocol::write_frame(&mut send, &watch).await.unwrap();
    send.finish().unwrap();
    let reply: SubmitReply = protocol::read_frame(&mut recv, MAX_REPLY_FRAME)
        .await
        .unwrap();
    assert_eq!(
        reply,
        SubmitReply::Error {
            message: "no such job".into()
        }
    );

    // Nothing was queued, leased or paid.
    assert_eq!(pool.pool.submitted_jobs().unwrap(), 0);
    assert!(pool.pool.receipts().unwrap().is_empty());
    connection.close(0u32.into(), b"");
    endpoint.close().await;
    raw.vanish().await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_with_malformed_wgsl_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = start_pool(dir.path(), owner.clone(), test_config()).await;
    let client = Client::connect(&pool.ticket(), owner.clone())
        .await
        .unwrap();
    let wgsl = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
                @compute @workgroup_size(64) fn main() {\n    data[0] = 1u +;\n}\n";
    let bad = job(
        wgsl,
        vec![buffer(
            "data",
            0,
            idlegrid::job::BufferInit::Zeros(256),
            idlegrid::job::Access::ReadWrite,
            true,
        )],
        vec![pass("main", 1)],
    );
    let error = client.submit(&bad).await.err().expect("the job was taken");
    let ClientError::Refused(message) = &error else {
        panic!("expected a refusal, got {error:?}");
    };
    // file:line:column, then what is wrong and the offending line.
    assert!(message.contains("test.wgsl:3:"), "{message}");
    let column = message
        .split("test.wgsl:3:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|c| c.parse::<u32>().ok());
    assert!(column.is_some(), "no column in {message}");
    assert!(message.contains("data[0] = 1u +;"), "{message}");
    assert_eq!(pool.pool.submitted_jobs().unwrap(), 0);

    client.close().await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canaries_follow_paid_work_only_sink_a_liar_and_show_as_checks_once_judged() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let config = PoolConfig {
        canary_rate: 1.0,
        ..test_config()
    };
    let pool = start_pool(dir.path(), owner.clone(), config).await;
    let ticket = pool.ticket();
    let (stop_liar, stop_rx) = watch::channel(false);
    let liar = byzantine_provider(&ticket, stop_rx).await.public();
    let honest = start_provider(&ticket, &dir.path().join("honest"));
    let honest_key = honest.key.public();

    // An empty pool: both ask about ten times a second, and get no unpaid work for it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pool.pool.reputation(&liar).unwrap(), 0);
    assert_eq!(pool.pool.reputation(&honest_key).unwrap(), 0);
    assert!(earnings(&honest.ledger).checks.is_empty());

    // Paid work: each paid lease draws a canary for the same provider.
    let client = Client::connect(&ticket, owner).await.unwrap();
    let mut submitted = 0u64;
    let settled = {
        let settling = eventually(PATIENCE, || {
            pool.pool.reputation(&liar).is_ok_and(|r| r < 0)
                && earnings(&honest.ledger).checks.iter().any(|c| c.passed)
        });
        tokio::pin!(settling);
        loop {
            tokio::select! {
                done = &mut settling => break done,
                _ = client.submit(&hashchain(64)).await.unwrap().wait() => submitted += 1,
            }
        }
    };
    let liar_reputation = pool.pool.reputation(&liar).unwrap();
    let held = earnings(&honest.ledger);
    assert!(
        settled,
        "liar at {liar_reputation}, honest checks {:?}",
        held.checks
    );
    let _ = stop_liar.send(true);

    // Checks are the pool's own tests: they are listed, passed, and paid nothing.
    assert!(
        held.checks
            .iter()
            .all(|c| c.passed && c.job_name == "checksum")
    );
    assert!(held.receipts.iter().all(|r| r.job_name != "checksum"));
    let paid = pool.pool.receipts().unwrap();
    assert!(paid.iter().all(|r| r.body.job_name != "checksum"));
    // The canaries are not submitted jobs: every submitted one is counted, and only those.
    assert_eq!(pool.pool.submitted_jobs().unwrap(), submitted + 1);

    client.close().await;
    stop_all(vec![honest]).await;
    pool.shutdown().await;
}
