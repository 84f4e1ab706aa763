//! How often each peer may ask the pool for something: one bucket per (peer, kind of request), with a
//! sustained rate and a burst, kept as a GCRA ("generic cell rate algorithm") bucket: a single
//! "theoretical arrival time" per bucket instead of a token count. That is a token bucket in another
//! form (a full bucket is a time at or before now; every request pushes it one interval later; a
//! request is refused when that would put it more than `burst` intervals ahead of now), but a request
//! costs one addition and one comparison of durations, with no floating point and no rounding, so
//! what it decides follows exactly from the instants it is given.
//!
//! Nothing here reads a clock: every call is given `now`, so the tests below are exact and the
//! network layer decides which clock counts. Memory is bounded: a peer whose buckets are all full
//! again is forgotten at the next sweep (losing nothing, as a new peer starts full too), and the table
//! never holds more than [`PeerLimits::max_peers`] peers.
//!
//! Keys cost nothing to make, so per-key limits stop one misbehaving peer (a bug in a loop, a greedy
//! client), not a crowd of fresh identities; refusing known keys outright is
//! [`PoolConfig::blocked`](super::PoolConfig::blocked).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iroh::PublicKey;

/// A sustained rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests a second, sustained; 0 means no limit for this kind.
    pub per_second: u32,
    /// Requests that may come at once after a quiet spell (at least 1 counts).
    pub burst: u32,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    pub const fn new(per_second: u32, burst: u32) -> Rate {
        Rate { per_second, burst }
    }
}

/// What one peer may ask of the pool; see each kind in [`Kind`].
///
/// The defaults are far above what an honest provider or submitter does and far below what the pool
/// can serve (about 18,000 asks a second on two cores, per BENCHMARKS.md), so one peer cannot take
/// more than a sliver of it:
///
/// - `work`, 50 a second, burst 200: an idle provider asks once per `retry_after` (1 s by default,
///   and the rate is never set below four asks per `retry_after`, so a pool that tells its providers
///   to ask more often lets them); a busy one asks once per batch of leases and returns each result,
///   and those requests are given back their token (see [`RateLimiter::refund`]), so a provider is
///   never held back for doing work however short the jobs. What is left counted is asks that got
///   nothing, give-backs, failures, refused results and garbage.
/// - `submissions`, 10 streams a second, burst 100: each job a submitter sends takes two streams (the
///   job, then the watch that waits for it), so this is 5 jobs a second sustained and a batch of 50 at
///   once. The pool's own submitter key (its operator) is not limited.
/// - `blob_fetches`, 20 a second, burst 100: a provider fetches each input of a job once (it keeps a
///   cache) and a job has at most 16 buffers, so a burst covers six jobs' worth of fresh inputs at
///   once. Each fetch makes the pool read and hash the whole blob (150 ms for 256 MiB), so these are
///   the dearest requests and none is given back.
/// - `max_peers`, 10,000: about 100 bytes each, so at most about a megabyte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    pub work: Rate,
    pub submissions: Rate,
    pub blob_fetches: Rate,
    /// Peers remembered at once; the least indebted are forgotten first when more come.
    pub max_peers: usize,
    /// A request frame must arrive whole within this, so a peer that sends a length and stops does not
    /// hold a stream; bytes that follow a request get this plus a second per MiB.
    pub request_wait: Duration,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            work: Rate::new(50, 200),
            submissions: Rate::new(10, 100),
            blob_fetches: Rate::new(20, 100),
            max_peers: 10_000,
            request_wait: Duration::from_secs(10),
        }
    }
}

impl PeerLimits {
    /// No limits at all (benchmarks that measure the pool flat out).
    pub fn unlimited() -> PeerLimits {
        PeerLimits {
            work: Rate::UNLIMITED,
            submissions: Rate::UNLIMITED,
            blob_fetches: Rate::UNLIMITED,
            ..PeerLimits::default()
        }
    }

    /// How long the bulk bytes after a request may take: [`PeerLimits::request_wait`] plus a second per
    /// MiB (a provider on a slow uplink still makes it; a trickle does not hold a stream forever).
    pub fn bulk_wait(&self, bytes: u64) -> Duration {
        self.request_wait + Duration::from_secs(bytes.div_ceil(1 << 20))
    }

