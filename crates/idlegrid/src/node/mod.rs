//! The person's side of Idlegrid, with no window in it: everything the desktop app shows and does, as a
//! plain Rust API the app's commands call in a line or two.
//!
//! A [`Node`] owns this machine's identity, its `node.db` (joined pools, settings, benchmark scores),
//! the provider's ledger, one idle monitor, and one provider per joined pool, all following the
//! monitor's verdicts (the demo pool follows an "always" version of them). It publishes a [`Status`]
//! on a `watch` and the discrete happenings ([`NodeEvent`]: earned, paid, problem, checked, pools,
//! notices) on a `broadcast`; the app forwards both to the window as Tauri events. The providers tell
//! the node what they store in the ledger ([`LedgerNews`], on a channel) as they store it; that news
//! becomes the `earned`, `paid`, `problem` and `checked` events.
//!
//! The views are pure functions (`earnings`, `status`, `settings`) of a ledger snapshot and the
//! providers' states; I/O stays here and in `store`, `ledger_view`, `pools`, `local_pool`.

mod earnings;
mod export;
mod hardware;
mod ledger_view;
mod local_pool;
mod not_earning;
mod payout;
mod pools;
mod reach;
mod settings;
mod status;
mod store;
#[cfg(test)]
mod typescript;
pub mod views;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::SecretKey;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::gpu::AdapterChoice;
use crate::identity::{Identity, IdentityError, KeyStore};
use crate::idle::{self, HostSignals, IdleMonitor, MonitorConfig, Now, SystemSignals, Verdict};
use crate::job::JobError;
use crate::ledger::{LedgerError, LedgerNews};
use crate::payout_address::PayoutAddressError;
use crate::provider::{PayoutTarget, ProviderConfig, ProviderError};
use crate::statement::now_ms;
use crate::sync::lock;

pub use earnings::{Money, PoolNames, problem_kind};
pub use local_pool::{LOCAL_POOL_NAME, built_in_job, find_examples, sample_jobs};
pub use pools::{JobRunner, display_name, parse_ticket};
pub use status::{always_verdict, tray_line};
pub use store::PoolRecord;
pub use views::*;

use hardware::HardwareSampler;
use ledger_view::LedgerView;
use local_pool::LocalPool;
use pools::PoolMembership;
use store::NodeStore;

