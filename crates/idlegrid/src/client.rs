//! The submitter's side: send a job to a pool, follow it, and receive its verified outputs.
//!
//! ```no_run
//! # async fn example(ticket: &str, key: iroh::SecretKey, job: idlegrid::Job) -> Result<(), idlegrid::client::ClientError> {
//! let client = idlegrid::client::Client::connect(ticket, key).await?;
//! let handle = client.submit(&job).await?;
//! let outputs = handle.wait().await?;
//! # Ok(()) }
//! ```
//!
//! A lost connection (the pool restarting, say) is not the end of a job: the client reconnects and
//! asks again, and submitting again with the same nonce never queues the job twice.

use std::time::Duration;

use iroh::endpoint::{ConnectOptions, Connection};
use iroh::{Endpoint, EndpointAddr, SecretKey};

use crate::gpu::OutputBuffer;
use crate::job::Job;
use crate::protocol::{
    self, Bind, JobProgress, MAX_REPLY_FRAME, Network, OutputHeader, ProtocolError, SUBMIT_ALPN,
    SUBMIT_ALPN_2, SubmitReply, SubmitRequest, read_bytes, read_frame, write_frame,
};
use crate::statement::Id;

/// How long a client keeps trying to reach a pool that went away before giving up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the pool refused the job: {0}")]
    Refused(String),
    #[error("the job failed: {0}")]
    Failed(String),
    #[error("the pool sent an unexpected reply")]
    Unexpected,
}

/// A connection to one pool as a submitter.
pub struct Client {
    endpoint: Endpoint,
    pool: EndpointAddr,
    connection: tokio::sync::Mutex<Connection>,
}

/// A job the pool has accepted.
pub struct JobHandle<'a> {
    client: &'a Client,
    job: Id,
    /// What the outputs must be, so a pool cannot make the client allocate more.
    outputs: Vec<OutputHeader>,
}

impl Client {
    /// Connects to the pool a ticket names, as the identity `key`, through the relays the ticket
    /// names.
    pub async fn connect(ticket: &str, key: SecretKey) -> Result<Client, ClientError> {
        Client::connect_with(ticket, key, &Network::default()).await
    }

    /// [`Client::connect`] with the relays that `network` chooses.
    pub async fn connect_with(
        ticket: &str,
        key: SecretKey,
        network: &Network,
    ) -> Result<Client, ClientError> {
        let pool = protocol::ticket_addr(ticket)?;
        // iroh cannot connect an endpoint to its own id: the pool's operator submits as the pool's
        // submitter key instead, which the pool always allows.
        let key = if key.public() == pool.id {
            own_submitter_key(&key)
        } else {
            key
        };
        let relays = network.for_peer(&pool);
        let builder = protocol::endpoint_builder_with(
            key,
            Bind::Toward,
            Some(&pool),
            &relays,
            &network.ca_roots,
        )?;
        let endpoint = protocol::bind_endpoint(builder).await?;
        let connection = match dial(&endpoint, &pool).await {
            Ok(connection) => connection,
            Err(error) => {
                endpoint.close().await;
                return Err(error);
            }
        };
        Ok(Client {
            endpoint,
            pool,
            connection: tokio::sync::Mutex::new(connection),
        })
    }

    /// Sends the job with a fresh nonce.
    pub async fn submit(&self, job: &Job) -> Result<JobHandle<'_>, ClientError> {
        self.submit_with_nonce(job, fresh_nonce()).await
    }

    /// Sends the job; the same job and nonce sent again name the same queued job.
    pub async fn submit_with_nonce(
        &self,
        job: &Job,
        nonce: u64,
    ) -> Result<JobHandle<'_>, ClientError> {
        let (manifest, blobs) = job.clone().into_manifest();
        let blobs: Vec<(blake3::Hash, &[u8])> =
            blobs.iter().map(|(h, b)| (*h, b.as_slice())).collect();
        self.submit_parts(manifest, &blobs, nonce).await
    }

    /// Sends a manifest whose blobs the caller holds (`blobs`: hash and bytes), with a fresh nonce; the
    /// pool asks only for those it lacks. Large inputs shared by many jobs (model weights) are hashed
    /// once this way, not once a job.
    pub async fn submit_manifest(
        &self,
        manifest: Job,
        blobs: &[(blake3::Hash, &[u8])],
    ) -> Result<JobHandle<'_>, ClientError> {
        self.submit_parts(manifest, blobs, fresh_nonce()).await
    }

    async fn submit_parts(
        &self,
        manifest: Job,
        blobs: &[(blake3::Hash, &[u8])],
        nonce: u64,
    ) -> Result<JobHandle<'_>, ClientError> {
        let request = SubmitRequest::Job { manifest, nonce };
        let job = self
            .retrying(|connection| {
                let request = request.clone();
                let blobs = &blobs;
                async move { send_job(&connection, &request, blobs).await }
            })
            .await?;
        let outputs = job_outputs(&request);
        Ok(JobHandle {
            client: self,
            job,
            outputs,
        })
    }

    /// Runs `attempt` on the current connection, reconnecting while the pool is unreachable.
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let connection = self.connection.lock().await.clone();
            match attempt(connection).await {
                Err(ClientError::Protocol(ProtocolError::Connection(reason)))
                    if started.elapsed() < RECONNECT_FOR =>
                {
                    tracing::info!(%reason, "lost the pool; reconnecting");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    if let Ok(fresh) = dial(&self.endpoint, &self.pool).await {
                        *self.connection.lock().await = fresh;
                    }
                }
                other => return other,
            }
        }
    }

    pub async fn close(self) {
        self.connection.lock().await.close(0u32.into(), b"done");
        self.endpoint.close().await;
    }
}

