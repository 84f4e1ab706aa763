//! The node (the desktop app's engine side) against real pools on 127.0.0.1, a real node.db and a real
//! ledger: joining checks tickets, work is paid and shows in the earnings view under the right bucket
//! and pool, leaving and blocking survive a restart, settings round-trip and are validated.

use crate::common;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::idle::ScriptedMachine;
use common::net::{provider_config, start_pool, test_config};
use idlegrid::client::Client;
use idlegrid::identity::KeyStore;
use idlegrid::idle::{Mode, SystemSample};
use idlegrid::node::{
    JobRunner, Node, NodeError, NodeEvent, NodeOptions, PayoutState, PayoutTo, PoolState,
    ProblemKind, Range, Settings, StateKind,
};
use idlegrid::pool::RunningPool;
use idlegrid::worker::WorkerConfig;
use iroh::SecretKey;
use tokio::sync::broadcast;

async fn open_node(dir: &Path) -> Node {
    open_node_with(dir, JobRunner::InProcess).await
}

/// Jobs in `idlegrid worker`, as the app runs them.
async fn open_node_with_worker(dir: &Path) -> Node {
    let worker = WorkerConfig::program(env!("CARGO_BIN_EXE_idlegrid"));
    open_node_with(dir, JobRunner::Worker(Box::new(worker))).await
}

async fn open_node_with(dir: &Path, runner: JobRunner) -> Node {
    let mut options = NodeOptions::new(dir.to_owned());
    options.runner = runner;
    options.key_store = KeyStore::FileOnly;
    options.detect_input = false;
    let machine = ScriptedMachine(Arc::new(Mutex::new(SystemSample::default())));
    options.system = Some(Box::new(machine));
    options.examples_dir = Some(common::repo_root().join("examples/jobs"));
    options.reach_timeout = Duration::from_secs(2);
    options.provider = provider_config();
    options.demo_interval = Duration::from_millis(100);
    Node::open(options).await.unwrap()
}

async fn pool(dir: &Path) -> (RunningPool, SecretKey) {
    let key = SecretKey::generate();
    (start_pool(dir, key.clone(), test_config()).await, key)
}

/// The first event `wanted` picks out, within `limit`.
async fn event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    limit: Duration,
    wanted: impl Fn(&NodeEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(limit, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = wanted(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("the node's events ended: {error}"),
            }
        }
    })
    .await
    .expect("the event did not come")
}

