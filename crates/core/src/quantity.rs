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

// TEMPORARY stub additions (lead): replaced by the real implementation.
impl Quantity {
    pub fn as_approximate_f64(&self) -> f64 {
        self.milli as f64 / 1000.0
    }
}
impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let s = s.trim();
        let (num, mult) = if let Some(n) = s.strip_suffix('m') { (n, 1i64) } else { (s, 1000) };
        let f: f64 = num.parse().map_err(serde::de::Error::custom)?;
        Ok(Self { milli: (f * mult as f64).ceil() as i64 })
    }
}
