//! Exact Kubernetes `resource.Quantity` values: parsing, rounding to integer
//! (milli-)units, and canonical formatting.
//!
//! This module owns the one numeric type that crosses from Kubernetes objects into
//! the HPA arithmetic. It ports `k8s.io/apimachinery/pkg/api/resource`
//! (`quantity.go`, `amount.go`, `suffix.go`, `math.go`, `scale_int.go`) and mirrors
//! what that package *does*, quirks included, because kube-controller-manager's
//! decisions depend on it:
//!
//! * **Parsing** is `ParseQuantity`, scanner and all. No `f64` is involved. The
//!   scanner is more permissive than the regular expression in its own error message:
//!   `"5."`, `".5"` and `"+1"` parse, and so do `"."`, `"-"` and bare suffixes such as
//!   `"k"`, `"Ki"` or `"e5"`, as zero (kubernetes/apimachinery#165). A value finer
//!   than a nano is rounded *up*, away from zero (`"0.1n"` is `1n`); a binary-SI value
//!   is silently capped at 2^63-1 (`"8Ei"` is `9223372036854775807`); an `e`
//!   exponent is truncated to 32 bits as Go's `int32(...)` does.
//! * **Representation.** Upstream holds a parsed value either as an `int64Amount`
//!   (an int64 times a power of ten: the fast path) or as an `inf.Dec` (a big integer
//!   rounded to nano). Which one it picks shows: `MilliValue` rounds a negative
//!   non-integral value differently on the two paths, and `AsApproximateFloat64`
//!   multiplies the stored mantissa by `math.Pow10(scale)`, so its last bit depends
//!   on the stored pair. We therefore keep the exact value together with the
//!   representation Go would use, and reproduce both accessors bit for bit.
//! * **Formatting** ([`Display`](fmt::Display)) is `CanonicalizeBytes`: the format
//!   the value was parsed with is kept, the mantissa is an integer and the exponent
//!   (or suffix) as large as possible: `"1024Ki"` → `1Mi`, `"1.5"` → `1500m`,
//!   `"0.5Gi"` → `512Mi`, `"1e3"` → `1e3`.
//! * **Equality, ordering and hashing** are by numeric value (Go `Cmp`), never by
//!   spelling or format: `"1000m" == "1"`.
//!
//! ## Where podscale differs from Go, on purpose
//! * `Display` always prints the canonical form. Go's `String()` instead returns the
//!   parsed input verbatim when its fast path guesses the input is already canonical;
//!   the guess is loose, so a handful of spellings come back unchanged (`"+1"`, `"01"`,
//!   `"5."`, `"1.500k"`, `"1E3"`, `"1e+3"`). The values are identical.
//! * The integer accessors ([`Quantity::milli_value`], [`Quantity::value`],
//!   [`Quantity::scaled_value`]) saturate at `i64::MAX` / `i64::MIN` when the result
//!   does not fit. Go's `int64Amount` path saturates the same way; its `inf.Dec` path
//!   returns a wrapped (documented as undefined) number. [`Quantity::checked_milli_value`]
//!   reports the overflow instead.
//! * A value is held as an i128 mantissa (38 significant decimal digits, some 39, after
//!   Go's nano rounding) times a power of ten inside ±2^31. Inputs beyond that (which Go
//!   holds in a `big.Int`, or for huge exponents spends unbounded time and memory
//!   rounding) are rejected with [`QuantityError::OutOfRange`] instead of being
//!   rounded. No manifest or metrics API produces such values.
//! * Canonical exponents are computed without Go's int32 wrap-around, which only
//!   corrupts values whose power of ten is within a few units of ±2^31.
//! * Deserializing a JSON/YAML *number* sees an `f64`, not the text: the value is
//!   the number's shortest decimal spelling parsed exactly, but a number written in
//!   exponent notation (`1e3`) prints as DecimalSI (`1k`) where Go would keep `1e3`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// How a quantity is printed (Go `resource.Format`). Parsing remembers the family of
/// the suffix it saw, and [`Display`](fmt::Display) prints in that family again.
///
/// The variant names are Go's, so that they can be looked up in upstream code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `12e6`: a power-of-ten exponent (Go `DecimalExponent`).
    DecimalExponent,
    /// `12Mi`: powers of 1024 (Go `BinarySI`).
    BinarySI,
    /// `12M`: SI powers of 1000 (Go `DecimalSI`).
    #[default]
    DecimalSI,
}

/// Why a quantity string was rejected. The first three are Go's own errors, with
/// Go's messages, so they read the same as the API server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Go `ErrFormatWrong`: the text is not a number followed by a suffix.
    #[error(
        "quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// Go `ErrNumeric`: the number has no digits where Go needs some (`".e-10"`).
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// Go `ErrSuffix`: an unknown suffix (`"1iK"`, `"0.1mi"`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// podscale only: valid for Go, but not representable exactly here (see the
    /// module documentation).
    #[error(
        "quantity cannot be held exactly: more than 38 significant digits, \
         or a power of ten beyond 2^31"
    )]
    OutOfRange,
}

/// Which of Go's two internal representations upstream would hold a value in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    /// `int64Amount{value: unscaled, scale}`: `unscaled` fits an i64, and the pair is
    /// exactly Go's (not normalized: `"1000m"` is `{1000, -3}`).
    Int64,
    /// `inf.Dec` whose (Go-side) mantissa is `unscaled × 10^(scale - go_scale)` and
    /// whose power of ten is `go_scale`: -9 for a parsed non-zero value (rounded to
    /// nano), 0 for a capped binary value, anything for zero.
    Dec { go_scale: i32 },
}

/// A Kubernetes quantity (`resource.Quantity`), held exactly.
///
/// Parse it with [`str::parse`] / [`Quantity::parse`], build it with
/// [`Quantity::from_milli`] and friends, read it with [`Quantity::milli_value`] (the
/// HPA's unit), and print it with [`Display`](fmt::Display). Comparison is by value.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// The value is `unscaled × 10^scale`, exactly.
    unscaled: i128,
    scale: i32,
    repr: Repr,
    format: Format,
}

/// Go `Nano`: parsing keeps a value down to 10^-9 and rounds anything finer up.
const NANO: i32 = -9;
/// Go `maxInt64Factors`: the fast path takes at most this many digits.
const MAX_INT64_FACTORS: i64 = 18;
/// Go `log10MaxInt64`: 10^19 exceeds `i64::MAX`.
const LOG10_MAX_INT64: i64 = 19;
/// `i64::MAX` expressed in nano-units, the binary-SI cap compared after rounding.
const MAX_INT64_NANO: u128 = 9_223_372_036_854_775_807_000_000_000;
/// Largest power of ten printed: the largest multiple of 3 that still parses back
/// without Go's int32 truncation of the exponent.
const MAX_PRINTED_EXPONENT: i64 = 2_147_483_646;
/// Digits an i128 can always hold (10^38 < i128::MAX < 10^39).
const I128_DIGITS: i64 = 38;

impl Quantity {
    /// Zero (DecimalSI).
    pub const ZERO: Quantity = Quantity::new(0, Format::DecimalSI);

    /// Go `MaxMilliQuantity()`: the largest quantity whose milli value fits an i64.
    pub const MAX_MILLI: Quantity = Quantity::from_milli(i64::MAX);

    /// `value` whole units (Go `NewQuantity(value, format)`).
    pub const fn new(value: i64, format: Format) -> Self {
        Self::int64(value, 0, format)
    }

    /// `value` thousandths (Go `NewMilliQuantity(value, format)`).
    pub const fn new_milli(value: i64, format: Format) -> Self {
        Self::int64(value, -3, format)
    }

    /// `value × 10^scale`, DecimalSI (Go `NewScaledQuantity(value, scale)`).
    pub const fn new_scaled(value: i64, scale: i32) -> Self {
        Self::int64(value, scale, Format::DecimalSI)
    }

    /// `milli` thousandths, DecimalSI: what the HPA controller writes into status
    /// (Go `NewMilliQuantity(milli, DecimalSI)`), e.g. 300 → `300m`, 60000 → `60`.
    pub const fn from_milli(milli: i64) -> Self {
        Self::new_milli(milli, Format::DecimalSI)
    }

    /// A metric value (a Prometheus sample, an `f64`) as the HPA receives it through
    /// the custom and external metrics APIs: whole thousandths, truncated toward zero
    /// and saturating at the `i64` range, NaN as zero, DecimalSI. This is
    /// prometheus-adapter's conversion, `resource.NewMilliQuantity(int64(value*1000),
    /// resource.DecimalSI)` (`pkg/custom-provider/series_registry.go` and
    /// `pkg/external-provider`), with Rust's saturating `as` where Go's conversion of
    /// an out-of-range float is implementation-defined. The one conversion used by the
    /// metric sources (`podscale-metrics`) and the simulator, so that a simulated
    /// controller decides on the same integers as the real one.
    pub fn from_metric_value(value: f64) -> Self {
        #[allow(clippy::cast_possible_truncation)] // truncation and saturation by design
        let milli = (value * 1000.0) as i64;
        Self::from_milli(milli)
    }

    /// A container's CPU usage as metrics-server reports it: whole nanocores,
    /// truncated (`uint64Quantity(uint64(cpuUsage), resource.DecimalSI, -9)` in
    /// metrics-server's `pkg/storage`), negative values as zero.
    pub fn from_cpu_cores(cores: f64) -> Self {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating
        let nanos = ((cores * 1e9) as u64).min(i64::MAX as u64) as i64;
        Self::new_scaled(nanos, -9)
    }

