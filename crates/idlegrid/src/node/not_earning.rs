//! "Why am I not earning?": the first reason that holds, in the order a person can act on them —
//! sharing off, the computer in use, a pause rule (which one), no pool joined, no pool reachable,
//! no work in the pools, failing checks. `None` while the node works and its results pass.

use crate::idle::Reason;

/// What the answer depends on, read from the node's state.
#[derive(Clone, Debug, Default)]
pub struct EarningFacts<'a> {
    /// "Share when idle" is on.
    pub sharing: bool,
    /// Why every pool is paused, when every one is.
    pub paused: Option<&'a Reason>,
    pub joined: usize,
    /// Pools that are not unreachable.
    pub reachable: usize,
    /// A pool answered that it has no work for now, and none has given any.
    pub no_work: bool,
    /// The newest check a pool judged failed.
    pub last_check_failed: bool,
}

pub fn why_not_earning(facts: &EarningFacts<'_>) -> Option<String> {
    if !facts.sharing || matches!(facts.paused, Some(Reason::Off)) {
        return Some("Sharing is off: turn on “Share when idle”".into());
    }
    match facts.paused {
        Some(Reason::UserActive { .. }) => {
            return Some("You are using the computer: work starts once you are away".into());
        }
        Some(rule) => {
            let rule = rule.to_string();
            let rule = rule.strip_prefix("Paused: ").unwrap_or(&rule);
            return Some(format!("A pause rule holds: {rule}"));
        }
        None => {}
    }
    if facts.joined == 0 {
        return Some("No pool joined: join one on the Pools page".into());
    }
    if facts.reachable == 0 {
        return Some("No pool can be reached: see the Pools page".into());
    }
    if facts.no_work {
        return Some("Your pools have no work right now".into());
    }
    if facts.last_check_failed {
        return Some("Your last result failed a pool's check, and checks are not paid".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earning() -> EarningFacts<'static> {
        EarningFacts {
            sharing: true,
            paused: None,
            joined: 2,
            reachable: 2,
            no_work: false,
            last_check_failed: false,
        }
    }

    fn why(facts: EarningFacts<'_>) -> String {
        why_not_earning(&facts).unwrap_or_default()
    }

    #[test]
    fn working_with_passing_checks_needs_no_reason() {
        assert_eq!(why_not_earning(&earning()), None);
    }

    #[test]
    fn sharing_off_comes_first() {
        let reason = Reason::UserActive { resumes_in_s: 9 };
        let facts = EarningFacts {
            sharing: false,
            paused: Some(&reason),
            joined: 0,
            ..earning()
        };
        assert!(why(facts).starts_with("Sharing is off"));
        let off = Reason::Off;
        assert!(
            why(EarningFacts {
                paused: Some(&off),
                ..earning()
            })
            .starts_with("Sharing is off")
        );
    }

    #[test]
    fn the_computer_in_use() {
        let reason = Reason::UserActive { resumes_in_s: 120 };
        let facts = EarningFacts {
            paused: Some(&reason),
            joined: 0,
            ..earning()
        };
        assert!(why(facts).starts_with("You are using the computer"));
    }

    #[test]
    fn a_pause_rule_is_named() {
        let reason = Reason::OnBattery;
        let said = why(EarningFacts {
            paused: Some(&reason),
            ..earning()
        });
        let rule = reason.to_string();
        let rule = rule.strip_prefix("Paused: ").unwrap_or(&rule).to_owned();
        assert_eq!(said, format!("A pause rule holds: {rule}"));
    }

    #[test]
    fn no_pool_joined() {
        let facts = EarningFacts {
            joined: 0,
            reachable: 0,
            ..earning()
        };
        assert!(why(facts).starts_with("No pool joined"));
    }

    #[test]
    fn no_pool_reachable() {
        let facts = EarningFacts {
            reachable: 0,
            no_work: true,
            ..earning()
        };
        assert!(why(facts).starts_with("No pool can be reached"));
    }

    #[test]
    fn the_pools_have_no_work() {
        let facts = EarningFacts {
            no_work: true,
            last_check_failed: true,
            ..earning()
        };
        assert_eq!(why(facts), "Your pools have no work right now");
    }

    #[test]
    fn failing_checks() {
        let facts = EarningFacts {
            last_check_failed: true,
            ..earning()
        };
        assert!(why(facts).contains("failed a pool's check"));
    }
}
