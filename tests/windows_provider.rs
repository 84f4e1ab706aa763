//! A Windows provider working for a pool on Linux: the cross-built `idlegrid.exe` under Wine (Vulkan
//! through winevulkan to llvmpipe) takes a Linux submitter's jobs from a Linux pool over 127.0.0.1,
//! returns correct results, and holds the receipts it was paid, readable with its own `earnings`.
//!
//! The Windows build is made by `scripts/windows/test` (part of `./scripts/test`), which sets
//! `IDLEGRID_WINDOWS_REQUIRED=1` so that a missing build fails there. Elsewhere, with no Windows build,
//! the test says so in one line and does nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::xvfb::Xvfb;
use crate::support::*;

const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// The Windows `idlegrid.exe`: `IDLEGRID_WINDOWS_CLI`, or the cross-build beside this test's target.
fn windows_cli() -> Option<PathBuf> {
    let path = match std::env::var_os("IDLEGRID_WINDOWS_CLI") {
        Some(path) => repo_root().join(path),
        None => {
            let test = std::env::current_exe().unwrap();
            // <target>/<profile>/deps/system-* → <target>/<WINDOWS_TARGET>/<profile>/idlegrid.exe
            let profile_dir = test.parent().and_then(Path::parent).unwrap();
            let target = profile_dir.parent().unwrap();
            target
                .join(WINDOWS_TARGET)
                .join(profile_dir.file_name().unwrap())
                .join("idlegrid.exe")
        }
    };
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var_os("IDLEGRID_WINDOWS_REQUIRED").is_some_and(|v| v == "1");
    assert!(
        !required,
        "{} is missing: scripts/windows/test builds it",
        path.display()
    );
    eprintln!(
        "skipped: no Windows build at {} (`cargo build --target {WINDOWS_TARGET} -p idlegrid`)",
        path.display()
    );
    None
}

/// `idlegrid.exe` under Wine, through the project's runner, on the test's own X server (Wine's Vulkan
/// needs one), with keys in files like every test.
fn windows_idlegrid(exe: &Path, x: &Xvfb) -> Command {
    let mut command = Command::new(repo_root().join("scripts/windows/wine-run"));
    command
        .arg(exe)
        .env("DISPLAY", &x.display)
        .env("IDLEGRID_KEYSTORE", "file")
        .current_dir(repo_root());
    command
}

#[test]
fn a_windows_provider_under_wine_works_for_a_linux_pool() {
    let Some(exe) = windows_cli() else { return };
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let submitter_dir = dir.path().join("submitter");
    let provider_dir = dir.path().join("windows-provider");
    let (_pool, ticket) = pool_for(&dir.path().join("pool"), &submitter_dir, &[]);

    let _provider = Process(
        windows_idlegrid(&exe, &x)
            .args(["provide", "--pool", &ticket, "--data", text(&provider_dir)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("windows-provider.log")).unwrap())
            .spawn()
            .unwrap(),
    );

    const JOBS: usize = 3;
    for i in 0..JOBS {
        let out = dir.path().join(format!("out{i}"));
        let output = idlegrid()
            .args(["submit", "examples/jobs/matmul/job.toml", "--replicas", "1"])
            .args(["--pool", &ticket, "--out", text(&out)])
            .args(["--data", text(&submitter_dir), "--timeout", "300"])
            .output()
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("windows-provider.log"));
        assert!(
            output.status.success(),
            "submit failed: {}\nthe Windows provider said: {}",
            String::from_utf8_lossy(&output.stderr),
            log.unwrap_or_default()
        );
        assert_matmul(&read_outputs(&out, &["c"]));
    }

    // Its own `earnings` (the Windows program) shows a receipt for each job, all from this pool.
    let pool_key = std::fs::read_to_string(dir.path().join("pool/ticket")).unwrap();
    assert!(!pool_key.trim().is_empty());
    let deadline = Instant::now() + Duration::from_secs(60);
    let receipts = loop {
        let ledger = windows_earnings(&exe, &x, &provider_dir);
        let receipts = ledger["receipts"].as_array().cloned().unwrap_or_default();
        if receipts.len() >= JOBS || Instant::now() > deadline {
            break receipts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(receipts.len(), JOBS, "one receipt per job: {receipts:?}");
}

fn windows_earnings(exe: &Path, x: &Xvfb, data: &Path) -> Value {
    let output = windows_idlegrid(exe, x)
        .args(["earnings", "--json", "--data", text(data)])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "idlegrid.exe earnings: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
