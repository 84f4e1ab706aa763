//! What the whole-system tests share: where the programs under test are, and how to start them.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, and this package has none: the
//! programs are found in the folder Cargo built this test into (which follows `CARGO_TARGET_DIR`,
//! `--target` and `--release`), or where an environment variable says.

use std::path::{Path, PathBuf};
use std::process::Command;

// Shared with crates/idlegrid's own tests (one home, there); each side uses a part of them.
#[allow(dead_code)]
#[path = "../crates/idlegrid/tests/common/example_jobs.rs"]
mod example_jobs;
#[allow(dead_code)]
#[path = "../crates/idlegrid/tests/common/programs.rs"]
mod programs;

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