/// How long joining waits for a pool to answer.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(10);
/// The status is recomputed at least this often (the rate over the last hour slides, a job's time
/// grows).
const TICK: Duration = Duration::from_secs(1);
const SETTINGS_KEY: &str = "settings";
/// The mode to come back to when sharing is turned on again.
const SHARING_MODE_KEY: &str = "sharing_mode";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("node database: {0}")]
    Store(#[from] rusqlite::Error),
    #[error(transparent)]
    Open(#[from] crate::sqlite::OpenError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("not a pool ticket: {0}; copy the whole line the pool printed after \"ticket:\"")]
    BadTicket(String),
    #[error("cannot reach the pool: {0}")]
    Unreachable(String),
    #[error("this pool is already joined, as \"{0}\"")]
    AlreadyJoined(String),
    #[error("you blocked this pool (\"{0}\"); its ticket is refused")]
    Blocked(String),
    #[error("no such pool: {0}")]
    UnknownPool(String),
    #[error("{0}")]
    InvalidSettings(String),
    #[error("the payout address: {0}")]
    PayoutAddress(#[from] PayoutAddressError),
    #[error("no GPU to share: {0}")]
    NoGpu(JobError),
    #[error("the benchmark failed: {0}")]
    Benchmark(JobError),
    #[error("the local pool: {0}")]
    LocalPool(String),
    #[error("{0}")]
    Export(String),
    #[error("cannot show the transaction: {0}")]
    Explorer(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an internal task failed: {0}")]
    Task(String),
}

/// Something the window or the person should hear of once (the status has its own `watch`).
#[derive(Clone, Debug, PartialEq)]
pub enum NodeEvent {
    Earned(Earned),
    /// Boxed: a payout on a chain carries much more than the other events.
    Paid(Box<PayoutView>),
    Problem(Problem),
    /// A pool's check (an unpaid job of known answer) was judged.
    Checked(CheckView),
    Pools(Vec<PoolView>),
    /// A desktop notice, already filtered by the person's notice settings.
    Notice {
        title: String,
        body: String,
    },
}

/// How a node is opened; [`NodeOptions::new`] has what the app uses.
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub key_store: KeyStore,
    /// Read keyboard and mouse idle time (a desktop session); false decides on the other signals.
    pub detect_input: bool,
    /// The machine's other signals; `None` reads the real ones.
    pub system: Option<Box<dyn SystemSignals>>,
    pub adapter: AdapterChoice,
    /// Where jobs run. [`NodeOptions::new`] runs them in this process; a program that hosts a worker
    /// (answers `PROGRAM worker` with [`crate::worker::serve`], as the app does) should choose
    /// [`JobRunner::Worker`].
    pub runner: JobRunner,
    /// Where the demo's sample jobs are; `None` uses the built-in job.
    pub examples_dir: Option<PathBuf>,
    pub reach_timeout: Duration,
    pub provider: ProviderConfig,
    /// The demo's pause between one verified job and the next.
    pub demo_interval: Duration,
}

impl NodeOptions {
    pub fn new(data_dir: PathBuf) -> NodeOptions {
        NodeOptions {
            data_dir,
            key_store: KeyStore::from_env(),
            detect_input: true,
            system: None,
            adapter: AdapterChoice::from_flag_or_env(None),
            runner: JobRunner::InProcess,
            examples_dir: None,
            reach_timeout: REACH_TIMEOUT,
            provider: ProviderConfig::default(),
            demo_interval: Duration::from_secs(10),
        }
    }
}

/// This machine's side of Idlegrid; cheap to clone, one per app.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    key: SecretKey,
    key_store: KeyStore,
    /// Where the providers are paid on a chain; each follows it.
    payout: watch::Sender<PayoutTarget>,
    adapter_choice: AdapterChoice,
    runner: JobRunner,
    /// The adapter the monitor decides for, and the providers run on; empty with no GPU.
    adapter: String,
    examples_dir: Option<PathBuf>,
    reach_timeout: Duration,
    provider: ProviderConfig,
    demo_interval: Duration,
    store: Mutex<NodeStore>,
    /// node.db's pools, kept in memory: the status reads them every tick.
    records: Mutex<Vec<PoolRecord>>,
    ledger: Mutex<LedgerView>,
    /// Handed to every provider, which tells it what it stores in the ledger.
    news: mpsc::UnboundedSender<LedgerNews>,
    monitor: IdleMonitor,
    /// The demo pool's verdicts: the monitor's, as in mode Always.
    local_verdicts: watch::Receiver<Verdict>,
    settings: Mutex<Settings>,
    memberships: Mutex<BTreeMap<String, PoolMembership>>,
    /// Why a joined pool's provider could not start (at open: no GPU, say).
    failed: Mutex<BTreeMap<String, String>>,
    local: Mutex<Option<LocalPool>>,
    /// Joins, leaves and blocks one at a time: each awaits, and two at once could join a pool twice.
    changes: tokio::sync::Mutex<()>,
    hardware: Arc<Mutex<Option<HardwareSampler>>>,
    status: watch::Sender<Status>,
    /// Held from reading the settings to sending the status made of them, so a publisher that read
    /// them just before a change cannot send its stale status after the one made of the change.
    publishing: Mutex<()>,
    events: broadcast::Sender<NodeEvent>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The pools' states last published, to publish `pools` only on a change.
    published_states: Mutex<Vec<(String, PoolState, Option<String>)>>,
}

impl Node {
    /// Opens the node kept in `options.data_dir` and starts working for the pools joined before.
    /// Must be called within a Tokio runtime.
    pub async fn open(options: NodeOptions) -> Result<Node, NodeError> {
        let data_dir = options.data_dir;
        let identity = Identity::load_or_create(&data_dir, &options.key_store)?;
        let store = NodeStore::open(&data_dir.join("node.db"))?;
        let settings = load_settings(&store)?;
        let records = store.pools()?;
        let ledger = LedgerView::open(&data_dir.join("ledger.sqlite"), identity.public())?;
        let payout = payout::target(
            &data_dir,
            &options.key_store,
            identity.secret_key(),
            &ledger,
            &settings.payout,
        )
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot bind the payout address; pools on a chain hold the balance until it is fixed in Settings");
            payout::fallback(&settings.payout)
        });
        let adapter = adapter_name(&options.adapter, &options.runner).await;
        let input = options.detect_input.then(detect_input).flatten();
        let system = options
            .system
            .unwrap_or_else(|| Box::new(HostSignals::new()));
        let monitor = IdleMonitor::spawn(
            input,
            system,
            settings.preferences.clone(),
            MonitorConfig::new(adapter.clone()),
        );
        let (local_tx, local_verdicts) =
            watch::channel(always_verdict(&monitor.verdicts().borrow()));
        let follow = tokio::spawn(follow_always(monitor.verdicts(), local_tx));
        let status = status::starting(&settings.preferences, now_ms());
        let (news, news_rx) = mpsc::unbounded_channel();
        let inner = Inner {
            data_dir,
            key: identity.secret_key().clone(),
            key_store: options.key_store,
            payout: watch::Sender::new(payout),
            adapter_choice: options.adapter,
            runner: options.runner,
            adapter,
            examples_dir: options.examples_dir,
            reach_timeout: options.reach_timeout,
            provider: options.provider,
            demo_interval: options.demo_interval,
            store: Mutex::new(store),
            records: Mutex::new(records),
            ledger: Mutex::new(ledger),
            news,
            monitor,
            local_verdicts,
            settings: Mutex::new(settings),
            memberships: Mutex::new(BTreeMap::new()),
            failed: Mutex::new(BTreeMap::new()),
            local: Mutex::new(None),
            changes: tokio::sync::Mutex::new(()),
            hardware: Arc::new(Mutex::new(None)),
            status: watch::Sender::new(status),
            publishing: Mutex::new(()),
            events: broadcast::channel(256).0,
            wake: Arc::new(Notify::new()),
            stop: watch::Sender::new(false),
            tasks: Mutex::new(vec![follow]),
            published_states: Mutex::new(Vec::new()),
        };
        let node = Node {
            inner: Arc::new(inner),
        };
        let follow_news = tokio::spawn(follow_news(node.clone(), news_rx));
        lock(&node.inner.tasks).push(follow_news);
        node.resume_memberships().await;
        node.refresh();
        let supervisor = tokio::spawn(supervise(node.clone()));
        lock(&node.inner.tasks).push(supervisor);
        tracing::info!(
            data = %node.inner.data_dir.display(),
            adapter = %node.inner.adapter,
            "node open"
        );
        Ok(node)
    }

    /// Stops every provider (leases go back to their pools), the demo pool and the node's tasks.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let memberships = std::mem::take(&mut *lock(&self.inner.memberships));
        for membership in memberships.into_values() {
            membership.stop().await;
        }
        let local = lock(&self.inner.local).take();
        if let Some(local) = local {
            local.stop().await;
        }
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        tracing::info!("node stopped");
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// This machine's public key, as pools see it.
    pub fn public_key(&self) -> String {
        self.inner.key.public().to_string()
    }

    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// The status now and every change (job time grows each second while working).
    pub fn status_updates(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }
}

