//! A local anvil chain as a child process: started on 127.0.0.1 on a port the system picks, and killed
//! when dropped. Tests run against it, and so will the local pool.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    #[error("anvil is not installed at {}; run ./scripts/setup", .0.display())]
    Missing(PathBuf),
    #[error("could not start anvil at {}: {source}", .path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("anvil exited before it listened on a port")]
    NoPort,
}

/// Where `./scripts/setup` installs anvil in this checkout.
pub fn setup_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/anvil/anvil")
}

pub struct Anvil {
    child: Child,
    endpoint: String,
}

impl Anvil {
    /// Starts the anvil at `binary` with `args` added (for example `--block-time 1`), and returns once it
    /// listens.
    pub fn start(binary: &Path, args: &[&str]) -> Result<Self, AnvilError> {
        if !binary.is_file() {
            return Err(AnvilError::Missing(binary.to_path_buf()));
        }
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| AnvilError::Spawn {
                path: binary.to_path_buf(),
                source,
            })?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or(AnvilError::NoPort)?);
        let address = listening_address(&mut stdout);
        // anvil logs every request: drain its output so a full pipe never stalls it.
        std::thread::spawn(move || std::io::copy(&mut stdout.into_inner(), &mut std::io::sink()));
        let Some(address) = address else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AnvilError::NoPort);
        };
        Ok(Self {
            child,
            endpoint: format!("http://{address}"),
        })
    }

    /// The HTTP JSON-RPC URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads anvil's start-up output up to its `Listening on ADDRESS` line.
fn listening_address(output: &mut impl BufRead) -> Option<String> {
    output.lines().map_while(Result::ok).find_map(|line| {
        line.strip_prefix("Listening on ")
            .map(|a| a.trim().to_owned())
    })
}
