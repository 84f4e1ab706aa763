//! The person's settings: which values are acceptable, and the small changes the tray makes (sharing
//! on or off, a snooze). Pure functions; the node stores the result and hands the preferences to the
//! idle monitor.

use std::collections::HashSet;
use std::time::Duration;

use crate::idle::{Mode, Preferences};
use crate::protocol::{Network, RelayChoice};

use super::views::{NetworkSettings, PayoutSettings, PayoutTo, Settings};
use crate::payout_address::PayoutChoice;

/// Shortest and longest idle delay a person may choose.
const IDLE_AFTER: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(24 * 3600));
/// A snooze of up to a week: "Pause for 1 hour" sends 60.
const MAX_SNOOZE_MINUTES: u64 = 7 * 24 * 60;
/// GPU temperature limits outside this band are typing mistakes, not choices.
const TEMPERATURE_C: (f32, f32) = (40.0, 110.0);
const MAX_EXCLUSIVE_PROGRAMS: usize = 100;
const MAX_NAME_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2000;

/// Why settings were refused, as one sentence for the settings page.
pub fn validate(settings: &Settings) -> Result<(), String> {
    let p = &settings.preferences;
    if !(IDLE_AFTER.0..=IDLE_AFTER.1).contains(&p.idle_after) {
        return Err(format!(
            "the idle delay must be between {} seconds and {} hours",
            IDLE_AFTER.0.as_secs(),
            IDLE_AFTER.1.as_secs() / 3600
        ));
    }
    check_percent("the CPU limit", p.max_other_cpu_percent)?;
    check_percent("the GPU use limit", p.max_other_gpu_percent)?;
    if let Some(t) = p.max_gpu_temperature_c
        && !(TEMPERATURE_C.0..=TEMPERATURE_C.1).contains(&t)
    {
        return Err(format!(
            "the GPU temperature limit must be between {} and {} °C",
            TEMPERATURE_C.0, TEMPERATURE_C.1
        ));
    }
    check_schedule(p)?;
    check_names(p)?;
    payout_choice(&settings.payout)?;
    check_chain_rpc(&settings.payout.chain_rpc)?;
    network(&settings.network).map(drop)
}

/// Where the person chose to be paid, or why the address they pasted is not one.
pub fn payout_choice(payout: &PayoutSettings) -> Result<PayoutChoice, String> {
    match payout.to {
        PayoutTo::OwnAccount => Ok(PayoutChoice::OwnAccount),
        PayoutTo::None => Ok(PayoutChoice::Declined),
        PayoutTo::Address if payout.address.trim().is_empty() => {
            Err("paste the payout address (0x and 40 hex digits), or choose another option".into())
        }
        PayoutTo::Address => PayoutChoice::from_input(Some(&payout.address), false)
            .map_err(|e| format!("the payout address: {e}")),
    }
}

/// The RPC to check payouts through, when the person gave one.
pub fn chain_rpc(payout: &PayoutSettings) -> Option<String> {
    Some(payout.chain_rpc.trim().to_owned()).filter(|rpc| !rpc.is_empty())
}

fn check_chain_rpc(rpc: &str) -> Result<(), String> {
    let rpc = rpc.trim();
    if rpc.is_empty() {
        return Ok(());
    }
    let scheme_ok = ["http://", "https://", "ws://", "wss://"]
        .iter()
        .any(|scheme| rpc.len() > scheme.len() && rpc.starts_with(scheme));
    if !scheme_ok || rpc.chars().any(char::is_whitespace) || rpc.len() > MAX_URL_CHARS {
        return Err(format!(
            "the chain RPC must be a URL starting with http://, https://, ws:// or wss://, not \"{rpc}\""
        ));
    }
    Ok(())
}

