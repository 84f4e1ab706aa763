//! A relay server of one's own (`idlegrid relay`): iroh-relay's server, embedded, with QUIC address
//! discovery on, because that is what lets peers behind NAT learn their public address and punch a
//! direct path. TLS comes from the operator's certificate files, or from a self-signed certificate
//! kept in the data dir, which peers trust with `--relay-ca`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iroh::RelayUrl;
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The QUIC port iroh's clients send address discovery to (iroh-relay's default).
pub const DEFAULT_QUIC_PORT: u16 = iroh_relay::defaults::DEFAULT_RELAY_QUIC_PORT;

/// Where the relay's certificate comes from.
#[derive(Clone, Debug)]
pub enum RelayTls {
    /// The operator's PEM files (a certificate chain and its private key).
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate for the listening address, made once and kept in `dir` so that
    /// peers trusting it keep trusting it after a restart.
    SelfSigned { dir: PathBuf },
}

#[derive(Clone, Debug)]
pub struct RelayServerConfig {
    /// Where the relay (HTTPS) listens; the relay's URL is `https://` this address.
    pub listen: SocketAddr,
    /// The UDP port of QUIC address discovery, on the same IP.
    pub quic_port: u16,
    pub tls: RelayTls,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayServerError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("the certificate does not fit its key: {0}")]
    Tls(String),
    #[error(
        "a self-signed certificate must name the address peers use: give --listen a concrete IP, \
         not {0}"
    )]
    Unspecified(IpAddr),
    #[error("cannot start the relay: {0}")]
    Start(String),
}

/// A relay serving until it is shut down or dropped.
pub struct RunningRelay {
    server: Server,
    url: RelayUrl,
    /// The self-signed certificate peers must trust, when there is one.
    ca: Option<PathBuf>,
}

impl RunningRelay {
    pub async fn start(config: RelayServerConfig) -> Result<RunningRelay, RelayServerError> {
        let (tls, ca) = server_tls(&config)?;
        let ip = config.listen.ip();
        let mut relay = RelayConfig::new(SocketAddr::new(ip, 0));
        relay.tls = Some(TlsConfig::new(
            config.listen,
            CertConfig::Manual { server_config: tls },
        ));
        let mut server = ServerConfig::default();
        server.relay = Some(relay);
        server.quic = Some(QuicConfig::new(SocketAddr::new(ip, config.quic_port)));
        let server = Server::spawn(server)
            .await
            .map_err(|e| RelayServerError::Start(error_chain(&e)))?;
        let https = server.https_addr().unwrap_or(config.listen);
        let url = format!("https://{https}")
            .parse()
            .map_err(|e: iroh::RelayUrlParseError| RelayServerError::Start(e.to_string()))?;
        tracing::info!(%url, quic = ?server.quic_addr(), "relay listening");
        Ok(RunningRelay { server, url, ca })
    }

    /// The URL peers give `--relay`.
    pub fn url(&self) -> &RelayUrl {
        &self.url
    }

    /// The certificate peers give `--relay-ca`, when it is self-signed.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.server.quic_addr()
    }

    pub async fn shutdown(self) {
        if let Err(error) = self.server.shutdown().await {
            tracing::warn!(error = %error_chain(&error), "relay shut down uncleanly");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The server's TLS configuration, and the self-signed certificate's path when it is one.
fn server_tls(
    config: &RelayServerConfig,
) -> Result<(rustls::ServerConfig, Option<PathBuf>), RelayServerError> {
    let (cert, key, ca) = match &config.tls {
        RelayTls::Files { cert, key } => (cert.clone(), key.clone(), None),
        RelayTls::SelfSigned { dir } => {
            let (cert, key) = self_signed(dir, config.listen.ip())?;
            (cert.clone(), key, Some(cert))
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(&cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| read_error(&key, e))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RelayServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| RelayServerError::Tls(e.to_string()))?;
    Ok((tls, ca))
}

fn read_error(path: &Path, error: impl std::fmt::Display) -> RelayServerError {
    RelayServerError::Read {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// The certificate and key files for `ip`, made the first time.
fn self_signed(dir: &Path, ip: IpAddr) -> Result<(PathBuf, PathBuf), RelayServerError> {
    if ip.is_unspecified() {
        return Err(RelayServerError::Unspecified(ip));
    }
    let dir = dir.join(ip.to_string().replace(':', "_"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let write_error = |path: &Path, e: std::io::Error| RelayServerError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let made = rcgen::generate_simple_self_signed(vec![ip.to_string(), "localhost".into()])
        .map_err(|e| RelayServerError::Tls(e.to_string()))?;
    std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| write_error(&key, e))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| write_error(&cert, e))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for the relay");
    Ok((cert, key))
}

/// Writes a file only its owner can read (the relay's private key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}
