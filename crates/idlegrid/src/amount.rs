//! Money: integer micro-units of a pool's currency.
//!
//! Amounts are never floats, so balances add up exactly. Job files and the command line write them as
//! decimal strings ("0.0005"); everything else carries the micro-unit count.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Micro-units in one unit of currency.
const MICROS_PER_UNIT: u64 = 1_000_000;
const FRACTION_DIGITS: usize = 6;

/// An amount of a pool's currency, in micro-units.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_micros(micros: u64) -> Self {
        Amount(micros)
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// For totals a person reads; the ledger's own sums use `checked_add` and refuse overflow.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("`{0}` is not a decimal amount such as \"0.0005\"")]
    NotDecimal(String),
    #[error("`{0}` has more than {FRACTION_DIGITS} digits after the point")]
    TooPrecise(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let not_decimal = || AmountError::NotDecimal(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(not_decimal());
        }
        if fraction.len() > FRACTION_DIGITS {
            return Err(AmountError::TooPrecise(text.to_owned()));
        }
        let too_large = || AmountError::TooLarge(text.to_owned());
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let padded = format!("{fraction:0<FRACTION_DIGITS$}");
        let fraction: u64 = padded.parse().map_err(|_| not_decimal())?;
        whole
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|w| w.checked_add(fraction))
            .map(Amount)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / MICROS_PER_UNIT;
        let fraction = self.0 % MICROS_PER_UNIT;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:0FRACTION_DIGITS$}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Serializes an `Amount` as people and the window read it, "0.0005", where the engine's own formats
/// keep its micro count: `#[serde(serialize_with = "crate::amount::as_decimal")]`.
pub fn as_decimal<S: serde::Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(amount)
}

/// Serializes amounts by name the same way, `{"name": "0.0005"}`.
pub fn as_decimal_map<S: serde::Serializer>(
    amounts: &std::collections::BTreeMap<String, Amount>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(amounts.iter().map(|(k, v)| (k, v.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_decimal_strings_exactly() {
        for (text, micros, shown) in [
            ("0.0005", 500, "0.0005"),
            ("1", 1_000_000, "1"),
            ("12.5", 12_500_000, "12.5"),
            (".25", 250_000, "0.25"),
            ("3.", 3_000_000, "3"),
            ("0.000001", 1, "0.000001"),
        ] {
            let amount: Amount = text.parse().unwrap();
            assert_eq!(amount.micros(), micros, "{text}");
            assert_eq!(amount.to_string(), shown);
        }
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        assert!(matches!(
            "0.0000001".parse::<Amount>(),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            "-1".parse::<Amount>(),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            "1e-3".parse::<Amount>(),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            ".".parse::<Amount>(),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            "".parse::<Amount>(),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            "99999999999999999999".parse::<Amount>(),
            Err(AmountError::TooLarge(_))
        ));
    }
}
