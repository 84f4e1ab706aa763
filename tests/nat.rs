//! Through real NATs, in the namespaces of [`crate::nat_lab`] (made as root): the pool behind one home
//! router, the provider behind the other, the submitter beside the pool, the relay on the "internet".
//! Where namespaces cannot be made (not root, no `ip`/`iptables`), each test says so in one line and
//! passes.

use std::path::Path;
use std::time::Duration;

use crate::nat_lab::{Lab, Nat, start_peers, submit_beside_the_pool};
use crate::peers::wait_for_log;

#[test]
fn behind_two_endpoint_independent_nats_the_path_turns_direct_and_outlives_the_relay() {
    let Some(lab) = Lab::build("e", Nat::EndpointIndependent, Nat::EndpointIndependent) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let relay = lab.relay(&dir.path().join("relay"));
    let peers = start_peers(&lab, dir.path(), &relay);
    submit_beside_the_pool(&lab, dir.path(), &peers, &relay.ca);

    let log = dir.path().join("provider.log");
    let direct = wait_for_log(
        &log,
        &["path to the pool changed", "path=direct"],
        Duration::from_secs(30),
    );
    assert!(direct.is_ok(), "never direct:\n{direct:?}");
    let (to, from) = (
        Lab::counted(&lab.pool_home, "home-to-home"),
        Lab::counted(&lab.pool_home, "home-from-home"),
    );
    assert!(
        to > 0 && from > 0,
        "no UDP between the homes: {to} out, {from} in"
    );

    let ca = relay.ca.clone();
    drop(relay);
    submit_beside_the_pool(&lab, dir.path(), &peers, &ca);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("path=unreachable"), "{log_text}");
    drop(peers.provider);
}

#[test]
fn behind_a_symmetric_nat_work_goes_over_the_relay_and_survives_the_relay_restarting() {
    let Some(lab) = Lab::build("s", Nat::EndpointIndependent, Nat::Symmetric) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let relay = lab.relay(&relay_dir);
    let peers = start_peers(&lab, dir.path(), &relay);
    submit_beside_the_pool(&lab, dir.path(), &peers, &relay.ca);

    let log = dir.path().join("provider.log");
    let relayed = wait_for_log(
        &log,
        &[
            "path to the pool changed",
            "path=relayed (your router or the pool's does not allow a direct path)",
        ],
        Duration::from_secs(30),
    );
    assert!(relayed.is_ok(), "not reported relayed:\n{relayed:?}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("path=direct"), "{log_text}");
    assert_eq!(Lab::counted(&lab.pool_home, "home-from-home"), 0);

    let ca = relay.ca.clone();
    drop(relay);
    let unreachable = wait_for_log(
        &log,
        &["path to the pool changed", "path=unreachable"],
        Duration::from_secs(30),
    );
    assert!(unreachable.is_ok(), "never unreachable:\n{unreachable:?}");

    let connected_before = connections(&log);
    let _relay = lab.relay(&relay_dir);
    let started = std::time::Instant::now();
    while connections(&log) == connected_before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the provider did not come back:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    submit_beside_the_pool(&lab, dir.path(), &peers, &ca);
}

fn connections(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("connected to the pool")
        .count()
}
