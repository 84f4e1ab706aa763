//! The pool on the network: the `idlegrid/work/1` and `idlegrid/submit/1` handlers. Each request
//! stream is read, checked and answered here; what it means is decided by `Pool`.
//!
//! Before any of that, the [`Gate`]: blocked keys are refused at the handshake, on every protocol,
//! by an endpoint hook (the connection is closed with [`ErrorCode::NotAllowed`] and the reason
//! "blocked" before the router hands it to a handler; a key blocked at run time has its open
//! connections closed the same way at once). Every request stream then takes one request from its
//! peer's bucket (see [`super::limits`]) before a byte of it is read; over the limit, the stream is
//! answered with the protocol's ordinary error reply, "rate limited: retry after N ms", and the
//! peer's half is stopped with [`ErrorCode::RateLimited`] so whatever it meant to send is not read.
//! The connection and its other streams carry on, and the peer is served again once its bucket
//! refills. A peer has at most 16 streams open on a connection at once (the endpoint's QUIC limit),
//! so a flood waits on its own connection while others are served.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use iroh::endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, PublicKey};
use iroh_tickets::endpoint::EndpointTicket;
use tokio::sync::watch;

use super::limits::{Kind, PeerLimits, RateLimiter};
use super::{Pool, PoolError};
use rustls::pki_types::CertificateDer;

use crate::protocol::{
    self, Bind, ErrorCode, JobState, MAX_REQUEST_FRAME, OutputHeader, ProtocolError, Relays,
    SUBMIT_ALPN, SUBMIT_ALPN_2, SubmitReply, SubmitRequest, WORK_ALPN, WorkReply, WorkRequest,
    one_line, read_bytes, read_frame, refuse, write_frame,
};

/// How often a watcher re-reads its job even without a change (leases lapse by the clock).
const WATCH_TICK: Duration = Duration::from_millis(500);

/// The reason a blocked key's connection is closed with.
const BLOCKED: &[u8] = b"blocked";

/// A pool listening on the network; dropping it stops the pool.
pub struct RunningPool {
    pub pool: Pool,
    router: Router,
    gate: Arc<Gate>,
    /// Stops the chain rail's loop (see `pool::chain`).
    stop_chain: watch::Sender<bool>,
    chain_loop: tokio::task::JoinHandle<()>,
    relays: Relays,
}

impl RunningPool {
    pub fn ticket(&self) -> String {
        EndpointTicket::new(self.router.endpoint().addr()).to_string()
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    /// The relays the pool uses.
    pub fn relays(&self) -> &Relays {
        &self.relays
    }

    /// Waits up to `limit` for a home relay (at once `false` with relays off, where it never comes).
    /// The ticket holds the relay's URL only from then on.
    pub async fn online(&self, limit: Duration) -> bool {
        if !self.relays.is_on() {
            return false;
        }
        tokio::time::timeout(limit, self.endpoint().online())
            .await
            .is_ok()
    }

    /// Calls `changed` with each new ticket as the pool's addresses and home relay change (the
    /// relay arriving late, say), until the pool stops.
    pub async fn follow_ticket(&self, mut changed: impl FnMut(&str)) {
        use iroh::Watcher as _;
        let endpoint = self.endpoint();
        let mut addresses = endpoint.watch_addr();
        let mut last = self.ticket();
        let follow = async {
            while let Ok(addr) = addresses.updated().await {
                let ticket = EndpointTicket::new(addr).to_string();
                if ticket != last {
                    changed(&ticket);
                    last = ticket;
                }
            }
        };
        tokio::select! {
            () = follow => {}
            () = endpoint.closed() => {}
        }
    }

    /// Refuses `key` from now on: new connections at the handshake, open ones at once.
    pub fn block(&self, key: PublicKey) {
        self.gate.block(key);
    }

    /// Serves `key` again (from its next connection).
    pub fn unblock(&self, key: &PublicKey) {
        self.gate.unblock(key);
    }

    pub async fn shutdown(self) {
        let _ = self.stop_chain.send(true);
        let _ = self.chain_loop.await;
        if let Err(error) = self.router.shutdown().await {
            tracing::warn!(%error, "pool shut down uncleanly");
        }
    }
}

impl Pool {
    /// Binds the pool's endpoint, direct only, and starts answering providers and submitters.
    pub async fn serve(self, bind: Bind) -> Result<RunningPool, ProtocolError> {
        self.serve_with(bind, &Relays::Off, &[]).await
    }

