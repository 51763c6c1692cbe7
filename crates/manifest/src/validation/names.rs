//! The string-format checks of apimachinery that HPA validation relies on, returning
//! upstream's messages word for word.
//!
//! Mirrors `k8s.io/apimachinery/pkg/util/validation` (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`, `MaxLenError`, `RegexError`), `.../api/validate/content`
//! (`IsLabelKey` a.k.a. `IsQualifiedName`, `IsLabelValue`),
//! `.../api/validation/path` (`IsValidPathSegmentName`) and the resource-name helpers
//! of `k8s.io/kubernetes/pkg/apis/core/v1/validation` and `.../core/v1/helper`. Each
//! returns the list of problems, empty when the value is valid. The regular
//! expressions are matched by hand: each is a simple character-class pattern.

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_MAX: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX: usize = 63;

/// `MaxLenError` of `util/validation`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `MaxLenError` of `api/validate/content` (used by label keys and values).
fn max_len_bytes_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// `RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

/// Matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn dns1123_label_like(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    alnum(first) && alnum(last) && s.chars().all(|c| alnum(c) || c == '-')
}

/// Matches the subdomain regex: labels joined by dots.
fn dns1123_subdomain_like(s: &str) -> bool {
    s.split('.').all(dns1123_label_like)
}

/// Matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn label_key_name_like(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    alnum(first) && alnum(last) && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !dns1123_label_like(value) {
        if dns1123_subdomain_like(value) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !dns1123_subdomain_like(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `NameIsDNSSubdomain(name, prefix)`: for a `generateName` prefix a trailing dash is
/// allowed (`maskTrailingDash`).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        let masked = format!("{}a", &name[..name.len() - 1]);
        return is_dns1123_subdomain(&masked);
    }
    is_dns1123_subdomain(name)
}

/// `IsLabelKey` (also known as `IsQualifiedName`): an optional DNS-subdomain prefix and
/// `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_KEY_MAX {
        errs.push(format!("name part {}", max_len_bytes_error(LABEL_KEY_MAX)));
    }
    if !label_key_name_like(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsLabelValue` (a.k.a. `IsValidLabelValue`).
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_bytes_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !label_key_name_like(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPathSegmentName`: the name can be used as one segment of a REST path.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// `helper.IsStandardResourceName` (core/v1): names a resource quota or limit may use.
fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: [&str; 20] = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `helper.IsStandardContainerResourceName`: what a container can request.
fn is_standard_container_resource_name(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// `helper.IsNativeResource`: unprefixed, or in a `kubernetes.io/` domain.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `helper.IsExtendedResourceName`: a prefixed, non-native name that stays a qualified
/// name once quota prefixes it with `requests.`.
fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `validateResourceName` (core/v1 validation): problems with a compute resource name.
fn validate_resource_name(value: &str) -> Vec<String> {
    let errs = is_qualified_name(value);
    if !errs.is_empty() {
        return errs;
    }
    if !value.contains('/') && !is_standard_resource_name(value) {
        return vec!["must be a standard resource type or fully qualified".to_owned()];
    }
    Vec::new()
}

/// `ValidateContainerResourceName` (core/v1 validation): problems with the resource
/// name of a container (and so of a `ContainerResource` metric).
pub fn validate_container_resource_name(value: &str) -> Vec<String> {
    let mut errs = validate_resource_name(value);
    if !value.contains('/') {
        if !is_standard_container_resource_name(value) {
            errs.push("must be a standard resource for containers".to_owned());
        }
    } else if !is_native_resource(value) && !is_extended_resource_name(value) {
        errs.push("doesn't follow extended resource name standard".to_owned());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains() {
        assert!(is_dns1123_subdomain("inference-server-hpa").is_empty());
        assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Bad_Name"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned()]
        );
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254))[0],
            "must be no more than 253 characters"
        );
        assert!(name_is_dns_subdomain("web-", true).is_empty());
        assert!(!name_is_dns_subdomain("web-", false).is_empty());
    }

    #[test]
    fn dns_labels() {
        // Go's RegexError really puts two spaces before "or".
        assert!(is_dns1123_label("test-container").is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_owned()]
        );
        assert_eq!(
            is_dns1123_label("---***"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned()]
        );
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("deployment").is_empty());
        assert_eq!(
            is_qualified_name("/x"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert_eq!(is_qualified_name("")[0], "name part must be non-empty");
        assert!(is_qualified_name("-x")[0].starts_with("name part must consist of alphanumeric"));
    }

    #[test]
    fn label_values() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("inference-server").is_empty());
        assert_eq!(is_valid_label_value("a b").len(), 1);
    }

    #[test]
    fn path_segments() {
        assert_eq!(
            is_valid_path_segment_name(".."),
            vec!["may not be '..'".to_owned()]
        );
        assert_eq!(
            is_valid_path_segment_name("foo/../%"),
            vec![
                "may not contain '/'".to_owned(),
                "may not contain '%'".to_owned()
            ]
        );
        assert!(is_valid_path_segment_name("Deployment").is_empty());
    }

    #[test]
    fn container_resource_names() {
        assert!(validate_container_resource_name("cpu").is_empty());
        assert!(validate_container_resource_name("hugepages-2Mi").is_empty());
        assert!(validate_container_resource_name("nvidia.com/gpu").is_empty());
        assert_eq!(
            validate_container_resource_name("InvalidResource"),
            vec![
                "must be a standard resource type or fully qualified".to_owned(),
                "must be a standard resource for containers".to_owned()
            ]
        );
        assert_eq!(
            validate_container_resource_name("pods"),
            vec!["must be a standard resource for containers".to_owned()]
        );
    }
}
