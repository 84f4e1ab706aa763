//! Home networks on loopback: a relay of our own (`idlegrid relay`, self-signed, trusted with
//! `--relay-ca`), a pool reached only through it, a provider whose path to the pool turns direct,
//! and a pool that keeps its ticket across restarts and rewrites it when its relay arrives late.
//! Every packet stays on 127.0.0.1; the same helpers run the namespaced NAT tests (`nat`).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use iroh_tickets::endpoint::EndpointTicket;
use serde_json::Value;

use crate::support::idlegrid_command;

/// A child killed when the test ends, however it ends.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn idlegrid(prefix: &[&str]) -> Command {
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(idlegrid_command().get_program());
            command
        }
        None => idlegrid_command(),
    };
    command.current_dir(crate::support::repo_root());
    // Never touch a person's keyring from tests.
    command.env("IDLEGRID_KEYSTORE", "file");
    command
}

pub fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Starts a long-running command and reads the first lines it prints (`name: value`), with its log
/// in `log`.
pub fn start(mut command: Command, log: &Path, lines: usize) -> (Process, Vec<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let (_, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("printed {line:?}; log:\n{log}"));
        printed.push(value.trim().to_owned());
    }
    (Process(child), printed)
}

/// A relay: the process (stopped when this is dropped), its URL and its self-signed certificate.
pub struct Relay {
    pub _process: Process,
    pub url: String,
    pub ca: PathBuf,
}

pub fn start_relay(prefix: &[&str], listen: &str, quic_port: u16, data: &Path) -> Relay {
    let mut command = idlegrid(prefix);
    command.args(["relay", "--listen", listen, "--quic-port"]);
    command
        .arg(quic_port.to_string())
        .args(["--data", text(data)]);
    let (process, printed) = start(command, &data.with_extension("log"), 2);
    Relay {
        _process: process,
        url: printed[0].clone(),
        ca: PathBuf::from(&printed[1]),
    }
}

/// Starts `idlegrid pool` with `args`; returns it with its ticket.
pub fn start_pool(prefix: &[&str], data: &Path, args: &[&str]) -> (Process, String) {
    let mut command = idlegrid(prefix);
    command.args(["pool", "--data", text(data)]).args(args);
    let (process, printed) = start(command, &data.with_extension("log"), 1);
    (process, printed[0].clone())
}

pub fn start_provider(prefix: &[&str], ticket: &str, data: &Path, args: &[&str]) -> Process {
    Process(
        idlegrid(prefix)
            .args(["provide", "--pool", ticket, "--data", text(data)])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

pub fn public_key(data: &Path) -> String {
    let output = idlegrid(&[])
        .args(["id", "--data", text(data)])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Submits the matmul example and returns `--json`'s summary.
pub fn submit(prefix: &[&str], ticket: &str, data: &Path, args: &[&str]) -> Value {
    let output = idlegrid(prefix)
        .args(["submit", "examples/jobs/matmul/job.toml", "--pool", ticket])
        .args([
            "--data",
            text(data),
            "--out",
            text(&data.join("out")),
            "--json",
        ])
        .args(["--replicas", "1", "--timeout", "120"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "submit printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The ticket's relay URLs.
pub fn relays_of(ticket: &str) -> Vec<String> {
    let addr = iroh::EndpointAddr::from(EndpointTicket::from_str(ticket).unwrap());
    addr.relay_urls().map(ToString::to_string).collect()
}

/// The same pool reached through its relays only: no direct address to try.
pub fn relay_only(ticket: &str) -> String {
    let addr = iroh::EndpointAddr::from(EndpointTicket::from_str(ticket).unwrap());
    let relays = addr.relay_urls().cloned().map(iroh::TransportAddr::Relay);
    let only = iroh::EndpointAddr::from_parts(addr.id, relays);
    EndpointTicket::new(only).to_string()
}

/// Waits (up to `limit`) for a line of the log at `path` that contains every one of `words`.
pub fn wait_for_log(path: &Path, words: &[&str], limit: Duration) -> Result<String, String> {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| words.iter().all(|w| l.contains(w))) {
            return Ok(line.to_owned());
        }
        if started.elapsed() > limit {
            return Err(log);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

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
