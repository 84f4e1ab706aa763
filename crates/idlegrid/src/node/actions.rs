//! What a person can do, one method each: the commands of docs/desktop-ipc.md, minus the window's own
//! (opening the logs folder). Each checks its input, changes the node (store, monitor, providers),
//! refreshes what is published and returns the new view.

use std::path::{Path, PathBuf};

use crate::gpu::AdapterChoice;
use crate::idle::{Mode, Now, Preferences};
use crate::protocol::Network;
use crate::provider::{PoolPath, ProviderConfig};
use crate::statement::now_ms;

use super::earnings;
use super::hardware::HardwareSampler;
use super::local_pool::{LOCAL_POOL_NAME, LocalPool};
use super::pools::{self, PoolMembership, Start};
use super::settings as rules;
use super::views::{
    EarningsView, EmbeddingScore, Hardware, PayoutTo, PayoutView, PoolState, PoolView, Range,
    Score, Settings, Status,
};
use super::{Node, NodeError, PoolRecord, SETTINGS_KEY, SHARING_MODE_KEY, lock};

impl Node {
    /// The "Share when idle" toggle.
    pub fn set_sharing(&self, on: bool) -> Result<Status, NodeError> {
        let remembered = lock(&self.inner.store)
            .setting(SHARING_MODE_KEY)?
            .and_then(|json| serde_json::from_str::<Mode>(&json).ok());
        let preferences = lock(&self.inner.settings).preferences.clone();
        if !on && preferences.mode != Mode::Off {
            let mode = serde_json::to_string(&preferences.mode).unwrap_or_default();
            lock(&self.inner.store).set_setting(SHARING_MODE_KEY, &mode)?;
        }
        self.set_preferences(rules::with_sharing(&preferences, on, remembered))?;
        Ok(self.status())
    }

    /// "Pause for N minutes".
    pub fn snooze(&self, minutes: u64) -> Result<Status, NodeError> {
        let preferences = lock(&self.inner.settings).preferences.clone();
        let snoozed =
            rules::snoozed(&preferences, minutes, now_ms()).map_err(NodeError::InvalidSettings)?;
        self.set_preferences(snoozed)?;
        Ok(self.status())
    }

    /// Ends a snooze.
    pub fn resume(&self) -> Result<Status, NodeError> {
        let preferences = Preferences {
            snoozed_until_ms: None,
            ..lock(&self.inner.settings).preferences.clone()
        };
        self.set_preferences(preferences)?;
        Ok(self.status())
    }

    pub fn settings(&self) -> Settings {
        let settings = lock(&self.inner.settings).clone();
        Settings {
            payout: self.with_bound_address(settings.payout.clone()),
            ..settings
        }
    }

    /// Checks and saves the settings, hands the preferences to the monitor and the payout address to
    /// the providers. Starting at login is the app's to apply; the node only keeps the choice.
    pub fn set_settings(&self, mut settings: Settings) -> Result<Settings, NodeError> {
        rules::validate(&settings).map_err(NodeError::InvalidSettings)?;
        settings.payout.bound_address = None;
        // Unchanged, it is bound again only if binding it failed before (at open, say).
        let changed = settings.payout != lock(&self.inner.settings).payout;
        let unbound = self.payout_binding().is_none() && settings.payout.to != PayoutTo::None;
        if changed || unbound {
            self.apply_payout(&settings.payout)?;
        }
        let json = serde_json::to_string(&settings)
            .map_err(|e| NodeError::InvalidSettings(e.to_string()))?;
        lock(&self.inner.store).set_setting(SETTINGS_KEY, &json)?;
        self.inner
            .monitor
            .set_preferences(settings.preferences.clone());
        *lock(&self.inner.settings) = settings;
        self.refresh();
        Ok(self.settings())
    }

    fn set_preferences(&self, preferences: Preferences) -> Result<(), NodeError> {
        let settings = Settings {
            preferences,
            ..self.settings()
        };
        self.set_settings(settings).map(drop)
    }

