//! Black-box tests of `podscale_core::Quantity` as other crates see it: parsing the
//! strings scenarios and manifests carry, and serde in both directions (JSON and
//! YAML), where the Kubernetes API accepts a number as well as a string.

use podscale_core::Quantity;
use podscale_core::quantity::{Format, QuantityError};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Target {
    value: Quantity,
    #[serde(default)]
    average_value: Option<Quantity>,
}

fn json(text: &str) -> Result<Quantity, String> {
    serde_json::from_str::<Quantity>(text).map_err(|err| err.to_string())
}

#[test]
fn scenario_strings_parse_to_exact_milli_units() {
    for (text, milli) in [
        ("500m", 500),
        ("1", 1000),
        ("512Ki", 524_288_000),
        ("9223372036854775807m", i64::MAX),
        ("0.36", 360),
        ("1.5Gi", 1_610_612_736_000),
    ] {
        let quantity: Quantity = text.parse().expect("valid quantity");
        assert_eq!(quantity.milli_value(), milli, "{text}");
    }
}

#[test]
fn serializes_as_the_canonical_string() {
    let target = Target {
        value: "1024Ki".parse().expect("valid"),
        average_value: Some(Quantity::from_milli(60000)),
    };
    let text = serde_json::to_string(&target).expect("serializes");
    assert_eq!(text, r#"{"value":"1Mi","average_value":"60"}"#);
    assert_eq!(
        serde_json::from_str::<Target>(&text).expect("deserializes"),
        target
    );
}

#[test]
fn deserializes_json_strings_and_numbers() {
    // Strings keep their format; numbers read as their shortest decimal spelling.
    for (text, canonical) in [
        (r#""500m""#, "500m"),
        (r#""1e3""#, "1e3"),
        ("50", "50"),
        ("-1", "-1"),
        ("0.36", "360m"),
        ("0.1", "100m"),
        ("1e3", "1k"),
        ("1.5e-10", "1n"),
        ("18446744073709551615", "18446744073709551615"),
        ("-0.0", "0"),
        // TestJSONWhitespace: Go trims the string before parsing.
        (r#"" 1""#, "1"),
        (r#""1 ""#, "1"),
        (" -1 ", "-1"),
        // Go's UnmarshalJSON reads null as zero.
        ("null", "0"),
    ] {
        let quantity = json(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(quantity.to_string(), canonical, "{text}");
    }
    assert_eq!(
        json(r#""1e3""#).expect("valid").format(),
        Format::DecimalExponent
    );
}

#[test]
fn an_optional_quantity_reads_null_as_absent() {
    let target: Target =
        serde_json::from_str(r#"{"value": 50, "average_value": null}"#).expect("deserializes");
    assert_eq!(target.average_value, None);
    assert_eq!(target.value.milli_value(), 50_000);
}

#[test]
fn errors_name_the_offending_text() {
    let err = json(r#""1KiB""#).expect_err("invalid suffix");
    assert!(err.contains(r#"invalid quantity "1KiB""#), "{err}");
    assert!(
        err.contains("quantities must match the regular expression"),
        "{err}"
    );
    let err = json(r#""1iK""#).expect_err("invalid suffix");
    assert!(err.contains(r#""1iK""#) && err.contains("suffix"), "{err}");
    let err = json("true").expect_err("not a quantity");
    assert!(err.contains("expected a Kubernetes quantity"), "{err}");
    let err = json(r#"{"value": "1 Ki"}"#).expect_err("not a quantity");
    assert!(err.contains("expected a Kubernetes quantity"), "{err}");
    let nested = serde_json::from_str::<Target>(r#"{"value": "1.1.1"}"#).expect_err("invalid");
    assert!(nested.to_string().contains(r#""1.1.1""#), "{nested}");
}

#[test]
fn deserializes_yaml_scalars_of_every_kind() {
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metric {
        average_value: Quantity,
        value: Quantity,
        tolerance: Quantity,
        memory: Quantity,
        quoted: Quantity,
        exa: Quantity,
    }
    let yaml =
        "averageValue: 50\nvalue: 500m\ntolerance: 0.36\nmemory: 1Gi\nquoted: \"100m\"\nexa: 1E\n";
    let metric: Metric = serde_saphyr::from_str(yaml).expect("deserializes");
    assert_eq!(metric.average_value.milli_value(), 50_000);
    assert_eq!(metric.value.milli_value(), 500);
    assert_eq!(metric.tolerance.as_approximate_f64(), 0.36);
    assert_eq!(metric.memory.to_string(), "1Gi");
    assert_eq!(metric.quoted.to_string(), "100m");
    assert_eq!(metric.exa.value(), 1_000_000_000_000_000_000);

    let err = serde_saphyr::from_str::<Quantity>("1KiB").expect_err("invalid");
    assert!(err.to_string().contains("1KiB"), "{err}");
}

#[test]
fn parse_errors_are_upstreams() {
    assert_eq!("".parse::<Quantity>(), Err(QuantityError::Format));
    assert_eq!("1.1.1".parse::<Quantity>(), Err(QuantityError::Format));
    assert_eq!("1iK".parse::<Quantity>(), Err(QuantityError::Suffix));
    assert_eq!(
        QuantityError::Format.to_string(),
        "quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}