    /// [`Pool::serve`] with `relays`, trusting `ca_roots` for their TLS.
    pub async fn serve_with(
        self,
        bind: Bind,
        relays: &Relays,
        ca_roots: &[CertificateDer<'static>],
    ) -> Result<RunningPool, ProtocolError> {
        let gate = Arc::new(Gate::new(&self));
        let builder =
            protocol::endpoint_builder_with(self.shared.key.clone(), bind, None, relays, ca_roots)?
                .hooks(RefuseBlocked(Arc::clone(&gate)));
        let endpoint = protocol::bind_endpoint(builder).await?;
        let router = Router::builder(endpoint)
            .accept(WORK_ALPN, WorkService(self.clone(), Arc::clone(&gate)))
            .accept(
                SUBMIT_ALPN,
                SubmitService(self.clone(), Arc::clone(&gate), Speaks::Blockers),
            )
            .accept(
                SUBMIT_ALPN_2,
                SubmitService(self.clone(), Arc::clone(&gate), Speaks::Submit2),
            )
            .spawn();
        tracing::info!(id = %self.public_key(), "pool listening");
        let (stop_chain, stopped) = watch::channel(false);
        let chain_loop = tokio::spawn(self.clone().drive_chain(stopped));
        tracing::info!(id = %self.public_key(), ?relays, "pool listening");
        Ok(RunningPool {
            pool: self,
            router,
            gate,
            stop_chain,
            chain_loop,
            relays: relays.clone(),
        })
    }
}

/// Who may talk to the pool and how often: the blocked keys and every peer's buckets.
pub(super) struct Gate {
    blocked: RwLock<HashSet<PublicKey>>,
    /// Bumped when a key is blocked, so connections already open look again.
    blocks: watch::Sender<u64>,
    limiter: Mutex<RateLimiter>,
    limits: PeerLimits,
    /// The pool's own submitter key: its operator, whose submissions are not limited.
    operator: PublicKey,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Gate {
    fn new(pool: &Pool) -> Gate {
        let config = pool.config();
        Gate {
            blocked: RwLock::new(config.blocked.iter().copied().collect()),
            blocks: watch::channel(0).0,
            limiter: Mutex::new(RateLimiter::new(
                &config.peer_limits.for_retry_after(config.retry_after),
            )),
            limits: config.peer_limits.clone(),
            operator: crate::client::own_submitter_key(&pool.shared.key).public(),
        }
    }

    fn is_blocked(&self, peer: &PublicKey) -> bool {
        // Nothing that can panic runs under the write lock but one insert or remove, so a poisoned
        // lock still guards a whole set.
        self.blocked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(peer)
    }

    fn block(&self, peer: PublicKey) {
        self.blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer);
        tracing::info!(%peer, "blocked");
        self.blocks.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn unblock(&self, peer: &PublicKey) {
        self.blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(peer);
        tracing::info!(%peer, "unblocked");
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        // The limiter is left consistent between statements; a panic elsewhere cannot tear it.
        crate::sync::lock(&self.limiter)
    }

    /// Takes one request of `kind` from `peer`'s bucket, or says how long until there is one.
    fn admit(&self, peer: &PublicKey, kind: Kind) -> Result<(), Duration> {
        if kind == Kind::Submission && *peer == self.operator {
            return Ok(());
        }
        self.limiter().check(peer, kind, Instant::now())
    }

    /// The request did work the pool wants done: it does not count against the peer.
    fn refund(&self, peer: &PublicKey, kind: Kind) {
        self.limiter().refund(peer, kind);
    }
}

/// Closes a blocked key's connection as soon as its handshake says who it is, before any handler
/// sees it: the earliest a key is known, since QUIC learns it from the TLS handshake.
#[derive(Debug)]
struct RefuseBlocked(Arc<Gate>);

impl EndpointHooks for RefuseBlocked {
    async fn after_handshake(&self, connection: &Connection) -> AfterHandshakeOutcome {
        let peer = connection.remote_id();
        if self.0.is_blocked(&peer) {
            tracing::debug!(peer = %peer.fmt_short(), "refused a blocked key");
            return AfterHandshakeOutcome::Reject {
                error_code: ErrorCode::NotAllowed.var_int(),
                reason: BLOCKED.to_vec(),
            };
        }
        AfterHandshakeOutcome::Accept
    }
}

#[derive(Clone)]
struct WorkService(Pool, Arc<Gate>);

#[derive(Clone)]
struct SubmitService(Pool, Arc<Gate>, Speaks);

/// Which submit protocol a submitter's connection speaks, so it gets only frames it can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Speaks {
    /// `idlegrid/submit/2`: no `Blocked` frames.
    Submit2,
    /// `idlegrid/submit/3`: a `Blocked` frame before each `Progress` of a blocked job.
    Blockers,
}

impl std::fmt::Debug for WorkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkService")
    }
}

