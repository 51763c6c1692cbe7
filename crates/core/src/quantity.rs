//! Exact Kubernetes `resource.Quantity` values (STUB: being written).
use std::fmt;
use std::str::FromStr;

/// A Kubernetes quantity held exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity {
    milli: i64,
}

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
pub struct QuantityError;

impl Quantity {
    /// From integer milli-units.
    pub const fn from_milli(milli: i64) -> Self {
        Self { milli }
    }
    /// `MilliValue()`: the value in milli-units, rounded up (saturating at i64 bounds).
    pub const fn milli_value(&self) -> i64 {
        self.milli
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: i64 = s.parse().map_err(|_| QuantityError)?;
        Ok(Self { milli: v.saturating_mul(1000) })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}m", self.milli)
    }
}
