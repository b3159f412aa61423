//! Ages the way kubectl prints them (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`).

use jiff::Timestamp;

/// kubectl's duration format (`45s`, `3m20s`, `2y30d`), shared with the server's tables.
pub use flotilla_apimachinery::table::human_duration;

/// The age of an RFC 3339 timestamp at `now` (kubectl's `translateTimestampSince`), or
/// `None` if `timestamp` is not a timestamp.
pub fn age_of(timestamp: &str, now: Timestamp) -> Option<String> {
    let ts: Timestamp = timestamp.trim().parse().ok()?;
    Some(human_duration(now.as_second() - ts.as_second()))
}

/// [`age_of`] for an optional timestamp, `<unknown>` when it is missing or unparsable.
pub fn age_or_unknown(timestamp: Option<&str>, now: Timestamp) -> String {
    timestamp.and_then(|t| age_of(t, now)).unwrap_or_else(|| "<unknown>".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matches_kubectl_human_duration() {
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 4 * 60, "5h4m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (52 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (760 * 86400, "2y30d"),
            (9 * 365 * 86400, "9y"),
        ];
        for &(secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn ages_from_timestamps() {
        let now: Timestamp = "2025-01-10T12:00:00Z".parse().expect("ts");
        assert_eq!(age_of("2025-01-10T11:59:55Z", now).as_deref(), Some("5s"));
        assert_eq!(age_of("2025-01-08T08:00:00Z", now).as_deref(), Some("2d4h"));
        assert_eq!(age_of("5m", now), None);
        assert_eq!(age_or_unknown(None, now), "<unknown>");
    }
}
