//! The iroh endpoint every role binds: direct UDP on the address asked for, with relays, address
//! lookup and port mapping off, so a pool on 127.0.0.1 works with no network at all. Peers find each
//! other through the addresses inside a ticket.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use iroh::endpoint::{Builder, PortmapperConfig, QuicTransportConfig, VarInt, presets};
use iroh::{Endpoint, EndpointAddr, SecretKey};
use iroh_tickets::endpoint::EndpointTicket;

use super::ProtocolError;

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
    /// Loopback when every address of `peer` is loopback, all IPv4 interfaces otherwise.
    Toward,
}

impl Bind {
    fn addr(self, peer: Option<&EndpointAddr>) -> SocketAddr {
        match self {
            Bind::At(addr) => addr,
            Bind::Toward => {
                let loopback = peer.is_some_and(|p| {
                    let mut ips = p.ip_addrs().peekable();
                    ips.peek().is_some() && ips.all(|a| a.ip().is_loopback())
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

/// A builder for this project's endpoints; callers add hooks before binding.
pub fn endpoint_builder(
    secret: SecretKey,
    bind: Bind,
    peer: Option<&EndpointAddr>,
) -> Result<Builder, ProtocolError> {
    let transport = QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_idle_timeout(Some(IDLE_TIMEOUT.into()))
        .keep_alive_interval(KEEP_ALIVE)
        .build();
    Ok(Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .clear_ip_transports()
        .bind_addr(bind.addr(peer))
        .map_err(|e| ProtocolError::Bind(e.to_string()))?
        .portmapper_config(PortmapperConfig::Disabled)
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
