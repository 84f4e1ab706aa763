//! Shared by the network tests: a pool, honest providers and a raw work-protocol client, all on
//! 127.0.0.1 with real iroh endpoints and relays off.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use idlegrid::Amount;
use idlegrid::idle::Verdict;
use idlegrid::job::Job;
use idlegrid::ledger::Ledger;
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig, RunningPool};
use idlegrid::protocol::{
    self, Bind, Capabilities, LeaseId, LeaseOffer, MAX_REPLY_FRAME, OutputHeader, ProtocolError,
    WORK_ALPN, WorkReply, WorkRequest,
};
use idlegrid::provider::{Provider, ProviderConfig, ProviderStatus};
use idlegrid::worker::Runner;
use iroh::endpoint::Connection;
use iroh::{Endpoint, SecretKey};
use tokio::sync::watch;

use super::executor;

pub const LOOPBACK: Bind = Bind::At(std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    0,
)));

/// An honest provider running in this process.
pub struct Running {
    pub key: SecretKey,
    pub ledger: Arc<Mutex<Ledger>>,
    pub stop: watch::Sender<bool>,
    pub verdict: watch::Sender<Verdict>,
    pub status: watch::Receiver<ProviderStatus>,
    pub task: tokio::task::JoinHandle<()>,
}

/// One replica per job, no canaries, and quick retries, so tests do not wait on the pool.
pub fn test_config() -> PoolConfig {
    PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            trusted_at: 10,
        },
        canary_rate: 0.0,
        retry_after: Duration::from_millis(100),
        payout_threshold: Amount::from_micros(250),
        ..PoolConfig::default()
    }
}

pub async fn start_pool(dir: &std::path::Path, key: SecretKey, config: PoolConfig) -> RunningPool {
    Pool::open(dir, key, config)
        .unwrap()
        .serve(LOOPBACK)
        .await
        .unwrap()
}

/// Quick reconnects, so tests do not wait on the backoff.
pub fn provider_config() -> ProviderConfig {
    ProviderConfig {
        backoff: (Duration::from_millis(50), Duration::from_millis(500)),
        ..ProviderConfig::default()
    }
}

pub fn start_provider(ticket: &str, dir: &std::path::Path) -> Running {
    start_provider_with(ticket, dir, provider_config(), Verdict::RUN)
}

/// A provider with its own config, starting under `verdict`.
pub fn start_provider_with(
    ticket: &str,
    dir: &std::path::Path,
    config: ProviderConfig,
    verdict: Verdict,
) -> Running {
    start_provider_on(ticket, dir, config, verdict, executor().into())
}

/// A provider running its jobs on `runner` (a worker process, say).
pub fn start_provider_on(
    ticket: &str,
    dir: &std::path::Path,
    config: ProviderConfig,
    verdict: Verdict,
    runner: Runner,
) -> Running {
    let key = SecretKey::generate();
    let pool = protocol::ticket_addr(ticket).unwrap();
    let provider = Provider::new(key.clone(), pool, dir, runner, config).unwrap();
    let ledger = provider.ledger();
    let status = provider.status();
    let (stop, stop_rx) = watch::channel(false);
    let (verdict, verdict_rx) = watch::channel(verdict);
    let task = tokio::spawn(async move {
        provider.run(verdict_rx, stop_rx).await.unwrap();
    });
    Running {
        key,
        ledger,
        stop,
        verdict,
        status,
        task,
    }
}

pub async fn stop_all(providers: Vec<Running>) {
    for p in providers {
        let _ = p.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), p.task).await;
    }
}

/// Waits until `check` holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

pub fn with_replicas(mut job: Job, replicas: u32) -> Job {
    job.verify.replicas = replicas;
    job
}

/// What a raw provider claims its GPU can take: anything.
pub fn big_capabilities() -> Capabilities {
    Capabilities {
        adapter: "honest, really".into(),
        device_type: "discrete".into(),
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 1 << 30,
        max_workgroups_per_dimension: 65535,
        gflops: 1000.0,
    }
}

