//! Durations as people write them (`15s`, `5m`, `1h30m`, `250ms`, `14d`, or a bare number
//! of seconds) and as the simulator prints them.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative span of time in seconds. In YAML it is a string with units (`15s`) or a
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Seconds(pub f64);

impl Seconds {
    pub const ZERO: Seconds = Seconds(0.0);

    /// Parses `1h30m`, `250ms`, `14d`, `0.5s`, `90` (seconds).
    pub fn parse(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Seconds)
    }

    pub const fn secs(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n >= 0.0 && n.is_finite() => Ok(Seconds(n)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "invalid duration {n}: must be a non-negative number of seconds"
            ))),
            Raw::Text(t) => Seconds::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a duration: one or more `<number><unit>` groups (units `ms`, `s`, `m`, `h`, `d`)
/// or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let s = text.trim();
    let err = || {
        format!(
            "invalid duration {text:?}: write a number with a unit, e.g. 15s, 5m, 1h30m, 250ms, 14d"
        )
    };
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(v) = s.parse::<f64>() {
        return if v >= 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(err())
        };
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().map_err(|_| err())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = tail;
    }
    // `999…9d` parses to infinity (or a number no run could reach): refuse it here, so
    // that every duration downstream is a finite number of seconds.
    if total.is_finite() {
        Ok(total)
    } else {
        Err(format!("invalid duration {text:?}: too large"))
    }
}

/// Formats seconds compactly: `850ms`, `12.5s`, `4m05s`, `2h03m`, `14d02h`.
pub fn format_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "∞".into();
    }
    // Past a million years `as u64` below would not hold the days (messages about
    // absurd lengths print them).
    if secs >= 1e13 {
        return format!("{}s", show_number(secs));
    }
    if secs < 1.0 {
        if secs == 0.0 {
            return "0s".into();
        }
        return format!("{}ms", trim_float(secs * 1000.0, 1));
    }
    if secs < 60.0 {
        return format!("{}s", trim_float(secs, 2));
    }
    let total = secs.round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h:02}h")
        }
    } else if h > 0 {
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m:02}m")
        }
    } else if s == 0 {
        format!("{m}m")
    } else {
        format!("{m}m{s:02}s")
    }
}

/// `x` with at most `digits` fractional digits and no trailing zeros.
pub fn trim_float(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A number as a user may have typed it: plain when moderate, else in `1e300` form (a
/// message should not print 300 digits).
pub fn show_number(x: f64) -> String {
    if x == 0.0 || (1e-3..1e9).contains(&x.abs()) {
        return format!("{x}");
    }
    // Four significant digits, trailing zeros dropped: `1e300`, `9.99e289`.
    let text = format!("{x:.3e}");
    match text.split_once('e') {
        Some((mantissa, exp)) if mantissa.contains('.') => {
            format!(
                "{}e{exp}",
                mantissa.trim_end_matches('0').trim_end_matches('.')
            )
        }
        _ => text,
    }
}

/// Groups thousands: `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_as_bare_seconds() {
        assert_eq!(parse_duration("15s"), Ok(15.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("250ms"), Ok(0.25));
        assert_eq!(parse_duration("14d"), Ok(14.0 * 86_400.0));
        assert_eq!(parse_duration("90"), Ok(90.0));
        assert_eq!(parse_duration("0"), Ok(0.0));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("").is_err());
        let huge = format!("{}d", "9".repeat(400));
        assert!(
            parse_duration(&huge)
                .expect_err("overflows")
                .contains("too large")
        );
        assert!(parse_duration(&"9".repeat(400)).is_err());
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(0.85), "850ms");
        assert_eq!(format_duration(12.5), "12.5s");
        assert_eq!(format_duration(245.0), "4m05s");
        assert_eq!(format_duration(3600.0 * 2.0 + 180.0), "2h03m");
        assert_eq!(format_duration(14.0 * 86_400.0), "14d");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(12), "12");
        assert_eq!(show_number(1e300), "1e300");
        assert_eq!(show_number(9.999995397314989e289), "1e290");
        assert_eq!(show_number(1.25e-7), "1.25e-7");
        assert_eq!(show_number(42.5), "42.5");
    }
}