    pub fn earnings(&self, range: Range) -> EarningsView {
        let (snapshot, symbols) = {
            let ledger = lock(&self.inner.ledger);
            (ledger.snapshot(), ledger.symbols())
        };
        earnings::earnings_view(
            range,
            &snapshot,
            &self.pool_names(),
            &symbols,
            Now::system(),
        )
    }

    /// Payouts, newest first.
    pub fn payouts(&self) -> Vec<PayoutView> {
        earnings::payouts(&self.ledger_snapshot(), &self.pool_names())
    }

    /// The ledger as the providers last told of it.
    fn ledger_snapshot(&self) -> std::sync::Arc<crate::ledger::Earnings> {
        lock(&self.inner.ledger).snapshot()
    }

    /// The block explorer's page for payout `id`'s transaction, for the app to open.
    pub fn explorer_url(&self, id: &str) -> Result<String, NodeError> {
        earnings::explorer_link(&self.ledger_snapshot().payouts, id).map_err(NodeError::Explorer)
    }

    /// Writes an export (the payouts CSV) into `dir`; returns the path written.
    pub fn save_csv(&self, dir: &Path, name: &str, contents: &str) -> Result<PathBuf, NodeError> {
        let path = super::export::save_csv(dir, name, contents)?;
        tracing::info!(path = %path.display(), "saved an export");
        Ok(path)
    }