/// Submits the built-in job to the pool as the pool's owner and waits until it is verified.
async fn submit(pool: &RunningPool, key: &SecretKey) {
    let client = Client::connect(&pool.ticket(), key.clone()).await.unwrap();
    let handle = client
        .submit(&idlegrid::node::built_in_job())
        .await
        .unwrap();
    handle.wait().await.unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_pool_earns_within_a_minute_and_pays_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node_with_worker(dir.path()).await;
    let mut events = node.events();
    let mut status = node.status_updates();
    let local = node.start_local_pool().await.unwrap();
    assert!(local.local);
    assert_eq!(local.name, "Local pool");
    assert_eq!(node.start_local_pool().await.unwrap().id, local.id);

    let working = tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(|s| s.kind == StateKind::Working),
    )
    .await
    .expect("the node never worked")
    .unwrap()
    .clone();
    assert!(
        working.reason.contains("for pool Local pool"),
        "{}",
        working.reason
    );
    assert_eq!(working.job.unwrap().pool_id, local.id);

    let earned = event(&mut events, Duration::from_secs(60), |e| match e {
        NodeEvent::Earned(earned) => Some(earned.clone()),
        _ => None,
    })
    .await;
    assert_eq!(earned.pool_id, local.id);
    let view = node.earnings(Range::Day);
    let last = view.buckets.last().unwrap();
    assert!(last.by_pool[&local.id].micros() > 0, "{view:?}");
    assert_eq!(view.pools[0].id, local.id);
    assert_eq!(view.pools[0].name, "Local pool");
    assert!(node.status().today.micros() > 0);
    assert!(node.status().rate_per_hour.micros() > 0);

    // The demo pays out at 0.001; its sample jobs earn that within a few minutes of llvmpipe. With
    // anvil installed (./scripts/setup) it pays on a local chain, and the node checks it there.
    let paid = event(&mut events, Duration::from_secs(240), |e| match e {
        NodeEvent::Paid(payout) if payout.status == PayoutState::Confirmed => {
            Some(payout.as_ref().clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(paid.pool_name, "Local pool");
    assert!(paid.signature_verified && paid.receipts > 0);
    assert_eq!(paid.symbol.as_deref(), Some("tUSD"));
    assert!(paid.tx_hash.as_deref().is_some_and(|h| h.starts_with("0x")));
    assert_eq!(node.payouts()[0].id, paid.id);
    let pools = node.pools();
    assert_eq!(pools[0].state, PoolState::Connected);
    assert!(pools[0].earned_total.micros() >= paid.amount.micros());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_pool_pays_for_work_and_shows_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = pool(&dir.path().join("pool")).await;
    let node = open_node_with_worker(&dir.path().join("node")).await;
    let mut events = node.events();
    let joined = node
        .join_pool(&running.ticket(), Some("  Home  "))
        .await
        .unwrap();
    assert_eq!(joined.name, "Home");
    assert_eq!(joined.id, running.pool.public_key().to_string());
    let again = node.join_pool(&running.ticket(), None).await.unwrap_err();
    assert!(
        matches!(again, NodeError::AlreadyJoined(ref name) if name == "Home"),
        "{again}"
    );

    submit(&running, &key).await;
    let earned = event(&mut events, Duration::from_secs(30), |e| match e {
        NodeEvent::Earned(earned) => Some(earned.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (earned.pool_id.as_str(), earned.job.as_str()),
        (joined.id.as_str(), "collatz")
    );
    let week = node.earnings(Range::Week);
    assert_eq!(week.pools.len(), 1);
    assert_eq!(week.pools[0].name, "Home");
    assert_eq!(week.total, earned.amount);
    let in_buckets: u64 = week
        .buckets
        .iter()
        .filter_map(|b| b.by_pool.get(&joined.id))
        .map(|a| a.micros())
        .sum();
    assert_eq!(in_buckets, earned.amount.micros());
    assert_eq!(node.pools()[0].earned_today, earned.amount);
    // On 127.0.0.1 with relays off the pool is reached directly, and the view says so.
    let path = &node.pools()[0].path;
    assert!(
        matches!(path, idlegrid::node::PoolPath::Direct { .. }),
        "{path:?}"
    );
    assert_eq!(node.status().network, None);
    node.shutdown().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_refused_here_is_a_problem_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = pool(&dir.path().join("pool")).await;
    // A person's memory budget of 1 KiB: the 64 KiB built-in job is refused before it runs.
    let mut worker = WorkerConfig::program(env!("CARGO_BIN_EXE_idlegrid"));
    worker.limits.memory_budget = 1024;
    let node = open_node_with(
        &dir.path().join("node"),
        JobRunner::Worker(Box::new(worker)),
    )
    .await;
    let mut events = node.events();
    let joined = node
        .join_pool(&running.ticket(), Some("Tiny"))
        .await
        .unwrap();
    let client = Client::connect(&running.ticket(), key).await.unwrap();
    client
        .submit(&idlegrid::node::built_in_job())
        .await
        .unwrap();
    let problem = event(&mut events, Duration::from_secs(30), |e| match e {
        NodeEvent::Problem(problem) => Some(problem.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (problem.pool_id.as_str(), problem.pool_name.as_str()),
        (joined.id.as_str(), "Tiny")
    );
    assert_eq!(
        (problem.job.as_str(), problem.kind),
        ("collatz", ProblemKind::Failed)
    );
    assert!(problem.reason.contains("budget"), "{}", problem.reason);
    let listed = node.earnings(Range::Day).problems;
    assert_eq!(listed.first(), Some(&problem));
    client.close().await;
    node.shutdown().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unreachable_tickets_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node(&dir.path().join("node")).await;
    for ticket in ["", "hello", "endpointnotreally"] {
        let error = node.join_pool(ticket, None).await.unwrap_err();
        assert!(matches!(error, NodeError::BadTicket(_)), "{error:?}");
        assert!(
            error.to_string().starts_with("not a pool ticket"),
            "{error}"
        );
    }
    let (running, _) = pool(&dir.path().join("pool")).await;
    let ticket = running.ticket();
    running.shutdown().await;
    let started = Instant::now();
    let error = node.join_pool(&ticket, Some("Gone")).await.unwrap_err();
    assert!(matches!(error, NodeError::Unreachable(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("cannot reach the pool"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(node.pools().is_empty());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_blocking_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (left, _) = pool(&dir.path().join("left")).await;
    let (blocked, _) = pool(&dir.path().join("blocked")).await;
    let node_dir = dir.path().join("node");
    let node = open_node(&node_dir).await;
    let a = node.join_pool(&left.ticket(), Some("A")).await.unwrap();
    let b = node.join_pool(&blocked.ticket(), Some("B")).await.unwrap();
    assert_eq!(node.pools().len(), 2);
    let after_leave = node.leave_pool(&a.id).await.unwrap();
    assert_eq!(after_leave.len(), 1);
    let after_block = node.block_pool(&b.id).await.unwrap();
    assert_eq!(after_block.len(), 1);
    assert!(after_block[0].blocked);
    assert_eq!(after_block[0].state, PoolState::Blocked);
    assert!(matches!(
        node.leave_pool("nonsense").await,
        Err(NodeError::UnknownPool(_))
    ));
    node.shutdown().await;
    drop(node);

    let node = open_node(&node_dir).await;
    let pools = node.pools();
    assert_eq!(pools.len(), 1);
    assert_eq!((pools[0].name.as_str(), pools[0].blocked), ("B", true));
    let refused = node.join_pool(&blocked.ticket(), None).await.unwrap_err();
    assert!(
        matches!(refused, NodeError::Blocked(ref name) if name == "B"),
        "{refused}"
    );
    let rejoined = node.join_pool(&left.ticket(), None).await.unwrap();
    assert_eq!(rejoined.id, a.id);
    node.shutdown().await;
    left.shutdown().await;
    blocked.shutdown().await;
}

/// Settings as the person chose them, without the address the node filled in.
fn chosen(mut settings: Settings) -> Settings {
    settings.payout.bound_address = None;
    settings
}

/// The address and sequence number `pool` holds for `provider`, once it holds them.
async fn pool_binding(pool_dir: &Path, provider: &str, address: &str, limit: Duration) -> u64 {
    let provider = iroh::PublicKey::from_str(provider).unwrap();
    let mut expected = [0u8; 20];
    for (i, byte) in expected.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&address[2 + 2 * i..4 + 2 * i], 16).unwrap();
    }
    let db = rusqlite::Connection::open_with_flags(
        pool_dir.join("pool.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        let held: Option<(Vec<u8>, i64)> = db
            .query_row(
                "SELECT address, seq FROM bindings WHERE provider = ?1",
                [&provider.as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some((held, seq)) = held
            && held == expected
        {
            return u64::try_from(seq).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the pool never held {address} for the node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_binds_a_pasted_address_and_then_a_changed_one_with_a_higher_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("pool");
    let (running, _) = pool(&pool_dir).await;
    let node = open_node(&dir.path().join("node")).await;
    node.join_pool(&running.ticket(), Some("Chain"))
        .await
        .unwrap();
    let mut settings = node.settings();
    settings.preferences.mode = Mode::Always;
    let first = "0x00000000000000000000000000000000000000aa";
    let second = "0x00000000000000000000000000000000000000bb";

    settings.payout.to = PayoutTo::Address;
    settings.payout.address = format!("  {first} ");
    let saved = node.set_settings(settings.clone()).unwrap();
    assert_eq!(saved.payout.bound_address.as_deref(), Some(first));
    let me = node.public_key();
    let first_seq = pool_binding(&pool_dir, &me, first, Duration::from_secs(30)).await;
    let binding = node.payout_binding().unwrap();
    binding
        .verify(&iroh::PublicKey::from_str(&me).unwrap())
        .unwrap();
    assert_eq!(binding.body.seq, first_seq);

    settings.payout.address = second.to_uppercase().replace("0X", "0x");
    let saved = node.set_settings(settings.clone()).unwrap();
    assert_eq!(saved.payout.bound_address.as_deref(), Some(second));
    let second_seq = pool_binding(&pool_dir, &me, second, Duration::from_secs(30)).await;
    assert!(second_seq > first_seq, "{second_seq} <= {first_seq}");

    // Declining keeps the pool's last binding (it pays nobody new) and the node says none is bound.
    settings.payout.to = PayoutTo::None;
    let saved = node.set_settings(settings).unwrap();
    assert_eq!(saved.payout.bound_address, None);
    assert_eq!(node.payout_binding(), None);
    node.shutdown().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_round_trip_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node(dir.path()).await;
    // By default the node makes an account of its own to be paid at, and says which.
    let own = node.settings().payout.bound_address.clone();
    assert!(
        own.as_deref().is_some_and(|a| a.starts_with("0x")),
        "{own:?}"
    );
    assert_eq!(chosen(node.settings()), Settings::default());
    let mut settings = Settings::default();
    settings.preferences.mode = Mode::Always;
    settings.preferences.idle_after = Duration::from_secs(60);
    settings.preferences.exclusive_programs = vec!["blender".into()];
    settings.start_at_login = true;
    settings.notices.payouts = false;
    assert_eq!(
        chosen(node.set_settings(settings.clone()).unwrap()),
        settings
    );

    let mut bad = settings.clone();
    bad.preferences.idle_after = Duration::from_secs(1);
    let error = node.set_settings(bad).unwrap_err();
    assert!(error.to_string().contains("idle delay"), "{error}");
    let mut bad = settings.clone();
    bad.payout.to = PayoutTo::Address;
    bad.payout.address = "0x1234".into();
    let error = node.set_settings(bad).unwrap_err();
    assert!(error.to_string().contains("the payout address"), "{error}");
    assert_eq!(chosen(node.settings()), settings);
    assert_eq!(node.settings().payout.bound_address, own);

    let off = node.set_sharing(false).unwrap();
    assert_eq!((off.kind, off.sharing), (StateKind::Off, false));
    let on = node.set_sharing(true).unwrap();
    assert!(on.sharing);
    assert_eq!(node.settings().preferences.mode, Mode::Always);
    let snoozed = node.snooze(60).unwrap();
    let until = snoozed.snoozed_until_ms.unwrap();
    assert!(until > idlegrid::statement::now_ms() + 59 * 60_000);
    assert!(node.snooze(0).is_err());
    assert_eq!(node.resume().unwrap().snoozed_until_ms, None);
    node.snooze(30).unwrap();
    let kept = node.settings();
    node.shutdown().await;
    drop(node);

    let node = open_node(dir.path()).await;
    assert_eq!(node.settings(), kept);
    assert_eq!(node.settings().payout.bound_address, own);
    assert!(node.status().snoozed_until_ms.is_some());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_lists_the_gpu_with_its_switch_and_kept_score() {
    // As the app does it: the adapters are listed and the benchmark runs in worker processes.
    let dir = tempfile::tempdir().unwrap();
    let node = open_node_with_worker(dir.path()).await;
    let hardware = node.hardware().await.unwrap();
    let gpu = hardware.gpus.first().expect("an adapter (llvmpipe in CI)");
    assert!(gpu.shared && gpu.score.is_none());
    assert!(hardware.memory.total_bytes > 0 && hardware.cpu.cores > 0);
    let adapter = gpu.adapter.clone();
    let score = node.run_benchmark(&adapter).await.unwrap();
    assert!(score.matmul_gflops > 0.0 && score.copy_gbps > 0.0);
    let embeddings = score.embeddings.as_ref().expect("an embeddings score");
    assert!(embeddings.per_second > 0.0 && !embeddings.model.is_empty());
    let switched = node.set_gpu_shared(&adapter, false).await.unwrap();
    let gpu = switched.gpus.iter().find(|g| g.adapter == adapter).unwrap();
    assert!(!gpu.shared);
    assert_eq!(gpu.score.as_ref(), Some(&score));
    node.shutdown().await;
    drop(node);
    // In this process, the same machine and settings.
    let node = open_node(dir.path()).await;
    let hardware = node.hardware().await.unwrap();
    let gpu = hardware.gpus.iter().find(|g| g.adapter == adapter).unwrap();
    assert!(!gpu.shared && gpu.score.is_some());
    node.shutdown().await;
}
