//! How the provider reaches its pool: directly, through a relay (and why), or not at all, with the
//! round-trip time. Read from the connection's open paths (iroh 1.x has no "connection type": the
//! path QUIC sends on is direct when its remote is an IP address), published on a `watch` for the
//! app, and logged at each change of kind. Also the wait for a direct path before bulk transfers.

use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use serde::Serialize;
use tokio::sync::watch;

/// How often the paths are looked at while connected (path changes and the RTT).
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Relayed for this long after connecting, hole punching has had its chance: iroh tries at once and
/// again within seconds, so a relay still in use is the routers' doing.
pub const PUNCH_GRACE: Duration = Duration::from_secs(10);

/// The relayed reason once hole punching has had its chance.
pub const NO_DIRECT_PATH: &str = "your router or the pool's does not allow a direct path";
/// The relayed reason while it has not.
pub const LOOKING: &str = "looking for a direct path";

/// How a pool is reached now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "PoolPath"))]
pub enum PoolPath {
    /// Not connected yet.
    Connecting,
    Direct {
        rtt_ms: u64,
    },
    Relayed {
        rtt_ms: u64,
        why: String,
    },
    Unreachable {
        error: String,
    },
}

impl PoolPath {
    /// Whether two paths differ in what a person reads (the RTT moves all the time).
    pub fn same_kind(&self, other: &PoolPath) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && match (self, other) {
                (PoolPath::Relayed { why: a, .. }, PoolPath::Relayed { why: b, .. }) => a == b,
                (PoolPath::Unreachable { error: a }, PoolPath::Unreachable { error: b }) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for PoolPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolPath::Connecting => write!(f, "connecting"),
            PoolPath::Direct { rtt_ms } => write!(f, "direct, {rtt_ms} ms"),
            PoolPath::Relayed { rtt_ms, why } => write!(f, "relayed ({why}), {rtt_ms} ms"),
            PoolPath::Unreachable { error } => write!(f, "unreachable: {error}"),
        }
    }
}

/// One open path, as far as the classification needs it.
#[derive(Clone, Copy, Debug)]
pub struct OpenPath {
    pub direct: bool,
    pub selected: bool,
    pub rtt: Duration,
}

/// The path a connection open for `connected_for` is reached on: the one QUIC selected (else the
/// fastest), direct when its remote is an IP address.
pub fn classify(paths: &[OpenPath], connected_for: Duration) -> PoolPath {
    let chosen = paths
        .iter()
        .find(|p| p.selected)
        .or_else(|| paths.iter().min_by_key(|p| p.rtt));
    let Some(path) = chosen else {
        return PoolPath::Connecting;
    };
    let rtt_ms = u64::try_from(path.rtt.as_millis()).unwrap_or(u64::MAX);
    if path.direct {
        return PoolPath::Direct { rtt_ms };
    }
    let why = if connected_for < PUNCH_GRACE {
        LOOKING
    } else {
        NO_DIRECT_PATH
    };
    PoolPath::Relayed {
        rtt_ms,
        why: why.into(),
    }
}

fn open_paths(connection: &Connection) -> Vec<OpenPath> {
    connection
        .paths()
        .iter()
        .map(|p| OpenPath {
            direct: p.is_ip(),
            selected: p.is_selected(),
            rtt: p.rtt(),
        })
        .collect()
}

/// Publishes `path`, logging it when its kind changed.
pub(super) fn publish(paths: &watch::Sender<PoolPath>, path: PoolPath) {
    paths.send_if_modified(|current| {
        if *current == path {
            return false;
        }
        if !current.same_kind(&path) {
            tracing::info!(path = %path, "path to the pool changed");
        }
        *current = path;
        true
    });
}

/// Follows `connection`'s paths while it is open; never returns (whoever awaits it stops it).
pub(super) async fn follow(connection: &Connection, paths: &watch::Sender<PoolPath>) {
    let since = Instant::now();
    let mut tick = tokio::time::interval(LOOK_EVERY);
    while connection.close_reason().is_none() {
        tick.tick().await;
        publish(paths, classify(&open_paths(connection), since.elapsed()));
    }
    std::future::pending::<()>().await;
}

/// Waits up to `limit` for `connection` to go direct; whether it did.
pub(super) async fn wait_for_direct(connection: &Connection, limit: Duration) -> bool {
    let direct = || open_paths(connection).iter().any(|p| p.direct);
    let wait = async {
        while !direct() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(direct: bool, selected: bool, rtt_ms: u64) -> OpenPath {
        OpenPath {
            direct,
            selected,
            rtt: Duration::from_millis(rtt_ms),
        }
    }

    #[test]
    fn the_selected_path_says_how_the_pool_is_reached() {
        let early = Duration::from_secs(1);
        let late = PUNCH_GRACE + Duration::from_secs(1);
        assert_eq!(classify(&[], early), PoolPath::Connecting);
        assert_eq!(
            classify(&[path(false, false, 40), path(true, true, 3)], late),
            PoolPath::Direct { rtt_ms: 3 }
        );
        assert_eq!(
            classify(&[path(false, true, 40), path(true, false, 3)], early),
            PoolPath::Relayed {
                rtt_ms: 40,
                why: LOOKING.into()
            }
        );
        assert_eq!(
            classify(&[path(false, true, 40)], late),
            PoolPath::Relayed {
                rtt_ms: 40,
                why: NO_DIRECT_PATH.into()
            }
        );
        assert_eq!(
            classify(&[path(false, false, 40), path(true, false, 3)], late),
            PoolPath::Direct { rtt_ms: 3 }
        );
    }

    #[test]
    fn only_a_change_of_kind_is_logged_news_but_every_rtt_is_published() {
        let (paths, mut seen) = watch::channel(PoolPath::Direct { rtt_ms: 3 });
        seen.borrow_and_update();
        publish(&paths, PoolPath::Direct { rtt_ms: 4 });
        assert!(seen.has_changed().unwrap());
        assert!(PoolPath::Direct { rtt_ms: 4 }.same_kind(&PoolPath::Direct { rtt_ms: 9 }));
        assert!(
            !PoolPath::Direct { rtt_ms: 4 }.same_kind(&PoolPath::Relayed {
                rtt_ms: 4,
                why: LOOKING.into()
            })
        );
    }
}