    /// These limits for a pool that tells idle providers to ask again after `retry_after`: the work
    /// rate is raised to at least four asks per `retry_after`, so a provider doing what it was told
    /// is never refused for it.
    pub fn for_retry_after(&self, retry_after: Duration) -> PeerLimits {
        let mut limits = self.clone();
        if limits.work.per_second > 0 {
            let nanos = retry_after.as_nanos().max(1);
            let floor = u32::try_from((4 * 1_000_000_000u128).div_ceil(nanos)).unwrap_or(u32::MAX);
            limits.work.per_second = limits.work.per_second.max(floor);
        }
        limits
    }
}

/// What a request is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Any stream on the work protocol, counted before its frame is read (so garbage counts too).
    WorkRequest,
    /// Any stream on the submit protocol: a job or a watch.
    Submission,
    /// A provider fetching an input.
    BlobFetch,
}

const KINDS: usize = 3;

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::WorkRequest => 0,
            Kind::Submission => 1,
            Kind::BlobFetch => 2,
        }
    }
}

/// One kind's limit in the form the algorithm uses.
#[derive(Clone, Copy, Debug)]
struct Cell {
    /// Time one request is worth: 1 s / rate.
    interval: Duration,
    /// How far ahead of now a bucket may run: `burst` intervals.
    tolerance: Duration,
}

impl Cell {
    fn new(rate: Rate) -> Option<Cell> {
        if rate.per_second == 0 {
            return None;
        }
        // Above a billion a second the interval would round to nothing; one nanosecond is the least.
        let interval = Duration::from_nanos((1_000_000_000 / u64::from(rate.per_second)).max(1));
        Some(Cell {
            interval,
            tolerance: interval.saturating_mul(rate.burst.max(1)),
        })
    }
}

/// Takes one request from the bucket whose theoretical arrival time is `tat`, if it holds one.
fn take(tat: &mut Instant, cell: Cell, now: Instant) -> Result<(), Duration> {
    let next = (*tat).max(now) + cell.interval;
    let ahead = next.duration_since(now);
    if ahead > cell.tolerance {
        return Err(ahead - cell.tolerance);
    }
    *tat = next;
    Ok(())
}

/// Per-peer buckets for every kind, and the bound on how many peers are kept.
#[derive(Debug)]
pub struct RateLimiter {
    cells: [Option<Cell>; KINDS],
    /// Each peer's theoretical arrival time per kind: the bucket is full when it is at or before now.
    /// The std hasher is keyed at random, so peers cannot pick keys that collide in it.
    peers: HashMap<PublicKey, [Instant; KINDS]>,
    max_peers: usize,
}

impl RateLimiter {
    pub fn new(limits: &PeerLimits) -> RateLimiter {
        RateLimiter {
            cells: [
                Cell::new(limits.work),
                Cell::new(limits.submissions),
                Cell::new(limits.blob_fetches),
            ],
            peers: HashMap::new(),
            // A table of zero would forget every peer at once, which is no limit at all.
            max_peers: limits.max_peers.max(1),
        }
    }

    /// Takes one request of `kind` from `peer` at `now`; if the bucket is empty, says how long until
    /// it holds one again. A refused request takes nothing, so a peer that keeps asking while refused
    /// is not kept out any longer than one that waits.
    pub fn check(&mut self, peer: &PublicKey, kind: Kind, now: Instant) -> Result<(), Duration> {
        let Some(cell) = self.cells[kind.index()] else {
            return Ok(());
        };
        // One lookup for a peer already known (the common case), a second only for a new one.
        if let Some(times) = self.peers.get_mut(peer) {
            return take(&mut times[kind.index()], cell, now);
        }
        self.make_room(now);
        let times = self.peers.entry(*peer).or_insert([now; KINDS]);
        take(&mut times[kind.index()], cell, now)
    }

    /// Gives back the request last taken from `peer`'s `kind` bucket: the request did work the pool
    /// wants done (an ask that got leases, a result that was taken), so it should not count against
    /// the peer. Only call it after a successful [`check`](Self::check) for the same request.
    pub fn refund(&mut self, peer: &PublicKey, kind: Kind) {
        let Some(cell) = self.cells[kind.index()] else {
            return;
        };
        if let Some(times) = self.peers.get_mut(peer) {
            let tat = &mut times[kind.index()];
            // A time before now already means a full bucket; going further back changes nothing.
            if let Some(earlier) = tat.checked_sub(cell.interval) {
                *tat = earlier;
            }
        }
    }

