//! The iroh endpoint every role binds: direct UDP on the address asked for, plus the relays that
//! [`super::relays`] chose for the role. With relays off (a pool on 127.0.0.1, `--no-relay`) address
//! lookup and port mapping are off too, so it works with no network at all and peers find each other
//! through the addresses inside a ticket; with iroh's production relays, its address lookup and port
//! mapping come with them.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use iroh::endpoint::{Builder, PortmapperConfig, QuicTransportConfig, VarInt, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey};
use iroh_relay::tls::CaTlsConfig;
use iroh_tickets::endpoint::EndpointTicket;
use rustls::pki_types::CertificateDer;

use super::ProtocolError;
use super::relays::{Relays, is_loopback_relay};

/// Streams a peer may have open on one connection at once: enough for a provider's pipelined work,
/// few enough that one peer cannot hold thousands of half-read frames in memory.
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// A peer silent this long is gone: a pool killed without closing its connections is noticed, and
/// reconnected to, within seconds rather than QUIC's default half minute. Keep-alives keep quiet
/// but healthy connections (a provider paused for hours) open.
const IDLE_TIMEOUT: VarInt = VarInt::from_u32(6_000);
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// Where to bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    At(SocketAddr),
    /// Loopback when every address of `peer` (its IP addresses and its relays' hosts) is on this
    /// machine, all IPv4 interfaces otherwise.
    Toward,
}

impl Bind {
    fn addr(self, peer: Option<&EndpointAddr>) -> SocketAddr {
        match self {
            Bind::At(addr) => addr,
            Bind::Toward => {
                let loopback = peer.is_some_and(|p| {
                    !p.is_empty()
                        && p.ip_addrs().all(|a| a.ip().is_loopback())
                        && p.relay_urls().all(is_loopback_relay)
                });
                let ip = if loopback {
                    Ipv4Addr::LOCALHOST
                } else {
                    Ipv4Addr::UNSPECIFIED
                };
                SocketAddr::from((ip, 0))
            }
        }
    }
}

/// A builder for this project's endpoints, relays following `peer`'s ticket (none for a pool); callers
/// add hooks before binding.
pub fn endpoint_builder(
    secret: SecretKey,
    bind: Bind,
    peer: Option<&EndpointAddr>,
) -> Result<Builder, ProtocolError> {
    let relays = match peer {
        Some(peer) => super::Network::default().for_peer(peer),
        None => Relays::Off,
    };
    endpoint_builder_with(secret, bind, peer, &relays, &[])
}

/// A builder using `relays`, trusting `ca_roots` besides the usual web roots for the relays' TLS.
pub fn endpoint_builder_with(
    secret: SecretKey,
    bind: Bind,
    peer: Option<&EndpointAddr>,
    relays: &Relays,
    ca_roots: &[CertificateDer<'static>],
) -> Result<Builder, ProtocolError> {
    let transport = QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_idle_timeout(Some(IDLE_TIMEOUT.into()))
        .keep_alive_interval(KEEP_ALIVE)
        .build();
    let builder = match relays {
        Relays::Off => Endpoint::builder(presets::Minimal),
        Relays::Own(urls) => {
            Endpoint::builder(presets::Minimal).relay_mode(RelayMode::custom(urls.iter().cloned()))
        }
        Relays::Production { keep: None } => Endpoint::builder(presets::N0),
        Relays::Production { keep: Some(home) } => {
            Endpoint::builder(presets::N0).relay_mode(RelayMode::custom([home.clone()]))
        }
    };
    // Port mapping asks the home router for a port: a person's default, never a test's (whose
    // router would be outside the machine).
    let portmapper = match relays {
        Relays::Production { .. } => PortmapperConfig::default(),
        _ => PortmapperConfig::Disabled,
    };
    let builder = if ca_roots.is_empty() {
        builder
    } else {
        builder.ca_tls_config(CaTlsConfig::embedded().with_extra_roots(ca_roots.iter().cloned()))
    };
    Ok(builder
        .secret_key(secret)
        .clear_ip_transports()
        .bind_addr(bind.addr(peer))
        .map_err(|e| ProtocolError::Bind(e.to_string()))?
        .portmapper_config(portmapper)
        .transport_config(transport))
}

pub async fn bind_endpoint(builder: Builder) -> Result<Endpoint, ProtocolError> {
    builder
        .bind()
        .await
        .map_err(|e| ProtocolError::Bind(e.to_string()))
}

/// Parses a pool ticket as printed by `idlegrid pool`.
pub fn ticket_addr(ticket: &str) -> Result<EndpointAddr, ProtocolError> {
    EndpointTicket::from_str(ticket.trim())
        .map(EndpointAddr::from)
        .map_err(|e| {
            ProtocolError::Malformed(format!(
                "`{}` is not a pool ticket ({e}); it starts with \"endpoint\"",
                abbreviate(ticket)
            ))
        })
}

fn abbreviate(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(24) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
