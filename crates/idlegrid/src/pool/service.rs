//! The pool on the network: the `idlegrid/work/1` and `idlegrid/submit/1` handlers. Each request
//! stream is read, checked and answered here; what it means is decided by `Pool`.

use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, PublicKey};
use iroh_tickets::endpoint::EndpointTicket;

use super::{Pool, PoolError};
use crate::protocol::{
    self, Bind, ErrorCode, JobState, MAX_REQUEST_FRAME, OutputHeader, ProtocolError, SUBMIT_ALPN,
    SubmitReply, SubmitRequest, WORK_ALPN, WorkReply, WorkRequest, read_bytes, read_frame, refuse,
    write_frame,
};

/// How often a watcher re-reads its job even without a change (leases lapse by the clock).
const WATCH_TICK: Duration = Duration::from_millis(500);

/// A pool listening on the network; dropping it stops the pool.
pub struct RunningPool {
    pub pool: Pool,
    router: Router,
}

impl RunningPool {
    pub fn ticket(&self) -> String {
        EndpointTicket::new(self.router.endpoint().addr()).to_string()
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    pub async fn shutdown(self) {
        if let Err(error) = self.router.shutdown().await {
            tracing::warn!(%error, "pool shut down uncleanly");
        }
    }
}

impl Pool {
    /// Binds the pool's endpoint and starts answering providers and submitters.
    pub async fn serve(self, bind: Bind) -> Result<RunningPool, ProtocolError> {
        let builder = protocol::endpoint_builder(self.shared.key.clone(), bind, None)?;
        let endpoint = protocol::bind_endpoint(builder).await?;
        let router = Router::builder(endpoint)
            .accept(WORK_ALPN, WorkService(self.clone()))
            .accept(SUBMIT_ALPN, SubmitService(self.clone()))
            .spawn();
        tracing::info!(id = %self.public_key(), "pool listening");
        Ok(RunningPool { pool: self, router })
    }
}

#[derive(Clone)]
struct WorkService(Pool);

#[derive(Clone)]
struct SubmitService(Pool);

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

/// Runs `serve` for each stream the peer opens until the connection ends.
async fn each_stream<F, Fut>(connection: Connection, serve: F) -> Result<(), AcceptError>
where
    F: Fn(PublicKey, SendStream, RecvStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let peer = connection.remote_id();
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve(peer, send, recv));
            }
            Err(error) => {
                tracing::debug!(peer = %peer.fmt_short(), %error, "connection ended");
                return Ok(());
            }
        }
    }
}

/// Reads one request; a bad frame ends the stream with its code and is logged, nothing else.
async fn read_request<T: serde::de::DeserializeOwned>(
    peer: &PublicKey,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Option<T> {
    match read_frame(recv, MAX_REQUEST_FRAME).await {
        Ok(request) => Some(request),
        Err(error) => {
            tracing::warn!(peer = %peer.fmt_short(), %error, "refused a request");
            refuse(send, recv, error.code());
            None
        }
    }
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
        each_stream(connection, move |peer, send, recv| {
            let pool = pool.clone();
            async move {
                if let Err(error) = serve_work(&pool, peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), %error, "work stream ended");
                }
            }
        })
        .await
    }
}

async fn serve_work(
    pool: &Pool,
    peer: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), ProtocolError> {
    let Some(request) = read_request::<WorkRequest>(&peer, &mut send, &mut recv).await else {
        return Ok(());
    };
    let answer = match request {
        WorkRequest::Ask {
            capabilities,
            slots,
            stored,
        } => pool.ask(&peer, &capabilities, slots, &stored),
        WorkRequest::Blob { hash } => {
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
                received.push((
                    header.name.clone(),
                    read_bytes(&mut recv, header.size).await?,
                ));
            }
            pool.submit_result(&peer, lease, received, gpu_micros)
                .map(|()| WorkReply::Ack)
        }
        WorkRequest::Failed { lease, reason } => pool
            .lease_failed(&peer, lease, &reason)
            .map(|()| WorkReply::Ack),
        WorkRequest::GiveBack { leases, reason } => pool
            .give_back(&peer, &leases, &reason)
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
        each_stream(connection, move |peer, send, recv| {
            let pool = pool.clone();
            async move {
                if let Err(error) = serve_submit(&pool, peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), %error, "submit stream ended");
                }
            }
        })
        .await
    }
}

async fn serve_submit(
    pool: &Pool,
    peer: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), ProtocolError> {
    match read_request::<SubmitRequest>(&peer, &mut send, &mut recv).await {
        None => Ok(()),
        Some(SubmitRequest::Job { manifest, nonce }) => {
            let answer = receive_job(pool, &peer, &manifest, nonce, &mut send, &mut recv).await?;
            reply(&mut send, &answer).await
        }
        Some(SubmitRequest::Watch { job }) => watch_job(pool, job, &mut send).await,
    }
}

async fn receive_job(
    pool: &Pool,
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
        let bytes = read_bytes(recv, *size).await?;
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
        if last != Some(progress) {
            write_frame(send, &SubmitReply::Progress(progress)).await?;
            last = Some(progress);
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