    /// A container's memory usage as metrics-server reports it: whole bytes, truncated,
    /// BinarySI (`uint64Quantity(memoryUsage, resource.BinarySI, 0)`).
    pub fn from_memory_bytes(bytes: f64) -> Self {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating
        let b = (bytes as u64).min(i64::MAX as u64) as i64;
        Self::new(b, Format::BinarySI)
    }

    const fn int64(value: i64, scale: i32, format: Format) -> Self {
        Self {
            unscaled: value as i128,
            scale,
            repr: Repr::Int64,
            format,
        }
    }

    /// Parse a quantity string exactly as Go's `ParseQuantity` does (no surrounding
    /// whitespace allowed). Same as [`str::parse`].
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        parse_quantity(s.as_bytes())
    }

    /// The format the quantity prints in.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// Go `IsZero()`.
    pub const fn is_zero(&self) -> bool {
        self.unscaled == 0
    }

    /// Go `Sign()`: -1, 0 or 1.
    pub const fn signum(&self) -> i32 {
        self.unscaled.signum() as i32
    }

    /// Whether the value is below zero.
    pub const fn is_negative(&self) -> bool {
        self.unscaled < 0
    }

    /// Go `MilliValue()`: the value in thousandths, rounded up.
    ///
    /// "Up" is Go's, which depends on the internal representation for a negative
    /// value that is not a whole number of thousandths: away from zero for the int64
    /// fast path (`"-1500u"` → -2), but one *above* the ceiling for a value Go keeps
    /// as an `inf.Dec` of magnitude below ~9.2 (`"-0.0000000015"` → +1, since it
    /// parses to -2n held as a decimal), and the ceiling for larger decimals.
    /// Positive values always round to the ceiling.
    ///
    /// Out of range Go returns an undefined (wrapped) number; we saturate at
    /// `i64::MAX` / `i64::MIN`. See [`Quantity::checked_milli_value`].
    pub fn milli_value(&self) -> i64 {
        self.scaled(-3).0
    }

    /// Go `Value()`: the value in whole units, rounded up as [`Quantity::milli_value`]
    /// rounds; saturating instead of overflowing.
    pub fn value(&self) -> i64 {
        self.scaled(0).0
    }

    /// Go `ScaledValue(scale)`: the value in units of `10^scale`, rounded up as
    /// [`Quantity::milli_value`] rounds; saturating instead of overflowing.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        self.scaled(scale).0
    }

    /// [`Quantity::milli_value`], or `None` where Go's result would overflow an i64.
    pub fn checked_milli_value(&self) -> Option<i64> {
        self.checked_scaled_value(-3)
    }

    /// [`Quantity::scaled_value`], or `None` where Go's result would overflow an i64.
    pub fn checked_scaled_value(&self, scale: i32) -> Option<i64> {
        match self.scaled(scale) {
            (value, true) => Some(value),
            (_, false) => None,
        }
    }

    /// Go `AsApproximateFloat64()`, bit for bit: Go's stored mantissa converted to
    /// `f64`, times Go's `math.Pow10` of its stored exponent. This is what the HPA
    /// uses for `behavior.*.tolerance`. As upstream, out-of-range values give ±Inf,
    /// and a zero stored with an exponent above 308 gives NaN (`0 × Inf`).
    pub fn as_approximate_f64(&self) -> f64 {
        let (base, exponent) = match self.repr {
            // `float64(q.i.value) * math.Pow10(int(q.i.scale))`
            Repr::Int64 => (self.unscaled as f64, self.scale),
            // `big.Float.SetInt(unscaled).Float64() * math.Pow10(-dec.Scale())`
            Repr::Dec { go_scale } => {
                let shift = i64::from(self.scale) - i64::from(go_scale);
                (int_times_pow10_to_f64(self.unscaled, shift), go_scale)
            }
        };
        if exponent == 0 {
            return base;
        }
        base * go_pow10(i64::from(exponent))
    }

    /// The value with trailing zeros moved into the exponent; zero is `(0, 0)`.
    /// The exponent is i64 because an int64 amount at scale 2^31-1 can still carry
    /// trailing zeros.
    fn normalized(&self) -> (i128, i64) {
        if self.unscaled == 0 {
            return (0, 0);
        }
        let (mut coef, mut exp) = (self.unscaled, i64::from(self.scale));
        while coef % 10 == 0 {
            coef /= 10;
            exp += 1;
        }
        (coef, exp)
    }

    /// Go `ScaledValue`: (result, whether it fit an i64).
    fn scaled(&self, target: i32) -> (i64, bool) {
        if self.unscaled == 0 {
            return (0, true);
        }
        match self.repr {
            Repr::Int64 => int64_amount_scaled(self.unscaled, self.scale, target),
            Repr::Dec { go_scale } => inf_dec_scaled(self.unscaled, self.scale, go_scale, target),
        }
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self::ZERO
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Go `Cmp`: by numeric value only.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, ea) = self.normalized();
        let (b, eb) = other.normalized();
        let sign = a.signum();
        match sign.cmp(&b.signum()) {
            Ordering::Equal if sign == 0 => return Ordering::Equal,
            Ordering::Equal => {}
            unequal => return unequal,
        }
        let (ma, mb) = (a.unsigned_abs(), b.unsigned_abs());
        // Same sign: compare orders of magnitude first, so that aligning the two
        // mantissas below multiplies by at most the digits the other one has.
        let magnitude = match (digit_count(ma) + ea).cmp(&(digit_count(mb) + eb)) {
            Ordering::Equal if ea >= eb => cmp_shifted(ma, ea - eb, mb),
            Ordering::Equal => cmp_shifted(mb, eb - ea, ma).reverse(),
            unequal => unequal,
        };
        if sign > 0 {
            magnitude
        } else {
            magnitude.reverse()
        }
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `Eq`: equal values have the same normalized form.
        self.normalized().hash(state);
    }
}

impl fmt::Display for Quantity {
    /// Go `String()` via `CanonicalizeBytes` (see the module documentation for the
    /// one difference).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.canonical())
    }
}

impl Quantity {
    /// Go `CanonicalizeBytes`, number and suffix joined.
    fn canonical(&self) -> String {
        let (coef, exp) = self.normalized();
        if coef == 0 {
            return "0".to_owned();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            // Go prints a binary value as DecimalSI when it is within (-1024, 1024),
            // "to avoid rounding and confusion", or when it is not a whole number.
            match whole_magnitude(coef, exp) {
                Some(magnitude) if magnitude >= 1024 => {
                    return self.binary_si(coef.signum() < 0, magnitude);
                }
                _ => format = Format::DecimalSI,
            }
        }
        // `AsCanonicalBytes`: move the exponent down to a multiple of 3 by appending
        // zeros to the mantissa.
        let mut zeros = exp.rem_euclid(3);
        let mut exponent = exp - zeros;
        if exponent > MAX_PRINTED_EXPONENT {
            zeros += exponent - MAX_PRINTED_EXPONENT;
            exponent = MAX_PRINTED_EXPONENT;
        }
        let mut out = coef.to_string();
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(zeros).unwrap_or(0),
        ));
        // DecimalSI has no suffix past `E` (10^18) or below `n`: Go falls back to
        // exponent notation rather than drop the magnitude ("1000E" → "1e21").
        match decimal_si_suffix(exponent) {
            Some(suffix) if format == Format::DecimalSI => out.push_str(suffix),
            _ if exponent == 0 => {}
            _ => {
                out.push('e');
                out.push_str(&exponent.to_string());
            }
        }
        out
    }

    /// `AsCanonicalBase1024Bytes` for a whole value of at least 1024 in magnitude.
    fn binary_si(&self, negative: bool, magnitude: u128) -> String {
        // Go's removeInt64Factors cannot negate i64::MIN, so it prints that int64
        // amount without a suffix.
        if self.repr == Repr::Int64 && self.scale == 0 && self.unscaled == i128::from(i64::MIN) {
            return i64::MIN.to_string();
        }
        const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let (mut mantissa, mut times) = (magnitude, 0);
        // Binary values never reach 1024^7 (parsing caps them at 2^63-1); stopping at
        // Ei keeps the value right even if one did, where Go would drop the suffix.
        while times + 1 < SUFFIXES.len() && mantissa % 1024 == 0 {
            mantissa /= 1024;
            times += 1;
        }
        let sign = if negative { "-" } else { "" };
        format!("{sign}{mantissa}{}", SUFFIXES[times])
    }
}

/// The suffix Go's DecimalSI table has for `10^exponent`.
fn decimal_si_suffix(exponent: i64) -> Option<&'static str> {
    Some(match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    })
}

/// `|coef| × 10^exp` when that is a whole number that fits a u128.
fn whole_magnitude(coef: i128, exp: i64) -> Option<u128> {
    let power = 10u128.checked_pow(u32::try_from(exp).ok()?)?;
    coef.unsigned_abs().checked_mul(power)
}

/// Number of decimal digits of `m` (0 for 0).
fn digit_count(m: u128) -> i64 {
    m.checked_ilog10().map_or(0, |log| i64::from(log) + 1)
}

/// Compare `a × 10^shift` with `b`, where both sides have the same number of digits.
fn cmp_shifted(a: u128, shift: i64, b: u128) -> Ordering {
    let shifted = u32::try_from(shift)
        .ok()
        .and_then(|s| 10u128.checked_pow(s))
        .and_then(|p| a.checked_mul(p));
    // Overflowing a u128 means larger than `b`, which fits one.
    shifted.map_or(Ordering::Greater, |value| value.cmp(&b))
}