/// The saved settings, or the defaults the first time.
fn load_settings(store: &NodeStore) -> Result<Settings, NodeError> {
    let Some(json) = store.setting(SETTINGS_KEY)? else {
        return Ok(Settings::default());
    };
    // Settings a person cannot fix from the window must not keep the app from starting.
    Ok(serde_json::from_str(&json).unwrap_or_else(|error| {
        tracing::warn!(%error, "the saved settings are unreadable; using the defaults");
        Settings::default()
    }))
}

/// The name of the adapter the providers will run on, or "" where there is none.
async fn adapter_name(choice: &AdapterChoice, runner: &JobRunner) -> String {
    let (choice, runner) = (choice.clone(), runner.clone());
    let name = tokio::task::spawn_blocking(move || runner.adapter_name(&choice)).await;
    match name {
        Ok(Ok(name)) => name,
        Ok(Err(error)) => {
            tracing::warn!(%error, "no GPU adapter; nothing can be shared");
            String::new()
        }
        Err(error) => {
            tracing::warn!(%error, "could not look for a GPU adapter");
            String::new()
        }
    }
}

fn detect_input() -> Option<Box<dyn idle::InputIdle>> {
    idle::detect_input()
        .inspect_err(|error| {
            tracing::warn!(%error, "no keyboard and mouse idle time here; deciding on the other signals")
        })
        .ok()
}

