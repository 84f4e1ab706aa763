//! What the pool does about peers that ask too much or are not welcome, over real iroh endpoints on
//! 127.0.0.1: a flooding provider is rate limited with a clear reply while an honest one works on, and
//! is served again once its bucket refills; blob fetches and submissions have their own limits; a
//! blocked key is refused at the handshake (from the start or at run time); and one connection has
//! at most 16 streams open at once while the pool serves everyone else.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::net::*;
use common::*;
use idlegrid::client::{Client, own_submitter_key};
use idlegrid::pool::PoolConfig;
use idlegrid::pool::limits::{PeerLimits, Rate};
use idlegrid::protocol::{
    self, ErrorCode, MAX_REPLY_FRAME, ProtocolError, SUBMIT_ALPN, SubmitReply, SubmitRequest,
    WORK_ALPN, WorkReply, WorkRequest,
};
use idlegrid::statement::Id;
use iroh::endpoint::{ConnectError, ConnectingError, Connection, ConnectionError};
use iroh::{Endpoint, SecretKey};
use tokio::sync::watch;

/// Long enough for any wait in these tests on a loaded two-core machine, short enough that a hang
/// fails with a message instead of the harness's timeout.
const PATIENCE: Duration = Duration::from_secs(20);

/// How quickly a refusal at the handshake must arrive: at once, not after a timeout.
const AT_ONCE: Duration = Duration::from_secs(3);

const RATE_LIMITED: &str = "rate limited: retry after ";