impl std::fmt::Debug for SubmitService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmitService")
    }
}

/// Runs `serve` for each stream the peer opens until the connection ends, or until the peer is
/// blocked.
async fn each_stream<F, Fut>(
    connection: Connection,
    gate: &Gate,
    serve: F,
) -> Result<(), AcceptError>
where
    F: Fn(PublicKey, SendStream, RecvStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let peer = connection.remote_id();
    let mut blocks = gate.blocks.subscribe();
    let close_if_blocked = || {
        let blocked = gate.is_blocked(&peer);
        if blocked {
            tracing::info!(peer = %peer.fmt_short(), "closed a blocked key's connection");
            connection.close(ErrorCode::NotAllowed.var_int(), BLOCKED);
        }
        blocked
    };
    // Blocked after the handshake passed but before the subscription above: nothing would wake us.
    if close_if_blocked() {
        return Ok(());
    }
    loop {
        tokio::select! {
            accepted = connection.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    // A stream that raced the block is not served.
                    if close_if_blocked() {
                        return Ok(());
                    }
                    tokio::spawn(serve(peer, send, recv));
                }
                Err(error) => {
                    tracing::debug!(peer = %peer.fmt_short(), %error, "connection ended");
                    return Ok(());
                }
            },
            // The gate outlives every connection, so the sender is never dropped while this runs
            // (and if it were, the branch would only be disabled).
            Ok(()) = blocks.changed() => {
                if close_if_blocked() {
                    return Ok(());
                }
            }
        }
    }
}

/// Answers a stream whose peer is over its limit without reading it: the protocol's error reply,
/// then the peer's half stopped so the rest of its request is not read.
async fn rate_limited<R: serde::Serialize>(
    peer: &PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
    wait: Duration,
    error: impl FnOnce(String) -> R,
) -> Result<(), ProtocolError> {
    let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    // At debug level: a flood would otherwise flood the log as well.
    tracing::debug!(peer = %peer.fmt_short(), retry_ms = millis, "rate limited");
    let message = format!("rate limited: retry after {} ms", millis.max(1));
    let replied = reply(&mut send, &error(message)).await;
    let _ = recv.stop(ErrorCode::RateLimited.var_int());
    replied
}

/// Reads one request; a bad frame ends the stream with its code and is logged, nothing else.
async fn read_request<T: serde::de::DeserializeOwned>(
    peer: &PublicKey,
    wait: Duration,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Option<T> {
    let read = within(wait, "its request", read_frame(recv, MAX_REQUEST_FRAME));
    match read.await {
        Ok(request) => Some(request),
        Err(error) => {
            tracing::warn!(peer = %peer.fmt_short(), %error, "refused a request");
            refuse(send, recv, error.code());
            None
        }
    }
}

/// `read`, or [`ProtocolError::TimedOut`] once `limit` has passed.
async fn within<T>(
    limit: Duration,
    what: &'static str,
    read: impl Future<Output = Result<T, ProtocolError>>,
) -> Result<T, ProtocolError> {
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(ProtocolError::TimedOut { what, limit }))
}

async fn reply<T: serde::Serialize>(
    send: &mut SendStream,
    message: &T,
) -> Result<(), ProtocolError> {
    write_frame(send, message).await?;
    send.finish().map_err(ProtocolError::from)
}

impl ProtocolHandler for WorkService {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let pool = self.0.clone();
        let gate = Arc::clone(&self.1);
        each_stream(connection, &self.1, move |peer, send, recv| {
            let pool = pool.clone();
            let gate = Arc::clone(&gate);
            async move {
                if let Err(error) = serve_work(&pool, &gate, peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), %error, "work stream ended");
                }
            }
        })
        .await
    }
}

/// The work protocol's error reply.
fn work_error(message: String) -> WorkReply {
    WorkReply::Error { message }
}

