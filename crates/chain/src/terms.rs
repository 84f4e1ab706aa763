//! What a pool's chain is: the chain file an operator writes once (`idlegrid chain deploy` makes it)
//! and the part of it a provider is told, plus the one rule for turning the pool's amounts (integers of
//! 10^-6) into the token's own units and back.

use std::path::Path;

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::ChainError;

/// The decimals of the pool's `Amount` (micro-units); a token with fewer could not carry them.
pub const AMOUNT_DECIMALS: u8 = 6;

/// `CHAIN.toml`: where and in what a pool pays. It also travels to providers, in a compact binary
/// encoding that cannot skip or flatten fields: hence the flat twin it is (de)serialized through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FlatChainFile", into = "FlatChainFile")]
pub struct ChainFile {
    /// The pool's JSON-RPC URL; providers may check through their own.
    pub rpc: String,
    pub terms: ChainTerms,
}

#[derive(Clone, Serialize, Deserialize)]
struct FlatChainFile {
    rpc: String,
    chain_id: u64,
    token: Address,
    symbol: String,
    decimals: u8,
    contract: Address,
    confirmations: u64,
    #[serde(default)]
    explorer: Option<String>,
}

impl From<FlatChainFile> for ChainFile {
    fn from(flat: FlatChainFile) -> ChainFile {
        ChainFile {
            rpc: flat.rpc,
            terms: ChainTerms {
                chain_id: flat.chain_id,
                token: flat.token,
                symbol: flat.symbol,
                decimals: flat.decimals,
                contract: flat.contract,
                confirmations: flat.confirmations,
                explorer: flat.explorer,
            },
        }
    }
}

impl From<ChainFile> for FlatChainFile {
    fn from(file: ChainFile) -> FlatChainFile {
        let terms = file.terms;
        FlatChainFile {
            rpc: file.rpc,
            chain_id: terms.chain_id,
            token: terms.token,
            symbol: terms.symbol,
            decimals: terms.decimals,
            contract: terms.contract,
            confirmations: terms.confirmations,
            explorer: terms.explorer,
        }
    }
}

/// The chain a pool pays on, as it tells its providers: enough to check every payout, nothing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTerms {
    pub chain_id: u64,
    pub token: Address,
    pub symbol: String,
    pub decimals: u8,
    pub contract: Address,
    /// Blocks on top of the payout's (its own included) before it counts as paid.
    pub confirmations: u64,
    /// A block explorer's base URL, for links to transactions (`{explorer}/tx/{hash}`).
    #[serde(default)]
    pub explorer: Option<String>,
}

impl ChainFile {
    pub fn load(path: &Path) -> Result<ChainFile, ChainError> {
        let text = std::fs::read_to_string(path).map_err(|e| ChainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let file: ChainFile = toml::from_str(&text).map_err(|e| ChainError::File {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })?;
        file.terms.check().map_err(|e| ChainError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(file)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

impl ChainTerms {
    /// Refuses terms no payout could be made or checked under.
    pub fn check(&self) -> Result<(), ChainError> {
        if self.decimals < AMOUNT_DECIMALS {
            return Err(ChainError::FewDecimals {
                symbol: self.symbol.clone(),
                decimals: self.decimals,
            });
        }
        if self.decimals > 60 {
            return Err(ChainError::Terms(format!(
                "the token claims {} decimals",
                self.decimals
            )));
        }
        if self.confirmations == 0 {
            return Err(ChainError::Terms(
                "confirmations must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// `micros` of the pool's amount in the token's units.
    pub fn units(&self, micros: u64) -> U256 {
        U256::from(micros) * scale(self.decimals)
    }

    /// Token units as a decimal string in the token's own terms: 1200 units of a 6-decimal token are
    /// "0.0012".
    pub fn format(&self, units: U256) -> String {
        format_units(units, self.decimals)
    }

    /// A link to the transaction, when the chain names an explorer.
    pub fn explorer_link(&self, tx_hash: &str) -> Option<String> {
        self.explorer
            .as_ref()
            .map(|base| format!("{}/tx/{tx_hash}", base.trim_end_matches('/')))
    }
}

fn scale(decimals: u8) -> U256 {
    U256::from(10).pow(U256::from(decimals.saturating_sub(AMOUNT_DECIMALS)))
}

/// `units` with `decimals` places, trailing zeros dropped: "12.5", "0.0012", "3".
pub fn format_units(units: U256, decimals: u8) -> String {
    let one = U256::from(10).pow(U256::from(decimals));
    let whole = units / one;
    let fraction = units % one;
    if fraction.is_zero() {
        return whole.to_string();
    }
    let digits = format!(
        "{:0>width$}",
        fraction.to_string(),
        width = usize::from(decimals)
    );
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(decimals: u8) -> ChainTerms {
        ChainTerms {
            chain_id: 31337,
            token: Address::ZERO,
            symbol: "tUSD".to_owned(),
            decimals,
            contract: Address::ZERO,
            confirmations: 2,
            explorer: Some("https://explorer.example/".to_owned()),
        }
    }

    #[test]
    fn amounts_scale_to_the_tokens_decimals() {
        assert_eq!(terms(6).units(1_200), U256::from(1_200));
        assert_eq!(
            terms(18).units(1_200),
            U256::from(1_200) * U256::from(10).pow(U256::from(12))
        );
        assert_eq!(terms(18).format(terms(18).units(1_200)), "0.0012");
        assert_eq!(terms(6).format(U256::from(12_500_000)), "12.5");
        assert_eq!(terms(6).format(U256::from(3_000_000)), "3");
        assert_eq!(terms(6).format(U256::ZERO), "0");
    }

    #[test]
    fn a_token_with_fewer_than_six_decimals_is_refused() {
        let error = terms(2).check().unwrap_err().to_string();
        assert!(error.contains("2 decimals"), "{error}");
        assert!(terms(6).check().is_ok());
    }

    #[test]
    fn the_chain_file_round_trips_through_toml() {
        let file = ChainFile {
            rpc: "http://127.0.0.1:8545".to_owned(),
            terms: terms(6),
        };
        let text = file.to_toml();
        assert!(text.contains("chain_id = 31337"), "{text}");
        assert_eq!(toml::from_str::<ChainFile>(&text).ok(), Some(file));
        assert_eq!(
            terms(6).explorer_link("0xab").as_deref(),
            Some("https://explorer.example/tx/0xab")
        );
    }
}
