//! What the whole-system tests share: where the programs under test are, and how to start them.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, and this package has none: the
//! programs are found in the folder Cargo built this test into (which follows `CARGO_TARGET_DIR`,
//! `--target` and `--release`), or where an environment variable says.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

// Shared with crates/idlegrid's own tests (one home, there); each side uses a part of them.
#[allow(dead_code)]
#[path = "../crates/idlegrid/tests/common/example_jobs.rs"]
mod example_jobs;
#[allow(dead_code)]
#[path = "../crates/idlegrid/tests/common/programs.rs"]
mod programs;

#[cfg(unix)]
#[allow(dead_code)]
#[path = "../crates/idlegrid/tests/common/xvfb.rs"]
pub mod xvfb;

pub use example_jobs::*;
use programs::program_command;

/// A program under test: its name, the package that builds it, and the variable that may name
/// another build of it (the same ones tests/app/ reads).
struct Program {
    name: &'static str,
    package: &'static str,
    variable: &'static str,
}

const IDLEGRID: Program = Program {
    name: "idlegrid",
    package: "idlegrid",
    variable: "IDLEGRID_CLI",
};

/// The `idlegrid` command (crates/idlegrid), run from the repository root.
pub fn idlegrid_command() -> Command {
    program_command(built(&IDLEGRID))
}

pub fn repo_root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

/// Where `program` is: its variable (a relative path from the repository root), else beside this
/// test's own build. Missing, the test ends with one line saying what to build.
fn built(program: &Program) -> PathBuf {
    let (path, remedy) = match std::env::var_os(program.variable) {
        Some(path) => (
            repo_root().join(path),
            format!("{} names it", program.variable),
        ),
        None => (
            build_dir().join(format!("{}{}", program.name, std::env::consts::EXE_SUFFIX)),
            format!(
                "run `cargo build -p {}`, or `cargo test --workspace`, which builds it; or set {}",
                program.package, program.variable
            ),
        ),
    };
    if !path.is_file() {
        panic!(
            "{} is not built: {} is missing ({remedy})",
            program.name,
            path.display()
        );
    }
    path
}

/// The folder with the workspace's programs: this test runs as `<target>/<profile>/deps/system-*`,
/// and Cargo puts the programs in `<target>/<profile>`.
fn build_dir() -> PathBuf {
    let test = std::env::current_exe().expect("the test knows its own path");
    let deps = test.parent().unwrap_or(Path::new("."));
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// `idlegrid` with the test's settings: keys in files, never in a person's keyring.
pub fn idlegrid() -> Command {
    let mut command = idlegrid_command();
    // Never touch a person's keyring from tests; the keyring itself has its own test.
    command.env("IDLEGRID_KEYSTORE", "file");
    command
}

pub fn run(args: &[&str]) -> Output {
    idlegrid().args(args).output().unwrap()
}

/// The output buffers `names` a job wrote into `dir` (`<name>.bin`, as `submit --out` writes them).
pub fn read_outputs(dir: &Path, names: &[&str]) -> Vec<idlegrid::gpu::OutputBuffer> {
    names
        .iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
            idlegrid::gpu::OutputBuffer {
                name: (*name).to_owned(),
                blake3: blake3::hash(&bytes),
                bytes,
            }
        })
        .collect()
}

pub fn text(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A child killed when the test ends, however it ends.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a pool and returns it with the ticket it printed.
pub fn start_pool(data: &Path, args: &[&str]) -> (Process, String) {
    start_pool_with(idlegrid(), data, args)
}

/// Starts a pool from `command` (`idlegrid` with settings of the test's own).
pub fn start_pool_with(mut command: Command, data: &Path, args: &[&str]) -> (Process, String) {
    let mut child = command
        .args(["pool", "--data", text(data)])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ticket = line
        .strip_prefix("ticket: ")
        .unwrap_or_else(|| panic!("pool printed {line:?}"))
        .trim()
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(data.join("ticket")).unwrap().trim(),
        ticket
    );
    (Process(child), ticket)
}

pub fn start_provider(ticket: &str, data: &Path) -> Process {
    Process(
        idlegrid()
            .args(["provide", "--pool", ticket, "--data", text(data)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

pub fn public_key(data: &Path) -> String {
    let output = run(&["id", "--data", text(data)]);
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub fn earnings(data: &Path) -> Value {
    let output = run(&["earnings", "--data", text(data), "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A free UDP port on 127.0.0.1, so the restarted pool keeps its ticket.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pool on 127.0.0.1 that takes `submitter_dir`'s jobs, one replica each, no canaries.
pub fn pool_for(dir: &Path, submitter_dir: &Path, extra: &[&str]) -> (Process, String) {
    let submitter = public_key(submitter_dir);
    let mut args = vec![
        "--bind",
        "127.0.0.1:0",
        "--allow",
        &submitter,
        "--replicas-for-new",
        "1",
        "--canary-rate",
        "0",
    ];
    args.extend_from_slice(extra);
    start_pool(dir, &args)
}

/// SIGKILL: the process gets no chance to clean up, as after a crash.
pub fn nix_kill(child: &Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