/// `10^n` as an i128, for `0 <= n <= 38`.
fn pow10_i128(n: i64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(n).ok()?)
}

/// Saturate toward the sign of a non-zero value.
fn saturated(sign: i128) -> i64 {
    if sign < 0 { i64::MIN } else { i64::MAX }
}

/// Go `int64Amount.AsScaledInt64`: rounds away from zero, saturates on overflow.
fn int64_amount_scaled(value: i128, scale: i32, target: i32) -> (i64, bool) {
    let sign = value.signum();
    let delta = i64::from(scale) - i64::from(target);
    if delta < 0 {
        // Scaling down by 10^19 or more leaves only the rounding unit.
        let Some(divisor) = pow10_i128(-delta).filter(|_| -delta < LOG10_MAX_INT64) else {
            return (sign as i64, true);
        };
        let mut quotient = value / divisor;
        if value % divisor != 0 {
            quotient += sign; // negativeScaleInt64: away from zero
        }
        return (
            i64::try_from(quotient).unwrap_or_else(|_| saturated(sign)),
            true,
        );
    }
    let scaled = pow10_i128(delta)
        .filter(|_| delta < LOG10_MAX_INT64)
        .and_then(|power| value.checked_mul(power))
        .and_then(|v| i64::try_from(v).ok());
    scaled.map_or((saturated(sign), false), |v| (v, true))
}

/// Go `scaledValue` (scale_int.go) for an `inf.Dec`, with saturation instead of
/// int64 wrap-around.
fn inf_dec_scaled(unscaled: i128, scale: i32, go_scale: i32, target: i32) -> (i64, bool) {
    let (mut result, fits) = ceil_times_pow10(unscaled, i64::from(scale) - i64::from(target));
    // Go's fast path (|mantissa| < MaxInt64, fewer than 19 digits dropped) computes
    // `mantissa / 10^dif`, which truncates toward zero, then adds 1 for any
    // remainder. That is the ceiling for a positive value but one more than it for a
    // negative one; the slow path uses Euclidean division and gets the ceiling.
    let dif = i64::from(target) - i64::from(go_scale);
    if unscaled < 0 && dif > 0 && dif < LOG10_MAX_INT64 {
        let go_mantissa = pow10_i128(i64::from(scale) - i64::from(go_scale))
            .and_then(|power| unscaled.checked_mul(power));
        if let (Some(mantissa), Some(divisor)) = (go_mantissa, pow10_i128(dif))
            && mantissa.unsigned_abs() < i64::MAX as u128
            && mantissa % divisor != 0
        {
            result += 1;
        }
    }
    (result, fits)
}

/// `ceil(value × 10^exp)`, saturating; the flag says whether it fit.
fn ceil_times_pow10(value: i128, exp: i64) -> (i64, bool) {
    let sign = value.signum();
    if exp >= 0 {
        let scaled = pow10_i128(exp)
            .and_then(|power| value.checked_mul(power))
            .and_then(|v| i64::try_from(v).ok());
        return scaled.map_or((saturated(sign), false), |v| (v, true));
    }
    let Some(divisor) = pow10_i128(-exp) else {
        // |value| < 10^39 <= divisor: a fraction of one unit.
        return (i64::from(sign > 0), true);
    };
    let mut quotient = value / divisor;
    if value % divisor > 0 {
        quotient += 1; // truncation is already the ceiling for negative values
    }
    match i64::try_from(quotient) {
        Ok(v) => (v, true),
        Err(_) => (saturated(sign), false),
    }
}

/// `value × 10^shift` (shift >= 0) to the nearest f64, as `big.Float.Float64` does.
fn int_times_pow10_to_f64(value: i128, shift: i64) -> f64 {
    match pow10_i128(shift).and_then(|power| value.checked_mul(power)) {
        Some(exact) => exact as f64,
        // Rust's float parsing is correctly rounded, like big.Float's conversion.
        None => format!("{value}e{shift}").parse().unwrap_or(f64::NAN),
    }
}

/// Go's `math.Pow10`, table for table: its results are products of two table
/// entries, not always the nearest double, and `AsApproximateFloat64` inherits that.
fn go_pow10(n: i64) -> f64 {
    const TAB: [f64; 32] = [
        1e00, 1e01, 1e02, 1e03, 1e04, 1e05, 1e06, 1e07, 1e08, 1e09, 1e10, 1e11, 1e12, 1e13, 1e14,
        1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
        1e30, 1e31,
    ];
    const POS_TAB32: [f64; 10] = [
        1e00, 1e32, 1e64, 1e96, 1e128, 1e160, 1e192, 1e224, 1e256, 1e288,
    ];
    const NEG_TAB32: [f64; 11] = [
        1e-00, 1e-32, 1e-64, 1e-96, 1e-128, 1e-160, 1e-192, 1e-224, 1e-256, 1e-288, 1e-320,
    ];
    match n {
        0..=308 => {
            let n = n as usize;
            POS_TAB32[n / 32] * TAB[n % 32]
        }
        -323..=-1 => {
            let n = (-n) as usize;
            NEG_TAB32[n / 32] / TAB[n % 32]
        }
        _ if n > 0 => f64::INFINITY,
        _ => 0.0,
    }
}

// ---------------------------------------------------------------------------------
// Parsing: a port of `parseQuantityString`, `suffixer.interpret` and `ParseQuantity`.
// ---------------------------------------------------------------------------------

/// The pieces `parseQuantityString` splits a quantity into.
#[derive(Debug)]
struct Scanned<'a> {
    positive: bool,
    /// Go's `num` after leading zeros are stripped, *without* the "0" Go substitutes
    /// when nothing is left.
    num: &'a [u8],
    denom: &'a [u8],
    suffix: &'a [u8],
    /// Whether Go's `value` (the signed number text) holds a digit; the slow path's
    /// `inf.Dec.SetString` fails without one.
    has_digits: bool,
}