    /// GPUs, CPU and memory now. The first call enumerates the adapters.
    pub async fn hardware(&self) -> Result<Hardware, NodeError> {
        let sampler = std::sync::Arc::clone(&self.inner.hardware);
        let signals = self.inner.monitor.signals().borrow().system.gpus.clone();
        let preferences = lock(&self.inner.settings).preferences.clone();
        let node = self.clone();
        let score = move |adapter: &str| {
            lock(&node.inner.store)
                .score(adapter)
                .inspect_err(|error| tracing::warn!(%error, "cannot read a benchmark score"))
                .ok()
                .flatten()
        };
        let runner = self.inner.runner.clone();
        tokio::task::spawn_blocking(move || {
            let mut kept = lock(&sampler);
            let mut sampler = match kept.take() {
                Some(sampler) => sampler,
                None => HardwareSampler::new(runner.adapters()?),
            };
            let hardware = sampler.sample(&signals, &preferences, score);
            *kept = Some(sampler);
            Ok(hardware)
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
    }

    /// Scores `adapter` (a few seconds) and keeps the score.
    pub async fn run_benchmark(&self, adapter: &str) -> Result<Score, NodeError> {
        let choice = AdapterChoice {
            name: Some(adapter.to_owned()),
        };
        let runner = self.inner.runner.clone();
        let report = tokio::task::spawn_blocking(move || runner.benchmark(&choice))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?
            .map_err(NodeError::Benchmark)?;
        let score = Score {
            matmul_gflops: report.matmul_gflops,
            copy_gbps: report.copy_gbps,
            embeddings: report.embeddings.map(|e| EmbeddingScore {
                per_second: e.per_second,
                model: e.model,
            }),
            measured_at_ms: now_ms(),
        };
        lock(&self.inner.store).set_score(adapter, &score)?;
        tracing::info!(adapter, gflops = score.matmul_gflops, "benchmark kept");
        Ok(score)
    }

    /// The per-GPU "share this GPU" switch.
    pub async fn set_gpu_shared(&self, adapter: &str, shared: bool) -> Result<Hardware, NodeError> {
        let preferences = lock(&self.inner.settings).preferences.clone();
        self.set_preferences(rules::with_gpu_shared(&preferences, adapter, shared))?;
        self.hardware().await
    }

    /// Joined and blocked pools, oldest first.
    pub fn pools(&self) -> Vec<PoolView> {
        let records = lock(&self.inner.records).clone();
        let (snapshot, symbols) = {
            let ledger = lock(&self.inner.ledger);
            (ledger.snapshot(), ledger.symbols())
        };
        let now = Now::system();
        records
            .iter()
            .filter(|r| r.is_member() || r.blocked)
            .map(|r| {
                let (earned_total, earned_today) = earnings::pool_earned(&snapshot, &r.id, now);
                let (state, error) = self.pool_state(r);
                let path = self.pool_path(r, error.as_deref());
                PoolView {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    ticket: r.ticket.clone(),
                    local: r.local,
                    blocked: r.blocked,
                    state,
                    error,
                    path,
                    earned_total,
                    earned_today,
                    joined_at_ms: r.joined_at_ms,
                    symbol: symbols.get(&r.id).cloned(),
                }
            })
            .collect()
    }

    pub(super) fn pool_state(&self, record: &PoolRecord) -> (PoolState, Option<String>) {
        if record.blocked {
            return (PoolState::Blocked, None);
        }
        if let Some(membership) = lock(&self.inner.memberships).get(&record.id) {
            return membership.state();
        }
        let failed = lock(&self.inner.failed).get(&record.id).cloned();
        (
            PoolState::Unreachable,
            Some(failed.unwrap_or_else(|| "not started".into())),
        )
    }

    /// How a pool is reached: its provider's path; unreachable (with `error`) when none runs.
    fn pool_path(&self, record: &PoolRecord, error: Option<&str>) -> PoolPath {
        match lock(&self.inner.memberships).get(&record.id) {
            Some(membership) => membership.path(),
            None if record.blocked => PoolPath::Connecting,
            None => PoolPath::Unreachable {
                error: error.unwrap_or("not started").to_owned(),
            },
        }
    }

    fn pool_view(&self, id: &str) -> Result<PoolView, NodeError> {
        self.pools()
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| NodeError::UnknownPool(id.to_owned()))
    }

    /// Checks the ticket, that the pool answers, and that it is neither joined nor blocked; then
    /// starts working for it.
    pub async fn join_pool(&self, ticket: &str, name: Option<&str>) -> Result<PoolView, NodeError> {
        let _one_at_a_time = self.inner.changes.lock().await;
        let addr = pools::parse_ticket(ticket)?;
        let id = addr.id.to_string();
        if let Some(known) = lock(&self.inner.store).pool(&id)? {
            if known.blocked {
                return Err(NodeError::Blocked(known.name));
            }
            if known.is_member() {
                return Err(NodeError::AlreadyJoined(known.name));
            }
        }
        pools::reach(
            &self.inner.key,
            &addr,
            &self.network(),
            self.inner.reach_timeout,
        )
        .await?;
        let record = PoolRecord {
            name: pools::display_name(name, &id),
            id,
            ticket: ticket.trim().to_owned(),
            local: false,
            blocked: false,
            joined_at_ms: now_ms(),
            left_at_ms: None,
        };
        self.start_membership(&record).await?;
        self.remember_join(&record)?;
        tracing::info!(pool = %record.name, "joined");
        self.pool_view(&record.id)
    }

    pub async fn leave_pool(&self, id: &str) -> Result<Vec<PoolView>, NodeError> {
        self.part(id, false).await
    }

    /// Leaves the pool and refuses its ticket from now on.
    pub async fn block_pool(&self, id: &str) -> Result<Vec<PoolView>, NodeError> {
        self.part(id, true).await
    }

    async fn part(&self, id: &str, block: bool) -> Result<Vec<PoolView>, NodeError> {
        let _one_at_a_time = self.inner.changes.lock().await;
        let record = lock(&self.inner.store)
            .pool(id)?
            .ok_or_else(|| NodeError::UnknownPool(id.to_owned()))?;
        lock(&self.inner.store).leave(id, now_ms(), block)?;
        self.reload_records()?;
        let membership = lock(&self.inner.memberships).remove(id);
        if let Some(membership) = membership {
            membership.stop().await;
        }
        lock(&self.inner.failed).remove(id);
        if record.local {
            let local = lock(&self.inner.local).take();
            if let Some(local) = local {
                local.stop().await;
            }
        }
        tracing::info!(pool = %record.name, block, "left");
        self.refresh();
        Ok(self.pools())
    }

    /// Starts the in-process demo pool with sample work and joins it (again); a demo pool blocked
    /// before is unblocked, since the person asked for it by name.
    pub async fn start_local_pool(&self) -> Result<PoolView, NodeError> {
        let _one_at_a_time = self.inner.changes.lock().await;
        let running = lock(&self.inner.local).as_ref().map(LocalPool::id);
        if let Some(id) = running {
            return self.pool_view(&id);
        }
        let record = self.start_local(now_ms()).await?;
        self.remember_join(&record)?;
        self.pool_view(&record.id)
    }

    /// Starts the demo pool and its provider; `joined_at_ms` is kept from an earlier join.
    async fn start_local(&self, joined_at_ms: u64) -> Result<PoolRecord, NodeError> {
        let dir = self.inner.data_dir.join("local-pool");
        let examples = self.inner.examples_dir.as_deref();
        let local = LocalPool::start(&dir, examples, self.inner.demo_interval).await?;
        let record = PoolRecord {
            id: local.id(),
            name: LOCAL_POOL_NAME.into(),
            ticket: local.ticket(),
            local: true,
            blocked: false,
            joined_at_ms,
            left_at_ms: None,
        };
        if let Err(error) = self.start_membership(&record).await {
            local.stop().await;
            return Err(error);
        }
        *lock(&self.inner.local) = Some(local);
        Ok(record)
    }

    fn remember_join(&self, record: &PoolRecord) -> Result<(), NodeError> {
        lock(&self.inner.store).join(record)?;
        self.reload_records()?;
        self.refresh();
        Ok(())
    }

    async fn start_membership(&self, record: &PoolRecord) -> Result<(), NodeError> {
        let verdicts = if record.local {
            self.inner.local_verdicts.clone()
        } else {
            self.inner.monitor.verdicts()
        };
        let start = Start {
            key: &self.inner.key,
            data_dir: &self.inner.data_dir,
            adapter: &self.inner.adapter_choice,
            runner: &self.inner.runner,
            config: self.provider_config(),
            verdicts,
            wake: std::sync::Arc::clone(&self.inner.wake),
            news: self.inner.news.clone(),
            payout: self.inner.payout.subscribe(),
        };
        let membership = PoolMembership::start(record, start).await?;
        lock(&self.inner.failed).remove(&record.id);
        let previous = lock(&self.inner.memberships).insert(record.id.clone(), membership);
        if let Some(previous) = previous {
            previous.stop().await;
        }
        Ok(())
    }

    /// The providers' settings, with this GPU's benchmark score for the pools to see.
    fn provider_config(&self) -> ProviderConfig {
        let score = lock(&self.inner.store)
            .score(&self.inner.adapter)
            .ok()
            .flatten();
        ProviderConfig {
            gflops: score.map_or(0.0, |s| s.matmul_gflops as f32),
            network: self.network(),
            ..self.inner.provider.clone()
        }
    }

    /// The relays of Settings → Network (validated when saved; a CA file gone since then is logged
    /// and left out).
    fn network(&self) -> Network {
        let settings = lock(&self.inner.settings).network.clone();
        rules::network(&settings).unwrap_or_else(|error| {
            tracing::warn!(%error, "Settings → Network cannot be used; following the tickets");
            Network::default()
        })
    }

    /// At open: work again for every pool joined before (restarting the demo pool on a new port).
    pub(super) async fn resume_memberships(&self) {
        for record in self.member_records() {
            let started = if record.local {
                self.start_local(record.joined_at_ms)
                    .await
                    .and_then(|fresh| self.remember_local(&record, &fresh))
            } else {
                self.start_membership(&record).await
            };
            if let Err(error) = started {
                tracing::warn!(pool = %record.name, %error, "cannot work for the pool");
                lock(&self.inner.failed).insert(record.id.clone(), error.to_string());
            }
        }
    }

    /// The demo pool's new ticket; a demo pool whose key was lost is a new pool, the old one left.
    fn remember_local(&self, old: &PoolRecord, fresh: &PoolRecord) -> Result<(), NodeError> {
        if fresh.id != old.id {
            lock(&self.inner.store).leave(&old.id, now_ms(), false)?;
        }
        self.remember_join(fresh)
    }
}
