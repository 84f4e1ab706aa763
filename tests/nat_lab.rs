//! The NAT lab: network namespaces made as root — an "internet" holding the relay, and two homes,
//! each behind a router that masquerades (endpoint-independent, or `--random-fully`: symmetric) and
//! drops unsolicited packets on its outside, as home routers do. The pool's home is 10.0.1.0/24, the
//! provider's 10.0.2.0/24; the routers' public addresses and the relay share 198.51.100.0/24.
//!
//! Every packet stays inside these namespaces: the internet has no route anywhere else. Dropping the
//! lab ends every process in its namespaces and removes them (their links go with them), however the
//! test ends. Where namespaces cannot be made, [`Lab::build`] says so in one line and gives `None`.

use std::path::Path;
use std::process::Command;

use crate::peers::{
    Process, Relay, public_key, start_pool, start_provider_logging, start_relay, submit, text,
};

pub const RELAY_IP: &str = "198.51.100.1";
pub const RELAY_LISTEN: &str = "198.51.100.1:443";
pub const QUIC_PORT: u16 = 7842;

/// One home: its router's public address and its own subnet.
pub struct Home {
    pub router: String,
    pub host: String,
    pub public: &'static str,
    subnet: u8,
}

/// How a home router maps its hosts' ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// MASQUERADE: one public port per host port, whatever the destination (hole punching works).
    EndpointIndependent,
    /// MASQUERADE --random-fully: a new public port per destination (hole punching does not).
    Symmetric,
}

/// The namespaces of one test; dropping it ends their processes and removes them.
pub struct Lab {
    pub internet: String,
    pub pool_home: Home,
    pub provider_home: Home,
}

impl Lab {
    /// The internet and two homes, behind routers doing `pool_nat` and `provider_nat`. `None` (after
    /// one line saying why) where namespaces cannot be made.
    pub fn build(tag: &str, pool_nat: Nat, provider_nat: Nat) -> Option<Lab> {
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
        let made = lab.wire(pool_nat, provider_nat);
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

    fn wire(&self, pool_nat: Nat, provider_nat: Nat) -> Result<(), String> {
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
            ("pa", &self.pool_home, pool_nat == Nat::Symmetric),
            ("pb", &self.provider_home, provider_nat == Nat::Symmetric),
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
    pub fn exec(ns: &str) -> [&str; 4] {
        ["ip", "netns", "exec", ns]
    }

    /// Packets of the router's counting rule `comment`.
    pub fn counted(home: &Home, comment: &str) -> u64 {
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

    pub fn relay(&self, data: &Path) -> Relay {
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
pub struct Peers {
    pub _pool: Process,
    pub provider: Process,
    pub ticket: String,
}

pub fn start_peers(lab: &Lab, dir: &Path, relay: &Relay) -> Peers {
    let (pool, ticket) = start_lab_pool(lab, dir, relay);
    let provider = start_lab_provider(lab, &ticket, &dir.join("provider"), relay, None);
    Peers {
        _pool: pool,
        provider,
        ticket,
    }
}

/// The pool in its home, through `relay`, taking jobs from `dir/submitter`; with its ticket.
pub fn start_lab_pool(lab: &Lab, dir: &Path, relay: &Relay) -> (Process, String) {
    let submitter = public_key(&dir.join("submitter"));
    start_pool(
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
    )
}

/// A provider in the other home, following `ticket`, with its data in `data` and its log filter
/// (`RUST_LOG`) set to `filter`.
pub fn start_lab_provider(
    lab: &Lab,
    ticket: &str,
    data: &Path,
    relay: &Relay,
    filter: Option<&str>,
) -> Process {
    start_provider_logging(
        &Lab::exec(&lab.provider_home.host),
        ticket,
        data,
        &["--relay-ca", text(&relay.ca)],
        filter,
    )
}

pub fn submit_beside_the_pool(lab: &Lab, dir: &Path, peers: &Peers, relay_ca: &Path) {
    let summary = submit(
        &Lab::exec(&lab.pool_home.host),
        &peers.ticket,
        &dir.join("submitter"),
        &["--relay-ca", text(relay_ca)],
    );
    assert_eq!(summary["status"], "verified", "{summary}");
}
