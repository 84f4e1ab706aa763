//! Network benchmarks (run with `cargo bench -p idlegrid --bench network`), every role in this process
//! on real iroh endpoints bound to 127.0.0.1 with relays off:
//!
//! 1. Round trip of a tiny job (256 u32, one pass), `Client::submit` to `wait` returning the verified
//!    output, one provider, one replica, no canaries. An idle provider asks again only every
//!    `retry_after`, so the round trip includes that wait; it is measured with the pool telling idle
//!    providers 25 ms and 1 ms, submissions spread evenly over the provider's polling phase.
//! 2. Pipelined throughput: N tiny jobs submitted back to back, then waited for, one provider.
//! 3. A 256 MiB input fetched from the pool the way a provider fetches it (`WorkRequest::Blob` on a
//!    work connection), against a plain tokio `TcpStream` copy of the same bytes on 127.0.0.1; and the
//!    same input uploaded with `Client::submit`.
//! 4. The pool under many providers: `Pool::ask` called directly (the decision and SQLite path, no
//!    network) with 1k and 10k distinct provider keys, on an empty queue and on a queue of one job
//!    per provider; then 200 real endpoints, one connection each, asking over the network. Ten
//!    thousand iroh endpoints do not fit one process on a small machine, and identity is the
//!    endpoint's key, so the large counts go through `Pool::ask` itself.
//!
//! `--quick` (or IDLEGRID_BENCH_QUICK=1, or running without `--bench` as `cargo test --benches` does)
//! uses small sizes. `--only trip,pipe,transfer,pool,net` runs just those sections (for profiling).

use std::sync::Arc;
use std::time::{Duration, Instant};

use idlegrid::client::{Client, own_submitter_key};
use idlegrid::gpu::{AdapterChoice, Executor};
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, Pass, Verify};
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig, RunningPool, job_id};
use idlegrid::protocol::{
    self, Bind, Capabilities, MAX_REPLY_FRAME, WORK_ALPN, WorkReply, WorkRequest,
};
use idlegrid::provider::{Provider, ProviderConfig};
use iroh::endpoint::Connection;
use iroh::{Endpoint, PublicKey, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const LOOPBACK: Bind = Bind::At(std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    0,
)));

/// Elements of the tiny job's one buffer.
const TINY: u32 = 256;

const TINY_WGSL: &str = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    data[id.x] = data[id.x] * 3u + id.x;
}";

