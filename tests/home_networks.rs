//! Home networks on loopback: a relay of our own (`idlegrid relay`, self-signed, trusted with
//! `--relay-ca`), a pool reached only through it, a provider whose path to the pool turns direct,
//! and a pool that keeps its ticket across restarts and rewrites it when its relay arrives late.
//! Every packet stays on 127.0.0.1.

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::peers::*;

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loopback_relay(data: &Path) -> Relay {
    let listen = format!("127.0.0.1:{}", free_tcp_port());
    start_relay(&[], &listen, free_udp_port(), data)
}

#[test]
fn a_provider_reaches_a_pool_through_a_relay_only_ticket_and_the_path_turns_direct() {
    let dir = tempfile::tempdir().unwrap();
    let relay = loopback_relay(&dir.path().join("relay"));
    let submitter = dir.path().join("submitter");
    let (_pool, ticket) = start_pool(
        &[],
        &dir.path().join("pool"),
        &[
            "--bind",
            "127.0.0.1:0",
            "--relay",
            &relay.url,
            "--relay-ca",
            text(&relay.ca),
            "--allow",
            &public_key(&submitter),
            "--replicas-for-new",
            "1",
            "--canary-rate",
            "0",
        ],
    );
    assert_eq!(relays_of(&ticket), vec![relay.url.clone()], "{ticket}");
    let only = relay_only(&ticket);
    let provider_dir = dir.path().join("provider");
    let _provider = start_provider(&[], &only, &provider_dir, &["--relay-ca", text(&relay.ca)]);

    let summary = submit(&[], &only, &submitter, &["--relay-ca", text(&relay.ca)]);
    assert_eq!(summary["status"], "verified", "{summary}");

    let log = provider_dir.with_extension("log");
    let direct = wait_for_log(
        &log,
        &["path to the pool changed", "path=direct"],
        Duration::from_secs(30),
    );
    assert!(direct.is_ok(), "the path never turned direct:\n{direct:?}");
}

#[test]
fn a_restarted_pool_keeps_its_home_relay_and_its_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let a = loopback_relay(&dir.path().join("relay-a"));
    let b = loopback_relay(&dir.path().join("relay-b"));
    let ca = dir.path().join("ca.pem");
    let pems = [&a.ca, &b.ca].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&ca, pems.concat()).unwrap();
    let bind = format!("127.0.0.1:{}", free_udp_port());
    let args = [
        "--bind",
        &bind,
        "--relay",
        &a.url,
        "--relay",
        &b.url,
        "--relay-ca",
        text(&ca),
    ];
    let pool_dir = dir.path().join("pool");
    let (pool, first) = start_pool(&[], &pool_dir, &args);
    let home = relays_of(&first);
    assert_eq!(home.len(), 1, "{first}");
    drop(pool);
    // iroh picks the nearest relay afresh at each start: both are as near, so without keeping the
    // home relay a few restarts would land on the other one.
    for _ in 0..3 {
        let (pool, again) = start_pool(&[], &pool_dir, &args);
        assert_eq!(relays_of(&again), home);
        assert_eq!(again, first);
        drop(pool);
    }
}

#[test]
fn a_pool_whose_relay_answers_late_rewrites_its_ticket_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let listen = format!("127.0.0.1:{}", free_tcp_port());
    let quic_port = free_udp_port();
    // The certificate first, so the pool can trust it before the relay runs.
    let relay = start_relay(&[], &listen, quic_port, &relay_dir);
    let (url, ca) = (relay.url.clone(), relay.ca.clone());
    drop(relay);

    let pool_dir = dir.path().join("pool");
    let (_pool, ticket) = start_pool(
        &[],
        &pool_dir,
        &[
            "--bind",
            "127.0.0.1:0",
            "--relay",
            &url,
            "--relay-ca",
            text(&ca),
        ],
    );
    assert!(relays_of(&ticket).is_empty(), "{ticket}");
    let warned = wait_for_log(
        &pool_dir.with_extension("log"),
        &["no relay reached"],
        Duration::ZERO,
    );
    assert!(warned.is_ok(), "no warning: {warned:?}");

    let _relay = start_relay(&[], &listen, quic_port, &relay_dir);
    let started = Instant::now();
    let rewritten = loop {
        let written = std::fs::read_to_string(pool_dir.join("ticket")).unwrap();
        if !relays_of(written.trim()).is_empty() || started.elapsed() > Duration::from_secs(60) {
            break written;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(relays_of(rewritten.trim()), vec![url]);
}
