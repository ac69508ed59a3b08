//! Object names that references point at: a Policy's name as `spec.policy`, `inherit` and an
//! attachment's `policy` must be a DNS-1123 subdomain, as Kubernetes requires of the Policy's
//! own `metadata.name` (no empty label: `base..eu` can never name a Policy).

/// The CRD pattern of a DNS-1123 subdomain (also read by `guardrail-operator validate`).
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Longest DNS-1123 subdomain.
pub const DNS_SUBDOMAIN_MAX: usize = 253;

/// Why `name` is not a DNS-1123 subdomain (None when it is one).
pub fn dns_subdomain_problem(name: &str) -> Option<String> {
    const RULE: &str = "a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, '-' and '.', with every '.'-separated label non-empty and starting and ending with a letter or digit";
    let why = if name.is_empty() {
        "it is empty".to_string()
    } else if name.len() > DNS_SUBDOMAIN_MAX {
        format!("it is {} characters long", name.len())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        format!("it contains {c:?}")
    } else if name.split('.').any(str::is_empty) {
        "it has an empty label (two dots in a row, or a dot at an end)".to_string()
    } else if name
        .split('.')
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        "a label starts or ends with '-'".to_string()
    } else {
        return None;
    };
    Some(format!("{name:?} is not {RULE}; {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_subdomains_and_names_the_rule_otherwise() {
        let re = regex::Regex::new(DNS_SUBDOMAIN_PATTERN).unwrap_or_else(|e| panic!("{e}"));
        for ok in [
            "a",
            "base",
            "base.eu",
            "a-b.c-d",
            "0",
            "x1.y2.z3",
            &"a".repeat(253),
        ] {
            assert_eq!(dns_subdomain_problem(ok), None, "{ok}");
            assert!(re.is_match(ok), "{ok}");
        }
        for (bad, why) in [
            ("base..eu", "empty label"),
            (".base", "empty label"),
            ("base.", "empty label"),
            ("Base", "contains 'B'"),
            ("-a", "starts or ends with '-'"),
            ("a.-b", "starts or ends with '-'"),
            ("a_b", "contains '_'"),
            ("", "empty"),
        ] {
            let msg = dns_subdomain_problem(bad).unwrap_or_default();
            assert!(msg.contains(why), "{bad}: {msg}");
            assert!(msg.contains("DNS-1123 subdomain"), "{msg}");
            assert!(!re.is_match(bad), "{bad}");
        }
        assert!(dns_subdomain_problem(&"a".repeat(254)).is_some());
    }
}