struct Sizes {
    round_trips: usize,
    pipelined: usize,
    blob_bytes: usize,
    blob_runs: usize,
    upload_runs: usize,
    providers: [usize; 2],
    /// Providers asking in the rounds with a queue, at each provider count (see `direct_asks`).
    sampled_asks: usize,
    endpoints: usize,
    concurrent_for: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                round_trips: 20,
                pipelined: 40,
                blob_bytes: 32 << 20,
                blob_runs: 2,
                upload_runs: 1,
                providers: [100, 1000],
                sampled_asks: 200,
                endpoints: 20,
                concurrent_for: Duration::from_millis(500),
            }
        } else {
            Sizes {
                round_trips: 200,
                pipelined: 200,
                blob_bytes: 256 << 20,
                blob_runs: 7,
                upload_runs: 3,
                providers: [1_000, 10_000],
                sampled_asks: 1_000,
                endpoints: 200,
                concurrent_for: Duration::from_secs(3),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    median: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    assert!(!samples.is_empty());
    samples.sort();
    let n = samples.len();
    // Nearest rank.
    let rank = |q: f64| samples[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stats {
        n,
        median: rank(0.5),
        p99: rank(0.99),
        max: samples[n - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The roles

fn pool_config(retry_after: Duration) -> PoolConfig {
    PoolConfig {
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            trusted_at: 10,
        },
        canary_rate: 0.0,
        retry_after,
        // The load sections ask as fast as they can from single peers: the pool's own capacity is what
        // they measure, not its per-peer limits (tests/network/limits.rs covers those).
        peer_limits: idlegrid::pool::limits::PeerLimits::unlimited(),
        ..PoolConfig::default()
    }
}

fn tiny_job() -> Job {
    Job {
        name: "tiny".into(),
        source_name: "tiny.wgsl".into(),
        wgsl: TINY_WGSL.into(),
        buffers: vec![BufferSpec {
            name: "data".into(),
            binding: 0,
            init: BufferInit::Zeros(u64::from(TINY) * 4),
            access: Access::ReadWrite,
            output: true,
        }],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [TINY / 64, 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

fn check_tiny(bytes: &[u8]) {
    let expected: Vec<u8> = (0..TINY).flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(bytes, expected, "the tiny job's output");
}

/// A pool, one provider and a client, all on loopback.
struct Grid {
    _dir: tempfile::TempDir,
    pool: RunningPool,
    client: Client,
    stop: watch::Sender<bool>,
    _verdict: watch::Sender<idlegrid::idle::Verdict>,
    provider: Option<tokio::task::JoinHandle<()>>,
}

impl Grid {
    async fn start(config: PoolConfig, slots: Option<u32>) -> Grid {
        let dir = tempfile::tempdir().unwrap();
        let owner = SecretKey::generate();
        let pool = Pool::open(&dir.path().join("pool"), owner.clone(), config)
            .unwrap()
            .serve(LOOPBACK)
            .await
            .unwrap();
        let ticket = pool.ticket();
        let (stop, stop_rx) = watch::channel(false);
        let (verdict, verdict_rx) = watch::channel(idlegrid::idle::Verdict::RUN);
        let provider = slots.map(|slots| {
            let provider = Provider::new(
                SecretKey::generate(),
                protocol::ticket_addr(&ticket).unwrap(),
                &dir.path().join("provider"),
                Executor::new(&AdapterChoice::from_flag_or_env(None)).expect("a GPU adapter"),
                ProviderConfig {
                    slots,
                    backoff: (Duration::from_millis(20), Duration::from_millis(200)),
                    ..ProviderConfig::default()
                },
            )
            .unwrap();
            tokio::spawn(async move {
                provider.run(verdict_rx, stop_rx).await.unwrap();
            })
        });
        let client = Client::connect(&ticket, owner).await.unwrap();
        Grid {
            _dir: dir,
            pool,
            client,
            stop,
            _verdict: verdict,
            provider,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.provider {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.client.close().await;
        self.pool.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: tiny jobs

/// Submit-to-verified-output times of `count` tiny jobs, one at a time, each submitted at an evenly
/// spread point of the idle provider's polling period.
async fn round_trips(retry_after: Duration, count: usize) -> Stats {
    let grid = Grid::start(pool_config(retry_after), Some(1)).await;
    let job = tiny_job();
    for _ in 0..3 {
        let out = grid
            .client
            .submit(&job)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        check_tiny(&out[0].bytes);
    }
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        // Golden-ratio steps cover [0, 1) evenly in any prefix.
        let phase = (i as f64 * 0.618_033_988_75).fract();
        tokio::time::sleep(retry_after.mul_f64(phase)).await;
        let start = Instant::now();
        let out = grid
            .client
            .submit(&job)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        samples.push(start.elapsed());
        check_tiny(&out[0].bytes);
    }
    grid.stop().await;
    stats(samples)
}

struct Pipelined {
    jobs: usize,
    submitted: Duration,
    total: Duration,
}

/// `count` tiny jobs submitted back to back, then waited for in order.
async fn pipelined(slots: u32, count: usize) -> Pipelined {
    let grid = Grid::start(pool_config(Duration::from_millis(25)), Some(slots)).await;
    let job = tiny_job();
    let out = grid
        .client
        .submit(&job)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    check_tiny(&out[0].bytes);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        handles.push(grid.client.submit(&job).await.unwrap());
    }
    let submitted = start.elapsed();
    for handle in handles {
        let out = handle.wait().await.unwrap();
        check_tiny(&out[0].bytes);
    }
    let total = start.elapsed();
    grid.stop().await;
    Pipelined {
        jobs: count,
        submitted,
        total,
    }
}

// ---------------------------------------------------------------------------------------------
// 3: a large input

fn big_input(len: usize, variant: u32) -> Vec<u8> {
    let mut x = 0x9E37_79B9u32 ^ variant.wrapping_mul(0x85EB_CA6B);
    let mut bytes = Vec::with_capacity(len);
    for _ in 0..len / 4 {
        // xorshift32: incompressible enough that nothing on the path can shortcut it.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.resize(len, 0);
    bytes
}

async fn work_endpoint(pool: &RunningPool) -> (Endpoint, Connection) {
    let addr = protocol::ticket_addr(&pool.ticket()).unwrap();
    let endpoint = protocol::bind_endpoint(
        protocol::endpoint_builder(SecretKey::generate(), Bind::Toward, Some(&addr)).unwrap(),
    )
    .await
    .unwrap();
    let connection = endpoint.connect(addr, WORK_ALPN).await.unwrap();
    (endpoint, connection)
}

/// What a provider does for an input it lacks: one stream, a `Blob` request, the bytes back.
async fn fetch_blob(connection: &Connection, hash: &blake3::Hash) -> Vec<u8> {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    protocol::write_frame(
        &mut send,
        &WorkRequest::Blob {
            hash: *hash.as_bytes(),
        },
    )
    .await
    .unwrap();
    send.finish().unwrap();
    let WorkReply::Blob { size } = protocol::read_frame(&mut recv, MAX_REPLY_FRAME)
        .await
        .unwrap()
    else {
        panic!("the pool did not send the blob");
    };
    protocol::read_bytes(&mut recv, size).await.unwrap()
}

/// A plain TCP copy on 127.0.0.1 shaped like the fetch: a one-byte request on a connected stream,
/// then the bytes into a fresh buffer of their size.
async fn tcp_copy(bytes: Arc<Vec<u8>>) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let len = bytes.len();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1];
        stream.read_exact(&mut request).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    stream.write_all(&[1]).await.unwrap();
    let mut received = vec![0u8; len];
    stream.read_exact(&mut received).await.unwrap();
    let took = start.elapsed();
    server.await.unwrap();
    assert_eq!(received.len(), len);
    took
}

fn big_job(input: Vec<u8>) -> Job {
    Job {
        name: "big".into(),
        source_name: "big.wgsl".into(),
        wgsl: "@group(0) @binding(0) var<storage, read> input: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main() { out[0] = input[0]; }"
            .into(),
        buffers: vec![
            BufferSpec {
                name: "input".into(),
                binding: 0,
                init: BufferInit::Bytes(input),
                access: Access::Read,
                output: false,
            },
            BufferSpec {
                name: "out".into(),
                binding: 1,
                init: BufferInit::Zeros(4),
                access: Access::ReadWrite,
                output: true,
            },
        ],
        passes: vec![Pass {
            entry: "main".into(),
            workgroups: [1, 1, 1],
        }],
        verify: Verify::default(),
        reward: None,
    }
}

struct Transfer {
    bytes: usize,
    fetch: Vec<Duration>,
    pool_read: Vec<Duration>,
    tcp: Vec<Duration>,
    upload: Vec<Duration>,
}

async fn transfer(sizes: &Sizes) -> Transfer {
    let len = sizes.blob_bytes;
    let grid = Grid::start(pool_config(Duration::from_secs(1)), None).await;
    let input = Arc::new(big_input(len, 0));
    let hash = blake3::hash(&input);
    grid.pool.pool.store_blob(&hash, &input).unwrap();
    let (endpoint, connection) = work_endpoint(&grid.pool).await;
    assert!(
        fetch_blob(&connection, &hash).await == *input,
        "fetched bytes"
    );

    let (mut fetch, mut pool_read, mut tcp) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.blob_runs {
        let start = Instant::now();
        let bytes = fetch_blob(&connection, &hash).await;
        fetch.push(start.elapsed());
        assert_eq!(bytes.len(), len);
        drop(bytes);
        // What the pool does before its first byte goes out: read the file and check its hash.
        let start = Instant::now();
        let bytes = grid.pool.pool.blob(&hash).unwrap();
        pool_read.push(start.elapsed());
        drop(bytes);
        tcp.push(tcp_copy(Arc::clone(&input)).await);
    }
    connection.close(0u32.into(), b"done");
    endpoint.close().await;

    let mut upload = Vec::new();
    for run in 0..sizes.upload_runs {
        // New bytes each time: the pool is never sent a blob it already has.
        let job = big_job(big_input(len, run as u32 + 1));
        let start = Instant::now();
        grid.client.submit(&job).await.unwrap();
        upload.push(start.elapsed());
    }
    grid.stop().await;
    Transfer {
        bytes: len,
        fetch,
        pool_read,
        tcp,
        upload,
    }
}

// ---------------------------------------------------------------------------------------------
// 4: many providers

fn capabilities() -> Capabilities {
    Capabilities {
        adapter: "simulated".into(),
        device_type: "discrete".into(),
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 1 << 30,
        max_workgroups_per_dimension: 65_535,
        gflops: 100.0,
    }
}

struct Round {
    stats: Stats,
    per_second: f64,
    leases: usize,
    asks: usize,
}

/// Each provider in `keys` asks once, in order, each ask timed.
fn ask_round<'a>(
    pool: &Pool,
    keys: impl Iterator<Item = &'a PublicKey>,
    caps: &Capabilities,
) -> Round {
    let mut samples = Vec::new();
    let mut leases = 0;
    let start = Instant::now();
    for key in keys {
        let t = Instant::now();
        let reply = pool.ask(key, caps, 1, &[], None).unwrap();
        samples.push(t.elapsed());
        let WorkReply::Work { leases: l, .. } = reply else {
            panic!("no work reply")
        };
        leases += l.len();
    }
    let took = start.elapsed();
    let asks = samples.len();
    Round {
        stats: stats(samples),
        per_second: asks as f64 / took.as_secs_f64(),
        leases,
        asks,
    }
}

struct Direct {
    providers: usize,
    /// Empty queue: every provider's first ask (registers it).
    empty: Round,
    /// The queue holds one job per provider: a sample of the providers, spread over them, ask for
    /// a lease each.
    lease: Round,
    /// The same sample asks again while the jobs it leased are still out.
    again: Round,
}

/// `Pool::ask` with no network: the decision and the SQLite transaction. All `providers` ask once on
/// an empty queue; then one job per provider is queued, and `sample` of them ask twice (every
/// provider at 10k would take minutes where asks cost milliseconds).
fn direct_asks(providers: usize, sample: usize) -> Direct {
    let dir = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate();
    let pool = Pool::open(
        dir.path(),
        owner.clone(),
        pool_config(Duration::from_secs(1)),
    )
    .unwrap();
    let keys: Vec<PublicKey> = (0..providers)
        .map(|_| SecretKey::generate().public())
        .collect();
    let caps = capabilities();
    let empty = ask_round(&pool, keys.iter(), &caps);
    let submitter = own_submitter_key(&owner).public();
    let (manifest, blobs) = tiny_job().into_manifest();
    assert!(blobs.is_empty());
    for nonce in 0..providers as u64 {
        let job = job_id(&submitter, &manifest, nonce);
        pool.enqueue(&submitter, job, &manifest).unwrap();
    }
    let step = (providers / sample.min(providers)).max(1);
    let lease = ask_round(&pool, keys.iter().step_by(step), &caps);
    let again = ask_round(&pool, keys.iter().step_by(step), &caps);
    Direct {
        providers,
        empty,
        lease,
        again,
    }
}

struct Networked {
    endpoints: usize,
    sequential: Stats,
    concurrent: Stats,
    concurrent_per_second: f64,
}

async fn ask_over(connection: &Connection, caps: &Capabilities) -> Duration {
    let start = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let ask = WorkRequest::Ask {
        capabilities: caps.clone(),
        slots: 1,
        stored: vec![],
        binding: None,
    };
    protocol::write_frame(&mut send, &ask).await.unwrap();
    send.finish().unwrap();
    let reply: WorkReply = protocol::read_frame(&mut recv, MAX_REPLY_FRAME)
        .await
        .unwrap();
    assert!(matches!(reply, WorkReply::Work { .. }));
    start.elapsed()
}

/// `endpoints` providers on their own iroh endpoints, one connection each, asking a pool with an
/// empty queue: one of them alone, then all at once in a closed loop.
async fn networked_asks(endpoints: usize, sequential: usize, run_for: Duration) -> Networked {
    let grid = Grid::start(pool_config(Duration::from_secs(1)), None).await;
    let caps = Arc::new(capabilities());
    let mut peers = Vec::with_capacity(endpoints);
    for _ in 0..endpoints {
        peers.push(work_endpoint(&grid.pool).await);
    }
    for (_, connection) in &peers {
        ask_over(connection, &caps).await;
    }
    let mut alone = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        alone.push(ask_over(&peers[0].1, &caps).await);
    }

    let deadline = Instant::now() + run_for;
    let start = Instant::now();
    let tasks: Vec<_> = peers
        .iter()
        .map(|(_, connection)| {
            let connection = connection.clone();
            let caps = Arc::clone(&caps);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    samples.push(ask_over(&connection, &caps).await);
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let took = start.elapsed();
    let per_second = all.len() as f64 / took.as_secs_f64();
    for (endpoint, connection) in peers {
        connection.close(0u32.into(), b"done");
        endpoint.close().await;
    }
    grid.stop().await;
    Networked {
        endpoints,
        sequential: stats(alone),
        concurrent: stats(all),
        concurrent_per_second: per_second,
    }
}

// ---------------------------------------------------------------------------------------------

fn print_round(label: &str, providers: usize, round: &Round) {
    println!(
        "pool, direct Pool::ask (no network), {providers} providers, {label}: {:.0} asks/s, median {:.0} us, p99 {:.0} us, max {:.1} ms ({} asks; {} leases granted)",
        round.per_second,
        us(round.stats.median),
        us(round.stats.p99),
        ms(round.stats.max),
        round.asks,
        round.leases
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var_os("IDLEGRID_BENCH_QUICK").is_some_and(|v| v != "0")
        || !args.iter().any(|a| a == "--bench");
    // `--only pool,net` runs just those sections (for profiling one of them).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let run = |section: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == section));
    let sizes = Sizes::new(quick);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let began = Instant::now();
    let mut summary = Vec::new();
    println!(
        "network benchmark{}: pool, provider and submitter in one process, iroh on 127.0.0.1 (relays off), {} cores",
        if quick { " (quick sizes)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if run("trip") {
        let poll = Duration::from_millis(25);
        let polled = runtime.block_on(round_trips(poll, sizes.round_trips));
        println!(
            "tiny job round trip, retry_after 25 ms (an idle provider asks every 25 ms; submissions spread evenly over its phase, so ~12.5 ms of waiting on average): median {:.2} ms, p99 {:.2} ms ({} jobs, submit to verified output)",
            ms(polled.median),
            ms(polled.p99),
            polled.n
        );
        let asking = runtime.block_on(round_trips(Duration::from_millis(1), sizes.round_trips));
        println!(
            "tiny job round trip, retry_after 1 ms (the provider is in effect always asking): median {:.2} ms, p99 {:.2} ms ({} jobs)",
            ms(asking.median),
            ms(asking.p99),
            asking.n
        );
        summary.push(format!(
            "round trip, tiny job: median {:.1} ms, p99 {:.1} ms with a 25 ms poll; median {:.1} ms, p99 {:.1} ms with the provider always asking",
            ms(polled.median),
            ms(polled.p99),
            ms(asking.median),
            ms(asking.p99)
        ));
    }

    if run("pipe") {
        for slots in [1, 8] {
            let p = runtime.block_on(pipelined(slots, sizes.pipelined));
            let rate = p.jobs as f64 / p.total.as_secs_f64();
            println!(
                "pipelined tiny jobs, one provider, slots {slots}: {rate:.0} jobs/s ({} jobs submitted in {:.0} ms, all verified and back after {:.0} ms; {:.2} ms a job)",
                p.jobs,
                ms(p.submitted),
                ms(p.total),
                ms(p.total) / p.jobs as f64
            );
            summary.push(format!(
                "pipelined, one provider, slots {slots}: {rate:.0} jobs/s"
            ));
        }
    }

    if run("transfer") {
        let t = runtime.block_on(transfer(&sizes));
        let mib = t.bytes >> 20;
        let (fetch, tcp, pool_read) = (median(&t.fetch), median(&t.tcp), median(&t.pool_read));
        let upload = median(&t.upload);
        let wire = fetch.saturating_sub(pool_read);
        println!(
            "{mib} MiB input fetched over iroh (WorkRequest::Blob, as a provider does): median {:.0} ms = {:.0} MB/s ({} runs; includes the pool reading the file and re-checking its hash, median {:.0} ms)",
            ms(fetch),
            mb_per_s(t.bytes, fetch),
            t.fetch.len(),
            ms(pool_read)
        );
        println!(
            "{mib} MiB plain tokio TcpStream copy on 127.0.0.1: median {:.0} ms = {:.0} MB/s ({} runs)",
            ms(tcp),
            mb_per_s(t.bytes, tcp),
            t.tcp.len()
        );
        println!(
            "{mib} MiB input uploaded with Client::submit (client clones and hashes the job; pool receives, hashes, writes and fsyncs the blob, queues the job): median {:.0} ms = {:.0} MB/s ({} runs)",
            ms(upload),
            mb_per_s(t.bytes, upload),
            t.upload.len()
        );
        println!(
            "iroh / TCP throughput ratio: {:.2} for the whole fetch; {:.2} counting only the time after the pool's read and hash",
            tcp.as_secs_f64() / fetch.as_secs_f64(),
            tcp.as_secs_f64() / wire.as_secs_f64()
        );
        summary.push(format!(
            "{mib} MiB: iroh fetch {:.0} MB/s, TCP {:.0} MB/s, iroh/TCP {:.2} ({:.2} without the pool's read and hash); upload via submit {:.0} MB/s",
            mb_per_s(t.bytes, fetch),
            mb_per_s(t.bytes, tcp),
            tcp.as_secs_f64() / fetch.as_secs_f64(),
            tcp.as_secs_f64() / wire.as_secs_f64(),
            mb_per_s(t.bytes, upload)
        ));
    }

    if run("pool") {
        for providers in sizes.providers {
            let d = direct_asks(providers, sizes.sampled_asks);
            print_round(
                "empty queue, every provider's first ask",
                d.providers,
                &d.empty,
            );
            print_round(
                "one job queued per provider, a sample asks for a lease",
                d.providers,
                &d.lease,
            );
            print_round(
                "the same sample asks again while its leases are out",
                d.providers,
                &d.again,
            );
            summary.push(format!(
                "Pool::ask direct, {} providers: empty queue {:.0}/s p99 {:.0} us; leasing {:.0}/s p99 {:.1} ms ({} of {} asking got a lease); again {:.0}/s p99 {:.1} ms",
                d.providers,
                d.empty.per_second,
                us(d.empty.stats.p99),
                d.lease.per_second,
                ms(d.lease.stats.p99),
                d.lease.leases,
                d.lease.asks,
                d.again.per_second,
                ms(d.again.stats.p99)
            ));
        }
    }

    if run("net") {
        let net = runtime.block_on(networked_asks(sizes.endpoints, 200, sizes.concurrent_for));
        println!(
            "pool over iroh, one provider endpoint asking alone (empty queue): median {:.0} us, p99 {:.0} us per Ask round trip ({} asks)",
            us(net.sequential.median),
            us(net.sequential.p99),
            net.sequential.n
        );
        println!(
            "pool over iroh, {} provider endpoints (one connection each) asking in a closed loop (empty queue): {:.0} asks/s, median {:.2} ms, p99 {:.2} ms ({} asks)",
            net.endpoints,
            net.concurrent_per_second,
            ms(net.concurrent.median),
            ms(net.concurrent.p99),
            net.concurrent.n
        );
        summary.push(format!(
            "Ask over iroh (empty queue): alone median {:.0} us; {} endpoints {:.0} asks/s, p99 {:.1} ms",
            us(net.sequential.median),
            net.endpoints,
            net.concurrent_per_second,
            ms(net.concurrent.p99)
        ));
    }

    println!();
    println!("summary ({:.0} s in all):", began.elapsed().as_secs_f64());
    for line in summary {
        println!("  {line}");
    }
}