/// Keeps the demo pool's verdict channel following the monitor, as in mode Always.
async fn follow_always(mut monitor: watch::Receiver<Verdict>, local: watch::Sender<Verdict>) {
    loop {
        let verdict = always_verdict(&monitor.borrow_and_update());
        local.send_if_modified(|current| {
            let changed = *current != verdict;
            *current = verdict;
            changed
        });
        if monitor.changed().await.is_err() {
            return;
        }
    }
}

/// Recomputes and publishes on every wake (a provider's state, a verdict, a setting) and every tick.
async fn supervise(node: Node) {
    let mut stop = node.inner.stop.subscribe();
    let mut verdicts = node.inner.monitor.verdicts();
    let mut last_verdict = verdicts.borrow_and_update().clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = node.inner.wake.notified() => {}
            changed = verdicts.changed() => {
                if changed.is_err() {
                    return;
                }
                let verdict = verdicts.borrow_and_update().clone();
                node.verdict_changed(&last_verdict, &verdict);
                last_verdict = verdict;
            }
            _ = tick.tick() => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        node.refresh();
    }
}

/// Publishes what the providers store, as they tell of it: a batch at a time when several writes
/// come together (a pool's reply carries receipts and payouts at once).
async fn follow_news(node: Node, mut news: mpsc::UnboundedReceiver<LedgerNews>) {
    let mut batch = Vec::new();
    // The node holds a sender itself, so this ends only when its tasks are stopped.
    while news.recv_many(&mut batch, usize::MAX).await > 0 {
        node.publish_news(std::mem::take(&mut batch));
    }
}

impl Node {
    /// Looks at the providers, and publishes what changed.
    fn refresh(&self) {
        self.publish_status();
        self.publish_pool_states();
    }

    /// Publishes what the providers just stored in the ledger.
    fn publish_news(&self, news: Vec<LedgerNews>) {
        if let Err(error) = lock(&self.inner.ledger).reload() {
            tracing::warn!(%error, "cannot read the ledger");
        }
        let names = self.pool_names();
        let notices = lock(&self.inner.settings).notices.clone();
        // The status's money first: whoever hears "earned" and asks for the status sees it counted.
        self.publish_status();
        for event in ledger_events(news, &names, &notices) {
            // No receivers (no window, no tray yet) is not an error.
            let _ = self.inner.events.send(event);
        }
        // Each pool's earnings are in its view.
        let _ = self.inner.events.send(NodeEvent::Pools(self.pools()));
    }

    fn publish_status(&self) {
        let _publishing = lock(&self.inner.publishing);
        let preferences = lock(&self.inner.settings).preferences.clone();
        let verdict = self.verdict_now(&preferences);
        let local_verdict = always_verdict(&verdict);
        let records = self.member_records();
        let activity: Vec<_> = {
            let memberships = lock(&self.inner.memberships);
            records
                .iter()
                .filter_map(|r| {
                    let m = memberships.get(&r.id)?;
                    let v = if r.local { &local_verdict } else { &verdict };
                    Some((r, m.status(), v.clone(), m.path()))
                })
                .collect()
        };
        let pools: Vec<status::PoolActivity<'_>> = activity
            .iter()
            .map(|(r, s, v, path)| status::PoolActivity {
                id: &r.id,
                name: &r.name,
                status: s,
                verdict: v,
                path,
            })
            .collect();
        let snapshot = lock(&self.inner.ledger).snapshot();
        let money = earnings::money(&snapshot, Now::system());
        let last_check_failed = snapshot.checks.last().is_some_and(|c| !c.passed);
        self.inner.status.send_if_modified(|current| {
            let next = status::next_status(
                Some(current),
                &preferences,
                &pools,
                money,
                last_check_failed,
                now_ms(),
            );
            if next == *current {
                return false;
            }
            if (next.kind, &next.reason) != (current.kind, &current.reason) {
                tracing::info!(kind = ?next.kind, "{}", next.reason);
            }
            *current = next;
            true
        });
    }