/// Go `parseQuantityString`, a hand-written scanner more permissive than the regular
/// expression in its error message (it accepts `"."`, `"-"` and `"k"`).
fn scan(s: &[u8]) -> Result<Scanned<'_>, QuantityError> {
    let end = s.len();
    let mut pos = 0;
    let mut positive = true;
    match s.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let zeros_start = pos;
    while pos < end && s[pos] == b'0' {
        pos += 1;
    }
    if pos == end {
        // Nothing but a sign and zeros: Go returns num = value = "0" right here.
        return Ok(Scanned {
            positive,
            num: b"",
            denom: b"",
            suffix: b"",
            has_digits: true,
        });
    }
    let stripped_zeros = pos > zeros_start;
    let num_start = pos;
    while pos < end && s[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = &s[num_start..pos];
    if pos == end {
        return Ok(Scanned {
            positive,
            num,
            denom: b"",
            suffix: b"",
            has_digits: true,
        });
    }
    let mut denom: &[u8] = b"";
    if s[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && s[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
    }
    let has_digits = stripped_zeros || !num.is_empty() || !denom.is_empty();
    // Suffix: letters from the suffix alphabet, an optional sign, digits, and then
    // the end of the string.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&s[pos]) {
        pos += 1;
    }
    if pos < end && matches!(s[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && s[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != end {
        return Err(QuantityError::Format);
    }
    Ok(Scanned {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
        has_digits,
    })
}

/// Go `suffixer.interpret`: (base, exponent, format).
fn interpret(suffix: &[u8]) -> Option<(u32, i32, Format)> {
    let decimal = |exponent| (10, exponent, Format::DecimalSI);
    let binary = |exponent| (2, exponent, Format::BinarySI);
    Some(match suffix {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // strconv.ParseInt(rest, 10, 64) accepts what i64::from_str accepts; Go
            // then truncates with int32(parsed), and so do we.
            let parsed: i64 = std::str::from_utf8(rest).ok()?.parse().ok()?;
            (10, parsed as i32, Format::DecimalExponent)
        }
        _ => return None,
    })
}

/// Go `ParseQuantity`.
fn parse_quantity(s: &[u8]) -> Result<Quantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let scanned = scan(s)?;
    let (base, exponent, format) = interpret(scanned.suffix).ok_or(QuantityError::Suffix)?;
    // Go's `num` is never empty: it substitutes "0".
    let num_len = scanned.num.len().max(1) as i64;
    let denom_len = scanned.denom.len() as i64;

    // The fast path: an int64 mantissa times a power of ten, when Go estimates the
    // digits fit ("precision") and the scale is no finer than nano.
    let mut scale = 0i32;
    let mut mantissa = 1i64;
    let precision = match format {
        Format::DecimalExponent | Format::DecimalSI => {
            scale = exponent;
            MAX_INT64_FACTORS - (num_len + denom_len)
        }
        Format::BinarySI if exponent >= 0 && denom_len == 0 => {
            mantissa = 1i64 << exponent.clamp(0, 62);
            // "1Mi (2^20) has ~6 digits of decimal precision"; exponent*3/10 is exact
            // in Go's float32 for the six binary suffixes.
            15 - num_len - i64::from(exponent) * 3 / 10 - 1
        }
        Format::BinarySI => -1,
    };
    if precision >= 0 {
        scale = scale.wrapping_sub(denom_len as i32); // Go: int32 arithmetic
        if scale >= NANO {
            let value = digits_to_i64(scanned.num, scanned.denom).ok_or(QuantityError::Numeric)?;
            if let Some(result) = value.checked_mul(mantissa) {
                let result = if scanned.positive { result } else { -result };
                return Ok(Quantity::int64(result, scale, format));
            }
        }
    }
    parse_slow(&scanned, base, exponent, format)
}

/// Go `ParseQuantity` past the fast path: the exact decimal, times the suffix, rounded
/// up to nano, capped at 2^63-1 if binary.
fn parse_slow(
    scanned: &Scanned<'_>,
    base: u32,
    exponent: i32,
    mut format: Format,
) -> Result<Quantity, QuantityError> {
    if !scanned.has_digits {
        return Err(QuantityError::Numeric); // inf.Dec.SetString: "no digits read"
    }
    let mut digits = Digits::new(scanned.num, scanned.denom);
    // inf.Dec's scale counts digits after the point and is an int32, so Go's
    // `amount.Scale() + Scale(exponent).infScale()` wraps; the value is
    // digits × 10^-scale.
    let inf_scale = if base == 10 {
        (scanned.denom.len() as i32).wrapping_add(exponent.wrapping_neg())
    } else {
        scanned.denom.len() as i32
    };
    let power = -i64::from(inf_scale);
    if digits.is_zero() {
        // Go skips the nano rounding for zero, so the stored exponent is whatever
        // the text gave; only AsApproximateFloat64 can tell.
        let go_scale = i32::try_from(power).unwrap_or(i32::MAX);
        return Ok(Quantity {
            unscaled: 0,
            scale: go_scale,
            repr: Repr::Dec { go_scale },
            format,
        });
    }
    if base == 2 {
        digits.mul_pow2(exponent.unsigned_abs());
    }
    // Round up, away from zero, to nano: "if you want some resources, you should get
    // some resources, even if you asked for way too small of an amount".
    let (nanos, nanos_power) = digits.ceil_times_pow10(power - i64::from(NANO));
    if format == Format::BinarySI {
        match nanos.small_value(nanos_power) {
            Some(n) if n <= MAX_INT64_NANO => {
                if n < 1_000_000_000 {
                    format = Format::DecimalSI; // below 1, "avoids rounding"
                }
            }
            // Go: "The max is just a simple cap."
            _ => {
                let capped = if scanned.positive {
                    i64::MAX
                } else {
                    -i64::MAX
                };
                return Ok(Quantity {
                    unscaled: i128::from(capped),
                    scale: 0,
                    repr: Repr::Dec { go_scale: 0 },
                    format,
                });
            }
        }
    }
    let (coef, scale) = nanos.into_i128(nanos_power + i64::from(NANO))?;
    let unscaled = if scanned.positive { coef } else { -coef };
    Ok(Quantity {
        unscaled,
        scale,
        repr: Repr::Dec { go_scale: NANO },
        format,
    })
}

/// The fast path's `strconv.ParseInt(num + denom)`; at most 18 digits reach it.
fn digits_to_i64(num: &[u8], denom: &[u8]) -> Option<i64> {
    num.iter().chain(denom).try_fold(0i64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

/// An unsigned decimal integer of any length, most significant digit first, without
/// leading zeros (empty is zero). Only the slow parse path uses it, to do Go's
/// big-number rounding exactly before the result is narrowed to 128 bits.
#[derive(Debug)]
struct Digits(Vec<u8>);

impl Digits {
    fn new(num: &[u8], denom: &[u8]) -> Self {
        let all = num.iter().chain(denom).map(|&d| d - b'0');
        Self(all.skip_while(|&d| d == 0).collect())
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_small(&mut self, factor: u64) {
        let mut carry = 0u64;
        for digit in self.0.iter_mut().rev() {
            let product = u64::from(*digit) * factor + carry;
            *digit = (product % 10) as u8;
            carry = product / 10;
        }
        let mut prefix = Vec::new();
        while carry > 0 {
            prefix.push((carry % 10) as u8);
            carry /= 10;
        }
        prefix.reverse();
        self.0.splice(0..0, prefix);
    }

    fn mul_pow2(&mut self, mut exponent: u32) {
        while exponent > 0 {
            let step = exponent.min(30);
            self.mul_small(1 << step);
            exponent -= step;
        }
    }

    /// Drop trailing zeros, returning how many there were.
    fn strip_trailing_zeros(&mut self) -> i64 {
        let zeros = self.0.iter().rev().take_while(|&&d| d == 0).count();
        self.0.truncate(self.0.len() - zeros);
        zeros as i64
    }

    fn increment(&mut self) {
        for digit in self.0.iter_mut().rev() {
            if *digit < 9 {
                *digit += 1;
                return;
            }
            *digit = 0;
        }
        self.0.insert(0, 1);
    }

    /// `ceil(self × 10^power)` for a non-zero self, as (digits, power >= 0).
    fn ceil_times_pow10(mut self, power: i64) -> (Self, i64) {
        let power = power + self.strip_trailing_zeros();
        if power >= 0 {
            return (self, power);
        }
        let dropped = usize::try_from(power.unsigned_abs()).unwrap_or(usize::MAX);
        if dropped >= self.0.len() {
            return (Self(vec![1]), 0);
        }
        // The last digit is non-zero, so dropping any digit drops a remainder.
        self.0.truncate(self.0.len() - dropped);
        self.increment();
        (self, 0)
    }

    /// `self × 10^power` when it fits a u128.
    fn small_value(&self, power: i64) -> Option<u128> {
        if self.0.len() as i64 + power > I128_DIGITS {
            return None;
        }
        let value = self
            .0
            .iter()
            .try_fold(0u128, |acc, &d| acc.checked_mul(10)?.checked_add(d.into()))?;
        value.checked_mul(10u128.checked_pow(u32::try_from(power).ok()?)?)
    }

    /// `self × 10^power` as an i128 mantissa and an i32 scale.
    fn into_i128(mut self, power: i64) -> Result<(i128, i32), QuantityError> {
        let mut power = power + self.strip_trailing_zeros();
        let mut coef = self
            .0
            .iter()
            .try_fold(0i128, |acc, &d| acc.checked_mul(10)?.checked_add(d.into()))
            .ok_or(QuantityError::OutOfRange)?;
        // An int64 amount may sit at scale 2^31-1 with trailing zeros; keep such a
        // value representable by moving the zeros back into the mantissa.
        let excess = power - i64::from(i32::MAX);
        if excess > 0 {
            coef = pow10_i128(excess)
                .and_then(|p| coef.checked_mul(p))
                .ok_or(QuantityError::OutOfRange)?;
            power = i64::from(i32::MAX);
        }
        let scale = i32::try_from(power).map_err(|_| QuantityError::OutOfRange)?;
        Ok((coef, scale))
    }
}

// ---------------------------------------------------------------------------------
// serde: a string in canonical form out; a string or a number in, as the API server
// accepts (`averageValue: 50`).
// ---------------------------------------------------------------------------------

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[derive(Debug)]
struct QuantityVisitor;

impl QuantityVisitor {
    fn parse<E: serde::de::Error>(text: &str) -> Result<Quantity, E> {
        Quantity::parse(text).map_err(|err| E::custom(format!("invalid quantity {text:?}: {err}")))
    }
}

impl serde::de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes quantity: a string such as \"500m\" or \"1Gi\", or a number")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
        // Go's UnmarshalJSON trims surrounding whitespace before parsing.
        Self::parse(v.trim())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
        Self::parse(&v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
        Self::parse(&v.to_string())
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Quantity, E> {
        Self::parse(&v.to_string())
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Quantity, E> {
        Self::parse(&v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
        if !v.is_finite() {
            return Err(E::custom(format!(
                "invalid quantity {v}: not a finite number"
            )));
        }
        // The shortest decimal that reads back as `v`, parsed exactly: what the
        // number's author most likely wrote, with no binary-fraction noise.
        Self::parse(&v.to_string())
    }

    /// Go's UnmarshalJSON turns `null` into a zero quantity. (An `Option<Quantity>`
    /// field still reads `null` as `None`.)
    fn visit_unit<E: serde::de::Error>(self) -> Result<Quantity, E> {
        Ok(Quantity::ZERO)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn metric_values_truncate_to_thousandths_as_prometheus_adapter_does() {
        assert_eq!(Quantity::from_metric_value(1.5).milli_value(), 1500);
        assert_eq!(Quantity::from_metric_value(0.0019).milli_value(), 1);
        assert_eq!(Quantity::from_metric_value(0.9999).milli_value(), 999);
        assert_eq!(Quantity::from_metric_value(-2.0009).milli_value(), -2000);
        assert_eq!(Quantity::from_metric_value(1e300).milli_value(), i64::MAX);
        assert_eq!(Quantity::from_metric_value(f64::NAN), Quantity::ZERO);
        assert_eq!(Quantity::from_metric_value(0.25).to_string(), "250m");
    }

    #[test]
    fn resource_usage_is_whole_nanocores_and_bytes_as_metrics_server_reports_it() {
        let cpu = Quantity::from_cpu_cores(0.250_000_000_9);
        assert_eq!(cpu.to_string(), "250m");
        // The HPA reads milli-cores rounded up from nanocores.
        assert_eq!(Quantity::from_cpu_cores(0.2501).milli_value(), 251);
        assert_eq!(Quantity::from_cpu_cores(-1.0), Quantity::ZERO);
        assert_eq!(Quantity::from_memory_bytes(1024.7).to_string(), "1Ki");
    }
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        s.parse()
            .unwrap_or_else(|err| panic!("{s:?} should parse: {err}"))
    }

    /// Go test helper `decQuantity(i, exponent, format)`: an `inf.Dec` of mantissa `i`
    /// and power of ten `exponent`.
    fn dec(i: i128, exponent: i32, format: Format) -> Quantity {
        Quantity {
            unscaled: i,
            scale: exponent,
            repr: Repr::Dec { go_scale: exponent },
            format,
        }
    }

    /// Go test helper `intQuantity(i, exponent, format)`: an `int64Amount`.
    fn int(i: i64, exponent: i32, format: Format) -> Quantity {
        Quantity::int64(i, exponent, format)
    }

    /// Go's `maxAllowed`: the binary cap, 2^63-1 as an `inf.Dec`.
    fn max_allowed(format: Format) -> Quantity {
        dec(i128::from(i64::MAX), 0, format)
    }

    use Format::{BinarySI, DecimalExponent, DecimalSI};

    /// `TestQuantityParse`'s table: input, expected value, expected format.
    fn parse_table() -> Vec<(&'static str, Quantity)> {
        const KI: i128 = 1024;
        vec![
            ("0", dec(0, 0, DecimalSI)),
            ("0n", dec(0, 0, DecimalSI)),
            ("0u", dec(0, 0, DecimalSI)),
            ("0m", dec(0, 0, DecimalSI)),
            ("0Ki", dec(0, 0, BinarySI)),
            ("0k", dec(0, 0, DecimalSI)),
            ("0Mi", dec(0, 0, BinarySI)),
            ("0M", dec(0, 0, DecimalSI)),
            ("0Gi", dec(0, 0, BinarySI)),
            ("0G", dec(0, 0, DecimalSI)),
            ("0Ti", dec(0, 0, BinarySI)),
            ("0T", dec(0, 0, DecimalSI)),
            // Quantity less numbers are allowed
            ("1", dec(1, 0, DecimalSI)),
            // Binary suffixes
            ("1Ki", dec(KI, 0, BinarySI)),
            ("8Ki", dec(8 * KI, 0, BinarySI)),
            ("7Mi", dec(7 * KI * KI, 0, BinarySI)),
            ("6Gi", dec(6 * KI * KI * KI, 0, BinarySI)),
            ("5Ti", dec(5 * KI.pow(4), 0, BinarySI)),
            ("4Pi", dec(4 * KI.pow(5), 0, BinarySI)),
            ("3Ei", dec(3 * KI.pow(6), 0, BinarySI)),
            ("10Ti", dec(10 * KI.pow(4), 0, BinarySI)),
            ("100Ti", dec(100 * KI.pow(4), 0, BinarySI)),
            // Decimal suffixes
            ("5n", dec(5, -9, DecimalSI)),
            ("4u", dec(4, -6, DecimalSI)),
            ("3m", dec(3, -3, DecimalSI)),
            ("9", dec(9, 0, DecimalSI)),
            ("8k", dec(8, 3, DecimalSI)),
            ("50k", dec(5, 4, DecimalSI)),
            ("7M", dec(7, 6, DecimalSI)),
            ("6G", dec(6, 9, DecimalSI)),
            ("5T", dec(5, 12, DecimalSI)),
            ("40T", dec(4, 13, DecimalSI)),
            ("300T", dec(3, 14, DecimalSI)),
            ("2P", dec(2, 15, DecimalSI)),
            ("1E", dec(1, 18, DecimalSI)),
            // Decimal exponents
            ("1E-3", dec(1, -3, DecimalExponent)),
            ("1e3", dec(1, 3, DecimalExponent)),
            ("1E6", dec(1, 6, DecimalExponent)),
            ("1e9", dec(1, 9, DecimalExponent)),
            ("1E12", dec(1, 12, DecimalExponent)),
            ("1e15", dec(1, 15, DecimalExponent)),
            ("1E18", dec(1, 18, DecimalExponent)),
            // Nonstandard but still parsable
            ("1e14", dec(1, 14, DecimalExponent)),
            ("1e13", dec(1, 13, DecimalExponent)),
            ("100.035k", dec(100035, 0, DecimalSI)),
            // Things that look like floating point
            ("0.001", dec(1, -3, DecimalSI)),
            ("0.0005k", dec(5, -1, DecimalSI)),
            ("0.005", dec(5, -3, DecimalSI)),
            ("0.05", dec(5, -2, DecimalSI)),
            ("0.5", dec(5, -1, DecimalSI)),
            ("0.00050k", dec(5, -1, DecimalSI)),
            ("0.00500", dec(5, -3, DecimalSI)),
            ("0.05000", dec(5, -2, DecimalSI)),
            ("0.50000", dec(5, -1, DecimalSI)),
            ("0.5e0", dec(5, -1, DecimalExponent)),
            ("0.5e-1", dec(5, -2, DecimalExponent)),
            ("0.5e-2", dec(5, -3, DecimalExponent)),
            ("10.035M", dec(10035, 3, DecimalSI)),
            ("1.2e3", dec(12, 2, DecimalExponent)),
            ("1.3E+6", dec(13, 5, DecimalExponent)),
            ("1.40e9", dec(14, 8, DecimalExponent)),
            ("1.53E12", dec(153, 10, DecimalExponent)),
            ("1.6e15", dec(16, 14, DecimalExponent)),
            ("1.7E18", dec(17, 17, DecimalExponent)),
            ("9.01", dec(901, -2, DecimalSI)),
            ("8.1k", dec(81, 2, DecimalSI)),
            ("7.123456M", dec(7123456, 0, DecimalSI)),
            ("6.987654321G", dec(6987654321, 0, DecimalSI)),
            ("5.444T", dec(5444, 9, DecimalSI)),
            ("40.1T", dec(401, 11, DecimalSI)),
            ("300.2T", dec(3002, 11, DecimalSI)),
            ("2.5P", dec(25, 14, DecimalSI)),
            ("1.01E", dec(101, 16, DecimalSI)),
            // Things that saturate/round
            ("3.001n", dec(4, -9, DecimalSI)),
            ("1.1E-9", dec(2, -9, DecimalExponent)),
            ("0.0000000001", dec(1, -9, DecimalSI)),
            ("0.0000000005", dec(1, -9, DecimalSI)),
            ("0.00000000050", dec(1, -9, DecimalSI)),
            ("0.5e-9", dec(1, -9, DecimalExponent)),
            ("0.9n", dec(1, -9, DecimalSI)),
            ("0.00000012345", dec(124, -9, DecimalSI)),
            ("0.00000012354", dec(124, -9, DecimalSI)),
            ("9Ei", max_allowed(BinarySI)),
            ("9223372036854775807Ki", max_allowed(BinarySI)),
            ("12E", dec(12, 18, DecimalSI)),
            // We'll accept fractional binary stuff, too.
            ("100.035Ki", dec(10243584, -2, BinarySI)),
            ("0.5Mi", dec(524288, 0, BinarySI)),
            ("0.05Gi", dec(536870912, -1, BinarySI)),
            ("0.025Ti", dec(274877906944, -1, BinarySI)),
            // Things written by trolls
            ("0.000000000001Ki", dec(2, -9, DecimalSI)), // rounds up, changes format
            (".001", dec(1, -3, DecimalSI)),
            (".0001k", dec(100, -3, DecimalSI)),
            ("1.", dec(1, 0, DecimalSI)),
            ("1.G", dec(1, 9, DecimalSI)),
        ]
    }

    #[test]
    fn parses_upstream_table_with_value_and_format() {
        for (input, expect) in parse_table() {
            let negated = Quantity {
                unscaled: -expect.unscaled,
                ..expect
            };
            for (text, want) in [
                (input.to_owned(), expect),
                (format!("-{input}"), negated),
                (format!("+{input}"), expect),
            ] {
                let got = q(&text);
                assert_eq!(got, want, "{text}: value");
                assert_eq!(got.format(), want.format(), "{text}: format");
            }
        }
    }

    #[test]
    fn rejects_upstream_invalid_inputs_with_upstream_errors() {
        let cases = [
            ("", QuantityError::Format),
            ("1.1.M", QuantityError::Format),
            ("1+1.0M", QuantityError::Format),
            ("0.1mi", QuantityError::Suffix),
            ("0.1am", QuantityError::Format),
            ("aoeu", QuantityError::Format),
            (".5i", QuantityError::Suffix),
            ("1i", QuantityError::Suffix),
            ("-3.01i", QuantityError::Suffix),
            ("-3.01e-", QuantityError::Suffix),
            // trailing whitespace is forbidden
            (" 1", QuantityError::Format),
            ("1 ", QuantityError::Format),
            // from the issue
            ("1.1.1", QuantityError::Format),
            ("1KiB", QuantityError::Format),
            ("1 Ki", QuantityError::Format),
            ("1iK", QuantityError::Suffix),
            ("Non-Numeric", QuantityError::Format),
            ("1e", QuantityError::Suffix),
            ("1ee5", QuantityError::Suffix),
            ("1e99999999999999999999", QuantityError::Suffix),
            ("1Ki5", QuantityError::Suffix),
            ("½", QuantityError::Format),
            // the slow path needs a digit (inf.Dec.SetString)
            (".e-10", QuantityError::Numeric),
            ("Pi", QuantityError::Numeric),
            ("-.Ei", QuantityError::Numeric),
        ];
        for (input, err) in cases {
            assert_eq!(input.parse::<Quantity>(), Err(err), "{input:?}");
        }
    }

    #[test]
    fn accepts_what_the_permissive_go_scanner_accepts() {
        // kubernetes/apimachinery#165: the scanner, unlike the regular expression in
        // its error message, takes a bare suffix, a lone point or a lone sign as zero.
        for input in [
            "e5", "k", "Ki", "m", ".", "-", "+", "-.", "00", "-0", ".e-9", "+.Ki",
        ] {
            assert!(q(input).is_zero(), "{input}");
        }
        assert_eq!(q("e5").format(), DecimalExponent);
        assert_eq!(q("Ki").format(), BinarySI);
        // Go truncates an exponent to int32: 2^32 + 3 is 3.
        assert_eq!(q("1e4294967299"), q("1e3"));
        assert_eq!(q("1e4294967299").to_string(), "1e3");
    }

    #[test]
    fn prints_upstream_canonical_strings() {
        // TestQuantityString: (quantity, canonical, an alternate spelling).
        let table = [
            (dec(1024 * 1024 * 1024, 0, BinarySI), "1Gi", "1024Mi"),
            (dec(300 * 1024 * 1024, 0, BinarySI), "300Mi", "307200Ki"),
            (dec(6 * 1024, 0, BinarySI), "6Ki", ""),
            (
                dec(1001 * 1024 * 1024 * 1024, 0, BinarySI),
                "1001Gi",
                "1025024Mi",
            ),
            (dec(1024 * 1024 * 1024 * 1024, 0, BinarySI), "1Ti", "1024Gi"),
            (dec(5, 0, BinarySI), "5", "5000m"),
            (dec(500, -3, BinarySI), "500m", "0.5"),
            (dec(1, 9, DecimalSI), "1G", "1000M"),
            (dec(1000, 6, DecimalSI), "1G", "0.001T"),
            (dec(1000000, 3, DecimalSI), "1G", ""),
            (dec(1000000000, 0, DecimalSI), "1G", ""),
            (dec(1, -3, DecimalSI), "1m", "1000u"),
            (dec(80, -3, DecimalSI), "80m", ""),
            (dec(1080, -3, DecimalSI), "1080m", "1.08"),
            (dec(108, -2, DecimalSI), "1080m", "1080000000n"),
            (dec(10800, -4, DecimalSI), "1080m", ""),
            (dec(300, 6, DecimalSI), "300M", ""),
            (dec(1, 12, DecimalSI), "1T", ""),
            (dec(1, 18, DecimalSI), "1E", ""),
            (dec(1, 21, DecimalSI), "1e21", "1000E"),
            (dec(5, 21, DecimalSI), "5e21", "5000E"),
            (dec(1, 24, DecimalSI), "1e24", "1000000E"),
            (dec(1234567, 6, DecimalSI), "1234567M", ""),
            (dec(1234567, -3, BinarySI), "1234567m", ""),
            (dec(3, 3, DecimalSI), "3k", ""),
            (dec(1025, 0, BinarySI), "1025", ""),
            (dec(0, 0, DecimalSI), "0", ""),
            (dec(0, 0, BinarySI), "0", ""),
            (dec(1, 9, DecimalExponent), "1e9", ".001e12"),
            (dec(1, -3, DecimalExponent), "1e-3", "0.001e0"),
            (dec(1, -9, DecimalExponent), "1e-9", "1000e-12"),
            (dec(80, -3, DecimalExponent), "80e-3", ""),
            (dec(300, 6, DecimalExponent), "300e6", ""),
            (dec(1, 12, DecimalExponent), "1e12", ""),
            (dec(1, 3, DecimalExponent), "1e3", ""),
            (dec(3, 3, DecimalExponent), "3e3", ""),
            (dec(3, 3, DecimalSI), "3k", ""),
            (dec(0, 0, DecimalExponent), "0", "00"),
            (dec(1, -9, DecimalSI), "1n", ""),
            (dec(80, -9, DecimalSI), "80n", ""),
            (dec(1080, -9, DecimalSI), "1080n", ""),
            (dec(108, -8, DecimalSI), "1080n", ""),
            (dec(10800, -10, DecimalSI), "1080n", ""),
            (dec(1, -6, DecimalSI), "1u", ""),
            (dec(80, -6, DecimalSI), "80u", ""),
            (dec(1080, -6, DecimalSI), "1080u", ""),
        ];
        for (quantity, expect, alternate) in table {
            assert_eq!(quantity.to_string(), expect, "{quantity:?}");
            assert_eq!(q(expect), quantity, "{expect} reparses");
            assert_eq!(q(expect).to_string(), expect, "{expect} is a fixed point");
            if !alternate.is_empty() {
                assert_eq!(q(alternate).to_string(), expect, "{alternate}");
            }
            if !quantity.is_zero() {
                let negated = Quantity {
                    unscaled: -quantity.unscaled,
                    ..quantity
                };
                assert_eq!(negated.to_string(), format!("-{expect}"));
            }
        }
    }

    #[test]
    fn parse_emit_round_trips_like_upstream() {
        // TestQuantityParseEmit, plus the examples in the issue.
        let table = [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1024Ki", "1Mi"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("1e3", "1e3"),
            ("100m", "100m"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("1536", "1536"),
            ("1.1Ki", "1126400m"),
            ("+1.5", "1500m"),
            (".5", "500m"),
            ("5.", "5"),
            ("01", "1"),
            ("1.500k", "1500"),
            ("1E3", "1e3"),
            ("1e+3", "1e3"),
            ("1e-3", "1e-3"),
            ("0.000000001", "1n"),
            ("1E", "1E"),
            ("8Ei", "9223372036854775807"),
            ("7Ei", "7Ei"),
            ("9223372036854775807m", "9223372036854775807m"),
            ("9223372036854775807", "9223372036854775807"),
            (
                "1.0000000000000000000000000000000000000000001",
                "1000000001n",
            ),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ];
        for (input, expect) in table {
            assert_eq!(q(input).to_string(), expect, "{input}");
            let unsigned = input.strip_prefix('+').unwrap_or(input);
            let negative = q(&format!("-{unsigned}"));
            assert_eq!(negative.to_string(), format!("-{expect}"), "-{unsigned}");
        }
    }

    #[test]
    fn reserializes_upstream_parse_quantity_table() {
        // TestParseQuantity: (input, canonical when different from the input).
        let table = [
            ("-999999999999999999", ""),
            ("999999999999999999", ""),
            ("-999999999999999999.0", "-999999999999999999"),
            ("999999999999999999.0", "999999999999999999"),
            ("-999999999999999999.1", "-999999999999999999100m"),
            ("999999999999999999.1", "999999999999999999100m"),
            ("-9999999999999999999", ""),
            ("9999999999999999999", ""),
            ("-1E", ""),
            ("1E", ""),
            ("-1000000000000000000", "-1E"),
            ("1000000000000000000", "1E"),
            ("-9999999999999999999.0", "-9999999999999999999"),
            ("9999999999999999999.0", "9999999999999999999"),
            ("-1.0E", "-1E"),
            ("1.0E", "1E"),
            ("-1000000000000000000.0", "-1E"),
            ("1000000000000000000.0", "1E"),
            ("-9999999999999999999000m", "-9999999999999999999"),
            ("9999999999999999999000m", "9999999999999999999"),
            ("-9999999999999999999.1", "-9999999999999999999100m"),
            ("9999999999999999999.1", "9999999999999999999100m"),
            ("-1.0000000000000000001E", "-1000000000000000000100m"),
            ("1.0000000000000000001E", "1000000000000000000100m"),
            ("-1000000000000000000.1", "-1000000000000000000100m"),
            ("1000000000000000000.1", "1000000000000000000100m"),
            ("-1.000000000000000001E", "-1000000000000000001"),
            ("1.000000000000000001E", "1000000000000000001"),
            ("-1000000000000000001", ""),
            ("1000000000000000001", ""),
            ("-10E", ""),
            ("10E", ""),
            ("-10000000000000000000", "-10E"),
            ("10000000000000000000", "10E"),
            ("-10.0E", "-10E"),
            ("10.0E", "10E"),
            ("-10000000000000000000.0", "-10E"),
            ("10000000000000000000.0", "10E"),
            ("-10000000000000000000000m", "-10E"),
            ("10000000000000000000000m", "10E"),
            ("-10.0000000000000000001E", "-10000000000000000000100m"),
            ("10.0000000000000000001E", "10000000000000000000100m"),
            ("-10000000000000000000.1", "-10000000000000000000100m"),
            ("10000000000000000000.1", "10000000000000000000100m"),
            ("-10.000000000000000001E", "-10000000000000000001"),
            ("10.000000000000000001E", "10000000000000000001"),
            ("-10000000000000000001", ""),
            ("10000000000000000001", ""),
            ("-9223372036854775809", ""),
            ("9223372036854775806", ""),
            ("-9223372036854775809.0", "-9223372036854775809"),
            ("9223372036854775806.0", "9223372036854775806"),
            ("-9223372036854775809000m", "-9223372036854775809"),
            ("9223372036854775806000m", "9223372036854775806"),
            ("-9223372036854775809.1", "-9223372036854775809100m"),
            ("9223372036854775806.1", "9223372036854775806100m"),
            ("-9223372036854775808", ""),
            ("9223372036854775807", ""),
            ("-9223372036854775808.0", "-9223372036854775808"),
            ("9223372036854775807.0", "9223372036854775807"),
            ("-9223372036854775808000m", "-9223372036854775808"),
            ("9223372036854775807000m", "9223372036854775807"),
            ("-9223372036854775808.1", "-9223372036854775808100m"),
            ("9223372036854775807.1", "9223372036854775807100m"),
            ("-9223372036854775807", ""),
            ("9223372036854775808", ""),
            ("-9223372036854775807.0", "-9223372036854775807"),
            ("9223372036854775808.0", "9223372036854775808"),
            ("-9223372036854775807000m", "-9223372036854775807"),
            ("9223372036854775808000m", "9223372036854775808"),
            ("-9223372036854775807.1", "-9223372036854775807100m"),
            ("9223372036854775808.1", "9223372036854775808100m"),
        ];
        for (input, canonical) in table {
            let expect = if canonical.is_empty() {
                input
            } else {
                canonical
            };
            assert_eq!(q(input).to_string(), expect, "{input}");
        }
    }

    #[test]
    fn int64_amounts_and_inf_decs_are_chosen_as_upstream_does() {
        // (input, whether Go keeps it as an int64Amount) from TestParseQuantity's
        // AsInt64 column and the fast-path rules.
        let cases = [
            ("999999999999999999", true),
            ("9999999999999999999", false), // 19 digits
            ("1E", true),
            ("1000000000000000000", false),
            ("999999999999999999.0", false),
            ("1n", true),
            ("0.0000000001", false), // finer than nano
            ("1Ki", true),
            ("12345678901Ki", true),
            ("123456789012Ki", false),
            ("10Ti", true),
            ("100Ti", false),
            ("1Pi", false), // Pi and Ei always take the slow path
            ("1.5Ki", false),
        ];
        for (input, int64) in cases {
            assert_eq!(
                q(input).repr == Repr::Int64,
                int64,
                "{input}: {:?}",
                q(input)
            );
        }
    }

    #[test]
    fn from_milli_formats_like_new_milli_quantity_decimal_si() {
        let table = [
            (300, "300m"),
            (2040, "2040m"),
            (60000, "60"),
            (1500000, "1500"),
            (0, "0"),
            (1, "1m"),
            (1000, "1"),
            (1234000, "1234"),
            (-1500, "-1500m"),
            (i64::MAX, "9223372036854775807m"),
            (i64::MIN, "-9223372036854775808m"),
        ];
        for (milli, expect) in table {
            let quantity = Quantity::from_milli(milli);
            assert_eq!(quantity.to_string(), expect);
            assert_eq!(quantity.milli_value(), milli);
            assert_eq!(q(expect).milli_value(), milli, "{expect} round trip");
        }
        assert_eq!(Quantity::MAX_MILLI.milli_value(), i64::MAX);
    }

    #[test]
    fn constructors_match_upstream_new_set_tests() {
        // TestMilliNewSet
        assert_eq!(Quantity::new_milli(1024, BinarySI).to_string(), "1024m");
        assert_eq!(
            Quantity::new_milli(1024 * 1024, BinarySI).to_string(),
            "1048576m"
        );
        // TestNewSet
        for (value, format, expect) in [
            (1, DecimalSI, "1"),
            (1000, DecimalSI, "1k"),
            (1234000, DecimalSI, "1234k"),
            (1024, BinarySI, "1Ki"),
            (1024 * 1024, BinarySI, "1Mi"),
            (1000000, DecimalExponent, "1e6"),
        ] {
            let quantity = Quantity::new(value, format);
            assert_eq!(quantity.to_string(), expect);
            assert_eq!(q(expect).value(), value);
        }
        // Go prints an int64 i64::MIN in BinarySI without a suffix.
        assert_eq!(
            Quantity::new(i64::MIN, BinarySI).to_string(),
            "-9223372036854775808"
        );
        // TestNewScaledSet
        for (value, scale, expect) in [
            (1, -9, "1n"),
            (1000, -9, "1u"),
            (1, -6, "1u"),
            (1000, -6, "1m"),
            (1, -3, "1m"),
            (1000, -3, "1"),
            (1, 0, "1"),
            (0, -9, "0"),
            (0, -6, "0"),
            (0, -3, "0"),
            (0, 0, "0"),
        ] {
            let quantity = Quantity::new_scaled(value, scale);
            assert_eq!(quantity.to_string(), expect);
            assert_eq!(q(expect).scaled_value(scale), value);
        }
        // Sub-nano values print in exponent form (DecimalSI has no suffix there).
        assert_eq!(Quantity::new_scaled(1, -12).to_string(), "1e-12");
    }

    #[test]
    fn scaled_value_matches_upstream() {
        // TestScaledValue
        for (from, to, expect) in [
            (-9, -9, 1),
            (-9, -6, 1),
            (-9, -3, 1),
            (-9, 0, 1),
            (-6, -9, 1000),
            (-6, -6, 1),
            (-6, -3, 1),
            (-6, 0, 1),
            (-3, -9, 1000 * 1000),
            (-3, -6, 1000),
            (-3, -3, 1),
            (-3, 0, 1),
            (0, -9, 1000 * 1000 * 1000),
            (0, -6, 1000 * 1000),
            (0, -3, 1000),
            (0, 0, 1),
            (2, -2, 100 * 100),
        ] {
            assert_eq!(
                Quantity::new_scaled(1, from).scaled_value(to),
                expect,
                "{from}->{to}"
            );
        }
    }

    #[test]
    fn milli_value_and_value_round_up_and_saturate() {
        let table: [(&str, i64, i64); 22] = [
            ("0", 0, 0),
            ("1", 1000, 1),
            ("100m", 100, 1),
            ("1.5", 1500, 2),
            ("+1.5", 1500, 2),
            (".5", 500, 1),
            ("5.", 5000, 5),
            ("1Ki", 1024000, 1024),
            ("0.5Gi", 536870912000, 536870912),
            ("0.000000001", 1, 1),
            ("1e-3", 1, 1),
            ("1500u", 2, 1),
            ("1500001n", 2, 1),
            ("1E", i64::MAX, 1_000_000_000_000_000_000),
            ("9223372036854775807m", i64::MAX, 9223372036854776),
            ("9223372036854775807", i64::MAX, i64::MAX),
            ("9223372036854775808", i64::MAX, i64::MAX),
            ("8Ei", i64::MAX, i64::MAX),
            ("1e400", i64::MAX, i64::MAX),
            ("-1", -1000, -1),
            ("-9223372036854775808", i64::MIN, i64::MIN),
            (
                "-9223372036854775807m",
                -9223372036854775807,
                -9223372036854775,
            ),
        ];
        for (input, milli, value) in table {
            assert_eq!(q(input).milli_value(), milli, "{input} milli");
            assert_eq!(q(input).value(), value, "{input} value");
        }
        assert_eq!(
            q("9223372036854775807m").checked_milli_value(),
            Some(i64::MAX)
        );
        assert_eq!(q("9223372036854775.808").checked_milli_value(), None);
        assert_eq!(q("1E").checked_milli_value(), None);
        assert_eq!(q("-1E").milli_value(), i64::MIN);
    }

    #[test]
    fn negative_rounding_depends_on_gos_representation() {
        // int64Amount: away from zero.
        assert_eq!(q("-1500u").milli_value(), -2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("-2n").milli_value(), -1);
        // inf.Dec, |mantissa| < MaxInt64: truncate, then +1 for a remainder.
        assert_eq!(q("-0.0000000015").milli_value(), 1); // -2n held as inf.Dec
        assert_eq!(q("-1.1Ki").value(), -1125); // -1126.4
        // -1.5 written with 20 digits: Go returns 0 where the ceiling is -1.
        assert_eq!(q("-1.5000000000000000000").value(), 0);
        // inf.Dec, larger mantissa: Euclidean division, the true ceiling.
        assert_eq!(q("-9999999999.5000000000").value(), -9999999999);
        // Exact values are exact on every path.
        assert_eq!(q("-0.5Ki").value(), -512);
        assert_eq!(q("-1.5Ki").milli_value(), -1536000);
    }

    #[test]
    fn orders_by_value() {
        // TestQuantityCmp
        assert_eq!(q("0").cmp(&q("0")), Ordering::Equal);
        assert_eq!(q("100m").cmp(&q("50m")), Ordering::Greater);
        assert_eq!(q("50m").cmp(&q("100m")), Ordering::Less);
        assert_eq!(q("10000T").cmp(&q("100Gi")), Ordering::Greater);
        // TestQuantityCmpInt64AndDec
        let most_positive = i64::MAX;
        let most_negative = i64::MIN;
        let e18 = 1_000_000_000_000_000_000;
        let table = [
            (
                int(901, -2, DecimalSI),
                int(901, -2, DecimalSI),
                Ordering::Equal,
            ),
            (
                int(90, -1, DecimalSI),
                int(901, -2, DecimalSI),
                Ordering::Less,
            ),
            (
                int(901, -2, DecimalSI),
                int(900, -2, DecimalSI),
                Ordering::Greater,
            ),
            (int(0, 0, DecimalSI), int(0, 0, DecimalSI), Ordering::Equal),
            (int(0, 1, DecimalSI), int(0, -1, DecimalSI), Ordering::Equal),
            (int(0, -1, DecimalSI), int(0, 1, DecimalSI), Ordering::Equal),
            (
                int(800, -3, DecimalSI),
                int(1, 0, DecimalSI),
                Ordering::Less,
            ),
            (
                int(800, -3, DecimalSI),
                int(79, -2, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(most_positive, 0, DecimalSI),
                int(1, -1, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(most_positive, 1, DecimalSI),
                int(1, 0, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(most_positive, 1, DecimalSI),
                int(1, 1, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(most_positive, 1, DecimalSI),
                int(0, 1, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(most_positive, -16, DecimalSI),
                int(1, 3, DecimalSI),
                Ordering::Less,
            ),
            (
                int(most_negative, 0, DecimalSI),
                int(0, 0, DecimalSI),
                Ordering::Less,
            ),
            (
                int(most_negative, -18, DecimalSI),
                int(-1, 0, DecimalSI),
                Ordering::Less,
            ),
            (
                int(most_negative, -19, DecimalSI),
                int(-1, 0, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(e18, -17, DecimalSI),
                int(1, 1, DecimalSI),
                Ordering::Equal,
            ),
            (
                int(e18, -17, DecimalSI),
                int(-10, 0, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(-e18, -17, DecimalSI),
                int(-10, 0, DecimalSI),
                Ordering::Equal,
            ),
            (
                int(e18, -17, DecimalSI),
                int(1, 0, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(e18 + 1, -17, DecimalSI),
                int(1, 1, DecimalSI),
                Ordering::Greater,
            ),
            (
                int(e18 - 1, -17, DecimalSI),
                int(1, 1, DecimalSI),
                Ordering::Less,
            ),
        ];
        for (a, b, expect) in table {
            assert_eq!(a.cmp(&b), expect, "{a:?} vs {b:?}");
            assert_eq!(b.cmp(&a), expect.reverse(), "{b:?} vs {a:?}");
            assert_eq!(a == b, expect == Ordering::Equal);
        }
        // Formats and representations do not matter.
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("9999999999999999999"), q("9999999999999999999000m"));
        assert!(q("-1E") < q("-999999999999999999"));
        assert!(q("1e400") > q("123456789012345678901234567890"));
        assert!(q("1n") < q("1e400") && q("-1e400") < q("-1n"));
    }

    #[test]
    fn equal_values_hash_equal() {
        use std::collections::HashSet;
        let set: HashSet<Quantity> = ["1", "1000m", "1e0", "0.001k", "1000000000n"].map(q).into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn approximate_f64_matches_upstream_bit_for_bit() {
        // TestQuantityAsApproximateFloat64
        const M7: i128 = 7 * 1024 * 1024;
        let pow10_neg1 = (M7 as f64) * go_pow10(-1);
        let mut table = vec![
            (max_allowed(DecimalSI), i64::MAX as f64),
            (max_allowed(BinarySI), i64::MAX as f64),
            (dec(12, 18, DecimalSI), 1.2e19),
            (dec(12, 500, DecimalSI), f64::INFINITY),
            (dec(-12, 500, DecimalSI), f64::NEG_INFINITY),
        ];
        for format in [DecimalSI, DecimalExponent, BinarySI] {
            table.extend([
                (dec(0, 0, format), 0.0),
                (dec(1, 0, format), 1.0),
                (dec(1024, 0, format), 1024.0),
                (dec(8 * 1024, 0, format), 8192.0),
                (dec(M7, 0, format), 7340032.0),
                (dec(M7, 1, format), 73400320.0),
                (dec(M7, 4, format), 73400320000.0),
                (dec(M7, 8, format), 734003200000000.0),
                (dec(M7, -1, format), pow10_neg1),
                (dec(M7, -8, format), 7340032.0 / 100000000.0),
            ]);
        }
        for (quantity, expect) in table {
            assert_eq!(
                quantity.as_approximate_f64().to_bits(),
                expect.to_bits(),
                "{quantity:?}"
            );
        }
        // TestStringQuantityAsApproximateFloat64
        for (input, expect) in [
            ("2Ki", 2048.0),
            ("1.1Ki", 1126.4),
            ("1Mi", 1.048576e+06),
            ("2Gi", 2.147483648e+09),
        ] {
            assert_eq!(q(input).as_approximate_f64(), expect, "{input}");
        }
        // The HPA's tolerance and a few more.
        assert_eq!(q("0.36").as_approximate_f64(), 0.36);
        assert_eq!(q("0.1").as_approximate_f64(), 0.1);
        assert_eq!(q("100m").as_approximate_f64(), 100.0 * 0.001);
        assert_eq!(q("-1.5").as_approximate_f64(), -1.5);
        assert!(q("0e400").as_approximate_f64().is_nan()); // Go: 0 * Pow10(400)
        assert_eq!(q("1e-400").as_approximate_f64(), 1e-9); // rounded up to 1n
    }

    #[test]
    fn go_pow10_reproduces_the_table_products() {
        assert_eq!(go_pow10(0), 1.0);
        assert_eq!(go_pow10(-9), 1.0 / 1e9);
        assert_eq!(go_pow10(40), 1e32 * 1e8);
        assert_eq!(go_pow10(-40), 1e-32 / 1e8);
        assert_eq!(go_pow10(309), f64::INFINITY);
        assert_eq!(go_pow10(-324), 0.0);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_rounding() {
        let forty_digits = "1234567890123456789012345678901234567891";
        assert_eq!(
            forty_digits.parse::<Quantity>(),
            Err(QuantityError::OutOfRange)
        );
        assert_eq!("1.5e2147483647".parse::<Quantity>(), Ok(q("15e2147483646")));
        // Go's int32 arithmetic cannot negate i32::MIN, so "e-2147483648" on the slow
        // path means × 10^(2^31): representable for a short mantissa, not a long one.
        assert_eq!(q("1e-2147483648"), q("10e2147483647"));
        let long = "100000000000000000000000000000000000001e-2147483648";
        assert_eq!(long.parse::<Quantity>(), Err(QuantityError::OutOfRange));
        // A long but short-lived tail is fine: Go rounds it to nano first.
        assert_eq!(
            q(&format!("1.{}1", "0".repeat(10_000))).to_string(),
            "1000000001n"
        );
    }

    #[test]
    fn huge_exponents_print_back_to_the_same_value() {
        for input in [
            "1e2147483647",
            "10e2147483647",
            "100000000000000000e2147483647",
        ] {
            let quantity = q(input);
            let printed = quantity.to_string();
            assert_eq!(q(&printed), quantity, "{input} -> {printed}");
        }
    }

    /// Quantity-shaped text: mostly valid, sometimes not.
    fn quantity_like() -> impl Strategy<Value = String> {
        "[+-]?[0-9]{0,22}(\\.[0-9]{0,22})?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,3})?"
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            if let Ok(quantity) = text.parse::<Quantity>() {
                let _ = (quantity.milli_value(), quantity.value(), quantity.as_approximate_f64());
                let _ = quantity.to_string();
            }
        }

        #[test]
        fn never_panics_on_quantity_shaped_text(text in "[-+0-9.eEinumkKMGTP]{0,40}") {
            if let Ok(quantity) = text.parse::<Quantity>() {
                let printed = quantity.to_string();
                prop_assert_eq!(q(&printed), quantity);
                let _ = (quantity.milli_value(), quantity.value(), quantity.as_approximate_f64());
            }
        }

        #[test]
        fn canonical_string_round_trips(text in quantity_like()) {
            if let Ok(quantity) = text.parse::<Quantity>() {
                let printed = quantity.to_string();
                let reparsed = q(&printed);
                prop_assert_eq!(reparsed, quantity, "{} -> {}", text, printed);
                prop_assert_eq!(reparsed.to_string(), printed.clone(), "{} is not a fixed point", printed);
                // Equal values can round differently when negative: Go's inf.Dec
                // path ("-0.0000000001" → -1n as a decimal) rounds -1n to +1 milli,
                // its int64 path ("-1n") to -1.
                if !quantity.is_negative() {
                    prop_assert_eq!(reparsed.milli_value(), quantity.milli_value());
                }
            }
        }

        #[test]
        fn from_milli_round_trips(milli in any::<i64>()) {
            let quantity = Quantity::from_milli(milli);
            let reparsed = q(&quantity.to_string());
            prop_assert_eq!(reparsed, quantity);
            prop_assert_eq!(reparsed.milli_value(), milli);
            prop_assert_eq!(quantity.milli_value(), milli);
        }

        /// For a positive decimal, MilliValue is exactly ceil(x × 1000), computed here
        /// independently with integer arithmetic.
        #[test]
        fn milli_value_is_the_exact_ceiling(
            int_part in "[0-9]{0,12}",
            frac in "[0-9]{0,12}",
            suffix in prop::sample::select(vec![
                ("n", -9i64), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9),
                ("e-5", -5), ("e2", 2), ("E-11", -11),
            ]),
        ) {
            // No digits at all is Go's ErrNumeric on the slow path (".E-11").
            let int_part = if int_part.is_empty() && frac.is_empty() { "0".to_owned() } else { int_part };
            let text = format!("{int_part}.{frac}{}", suffix.0);
            let digits: i128 = format!("0{int_part}{frac}").parse().expect("digits");
            let exp = suffix.1 + 3 - frac.len() as i64;
            let expect = if exp >= 0 {
                digits.checked_mul(10i128.pow(exp as u32))
            } else {
                let p = 10i128.pow((-exp) as u32);
                Some(digits / p + i128::from(digits % p != 0))
            };
            let expect = expect.map_or(i64::MAX, |v| i64::try_from(v).unwrap_or(i64::MAX));
            prop_assert_eq!(q(&text).milli_value(), expect, "{}", text);
        }

        #[test]
        fn ordering_is_consistent_with_milli_values(a in quantity_like(), b in quantity_like()) {
            if let (Ok(a), Ok(b)) = (a.parse::<Quantity>(), b.parse::<Quantity>()) {
                if a <= b && !a.is_negative() && !b.is_negative() {
                    prop_assert!(a.milli_value() <= b.milli_value());
                }
                prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            }
        }
    }
}