async fn serve_work(
    pool: &Pool,
    gate: &Gate,
    peer: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), ProtocolError> {
    if let Err(wait) = gate.admit(&peer, Kind::WorkRequest) {
        return rate_limited(&peer, send, recv, wait, work_error).await;
    }
    let wait = gate.limits.request_wait;
    let Some(request) = read_request::<WorkRequest>(&peer, wait, &mut send, &mut recv).await else {
        return Ok(());
    };
    let answer = match request {
        WorkRequest::Ask {
            capabilities,
            slots,
            stored,
            binding,
        } => {
            let answer = pool.ask(&peer, &capabilities, slots, &stored, binding.as_ref());
            // An ask that got leases is a provider doing work; only empty ones count against it.
            if matches!(&answer, Ok(WorkReply::Work { leases, .. }) if !leases.is_empty()) {
                gate.refund(&peer, Kind::WorkRequest);
            }
            answer
        }
        WorkRequest::Blob { hash } => {
            // Counted as a blob fetch instead, with its own (lower) limit.
            if let Err(wait) = gate.admit(&peer, Kind::BlobFetch) {
                return rate_limited(&peer, send, recv, wait, work_error).await;
            }
            gate.refund(&peer, Kind::WorkRequest);
            let hash = blake3::Hash::from_bytes(hash);
            return match pool.blob(&hash) {
                Some(bytes) => {
                    write_frame(
                        &mut send,
                        &WorkReply::Blob {
                            size: bytes.len() as u64,
                        },
                    )
                    .await?;
                    send.write_all(&bytes).await?;
                    send.finish().map_err(ProtocolError::from)
                }
                None => {
                    let message = format!("no input {} in this pool", &hash.to_hex()[..16]);
                    reply(&mut send, &WorkReply::Error { message }).await
                }
            };
        }
        WorkRequest::Result {
            lease,
            gpu_micros,
            outputs,
        } => {
            let expected = match pool.expected_outputs(&peer, lease) {
                Ok(expected) => expected,
                Err(error) => return refuse_with(&mut send, &mut recv, error).await,
            };
            if outputs != expected {
                let error = PoolError::WrongOutputs(describe_mismatch(&outputs, &expected));
                return refuse_with(&mut send, &mut recv, error).await;
            }
            let mut received = Vec::with_capacity(outputs.len());
            for header in &outputs {
                let wait = gate.limits.bulk_wait(header.size);
                let bytes = within(wait, "its outputs", read_bytes(&mut recv, header.size));
                received.push((header.name.clone(), bytes.await?));
            }
            let taken = pool.submit_result(&peer, lease, received, gpu_micros);
            // A result taken is work done (and cannot be sent twice); refused ones count.
            if taken.is_ok() {
                gate.refund(&peer, Kind::WorkRequest);
            }
            taken.map(|()| WorkReply::Ack)
        }
        WorkRequest::Failed {
            lease,
            fault,
            reason,
        } => pool
            .lease_failed(&peer, lease, fault, &one_line(&reason))
            .map(|()| WorkReply::Ack),
        WorkRequest::GiveBack { leases, reason } => pool
            .give_back(&peer, &leases, &one_line(&reason))
            .map(|()| WorkReply::Ack),
    };
    let answer = answer.unwrap_or_else(|error| {
        tracing::info!(peer = %peer.fmt_short(), %error, "work request refused");
        WorkReply::Error {
            message: error.to_string(),
        }
    });
    reply(&mut send, &answer).await
}

/// Says why, then ends the stream so the bytes the peer meant to send after its frame are not read.
async fn refuse_with(
    send: &mut SendStream,
    recv: &mut RecvStream,
    error: PoolError,
) -> Result<(), ProtocolError> {
    let message = error.to_string();
    let _ = recv.stop(ErrorCode::Malformed.var_int());
    reply(send, &WorkReply::Error { message }).await
}

fn describe_mismatch(got: &[OutputHeader], expected: &[OutputHeader]) -> String {
    let list = |outputs: &[OutputHeader]| {
        outputs
            .iter()
            .map(|o| format!("{} ({} bytes)", o.name, o.size))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("expected {}, got {}", list(expected), list(got))
}

impl ProtocolHandler for SubmitService {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        if !self.0.may_submit(&peer) {
            tracing::warn!(submitter = %peer, "refused a submitter that is not allowed");
            let reason = format!(
                "this pool does not accept jobs from {peer}; its operator can allow it with --allow {peer}"
            );
            connection.close(ErrorCode::NotAllowed.var_int(), reason.as_bytes());
            return Ok(());
        }
        let pool = self.0.clone();
        let gate = Arc::clone(&self.1);
        let speaks = self.2;
        each_stream(connection, &self.1, move |peer, send, recv| {
            let pool = pool.clone();
            let gate = Arc::clone(&gate);
            async move {
                if let Err(error) = serve_submit(&pool, &gate, speaks, peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), %error, "submit stream ended");
                }
            }
        })
        .await
    }
}