/// The wait a rate-limited reply names, if `message` is one.
fn retry_after(message: &str) -> Option<Duration> {
    message
        .strip_prefix(RATE_LIMITED)?
        .strip_suffix(" ms")?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// An ask that can never be given a lease, so a flood of them takes nothing from anyone.
fn empty_ask() -> WorkRequest {
    WorkRequest::Ask {
        capabilities: big_capabilities(),
        slots: 0,
        stored: vec![],
        binding: None,
    }
}

/// What one request of a flood came to.
enum Outcome {
    Served,
    /// Refused with this wait; `None` when the pool stopped our half before we had written all of
    /// the request, so only the code (rate limited) came back.
    Limited(Option<Duration>),
}

fn outcome(reply: Result<WorkReply, ProtocolError>) -> Outcome {
    match reply {
        Ok(WorkReply::Work { .. }) => Outcome::Served,
        Ok(WorkReply::Error { message }) => match retry_after(&message) {
            Some(wait) => Outcome::Limited(Some(wait)),
            None => panic!("refused, but not for asking too often: {message}"),
        },
        Err(ProtocolError::Reset(code)) if code == ErrorCode::RateLimited as u64 => {
            Outcome::Limited(None)
        }
        other => panic!("unexpected reply to an ask: {other:?}"),
    }
}

/// An endpoint of its own for `key`, aimed at the pool of `ticket`.
async fn endpoint_for(ticket: &str, key: SecretKey) -> (Endpoint, iroh::EndpointAddr) {
    let pool = protocol::ticket_addr(ticket).unwrap();
    let endpoint =
        protocol::bind_endpoint(protocol::endpoint_builder(key, LOOPBACK, Some(&pool)).unwrap())
            .await
            .unwrap();
    (endpoint, pool)
}

/// Connects as `key` on `alpn` and returns how the pool closed the connection (code and reason), and
/// how long after the attempt began. Panics if the pool let it in.
async fn refused_at_handshake(
    ticket: &str,
    key: SecretKey,
    alpn: &[u8],
) -> (u64, String, Duration) {
    let (endpoint, pool) = endpoint_for(ticket, key).await;
    let started = Instant::now();
    let closed = match endpoint.connect(pool, alpn).await {
        // Our side of the handshake may finish before the pool's verdict arrives: the close follows.
        Ok(connection) => closed_with(&connection).await,
        // Or the verdict comes first and the attempt itself fails with it.
        Err(error) => application_close(&error)
            .unwrap_or_else(|| panic!("connect failed, but not by the pool's decision: {error}")),
    };
    let took = started.elapsed();
    endpoint.close().await;
    (closed.0, closed.1, took)
}

/// The code and reason of a connection attempt the pool closed during the handshake.
fn application_close(error: &ConnectError) -> Option<(u64, String)> {
    let closed = match error {
        ConnectError::Connection { source, .. } => source,
        ConnectError::Connecting {
            source: ConnectingError::ConnectionError { source, .. },
            ..
        } => source,
        _ => return None,
    };
    match closed {
        ConnectionError::ApplicationClosed(close) => Some((
            close.error_code.into_inner(),
            String::from_utf8_lossy(&close.reason).into_owned(),
        )),
        _ => None,
    }
}

/// Waits (at most `AT_ONCE`) for `connection` to be closed by the pool; its code and reason.
async fn closed_with(connection: &Connection) -> (u64, String) {
    let error = tokio::time::timeout(AT_ONCE, connection.closed())
        .await
        .expect("the pool did not close the connection");
    match error {
        ConnectionError::ApplicationClosed(close) => (
            close.error_code.into_inner(),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => panic!("closed, but not by the pool's decision: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_provider_is_rate_limited_while_an_honest_one_works_and_is_served_after_a_refill()
 {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    // The default limits: the point is that they stop a flood and leave an honest provider alone.
    let config = test_config();
    let work = config.peer_limits.work;
    assert_eq!(config.peer_limits, PeerLimits::default());
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let ticket = pool.ticket();

    // Sixteen streams at a time (as many as a connection may have), each asking again as soon as it
    // is answered, until the honest provider's job is done.
    let flooder = Arc::new(RawProvider::connect(&ticket).await);
    let done = Arc::new(AtomicBool::new(false));
    let flood_started = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let flooder = Arc::clone(&flooder);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let (mut served, mut limited, mut waits) = (0u64, 0u64, Vec::new());
                while !done.load(Ordering::Relaxed) {
                    match outcome(flooder.request(&empty_ask()).await) {
                        Outcome::Served => served += 1,
                        Outcome::Limited(wait) => {
                            limited += 1;
                            waits.extend(wait);
                        }
                    }
                }
                (served, limited, waits)
            })
        })
        .collect();

    let honest = start_provider(&ticket, &dir.path().join("honest"));
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 1))
        .await
        .unwrap();
    let outputs = tokio::time::timeout(PATIENCE, handle.wait())
        .await
        .expect("the honest provider's job did not finish during the flood")
        .unwrap();
    assert_matmul(&outputs);
    // Let the flood run on a little past the job, so it is surely over its limit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);
    let (mut served, mut limited, mut waits) = (0, 0, Vec::new());
    for worker in workers {
        let (s, l, w) = worker.await.unwrap();
        served += s;
        limited += l;
        waits.extend(w);
    }
    let flooded_for = flood_started.elapsed();

    assert!(limited > 0, "a flood of {served} asks was never limited");
    assert!(
        !waits.is_empty(),
        "no rate-limited reply said when to come back"
    );
    // The burst, then the rate, and not one ask more (plus one for rounding the elapsed time).
    let allowed = u64::from(work.burst)
        + (flooded_for.as_secs_f64() * f64::from(work.per_second)).ceil() as u64
        + 1;
    assert!(
        served <= allowed,
        "{served} asks served in {flooded_for:?}; the limit allows {allowed}"
    );
    assert!(served >= u64::from(work.burst), "only {served} asks served");
    // A refill takes one interval (20 ms at 50/s) at most.
    let interval = Duration::from_secs(1) / work.per_second;
    assert!(waits.iter().all(|w| *w <= interval), "{waits:?}");

    // The honest provider did the work and was paid; the flooder got nothing.
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].body.provider, honest.key.public());

    // Still on the same connection: after the wait the pool named, the flooder is served again.
    let wait = waits.iter().max().copied().unwrap_or(interval);
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert!(matches!(
        outcome(flooder.request(&empty_ask()).await),
        Outcome::Served
    ));

    client.close().await;
    stop_all(vec![honest]).await;
    if let Ok(flooder) = Arc::try_unwrap(flooder) {
        flooder.vanish().await;
    }
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blob_fetches_and_submissions_have_their_own_limits() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let submitter = SecretKey::generate();
    let config = PoolConfig {
        allow: vec![submitter.public()],
        peer_limits: PeerLimits {
            blob_fetches: Rate::new(1, 3),
            submissions: Rate::new(1, 3),
            ..PeerLimits::default()
        },
        ..test_config()
    };
    let pool = start_pool(dir.path(), owner.clone(), config).await;
    let ticket = pool.ticket();

    // Three fetches of an input the pool does not have are answered as such; the fourth is limited.
    let raw = RawProvider::connect(&ticket).await;
    let fetch = WorkRequest::Blob { hash: [7; 32] };
    for _ in 0..3 {
        let reply = raw.request(&fetch).await.unwrap();
        let WorkReply::Error { message } = reply else {
            panic!("{reply:?}");
        };
        assert!(message.starts_with("no input"), "{message}");
    }
    let reply = raw.request(&fetch).await.unwrap();
    let WorkReply::Error { message } = reply else {
        panic!("{reply:?}");
    };
    let wait = retry_after(&message).unwrap_or_else(|| panic!("not rate limited: {message}"));
    assert!(wait <= Duration::from_secs(1), "{message}");
    // Asking for work is another bucket, untouched.
    assert!(raw.ask().await.is_empty());

    // An allowed submitter: three streams (watches of a job that does not exist), then limited.
    let watch = SubmitRequest::Watch { job: Id([9; 32]) };
    let (endpoint, pool_addr) = endpoint_for(&ticket, submitter).await;
    let connection = endpoint.connect(pool_addr, SUBMIT_ALPN).await.unwrap();
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(submit_request(&connection, &watch).await);
    }
    let no_such_job = SubmitReply::Error {
        message: "no such job".into(),
    };
    assert_eq!(
        replies[..3],
        [
            no_such_job.clone(),
            no_such_job.clone(),
            no_such_job.clone()
        ]
    );
    let SubmitReply::Error { message } = &replies[3] else {
        panic!("{:?}", replies[3]);
    };
    assert!(retry_after(message).is_some(), "{message}");

    // The pool's own submitter key (its operator) is not limited.
    let (own, pool_addr) = endpoint_for(&ticket, own_submitter_key(&owner)).await;
    let own_connection = own.connect(pool_addr, SUBMIT_ALPN).await.unwrap();
    for _ in 0..10 {
        assert_eq!(submit_request(&own_connection, &watch).await, no_such_job);
    }

    connection.close(0u32.into(), b"");
    own_connection.close(0u32.into(), b"");
    endpoint.close().await;
    own.close().await;
    raw.vanish().await;
    pool.shutdown().await;
}

