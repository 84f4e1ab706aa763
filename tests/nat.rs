//! Through real NATs, in network namespaces this test makes (as root): an "internet" with the relay,
//! and two homes, each behind a router that masquerades (endpoint-independent, or `--random-fully`:
//! symmetric) and drops unsolicited packets on its outside, as home routers do. The pool lives
//! behind one router, the provider behind the other, the submitter beside the pool.
//!
//! Every packet stays inside these namespaces: the internet has no route anywhere else. They, their
//! links and every process in them are removed when the test ends, however it ends. Where namespaces
//! cannot be made (not root, no `ip`/`iptables`), each test says so in one line and passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::home_networks::{
    Process, Relay, public_key, start_pool, start_provider, start_relay, submit, text, wait_for_log,
};

const RELAY_IP: &str = "198.51.100.1";
const RELAY_LISTEN: &str = "198.51.100.1:443";
const QUIC_PORT: u16 = 7842;

/// One home: its router's public address and its own subnet.
struct Home {
    router: String,
    host: String,
    public: &'static str,
    subnet: u8,
}

/// The namespaces of one test; dropping it ends their processes and removes them.
struct Lab {
    internet: String,
    pool_home: Home,
    provider_home: Home,
}

impl Lab {
    /// The internet and two homes; `symmetric` makes the provider's router map every destination to
    /// a new port. `None` (after one line saying why) where namespaces cannot be made.
    fn build(tag: &str, symmetric: bool) -> Option<Lab> {
        let missing = ["ip", "iptables"].into_iter().find(|tool| !on_path(tool));
        if let Some(tool) = missing {
            eprintln!(
                "skipped: no `{tool}` here to build NAT namespaces (scripts/setup installs it)"
            );
            return None;
        }
        let prefix = format!("ig{}{tag}", std::process::id());
        let home = |side: &str, public, subnet| Home {
            router: format!("{prefix}r{side}"),
            host: format!("{prefix}h{side}"),
            public,
            subnet,
        };
        let lab = Lab {
            internet: format!("{prefix}i"),
            pool_home: home("a", "198.51.100.2", 1),
            provider_home: home("b", "198.51.100.3", 2),
        };
        if let Err(error) = ip(&["netns", "add", &lab.internet]) {
            eprintln!("skipped: cannot create network namespaces here ({error})");
            return None;
        }
        let made = lab.wire(symmetric);
        if let Err(error) = made {
            panic!("could not build the NAT namespaces: {error}");
        }
        Some(lab)
    }

    fn namespaces(&self) -> [&str; 5] {
        [
            &self.internet,
            &self.pool_home.router,
            &self.pool_home.host,
            &self.provider_home.router,
            &self.provider_home.host,
        ]
    }

