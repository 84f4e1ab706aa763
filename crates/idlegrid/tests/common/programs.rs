//! How tests start this project's programs: from the repository root, with a runtime dir where the
//! test has none (a desktop session has one; without it Mesa prints warnings that are not ours).
//!
//! Shared with the whole-system tests in the top-level tests/, which include this file by path: it
//! names no package's binaries (`CARGO_BIN_EXE_*`), and `super::repo_root()` says where the repository
//! is in each.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo_root;

/// `program`, to be run from the repository root.
pub fn program_command(program: impl AsRef<Path>) -> Command {
    let mut command = Command::new(program.as_ref());
    if let Some(runtime) = runtime_dir() {
        command.env("XDG_RUNTIME_DIR", runtime);
    }
    command.current_dir(repo_root());
    command
}

/// A runtime dir for the programs tests start, where the test itself has none.
#[cfg(unix)]
pub fn runtime_dir() -> Option<PathBuf> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| !dir.is_empty()) {
        return None;
    }
    let runtime = std::env::temp_dir().join("idlegrid-test-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    Some(runtime)
}

/// Windows has no runtime dir (Mesa under Wine is the Linux host's, with the host's environment).
#[cfg(not(unix))]
pub fn runtime_dir() -> Option<PathBuf> {
    None
}
