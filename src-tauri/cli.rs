//! The app's command line: where the data lives, and whether to start in the tray only (as it does
//! at login); and the `worker` the app starts itself.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "idlegrid-desktop",
    version,
    about = "Idlegrid: shares this computer's GPU while you are away"
)]
pub struct Args {
    /// Where the identity, pools, settings and ledger are kept (default: the platform's data dir)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Start in the tray only, without opening the window
    #[arg(long)]
    pub hidden: bool,
    /// Join the local pool with sample work at start (what the first-run screen offers)
    #[arg(long)]
    pub local_pool: bool,
}

/// Started as `PROGRAM worker` by the app itself, to run jobs apart from it.
pub fn is_worker() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "worker")
}

impl Args {
    /// The arguments, or help, the version or a usage error printed and the process ended.
    pub fn parse_or_exit() -> Args {
        Args::parse()
    }
}