    fn wire(&self, symmetric: bool) -> Result<(), String> {
        for ns in &self.namespaces()[1..] {
            ip(&["netns", "add", ns])?;
        }
        for ns in self.namespaces() {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let inet = self.internet.as_str();
        ip(&["-n", inet, "link", "add", "name", "net0", "type", "bridge"])?;
        ip(&[
            "-n",
            inet,
            "addr",
            "add",
            &format!("{RELAY_IP}/24"),
            "dev",
            "net0",
        ])?;
        ip(&["-n", inet, "link", "set", "net0", "up"])?;
        let other = |home: &Home| {
            if home.public == self.pool_home.public {
                self.provider_home.public
            } else {
                self.pool_home.public
            }
        };
        for (port, home, random) in [
            ("pa", &self.pool_home, false),
            ("pb", &self.provider_home, symmetric),
        ] {
            let (router, host) = (home.router.as_str(), home.host.as_str());
            ip(&[
                "-n", inet, "link", "add", port, "type", "veth", "peer", "name", "wan", "netns",
                router,
            ])?;
            ip(&["-n", inet, "link", "set", port, "master", "net0", "up"])?;
            ip(&[
                "-n",
                router,
                "addr",
                "add",
                &format!("{}/24", home.public),
                "dev",
                "wan",
            ])?;
            ip(&["-n", router, "link", "set", "wan", "up"])?;
            ip(&[
                "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                "netns", host,
            ])?;
            let gateway = format!("10.0.{}.1", home.subnet);
            ip(&[
                "-n",
                router,
                "addr",
                "add",
                &format!("{gateway}/24"),
                "dev",
                "lan",
            ])?;
            ip(&["-n", router, "link", "set", "lan", "up"])?;
            ip(&[
                "-n",
                host,
                "addr",
                "add",
                &format!("10.0.{}.2/24", home.subnet),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", host, "link", "set", "eth0", "up"])?;
            ip(&["-n", host, "route", "add", "default", "via", &gateway])?;
            in_ns(
                router,
                &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
            )?;
            let mut masquerade = vec![
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ];
            if random {
                masquerade.push("--random-fully");
            }
            let peer = other(home);
            let rules: [&[&str]; 7] = [
                &masquerade,
                // Counted only: UDP between the two homes, each way, is what a direct path is.
                &[
                    "-A",
                    "FORWARD",
                    "-i",
                    "lan",
                    "-o",
                    "wan",
                    "-p",
                    "udp",
                    "-d",
                    peer,
                    "-m",
                    "comment",
                    "--comment",
                    "home-to-home",
                ],
                &[
                    "-A",
                    "FORWARD",
                    "-i",
                    "wan",
                    "-o",
                    "lan",
                    "-p",
                    "udp",
                    "-s",
                    peer,
                    "-m",
                    "comment",
                    "--comment",
                    "home-from-home",
                ],
                &[
                    "-A",
                    "FORWARD",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
                &["-A", "FORWARD", "-i", "wan", "-j", "DROP"],
                &[
                    "-A",
                    "INPUT",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
                &["-A", "INPUT", "-i", "wan", "-j", "DROP"],
            ];
            for rule in rules {
                let mut args = vec!["iptables", "-w"];
                args.extend_from_slice(rule);
                in_ns(router, &args)?;
            }
        }
        Ok(())
    }

    /// The `ip netns exec NS` prefix that runs a command in `ns`.
    fn exec(ns: &str) -> [&str; 4] {
        ["ip", "netns", "exec", ns]
    }

    /// Packets of the router's counting rule `comment`.
    fn counted(home: &Home, comment: &str) -> u64 {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &home.router,
                "iptables",
                "-w",
                "-nvxL",
                "FORWARD",
            ])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&output.stdout);
        listing
            .lines()
            .find(|line| line.contains(&format!("/* {comment} */")))
            .and_then(|line| line.split_whitespace().next())
            .and_then(|packets| packets.parse().ok())
            .unwrap_or_else(|| panic!("no rule {comment} in:\n{listing}"))
    }

    fn relay(&self, data: &Path) -> Relay {
        start_relay(&Lab::exec(&self.internet), RELAY_LISTEN, QUIC_PORT, data)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            if let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
        for ns in self.namespaces() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// The pool (behind its router, relays: ours) and a provider behind the other router; returns them
/// with the pool's ticket.
struct Peers {
    _pool: Process,
    provider: Process,
    ticket: String,
}

fn start_peers(lab: &Lab, dir: &Path, relay: &Relay) -> Peers {
    let submitter = public_key(&dir.join("submitter"));
    let (pool, ticket) = start_pool(
        &Lab::exec(&lab.pool_home.host),
        &dir.join("pool"),
        &[
            "--bind",
            "10.0.1.2:0",
            "--relay",
            &relay.url,
            "--relay-ca",
            text(&relay.ca),
            "--allow",
            &submitter,
            "--replicas-for-new",
            "1",
            "--canary-rate",
            "0",
        ],
    );
    let provider = start_provider(
        &Lab::exec(&lab.provider_home.host),
        &ticket,
        &dir.join("provider"),
        &["--relay-ca", text(&relay.ca)],
    );
    Peers {
        _pool: pool,
        provider,
        ticket,
    }
}

fn submit_beside_the_pool(lab: &Lab, dir: &Path, peers: &Peers, relay_ca: &Path) {
    let summary = submit(
        &Lab::exec(&lab.pool_home.host),
        &peers.ticket,
        &dir.join("submitter"),
        &["--relay-ca", text(relay_ca)],
    );
    assert_eq!(summary["status"], "verified", "{summary}");
}

#[test]
fn behind_two_endpoint_independent_nats_the_path_turns_direct_and_outlives_the_relay() {
    let Some(lab) = Lab::build("e", false) else {
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
    let Some(lab) = Lab::build("s", true) else {
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