async fn serve_submit(
    pool: &Pool,
    gate: &Gate,
    speaks: Speaks,
    peer: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), ProtocolError> {
    if let Err(wait) = gate.admit(&peer, Kind::Submission) {
        let error = |message| SubmitReply::Error { message };
        return rate_limited(&peer, send, recv, wait, error).await;
    }
    let wait = gate.limits.request_wait;
    match read_request::<SubmitRequest>(&peer, wait, &mut send, &mut recv).await {
        None => Ok(()),
        Some(SubmitRequest::Job { manifest, nonce }) => {
            let answer =
                receive_job(pool, gate, &peer, &manifest, nonce, &mut send, &mut recv).await?;
            reply(&mut send, &answer).await
        }
        Some(SubmitRequest::Watch { job }) => watch_job(pool, job, speaks, &mut send).await,
    }
}

async fn receive_job(
    pool: &Pool,
    gate: &Gate,
    peer: &PublicKey,
    manifest: &crate::job::Job,
    nonce: u64,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<SubmitReply, ProtocolError> {
    let refused = |error: PoolError| SubmitReply::Error {
        message: error.to_string(),
    };
    let (job, missing) = match pool.offer_job(peer, manifest, nonce) {
        Ok(offer) => offer,
        Err(error) => return Ok(refused(error)),
    };
    let Some(missing) = missing else {
        return Ok(SubmitReply::Accepted { job });
    };
    let hashes = missing.iter().map(|(h, _)| *h.as_bytes()).collect();
    write_frame(send, &SubmitReply::NeedBlobs { hashes }).await?;
    for (hash, size) in &missing {
        // `size` was checked against the pool's limits with the manifest.
        let bytes = within(
            gate.limits.bulk_wait(*size),
            "its inputs",
            read_bytes(recv, *size),
        );
        let bytes = bytes.await?;
        if let Err(error) = pool.store_blob(hash, &bytes) {
            let _ = recv.stop(ErrorCode::Malformed.var_int());
            return Ok(refused(error));
        }
    }
    Ok(match pool.enqueue(peer, job, manifest) {
        Ok(()) => SubmitReply::Accepted { job },
        Err(error) => refused(error),
    })
}

async fn watch_job(
    pool: &Pool,
    job: crate::statement::Id,
    speaks: Speaks,
    send: &mut SendStream,
) -> Result<(), ProtocolError> {
    let mut changes = pool.subscribe();
    let mut last = None;
    loop {
        let super::JobReport {
            progress,
            outputs,
            reason,
        } = match pool.progress(&job) {
            Ok(found) => found,
            Err(error) => {
                let message = error.to_string();
                return reply(send, &SubmitReply::Error { message }).await;
            }
        };
        if last.as_ref() != Some(&progress) {
            if let (Speaks::Blockers, Some(blocker)) = (speaks, progress.blocked) {
                write_frame(send, &SubmitReply::Blocked(blocker)).await?;
            }
            write_frame(send, &SubmitReply::Progress(progress.clone())).await?;
            last = Some(progress.clone());
        }
        match progress.state {
            JobState::Verified => {
                let outputs = outputs.unwrap_or_default();
                let headers = outputs
                    .iter()
                    .map(|(name, bytes)| OutputHeader {
                        name: name.clone(),
                        size: bytes.len() as u64,
                    })
                    .collect();
                write_frame(send, &SubmitReply::Verified { outputs: headers }).await?;
                for (_, bytes) in &outputs {
                    send.write_all(bytes).await?;
                }
                return send.finish().map_err(ProtocolError::from);
            }
            JobState::Failed => {
                let reason = reason.unwrap_or_else(|| "the job failed".into());
                return reply(send, &SubmitReply::Failed { reason }).await;
            }
            JobState::Queued | JobState::Running => {}
        }
        // Either a change or the tick: both mean look again.
        let _ = tokio::time::timeout(WATCH_TICK, changes.changed()).await;
    }
}
