//! Idlegrid's programs as separate processes for the home-network tests and the NAT benchmark: a
//! relay, a pool, a provider and a submitter, each optionally run under a prefix (`ip netns exec NS`),
//! their first printed lines read and their logs kept beside their data dirs.

use std::io::{BufRead, BufReader};
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
    start_provider_logging(prefix, ticket, data, args, None)
}

/// [`start_provider`] with its log filter (`RUST_LOG`) set to `filter`.
pub fn start_provider_logging(
    prefix: &[&str],
    ticket: &str,
    data: &Path,
    args: &[&str],
    filter: Option<&str>,
) -> Process {
    let mut command = idlegrid(prefix);
    if let Some(filter) = filter {
        command.env("RUST_LOG", filter);
    }
    Process(
        command
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
    submit_job(
        prefix,
        Path::new("examples/jobs/matmul/job.toml"),
        ticket,
        data,
        args,
    )
}

/// Submits the job file `job` and returns `--json`'s summary.
pub fn submit_job(prefix: &[&str], job: &Path, ticket: &str, data: &Path, args: &[&str]) -> Value {
    let output = idlegrid(prefix)
        .arg("submit")
        .arg(job)
        .args(["--pool", ticket])
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