    /// Peers remembered now.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Before a new peer is added to a full table: forgets every peer whose buckets are full again,
    /// and if that frees less than an eighth of the table, the least indebted peers as well (they
    /// lose at most a little of their debt; a flooding peer, deepest in debt, is kept). Sweeping an
    /// eighth at a time makes the cost per new peer constant on average.
    fn make_room(&mut self, now: Instant) {
        if self.peers.len() < self.max_peers {
            return;
        }
        self.peers
            .retain(|_, times| times.iter().any(|&tat| tat > now));
        let target = self.max_peers - self.max_peers.div_ceil(8);
        if self.peers.len() <= target {
            return;
        }
        let mut debts: Vec<(Instant, PublicKey)> = self
            .peers
            .iter()
            .map(|(peer, times)| (times.iter().copied().fold(now, Instant::max), *peer))
            .collect();
        let excess = debts.len() - target;
        debts.select_nth_unstable_by_key(excess - 1, |(debt, _)| *debt);
        for (_, peer) in &debts[..excess] {
            self.peers.remove(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    fn peer(n: u8) -> PublicKey {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    fn limits(work: Rate) -> PeerLimits {
        PeerLimits {
            work,
            submissions: Rate::new(2, 3),
            blob_fetches: Rate::new(1, 1),
            max_peers: 100,
            ..PeerLimits::default()
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_takes_exactly_its_burst_at_once() {
        let mut limiter = RateLimiter::new(&limits(Rate::new(50, 200)));
        let t0 = Instant::now();
        let p = peer(1);
        for i in 0..200 {
            assert_eq!(
                limiter.check(&p, Kind::WorkRequest, t0),
                Ok(()),
                "request {i}"
            );
        }
        // One more would need one interval (20 ms at 50/s) to pass.
        assert_eq!(limiter.check(&p, Kind::WorkRequest, t0), Err(20 * MS));
        // Refused requests take nothing: asking again at once is told the same.
        assert_eq!(limiter.check(&p, Kind::WorkRequest, t0), Err(20 * MS));
    }

    #[test]
    fn an_empty_bucket_refills_at_the_rate() {
        let mut limiter = RateLimiter::new(&limits(Rate::new(50, 200)));
        let t0 = Instant::now();
        let p = peer(1);
        for _ in 0..200 {
            limiter.check(&p, Kind::WorkRequest, t0).unwrap();
        }
        // A nanosecond early is too early; on time passes, once.
        let refilled = t0 + 20 * MS;
        let early = refilled - Duration::from_nanos(1);
        assert_eq!(
            limiter.check(&p, Kind::WorkRequest, early),
            Err(Duration::from_nanos(1))
        );
        assert_eq!(limiter.check(&p, Kind::WorkRequest, refilled), Ok(()));
        assert_eq!(limiter.check(&p, Kind::WorkRequest, refilled), Err(20 * MS));
        // Sustained at exactly the rate, it never refuses.
        for i in 1..=1000 {
            let at = refilled + 20 * MS * i;
            assert_eq!(limiter.check(&p, Kind::WorkRequest, at), Ok(()), "{i}");
        }
        // After a quiet spell of burst × interval (4 s) the whole burst is back, no more.
        let rested = refilled + 20 * MS * 1000 + Duration::from_secs(4);
        for _ in 0..200 {
            limiter.check(&p, Kind::WorkRequest, rested).unwrap();
        }
        assert!(limiter.check(&p, Kind::WorkRequest, rested).is_err());
    }

    #[test]
    fn kinds_and_peers_have_their_own_buckets() {
        let mut limiter = RateLimiter::new(&limits(Rate::new(1, 2)));
        let t0 = Instant::now();
        let (a, b) = (peer(1), peer(2));
        limiter.check(&a, Kind::WorkRequest, t0).unwrap();
        limiter.check(&a, Kind::WorkRequest, t0).unwrap();
        assert_eq!(
            limiter.check(&a, Kind::WorkRequest, t0),
            Err(Duration::from_secs(1))
        );
        // The same peer's other kinds are untouched, each with its own rate and burst.
        for _ in 0..3 {
            limiter.check(&a, Kind::Submission, t0).unwrap();
        }
        assert_eq!(limiter.check(&a, Kind::Submission, t0), Err(500 * MS));
        limiter.check(&a, Kind::BlobFetch, t0).unwrap();
        assert_eq!(
            limiter.check(&a, Kind::BlobFetch, t0),
            Err(Duration::from_secs(1))
        );
        // Another peer starts full.
        limiter.check(&b, Kind::WorkRequest, t0).unwrap();
        limiter.check(&b, Kind::WorkRequest, t0).unwrap();
        assert!(limiter.check(&b, Kind::WorkRequest, t0).is_err());
    }

    #[test]
    fn a_refund_gives_back_one_request_and_never_more_than_the_burst() {
        let mut limiter = RateLimiter::new(&limits(Rate::new(10, 3)));
        let t0 = Instant::now();
        let p = peer(1);
        // Every request refunded: a productive peer is never limited.
        for _ in 0..1000 {
            limiter.check(&p, Kind::WorkRequest, t0).unwrap();
            limiter.refund(&p, Kind::WorkRequest);
        }
        // Refunds do not pile up beyond a full bucket.
        for _ in 0..10 {
            limiter.refund(&p, Kind::WorkRequest);
        }
        for _ in 0..3 {
            limiter.check(&p, Kind::WorkRequest, t0).unwrap();
        }
        assert_eq!(limiter.check(&p, Kind::WorkRequest, t0), Err(100 * MS));
        limiter.refund(&p, Kind::WorkRequest);
        assert_eq!(limiter.check(&p, Kind::WorkRequest, t0), Ok(()));
        // A refund for a peer never seen is a no-op.
        limiter.refund(&peer(9), Kind::WorkRequest);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn an_unlimited_kind_is_never_refused_and_remembers_no_one() {
        let mut limiter = RateLimiter::new(&PeerLimits::unlimited());
        let t0 = Instant::now();
        for _ in 0..10_000 {
            limiter.check(&peer(1), Kind::WorkRequest, t0).unwrap();
            limiter.check(&peer(1), Kind::BlobFetch, t0).unwrap();
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn idle_peers_are_forgotten_and_the_table_never_outgrows_its_cap() {
        let mut config = limits(Rate::new(10, 2));
        config.max_peers = 16;
        let mut limiter = RateLimiter::new(&config);
        let t0 = Instant::now();
        let flooder = peer(0);
        for _ in 0..2 {
            limiter.check(&flooder, Kind::WorkRequest, t0).unwrap();
        }
        assert!(limiter.check(&flooder, Kind::WorkRequest, t0).is_err());
        // Fifteen more peers fill the table; each asked once, so each is 100 ms in debt.
        for n in 1..16 {
            limiter.check(&peer(n), Kind::WorkRequest, t0).unwrap();
        }
        assert_eq!(limiter.len(), 16);

        // 100 ms on, their buckets are full again and a newcomer sweeps them all out; the flooder,
        // still 100 ms in debt, is kept and still refused.
        let later = t0 + 100 * MS;
        limiter.check(&peer(100), Kind::WorkRequest, later).unwrap();
        assert_eq!(limiter.len(), 2);
        // One of its two requests has come back in those 100 ms, and no more.
        assert_eq!(limiter.check(&flooder, Kind::WorkRequest, later), Ok(()));
        assert_eq!(
            limiter.check(&flooder, Kind::WorkRequest, later),
            Err(100 * MS)
        );

        // With every peer in debt, newcomers push out the least indebted, never past the cap, and
        // the deepest in debt (the flooder) stays.
        for n in 101..200 {
            limiter.check(&peer(n), Kind::WorkRequest, later).unwrap();
            assert!(limiter.len() <= 16);
        }
        assert_eq!(
            limiter.check(&flooder, Kind::WorkRequest, later),
            Err(100 * MS)
        );
    }

    #[test]
    fn the_work_rate_follows_retry_after() {
        let limits = PeerLimits::default();
        // The default retry_after (1 s) leaves the rate alone.
        assert_eq!(
            limits.for_retry_after(Duration::from_secs(1)).work,
            Rate::new(50, 200)
        );
        // A pool asking for a poll every millisecond allows 4,000 a second.
        assert_eq!(limits.for_retry_after(MS).work.per_second, 4_000);
        assert_eq!(
            limits.for_retry_after(Duration::ZERO).work.per_second,
            4_000_000_000
        );
        // Unlimited stays unlimited.
        assert_eq!(
            PeerLimits::unlimited().for_retry_after(MS).work,
            Rate::UNLIMITED
        );
    }
}