/// One submit-protocol request on its own stream, and the pool's first reply.
async fn submit_request(connection: &Connection, request: &SubmitRequest) -> SubmitReply {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    protocol::write_frame(&mut send, request).await.unwrap();
    send.finish().unwrap();
    protocol::read_frame(&mut recv, MAX_REPLY_FRAME)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocked_key_is_refused_at_the_handshake_and_never_gets_work() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let blocked = SecretKey::generate();
    let config = PoolConfig {
        // Allowed to submit, and blocked: blocking wins, on every protocol.
        allow: vec![blocked.public()],
        blocked: vec![blocked.public()],
        ..test_config()
    };
    let pool = start_pool(&dir.path().join("pool"), owner.clone(), config).await;
    let ticket = pool.ticket();
    let client = Client::connect(&ticket, owner.clone()).await.unwrap();
    let handle = client
        .submit(&with_replicas(example("matmul"), 1))
        .await
        .unwrap();

    for alpn in [WORK_ALPN, SUBMIT_ALPN] {
        let (code, reason, took) = refused_at_handshake(&ticket, blocked.clone(), alpn).await;
        assert_eq!(
            (code, reason.as_str()),
            (ErrorCode::NotAllowed as u64, "blocked")
        );
        assert!(took < AT_ONCE, "refused only after {took:?}");
    }
    // Asking for work on such a connection fails, for the pool's reason, and takes nothing.
    let (endpoint, pool_addr) = endpoint_for(&ticket, blocked.clone()).await;
    if let Ok(connection) = endpoint.connect(pool_addr, WORK_ALPN).await {
        let ask = async {
            let (mut send, mut recv) = connection.open_bi().await?;
            protocol::write_frame(&mut send, &empty_ask()).await?;
            send.finish()?;
            protocol::read_frame::<WorkReply>(&mut recv, MAX_REPLY_FRAME).await
        };
        let refused = tokio::time::timeout(AT_ONCE, ask)
            .await
            .expect("the blocked key's request hung");
        assert!(refused.is_err(), "a blocked key was answered: {refused:?}");
        let (code, reason) = closed_with(&connection).await;
        assert_eq!(
            (code, reason.as_str()),
            (ErrorCode::NotAllowed as u64, "blocked")
        );
    }
    endpoint.close().await;

    // Everyone else is served: an honest provider gets the job and is paid for it.
    let honest = start_provider(&ticket, &dir.path().join("honest"));
    let outputs = tokio::time::timeout(PATIENCE, handle.wait())
        .await
        .expect("the honest provider's job did not finish")
        .unwrap();
    assert_matmul(&outputs);
    let receipts = pool.pool.receipts().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].body.provider, honest.key.public());
    assert_eq!(pool.pool.reputation(&blocked.public()).unwrap(), 0);

    client.close().await;
    stop_all(vec![honest]).await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_blocked_at_run_time_is_cut_off_at_once_and_served_again_when_unblocked() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), SecretKey::generate(), test_config()).await;
    let ticket = pool.ticket();
    let raw = RawProvider::connect(&ticket).await;
    let other = RawProvider::connect(&ticket).await;
    assert!(raw.ask().await.is_empty());

    let started = Instant::now();
    pool.block(raw.key.public());
    // Its open connection is closed without waiting for its next request.
    let (code, reason) = closed_with(&raw.connection).await;
    assert_eq!(
        (code, reason.as_str()),
        (ErrorCode::NotAllowed as u64, "blocked")
    );
    assert!(started.elapsed() < AT_ONCE);
    // And a new one is refused at the handshake.
    let (code, reason, _) = refused_at_handshake(&ticket, raw.key.clone(), WORK_ALPN).await;
    assert_eq!(
        (code, reason.as_str()),
        (ErrorCode::NotAllowed as u64, "blocked")
    );
    // Others were not touched.
    assert!(other.ask().await.is_empty());
    assert!(other.connection.close_reason().is_none());

    pool.unblock(&raw.key.public());
    let (endpoint, pool_addr) = endpoint_for(&ticket, raw.key.clone()).await;
    let again = RawProvider {
        key: raw.key.clone(),
        connection: endpoint.connect(pool_addr, WORK_ALPN).await.unwrap(),
        endpoint,
    };
    assert!(again.ask().await.is_empty());

    again.vanish().await;
    other.vanish().await;
    raw.vanish().await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_connection_has_at_most_16_streams_open_and_the_pool_serves_others_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let pool = start_pool(dir.path(), SecretKey::generate(), test_config()).await;
    let ticket = pool.ticket();
    let flooder = Arc::new(RawProvider::connect(&ticket).await);
    let body = postcard::to_allocvec(&empty_ask()).unwrap();
    let header = u32::try_from(body.len()).unwrap().to_le_bytes();
    let body = Arc::new(body);

    // A hundred streams at once, each sending only its frame's length, so the pool holds every one
    // it accepted open, waiting for the rest, until we let them go on.
    let (release, released) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let most_open = Arc::new(AtomicUsize::new(0));
    let streams: Vec<_> = (0..100)
        .map(|_| {
            let flooder = Arc::clone(&flooder);
            let body = Arc::clone(&body);
            let mut released = released.clone();
            let (open, most_open) = (Arc::clone(&open), Arc::clone(&most_open));
            tokio::spawn(async move {
                let (mut send, mut recv) = flooder.connection.open_bi().await?;
                let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                most_open.fetch_max(now_open, Ordering::SeqCst);
                send.write_all(&header).await?;
                let _ = released.wait_for(|go| *go).await;
                // Counted open until here: from now on the pool may end the stream and let the next
                // one open, as soon as it has the rest (and before we have read its reply).
                open.fetch_sub(1, Ordering::SeqCst);
                send.write_all(&body).await?;
                send.finish()?;
                protocol::read_frame::<WorkReply>(&mut recv, MAX_REPLY_FRAME).await
            })
        })
        .collect();

    // The streams the pool allows open at once: sixteen, and no more however long we wait.
    let sixteen = eventually(PATIENCE, || open.load(Ordering::SeqCst) == 16).await;
    assert!(sixteen, "{} streams open", open.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(open.load(Ordering::SeqCst), 16);

    // Meanwhile another provider is answered at once, and so is a submitter.
    let other = RawProvider::connect(&ticket).await;
    let asked = Instant::now();
    assert!(other.ask().await.is_empty());
    assert!(
        asked.elapsed() < AT_ONCE,
        "answered after {:?}",
        asked.elapsed()
    );

    // Let them go: every one of the hundred is answered in turn, never more than 16 open at a time.
    release.send(true).unwrap();
    for stream in streams {
        let reply = tokio::time::timeout(PATIENCE, stream)
            .await
            .expect("a waiting stream was never let through")
            .unwrap();
        assert!(matches!(reply, Ok(WorkReply::Work { .. })), "{reply:?}");
    }
    assert_eq!(most_open.load(Ordering::SeqCst), 16);

    other.vanish().await;
    if let Ok(flooder) = Arc::try_unwrap(flooder) {
        flooder.vanish().await;
    }
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_never_arrives_whole_is_ended_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_millis(500);
    let config = PoolConfig {
        peer_limits: PeerLimits {
            request_wait: wait,
            ..PeerLimits::default()
        },
        ..test_config()
    };
    let pool = start_pool(&dir.path().join("pool"), SecretKey::generate(), config).await;
    let raw = RawProvider::connect(&pool.ticket()).await;

    // A length announcing 100 bytes, and then nothing, with the stream left open.
    let (mut send, mut recv) = raw.connection.open_bi().await.unwrap();
    send.write_all(&100u32.to_le_bytes()).await.unwrap();
    let started = Instant::now();
    let ended = tokio::time::timeout(PATIENCE, protocol::read_frame::<WorkReply>(&mut recv, 1024))
        .await
        .expect("the pool ends the stream");
    assert!(
        matches!(ended, Err(ProtocolError::Reset(code)) if code == ErrorCode::TimedOut as u64),
        "{ended:?}"
    );
    assert!(
        started.elapsed() >= wait,
        "ended after {:?}",
        started.elapsed()
    );

    // The same connection is served as before.
    assert!(matches!(
        raw.request(&empty_ask()).await,
        Ok(WorkReply::Work { .. })
    ));
    pool.shutdown().await;
}
