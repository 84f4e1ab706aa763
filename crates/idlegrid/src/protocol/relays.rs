//! Which relays an endpoint uses. The person chooses ([`RelayChoice`]: the flags `--relay URL`...,
//! `--no-relay`, or the app's Settings → Network); the rules here turn that choice into the
//! [`Relays`] of one role: a pool picks its relays, everyone else follows the ticket it holds.
//! Pure rules; [`super::endpoint`] applies them to an iroh builder.
//!
//! Relays matter behind NAT: a peer that cannot be reached at any direct address is reached through
//! its home relay, and the relay's QUIC address discovery is what lets two peers behind NAT learn
//! their public addresses and punch a direct path.

use std::net::IpAddr;
use std::path::Path;

use iroh::{EndpointAddr, RelayUrl};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

/// What the person asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "urls", rename_all = "snake_case")]
pub enum RelayChoice {
    /// No flag: a pool uses iroh's production relays (none when bound to loopback); the other roles
    /// use the relays their ticket names.
    #[default]
    Default,
    /// `--relay URL`...: these relays and no production service, for every role.
    Own(Vec<RelayUrl>),
    /// `--no-relay`: direct addresses only.
    Off,
}

/// The person's network settings: the relay choice, and the extra certificate authorities that
/// relays' TLS certificates may be signed by (a self-hosted relay's self-signed certificate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub choice: RelayChoice,
    pub ca_roots: Vec<CertificateDer<'static>>,
}

/// The relays one endpoint uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relays {
    /// None: the endpoint is reached at its direct addresses only, and never waits to be online.
    Off,
    /// iroh's production relays and address lookup; `keep` pins the home relay a pool had before,
    /// so the ticket it printed stays valid.
    Production { keep: Option<RelayUrl> },
    /// These relays only; no production service is contacted.
    Own(Vec<RelayUrl>),
}

impl Relays {
    pub fn is_on(&self) -> bool {
        !matches!(self, Relays::Off)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot read the relay CA {path}: {message}")]
    Ca { path: String, message: String },
}

impl Network {
    /// Settings with the certificates of the PEM file `path` trusted for relays.
    pub fn trusting(mut self, path: &Path) -> Result<Network, RelayError> {
        self.ca_roots.extend(read_ca(path)?);
        Ok(self)
    }

    /// A pool's relays. `bind` is the address it listens on; `previous_home` the relay its last
    /// ticket named. A pool on loopback serves this machine only and needs none.
    pub fn for_pool(&self, bind: IpAddr, previous_home: Option<&RelayUrl>) -> Relays {
        match &self.choice {
            RelayChoice::Off => Relays::Off,
            RelayChoice::Own(urls) => match previous_home.filter(|home| urls.contains(home)) {
                Some(home) => Relays::Own(vec![home.clone()]),
                None => Relays::Own(urls.clone()),
            },
            RelayChoice::Default if bind.is_loopback() => Relays::Off,
            RelayChoice::Default => Relays::Production {
                keep: previous_home
                    .filter(|home| production_relays().contains(home))
                    .cloned(),
            },
        }
    }

    /// The relays of a provider, submitter or other client of the pool `peer` (from its ticket).
    pub fn for_peer(&self, peer: &EndpointAddr) -> Relays {
        match &self.choice {
            RelayChoice::Off => Relays::Off,
            RelayChoice::Own(urls) => Relays::Own(urls.clone()),
            RelayChoice::Default => {
                let named: Vec<RelayUrl> = peer.relay_urls().cloned().collect();
                if named.is_empty() {
                    Relays::Off
                } else {
                    Relays::Own(named)
                }
            }
        }
    }
}

/// The relays iroh's production preset uses.
pub fn production_relays() -> Vec<RelayUrl> {
    iroh::RelayMode::Default.relay_map().urls()
}

/// Whether a relay runs on this machine (a test's, or a local operator's): peers of a pool reached
/// only through it bind loopback, so nothing leaves the machine.
pub fn is_loopback_relay(url: &RelayUrl) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.trim_end_matches('.') == "localhost",
    }
}

fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    let failed = |message: String| RelayError::Ca {
        path: path.display().to_string(),
        message,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn url(text: &str) -> RelayUrl {
        text.parse().unwrap()
    }

    fn network(choice: RelayChoice) -> Network {
        Network {
            choice,
            ca_roots: Vec::new(),
        }
    }

    const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn a_pool_uses_production_relays_by_default_but_none_on_loopback() {
        let default = network(RelayChoice::Default);
        assert_eq!(
            default.for_pool(ANY, None),
            Relays::Production { keep: None }
        );
        assert_eq!(default.for_pool(LOOPBACK, None), Relays::Off);
        let own = network(RelayChoice::Own(vec![url("https://127.0.0.1:3443")]));
        assert_eq!(
            own.for_pool(LOOPBACK, None),
            Relays::Own(vec![url("https://127.0.0.1:3443")])
        );
        assert_eq!(network(RelayChoice::Off).for_pool(ANY, None), Relays::Off);
    }

    #[test]
    fn a_restarted_pool_keeps_its_home_relay_when_it_still_may_use_it() {
        let a = url("https://relay-a.example");
        let b = url("https://relay-b.example");
        let own = network(RelayChoice::Own(vec![a.clone(), b.clone()]));
        assert_eq!(own.for_pool(ANY, Some(&b)), Relays::Own(vec![b.clone()]));
        let other = url("https://gone.example");
        assert_eq!(
            own.for_pool(ANY, Some(&other)),
            Relays::Own(vec![a, b.clone()])
        );
        let production = production_relays();
        let home = production.last().unwrap();
        assert_eq!(
            network(RelayChoice::Default).for_pool(ANY, Some(home)),
            Relays::Production {
                keep: Some(home.clone())
            }
        );
        assert_eq!(
            network(RelayChoice::Default).for_pool(ANY, Some(&b)),
            Relays::Production { keep: None }
        );
    }

    #[test]
    fn other_roles_follow_the_ticket_unless_told_otherwise() {
        let id = iroh::SecretKey::generate().public();
        let relay = url("https://relay.example");
        let with_relay = EndpointAddr::new(id).with_relay_url(relay.clone());
        let direct_only = EndpointAddr::new(id).with_ip_addr("127.0.0.1:4000".parse().unwrap());
        let default = network(RelayChoice::Default);
        assert_eq!(default.for_peer(&with_relay), Relays::Own(vec![relay]));
        assert_eq!(default.for_peer(&direct_only), Relays::Off);
        assert_eq!(network(RelayChoice::Off).for_peer(&with_relay), Relays::Off);
        let mine = url("https://mine.example");
        assert_eq!(
            network(RelayChoice::Own(vec![mine.clone()])).for_peer(&direct_only),
            Relays::Own(vec![mine])
        );
    }

    #[test]
    fn only_relays_on_this_machine_count_as_loopback() {
        assert!(is_loopback_relay(&url("https://127.0.0.1:3443")));
        assert!(is_loopback_relay(&url("https://localhost:3443")));
        assert!(is_loopback_relay(&url("http://[::1]:3340")));
        assert!(!is_loopback_relay(&url("https://192.0.2.1")));
        assert!(!is_loopback_relay(&url("https://relay.example")));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let error = network(RelayChoice::Default)
            .trusting(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("ca.pem"), "{error}");
    }
}
