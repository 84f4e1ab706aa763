//! The relay flags every networked command takes (`--relay URL`..., `--relay-ca FILE`, `--no-relay`),
//! as one clap struct to flatten, and `idlegrid relay`, a relay server of one's own.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use idlegrid::identity::default_data_dir;
use idlegrid::protocol::{Network, RelayChoice};
use idlegrid::relay::{DEFAULT_QUIC_PORT, RelayServerConfig, RelayTls, RunningRelay};
use iroh::RelayUrl;

/// Which relays to use. Flatten it into a command with `#[command(flatten)] relays: RelayArgs`.
#[derive(Args, Clone, Debug, Default)]
pub struct RelayArgs {
    /// Reach peers through this relay (repeat for more) and contact no production service. Without
    /// it, a pool uses iroh's production relays (none when bound to loopback), and the other roles
    /// use the relays that the ticket names
    #[arg(long = "relay", value_name = "URL", conflicts_with = "no_relay")]
    relays: Vec<RelayUrl>,
    /// Trust the relay TLS certificates signed by this PEM file (a self-hosted relay's own)
    #[arg(long, value_name = "FILE")]
    relay_ca: Option<PathBuf>,
    /// Direct addresses only: no relay, no address lookup
    #[arg(long)]
    no_relay: bool,
}

impl RelayArgs {
    pub fn network(&self) -> anyhow::Result<Network> {
        let choice = if self.no_relay {
            RelayChoice::Off
        } else if self.relays.is_empty() {
            RelayChoice::Default
        } else {
            RelayChoice::Own(self.relays.clone())
        };
        let network = Network {
            choice,
            ca_roots: Vec::new(),
        };
        Ok(match &self.relay_ca {
            Some(path) => network.trusting(path)?,
            None => network,
        })
    }
}

#[derive(Args)]
pub struct RelayServerArgs {
    /// Address the relay listens on (HTTPS); its URL is https://ADDR
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// UDP port of QUIC address discovery, on the same IP (iroh's peers expect the default)
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_QUIC_PORT)]
    quic_port: u16,
    /// The TLS certificate chain (PEM); without it the relay makes a self-signed certificate,
    /// kept in DIR/relay-tls, that peers trust with --relay-ca
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where a self-signed certificate is kept
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

pub fn relay(args: RelayServerArgs) -> anyhow::Result<()> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => RelayTls::Files { cert, key },
        (None, None) => RelayTls::SelfSigned {
            dir: args.data.unwrap_or_else(default_data_dir).join("relay-tls"),
        },
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let config = RelayServerConfig {
        listen: args.listen,
        quic_port: args.quic_port,
        tls,
    };
    super::network::runtime()?.block_on(async {
        let relay = RunningRelay::start(config).await?;
        println!("relay: {}", relay.url());
        if let Some(ca) = relay.ca() {
            println!("ca: {}", ca.display());
        }
        tracing::info!("relay running; Ctrl-C stops it");
        super::network::shutdown_signal().await;
        relay.shutdown().await;
        Ok(())
    })
}