/// The relays the app's providers use, from Settings → Network; or why those settings cannot be used.
pub fn network(settings: &NetworkSettings) -> Result<Network, String> {
    let relays = settings
        .relays
        .iter()
        .map(|url| url.trim())
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse()
                .map_err(|e| format!("`{url}` is not a relay URL ({e})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let choice = match (settings.no_relay, relays.is_empty()) {
        (true, false) => return Err("choose relays or direct only, not both".into()),
        (true, true) => RelayChoice::Off,
        (false, true) => RelayChoice::Default,
        (false, false) => RelayChoice::Own(relays),
    };
    let network = Network {
        choice,
        ca_roots: Vec::new(),
    };
    match settings.relay_ca.as_deref().map(str::trim) {
        Some(path) if !path.is_empty() => network
            .trusting(std::path::Path::new(path))
            .map_err(|e| e.to_string()),
        _ => Ok(network),
    }
}

fn check_percent(what: &str, value: Option<f32>) -> Result<(), String> {
    match value {
        Some(v) if !(0.0..=100.0).contains(&v) => {
            Err(format!("{what} must be between 0 and 100 %"))
        }
        _ => Ok(()),
    }
}

fn check_schedule(p: &Preferences) -> Result<(), String> {
    let Some(schedule) = &p.schedule else {
        return Ok(());
    };
    for window in &schedule.windows {
        if window.days.is_empty() || window.days.iter().any(|&d| d > 6) {
            return Err("each schedule window needs days from 0 (Monday) to 6 (Sunday)".into());
        }
        if window.start_minute >= 24 * 60 || window.end_minute >= 24 * 60 {
            return Err("schedule times must be within the day (minutes 0 to 1439)".into());
        }
    }
    Ok(())
}

fn check_names(p: &Preferences) -> Result<(), String> {
    if p.exclusive_programs.len() > MAX_EXCLUSIVE_PROGRAMS {
        return Err(format!(
            "at most {MAX_EXCLUSIVE_PROGRAMS} programs can be listed"
        ));
    }
    let bad_name = |n: &str| n.trim().is_empty() || n.chars().count() > MAX_NAME_CHARS;
    if p.exclusive_programs.iter().any(|n| bad_name(n)) {
        return Err("a program's name is empty or too long".into());
    }
    let mut adapters = HashSet::new();
    for rule in &p.gpus {
        if bad_name(&rule.adapter) || !adapters.insert(rule.adapter.as_str()) {
            return Err(format!(
                "GPU switch \"{}\" is empty, too long or listed twice",
                rule.adapter
            ));
        }
    }
    Ok(())
}

/// The "Share when idle" toggle. Turning sharing on comes back to the mode it had before it was turned
/// off (`remembered`), When idle if that was never known.
pub fn with_sharing(preferences: &Preferences, on: bool, remembered: Option<Mode>) -> Preferences {
    let mode = match (on, preferences.mode) {
        (false, _) => Mode::Off,
        (true, Mode::Off) => remembered
            .filter(|m| *m != Mode::Off)
            .unwrap_or(Mode::WhenIdle),
        (true, mode) => mode,
    };
    Preferences {
        mode,
        ..preferences.clone()
    }
}

/// "Pause for N minutes" from `now_ms`; 0 or more than a week is refused.
pub fn snoozed(
    preferences: &Preferences,
    minutes: u64,
    now_ms: u64,
) -> Result<Preferences, String> {
    if minutes == 0 || minutes > MAX_SNOOZE_MINUTES {
        return Err(format!(
            "a pause lasts from 1 minute to {} days",
            MAX_SNOOZE_MINUTES / (24 * 60)
        ));
    }
    Ok(Preferences {
        snoozed_until_ms: Some(now_ms + minutes * 60_000),
        ..preferences.clone()
    })
}

/// The per-GPU "share this GPU" switch; a GPU shared with no other rule needs no entry.
pub fn with_gpu_shared(preferences: &Preferences, adapter: &str, shared: bool) -> Preferences {
    let mut gpus = preferences.gpus.clone();
    match gpus.iter_mut().find(|r| r.adapter == adapter) {
        Some(rule) => rule.share = shared,
        None => gpus.push(crate::idle::GpuRule {
            adapter: adapter.to_owned(),
            share: shared,
            while_active: false,
        }),
    }
    gpus.retain(|r| !r.share || r.while_active);
    Preferences {
        gpus,
        ..preferences.clone()
    }
}

/// Whether the rules let `adapter` work.
pub fn gpu_shared(preferences: &Preferences, adapter: &str) -> bool {
    preferences
        .gpus
        .iter()
        .find(|r| r.adapter == adapter)
        .is_none_or(|r| r.share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idle::{Schedule, Window};

    fn with(f: impl FnOnce(&mut Preferences)) -> Settings {
        let mut settings = Settings::default();
        f(&mut settings.preferences);
        settings
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Settings::default()), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_refused_with_a_reason() {
        let bad = [
            with(|p| p.idle_after = Duration::from_secs(1)),
            with(|p| p.max_other_cpu_percent = Some(120.0)),
            with(|p| p.max_other_gpu_percent = Some(-1.0)),
            with(|p| p.max_gpu_temperature_c = Some(300.0)),
            with(|p| p.exclusive_programs = vec![" ".into()]),
            with(|p| {
                p.schedule = Some(Schedule {
                    windows: vec![Window {
                        days: vec![7],
                        start_minute: 0,
                        end_minute: 60,
                    }],
                })
            }),
            with(|p| {
                p.schedule = Some(Schedule {
                    windows: vec![Window {
                        days: vec![1],
                        start_minute: 0,
                        end_minute: 1440,
                    }],
                })
            }),
            with(|p| p.gpus = vec![rule("a", true), rule("a", false)]),
        ];
        for settings in bad {
            let reason = validate(&settings).unwrap_err();
            assert!(!reason.is_empty());
        }
    }

    fn rule(adapter: &str, share: bool) -> crate::idle::GpuRule {
        crate::idle::GpuRule {
            adapter: adapter.into(),
            share,
            while_active: false,
        }
    }

    #[test]
    fn sharing_toggle_remembers_the_mode() {
        let always = Preferences {
            mode: Mode::Always,
            ..Preferences::default()
        };
        let off = with_sharing(&always, false, None);
        assert_eq!(off.mode, Mode::Off);
        assert_eq!(
            with_sharing(&off, true, Some(Mode::Always)).mode,
            Mode::Always
        );
        assert_eq!(with_sharing(&off, true, None).mode, Mode::WhenIdle);
        assert_eq!(with_sharing(&always, true, None).mode, Mode::Always);
    }

    #[test]
    fn snooze_sets_the_end_and_refuses_nonsense() {
        let p = snoozed(&Preferences::default(), 60, 1_000).unwrap();
        assert_eq!(p.snoozed_until_ms, Some(1_000 + 3_600_000));
        assert!(snoozed(&p, 0, 0).is_err());
        assert!(snoozed(&p, 8 * 24 * 60, 0).is_err());
    }

    #[test]
    fn gpu_switch_adds_and_drops_rules() {
        let off = with_gpu_shared(&Preferences::default(), "llvmpipe", false);
        assert!(!gpu_shared(&off, "llvmpipe"));
        assert!(gpu_shared(&off, "other"));
        let on = with_gpu_shared(&off, "llvmpipe", true);
        assert!(on.gpus.is_empty());
        assert!(gpu_shared(&on, "llvmpipe"));
    }

    #[test]
    fn payout_settings_are_checked_with_a_reason() {
        let payout = |to, address: &str, chain_rpc: &str| Settings {
            payout: PayoutSettings {
                to,
                address: address.into(),
                chain_rpc: chain_rpc.into(),
                bound_address: None,
            },
            ..Settings::default()
        };
        let good = "0x000000000000000000000000000000000000dEaD";
        assert_eq!(validate(&payout(PayoutTo::Address, good, "")), Ok(()));
        assert_eq!(
            validate(&payout(PayoutTo::OwnAccount, "", "https://rpc.example/v1")),
            Ok(())
        );
        let short = validate(&payout(PayoutTo::Address, "0xdead", "")).unwrap_err();
        assert!(short.starts_with("the payout address:"), "{short}");
        let empty = validate(&payout(PayoutTo::Address, " ", "")).unwrap_err();
        assert!(empty.contains("paste the payout address"), "{empty}");
        // An address left in the field does not matter once the person chose another option.
        assert_eq!(validate(&payout(PayoutTo::None, "0xdead", "")), Ok(()));
        for bad in ["rpc.example", "ftp://rpc.example", "http://", "http://a b"] {
            let reason = validate(&payout(PayoutTo::OwnAccount, "", bad)).unwrap_err();
            assert!(
                reason.starts_with("the chain RPC must be a URL"),
                "{bad}: {reason}"
            );
        }
        assert_eq!(
            payout_choice(&payout(PayoutTo::None, "", "").payout),
            Ok(PayoutChoice::Declined)
        );
        assert_eq!(chain_rpc(&payout(PayoutTo::None, "", " ").payout), None);
        assert_eq!(
            chain_rpc(&payout(PayoutTo::None, "", " ws://127.0.0.1:8545 ").payout).as_deref(),
            Some("ws://127.0.0.1:8545")
        );
    }

    #[test]
    fn network_settings_become_the_relay_choice_or_say_what_is_wrong() {
        let own = NetworkSettings {
            relays: vec![" https://relay.example ".into(), String::new()],
            ..NetworkSettings::default()
        };
        assert_eq!(
            network(&own).unwrap().choice,
            RelayChoice::Own(vec!["https://relay.example".parse().unwrap()])
        );
        assert_eq!(
            network(&NetworkSettings::default()).unwrap().choice,
            RelayChoice::Default
        );
        let off = NetworkSettings {
            no_relay: true,
            ..NetworkSettings::default()
        };
        assert_eq!(network(&off).unwrap().choice, RelayChoice::Off);
        let both = NetworkSettings {
            no_relay: true,
            ..own.clone()
        };
        assert!(network(&both).unwrap_err().contains("not both"));
        let bad = NetworkSettings {
            relays: vec!["relay example".into()],
            ..NetworkSettings::default()
        };
        assert!(
            network(&bad)
                .unwrap_err()
                .contains("`relay example` is not a relay URL")
        );
        let missing = NetworkSettings {
            relay_ca: Some("/nonexistent/ca.pem".into()),
            ..NetworkSettings::default()
        };
        assert!(
            network(&missing)
                .unwrap_err()
                .contains("/nonexistent/ca.pem")
        );
    }
}