/// A provider that speaks `idlegrid/work/1` frame by frame, for tests that need to misbehave: vanish
/// mid-lease, give leases back, replay results or make them up.
pub struct RawProvider {
    pub key: SecretKey,
    pub endpoint: Endpoint,
    pub connection: Connection,
}

impl RawProvider {
    pub async fn connect(ticket: &str) -> RawProvider {
        let key = SecretKey::generate();
        let pool = protocol::ticket_addr(ticket).unwrap();
        let endpoint = protocol::bind_endpoint(
            protocol::endpoint_builder(key.clone(), Bind::Toward, Some(&pool)).unwrap(),
        )
        .await
        .unwrap();
        let connection = endpoint.connect(pool, WORK_ALPN).await.unwrap();
        RawProvider {
            key,
            endpoint,
            connection,
        }
    }

    /// One request on its own stream, and the pool's reply.
    pub async fn request(&self, request: &WorkRequest) -> Result<WorkReply, ProtocolError> {
        let (mut send, mut recv) = self.connection.open_bi().await?;
        protocol::write_frame(&mut send, request).await?;
        send.finish()
            .map_err(|e| ProtocolError::Connection(e.to_string()))?;
        protocol::read_frame(&mut recv, MAX_REPLY_FRAME).await
    }

    /// Asks for one lease; returns the leases offered.
    pub async fn ask(&self) -> Vec<LeaseOffer> {
        let ask = WorkRequest::Ask {
            capabilities: big_capabilities(),
            slots: 1,
            stored: vec![],
            binding: None,
        };
        match self.request(&ask).await.unwrap() {
            WorkReply::Work { leases, .. } => leases,
            other => panic!("expected work, got {other:?}"),
        }
    }

    /// Returns `outputs` (name and bytes, in the job's order) for `lease`.
    pub async fn send_result(
        &self,
        lease: LeaseId,
        outputs: &[(String, Vec<u8>)],
    ) -> Result<WorkReply, ProtocolError> {
        let (mut send, mut recv) = self.connection.open_bi().await?;
        let result = WorkRequest::Result {
            lease,
            gpu_micros: 1,
            outputs: outputs
                .iter()
                .map(|(name, bytes)| OutputHeader {
                    name: name.clone(),
                    size: bytes.len() as u64,
                })
                .collect(),
        };
        protocol::write_frame(&mut send, &result).await?;
        for (_, bytes) in outputs {
            send.write_all(bytes).await?;
        }
        send.finish()
            .map_err(|e| ProtocolError::Connection(e.to_string()))?;
        protocol::read_frame(&mut recv, MAX_REPLY_FRAME).await
    }

    /// Gone without a word: the pool only learns of it when the lease lapses.
    pub async fn vanish(self) {
        self.connection.close(0u32.into(), b"");
        self.endpoint.close().await;
    }
}

/// Outputs of the right names and sizes for `lease`, filled with made-up bytes.
pub fn made_up_outputs(lease: &LeaseOffer) -> Vec<(String, Vec<u8>)> {
    lease
        .manifest
        .outputs()
        .map(|b| (b.name.clone(), vec![0xAB; b.init.size() as usize]))
        .collect()
}

/// A provider that answers every lease, canaries included, with made-up outputs until `stop` (or
/// until the pool goes away).
pub async fn byzantine_provider(ticket: &str, stop: watch::Receiver<bool>) -> SecretKey {
    let liar = RawProvider::connect(ticket).await;
    let key = liar.key.clone();
    tokio::spawn(async move {
        let ask = WorkRequest::Ask {
            capabilities: big_capabilities(),
            slots: 1,
            stored: vec![],
            binding: None,
        };
        while !*stop.borrow() {
            let Ok(WorkReply::Work { leases, .. }) = liar.request(&ask).await else {
                break;
            };
            for lease in leases {
                if liar
                    .send_result(lease.lease, &made_up_outputs(&lease))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        liar.vanish().await;
    });
    key
}
