//! String `format`s kube-openapi checks. Formats it does not know are accepted, as
//! Kubernetes does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `text` is valid for `format`.
pub(crate) fn is_valid(format: &str, text: &str) -> bool {
    match format {
        "date-time" | "datetime" => is_date_time(text),
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "byte" => is_base64(text),
        "uuid" => is_uuid(text, None),
        "uuid3" => is_uuid(text, Some('3')),
        "uuid4" => is_uuid(text, Some('4')),
        "uuid5" => is_uuid(text, Some('5')),
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        _ => true,
    }
}

/// RFC 3339 with an offset, or without one (kube-openapi also takes local times), or
/// empty (its parser treats "" as the zero time).
fn is_date_time(text: &str) -> bool {
    text.is_empty()
        || text.parse::<jiff::Timestamp>().is_ok()
        || (text.contains(['T', 't', ' ']) && text.parse::<jiff::civil::DateTime>().is_ok())
}

/// Standard base64 with padding, as govalidator's `IsBase64` (which rejects "").
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return false;
    }
    let body = text.trim_end_matches('=');
    let padding = bytes.len() - body.len();
    padding <= 2 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?V[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$`,
/// with the version digit and variant checked only for uuid3/4/5 (variant for 4/5).
fn is_uuid(text: &str, version: Option<char>) -> bool {
    let groups: Vec<&str> = if text.contains('-') { text.split('-').collect() } else { split_plain_uuid(text) };
    let [a, b, c, d, e] = groups.as_slice() else {
        return false;
    };
    let lengths_ok = a.len() == 8 && b.len() == 4 && c.len() == 4 && d.len() == 4 && e.len() == 12;
    if !lengths_ok || !groups.iter().all(|g| g.chars().all(|ch| ch.is_ascii_hexdigit())) {
        return false;
    }
    match version {
        None => true,
        Some(v) => {
            let variant_ok = v == '3' || d.starts_with(['8', '9', 'a', 'b', 'A', 'B']);
            c.starts_with(v) && variant_ok
        }
    }
}

fn split_plain_uuid(text: &str) -> Vec<&str> {
    if text.len() != 32 || !text.is_ascii() {
        return Vec::new();
    }
    vec![&text[0..8], &text[8..12], &text[12..16], &text[16..20], &text[20..32]]
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix <= 32,
        Ok(IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        for ok in ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789+02:00", "2024-01-02T03:04:05", ""] {
            assert!(is_valid("date-time", ok), "{ok}");
        }
        for bad in ["yesterday", "2024-13-02T03:04:05Z", "2024-01-02"] {
            assert!(!is_valid("date-time", bad), "{bad}");
        }
        assert!(is_valid("date", "2024-02-29"));
        assert!(!is_valid("date", "2023-02-29"));
    }

    #[test]
    fn base64() {
        for ok in ["aGVsbG8=", "aGVsbG8h", "aGk=", "YQ==", "+/+/"] {
            assert!(is_valid("byte", ok), "{ok}");
        }
        for bad in ["", "aGVsbG8", "a===", "aGV*bG8=", "aG=sbG8="] {
            assert!(!is_valid("byte", bad), "{bad}");
        }
    }

    #[test]
    fn uuids_ips_and_unknown_formats() {
        assert!(is_valid("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_valid("uuid", "123E4567E89B12D3A456426614174000"));
        assert!(!is_valid("uuid", "123e4567-e89b-12d3-a456"));
        assert!(is_valid("uuid4", "123e4567-e89b-42d3-a456-426614174000"));
        assert!(!is_valid("uuid4", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_valid("ipv4", "10.0.0.1"));
        assert!(!is_valid("ipv4", "10.0.0"));
        assert!(is_valid("ipv6", "fe80::1"));
        assert!(is_valid("cidr", "10.0.0.0/8"));
        assert!(!is_valid("cidr", "10.0.0.0/33"));
        assert!(is_valid("int32", "anything"));
        assert!(is_valid("quantity", "anything"));
    }
}