    /// The verdict for pools that follow idleness, with the preferences as they are this moment (the
    /// monitor takes up to a quarter second to see a change).
    fn verdict_now(&self, preferences: &idle::Preferences) -> Verdict {
        let previous = self.inner.monitor.verdicts().borrow().clone();
        let signals = self.inner.monitor.signals().borrow().clone();
        idle::decide(
            &signals,
            preferences,
            &self.inner.adapter,
            Now::system(),
            &previous,
        )
    }

    /// Publishes the pools when one was joined, left, blocked, connected or lost (their earnings
    /// travel as `earned` events instead).
    fn publish_pool_states(&self) {
        let records = lock(&self.inner.records).clone();
        let states: Vec<_> = records
            .iter()
            .filter(|r| r.is_member() || r.blocked)
            .map(|r| {
                let (state, error) = self.pool_state(r);
                (r.id.clone(), state, error)
            })
            .collect();
        let changed = {
            let mut published = lock(&self.inner.published_states);
            let changed = *published != states;
            *published = states;
            changed
        };
        if changed {
            let _ = self.inner.events.send(NodeEvent::Pools(self.pools()));
        }
    }

    fn verdict_changed(&self, previous: &Verdict, current: &Verdict) {
        let Some(seconds) = status::about_to_start(previous, current) else {
            return;
        };
        if !lock(&self.inner.settings).notices.about_to_start {
            return;
        }
        let _ = self.inner.events.send(NodeEvent::Notice {
            title: format!("Idlegrid starts sharing in {seconds} s"),
            body: "Use the computer to stay paused, or choose \"Pause for 1 hour\".".into(),
        });
    }

    fn member_records(&self) -> Vec<PoolRecord> {
        lock(&self.inner.records)
            .iter()
            .filter(|r| r.is_member())
            .cloned()
            .collect()
    }

    fn pool_names(&self) -> PoolNames {
        lock(&self.inner.records)
            .iter()
            .map(|r| (r.id.clone(), r.name.clone()))
            .collect()
    }

    fn reload_records(&self) -> Result<(), NodeError> {
        let records = lock(&self.inner.store).pools()?;
        *lock(&self.inner.records) = records;
        Ok(())
    }
}

/// The events for what the providers stored: one per receipt, payout (with a notice when the person
/// wants one), problem and check, in the order they were stored.
fn ledger_events(news: Vec<LedgerNews>, names: &PoolNames, notices: &Notices) -> Vec<NodeEvent> {
    let mut events = Vec::new();
    for news in news {
        match news {
            LedgerNews::Receipt(receipt) => events.push(NodeEvent::Earned(Earned {
                pool_id: receipt.pool,
                job: receipt.job_name,
                amount: receipt.amount,
                at_ms: receipt.issued_at_ms,
            })),
            LedgerNews::Payout(payout) => {
                let payout = earnings::payout_view(&payout, names);
                if notices.payouts
                    && let Some((title, body)) = earnings::payout_notice(&payout)
                {
                    events.push(NodeEvent::Notice { title, body });
                }
                events.push(NodeEvent::Paid(Box::new(payout)));
            }
            LedgerNews::Unpaid(work) => {
                events.push(NodeEvent::Problem(earnings::problem(&work, names)));
            }
            LedgerNews::Check(check) => {
                events.push(NodeEvent::Checked(earnings::check(&check, names)));
            }
        }
    }
    events
}

mod actions;

#[cfg(test)]
mod news_tests;
