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
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
    workspace
        .unwrap_or(Path::new("."))
        .join(".tools/anvil")
        .join(program_name())
}

/// `anvil`, or `anvil.exe` on Windows: a Windows build must not take the Linux anvil of the checkout
/// it was cross-built in (Wine would start it as a Linux process, outside the app's reach, with
/// Windows paths it takes for file names).
fn program_name() -> String {
    format!("anvil{}", std::env::consts::EXE_SUFFIX)
}

/// The key of anvil's first development account, funded with ether on every fresh chain: the
/// deployer and payer in tests and in the local pool. Public knowledge; worthless anywhere else.
pub const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// anvil for a program at `program`: `IDLEGRID_ANVIL` if set, else `.tools/anvil/anvil` in a checkout
/// above the program (a build tree), else `anvil` on the PATH; `None` when there is none.
pub fn find(program: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IDLEGRID_ANVIL") {
        return Some(PathBuf::from(path));
    }
    let in_checkout = program
        .ancestors()
        .skip(1)
        .take(5)
        .map(|dir| dir.join(".tools/anvil").join(program_name()))
        .find(|path| path.is_file());
    in_checkout.or_else(|| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join(program_name()))
            .find(|path| path.is_file())
    })
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

    /// Calls one of anvil's own methods (`anvil_mine`, `evm_setAutomine`, `anvil_reorg`, ...).
    pub async fn call(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, crate::ChainError> {
        use alloy::providers::Provider;
        crate::reader(&self.endpoint)?
            .raw_request(method.into(), params)
            .await
            .map_err(crate::rpc_error(&self.endpoint))
    }

    /// Mines `blocks` blocks now.
    pub async fn mine(&self, blocks: u64) -> Result<(), crate::ChainError> {
        self.call("anvil_mine", serde_json::json!([blocks])).await?;
        Ok(())
    }

    /// Mints `units` of the test token straight into the payouts contract: a deposit.
    pub async fn deposit(
        &self,
        file: &crate::ChainFile,
        units: alloy::primitives::U256,
    ) -> Result<(), crate::ChainError> {
        use alloy::network::EthereumWallet;
        use alloy::providers::{DynProvider, Provider, ProviderBuilder};
        let signer = crate::parse_key(DEV_KEY)?;
        let url = self
            .endpoint
            .parse()
            .map_err(|_| crate::ChainError::BadUrl(self.endpoint.clone()))?;
        let rpc: DynProvider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url)
            .erased();
        let token = crate::contracts::TestToken::new(file.terms.token, rpc);
        let failed = |e: &dyn std::fmt::Display| crate::ChainError::Refused(e.to_string());
        token
            .mint(file.terms.contract, units)
            .send()
            .await
            .map_err(|e| failed(&e))?
            .get_receipt()
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_the_listening_line_after_the_banner() {
        let output = "                             _   _\nAvailable Accounts\n==================\n\nListening on 127.0.0.1:46741\n";
        assert_eq!(
            listening_address(&mut output.as_bytes()).as_deref(),
            Some("127.0.0.1:46741")
        );
    }

    #[test]
    fn output_that_ends_before_listening_has_no_address() {
        assert_eq!(
            listening_address(&mut "error: address in use\n".as_bytes()),
            None
        );
    }

    #[test]
    fn a_missing_binary_is_one_line_naming_setup() {
        let error = Anvil::start(Path::new("/nonexistent/.tools/anvil/anvil"), &[]).err();
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            message,
            "anvil is not installed at /nonexistent/.tools/anvil/anvil; run ./scripts/setup"
        );
    }
}