impl JobHandle<'_> {
    pub fn id(&self) -> Id {
        self.job
    }

    /// Waits until the job is verified and returns its outputs.
    pub async fn wait(self) -> Result<Vec<OutputBuffer>, ClientError> {
        self.wait_with(|_| {}).await
    }

    /// As `wait`, calling `progress` each time the job moves.
    pub async fn wait_with(
        self,
        mut progress: impl FnMut(JobProgress),
    ) -> Result<Vec<OutputBuffer>, ClientError> {
        let job = self.job;
        let expected = &self.outputs;
        let progress = std::sync::Mutex::new(&mut progress);
        self.client
            .retrying(|connection| {
                let progress = &progress;
                async move {
                    watch(&connection, job, expected, |p| {
                        if let Ok(mut report) = progress.lock() {
                            report(p);
                        }
                    })
                    .await
                }
            })
            .await
    }
}

fn fresh_nonce() -> u64 {
    u64::from_le_bytes(
        blake3::hash(&SecretKey::generate().to_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    )
}

/// The key a pool's own identity submits with; derived, so only the pool's owner can have it.
pub fn own_submitter_key(pool_key: &SecretKey) -> SecretKey {
    SecretKey::from_bytes(&blake3::derive_key(
        "idlegrid pool owner submitter key v1",
        &pool_key.to_bytes(),
    ))
}

fn job_outputs(request: &SubmitRequest) -> Vec<OutputHeader> {
    match request {
        SubmitRequest::Job { manifest, .. } => OutputHeader::expected(manifest),
        SubmitRequest::Watch { .. } => Vec::new(),
    }
}

/// Connects speaking submit/3, or submit/2 to a pool from before it (which sends no `Blocked` frames).
async fn dial(endpoint: &Endpoint, pool: &EndpointAddr) -> Result<Connection, ClientError> {
    let failed = |message: String| {
        ClientError::Protocol(ProtocolError::Connect {
            peer: pool.id.fmt_short().to_string(),
            message,
        })
    };
    let older = ConnectOptions::new().with_additional_alpns(vec![SUBMIT_ALPN_2.to_vec()]);
    endpoint
        .connect_with_opts(pool.clone(), SUBMIT_ALPN, older)
        .await
        .map_err(|e| failed(e.to_string()))?
        .await
        .map_err(|e| failed(e.to_string()))
}

async fn send_job(
    connection: &Connection,
    request: &SubmitRequest,
    blobs: &[(blake3::Hash, &[u8])],
) -> Result<Id, ClientError> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(ProtocolError::from)?;
    write_frame(&mut send, request).await?;
    loop {
        match read_frame(&mut recv, MAX_REPLY_FRAME).await? {
            SubmitReply::NeedBlobs { hashes } => {
                for hash in hashes {
                    let bytes = blobs
                        .iter()
                        .find(|(h, _)| *h.as_bytes() == hash)
                        .map(|(_, b)| b)
                        .ok_or(ClientError::Unexpected)?;
                    send.write_all(bytes).await.map_err(ProtocolError::from)?;
                }
            }
            SubmitReply::Accepted { job } => {
                let _ = send.finish();
                return Ok(job);
            }
            SubmitReply::Error { message } => return Err(ClientError::Refused(message)),
            _ => return Err(ClientError::Unexpected),
        }
    }
}

async fn watch(
    connection: &Connection,
    job: Id,
    expected: &[OutputHeader],
    mut progress: impl FnMut(JobProgress),
) -> Result<Vec<OutputBuffer>, ClientError> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(ProtocolError::from)?;
    write_frame(&mut send, &SubmitRequest::Watch { job }).await?;
    send.finish().map_err(ProtocolError::from)?;
    // A `Blocked` frame belongs to the `Progress` frame after it.
    let mut blocked = None;
    loop {
        match read_frame(&mut recv, MAX_REPLY_FRAME).await? {
            SubmitReply::Blocked(blocker) => blocked = Some(blocker),
            SubmitReply::Progress(mut p) => {
                p.blocked = blocked.take();
                progress(p);
            }
            SubmitReply::Verified { outputs } => {
                if outputs != expected {
                    return Err(ClientError::Unexpected);
                }
                let mut buffers = Vec::with_capacity(outputs.len());
                for header in outputs {
                    let bytes = read_bytes(&mut recv, header.size).await?;
                    buffers.push(OutputBuffer {
                        name: header.name,
                        blake3: blake3::hash(&bytes),
                        bytes,
                    });
                }
                return Ok(buffers);
            }
            SubmitReply::Failed { reason } => return Err(ClientError::Failed(reason)),
            SubmitReply::Error { message } => return Err(ClientError::Refused(message)),
            _ => return Err(ClientError::Unexpected),
        }
    }
}
