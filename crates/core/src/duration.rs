//! Go `time.Duration` strings (`"60s"`, `"1m0s"`, `"1h2m3.5s"`, `"250ms"`), as the
//! metrics APIs report a sample's window.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time in nanoseconds, written the way Go formats `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Parses `time.ParseDuration` syntax: an optional sign, then one or more
    /// decimal numbers each followed by a unit (ns, us, µs, ms, s, m, h); `"0"` alone is allowed.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("time: invalid duration {s:?}");
        let (neg, mut rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if rest == "0" {
            return Ok(Self(0));
        }
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
            let (num, tail) = rest.split_at(num_end);
            if num.is_empty() || num == "." {
                return Err(err());
            }
            let unit_end = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_end);
            let scale: i128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
            };
            let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
            let int: i128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| err())?
            };
            let mut value = int.checked_mul(scale).ok_or_else(err)?;
            let mut div = 1i128;
            for c in frac_part.chars() {
                div = div.saturating_mul(10);
                let digit = i128::from(c.to_digit(10).ok_or_else(err)?);
                value = value.saturating_add(digit.saturating_mul(scale) / div);
            }
            total = total.checked_add(value).ok_or_else(err)?;
            rest = tail;
        }
        // Go accepts exactly 2^63 when negative (the most negative duration).
        let signed = if neg { -total } else { total };
        i64::try_from(signed).map(Self).map_err(|_| err())
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`: `1m0s`, `30s`, `1.5s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return f.write_str("0s");
        }
        let neg = n < 0;
        let u = n.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u < 1_000_000_000 {
            let (unit, div) = if u < 1_000 {
                ("ns", 1)
            } else if u < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{sign}{}{unit}", frac(u, div));
        }
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s_ns = u % 60_000_000_000;
        let secs = frac(s_ns, 1_000_000_000);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{secs}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{secs}s")
        } else {
            write!(f, "{sign}{secs}s")
        }
    }
}

fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rem = v % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_like_go() {
        for (s, ns, back) in [
            ("60s", 60_000_000_000, "1m0s"),
            ("1m0s", 60_000_000_000, "1m0s"),
            ("30s", 30_000_000_000, "30s"),
            ("1.5s", 1_500_000_000, "1.5s"),
            ("250ms", 250_000_000, "250ms"),
            ("1h2m3s", 3_723_000_000_000, "1h2m3s"),
            ("0", 0, "0s"),
            ("-2s", -2_000_000_000, "-2s"),
        ] {
            let d = GoDuration::parse(s).expect(s);
            assert_eq!(d.as_nanos(), ns, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10", "1x", "1.2.3s", "9999999999999h", "-", "."] {
            assert!(GoDuration::parse(bad).is_err(), "{bad}");
        }
    }
}
