//! How the joined pools are reached, summed up for the tray and the overview: the worst state first
//! ("1 of 3 pools unreachable", then "2 of 3 pools relayed"); nothing while every pool is direct.

use crate::provider::PoolPath;

/// The line for `paths` (one per joined pool), or `None` when none is relayed or unreachable.
pub fn network_line(paths: &[&PoolPath]) -> Option<String> {
    let count = |wanted: fn(&PoolPath) -> bool| paths.iter().filter(|p| wanted(p)).count();
    let unreachable = count(|p| matches!(p, PoolPath::Unreachable { .. }));
    let relayed = count(|p| matches!(p, PoolPath::Relayed { .. }));
    let (n, word) = match (unreachable, relayed) {
        (0, 0) => return None,
        (0, n) => (n, "relayed"),
        (n, _) => (n, "unreachable"),
    };
    Some(match paths.len() {
        1 => format!("pool {word}"),
        all => format!("{n} of {all} pools {word}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed() -> PoolPath {
        PoolPath::Relayed {
            rtt_ms: 40,
            why: crate::provider::NO_DIRECT_PATH.into(),
        }
    }

    #[test]
    fn the_worst_state_is_the_one_counted() {
        let direct = PoolPath::Direct { rtt_ms: 3 };
        let lost = PoolPath::Unreachable {
            error: "timed out".into(),
        };
        assert_eq!(network_line(&[]), None);
        assert_eq!(network_line(&[&direct, &PoolPath::Connecting]), None);
        assert_eq!(
            network_line(&[&direct, &relayed(), &direct]).as_deref(),
            Some("1 of 3 pools relayed")
        );
        assert_eq!(
            network_line(&[&relayed(), &lost, &relayed()]).as_deref(),
            Some("1 of 3 pools unreachable")
        );
        assert_eq!(network_line(&[&relayed()]).as_deref(), Some("pool relayed"));
    }
}
