//! Go's JSON spellings of the apimachinery time types: `metav1.Time` (RFC 3339, whole seconds,
//! UTC), `metav1.MicroTime` (RFC 3339 with 6 fractional digits, UTC) and `metav1.Duration`
//! (`time.Duration.String()`, like `1h0m0s`).

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z) since the Unix epoch. A `Time` with
/// this value marshals to JSON `null`.
pub const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Formats `seconds`/`nanos` since the Unix epoch like Go's `metav1.Time` JSON: whole seconds.
pub fn rfc3339_seconds(seconds: i64, nanos: i32) -> Result<String, String> {
    let ts = timestamp(seconds, nanos)?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Formats `seconds`/`nanos` since the Unix epoch like Go's `metav1.MicroTime` JSON: always six
/// fractional digits (truncated, as Go's formatting does).
pub fn rfc3339_micros(seconds: i64, nanos: i32) -> Result<String, String> {
    let ts = timestamp(seconds, nanos)?;
    let micros = ts.subsec_nanosecond() / 1000;
    Ok(format!("{}.{micros:06}Z", ts.strftime("%Y-%m-%dT%H:%M:%S")))
}

/// A jiff timestamp, or why the pair is out of range.
fn timestamp(seconds: i64, nanos: i32) -> Result<jiff::Timestamp, String> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(format!("nanos {nanos} is not in 0..1000000000"));
    }
    jiff::Timestamp::new(seconds, nanos).map_err(|err| format!("timestamp {seconds}s {nanos}ns: {err}"))
}

/// Go's `time.Duration.String()` for a count of nanoseconds: `0s`, `1.5µs`, `2ms`, `1m30s`,
/// `1h0m0s`, `-3s`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let mut u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_frac(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = split_frac(u, 9);
    u = secs;
    let mut out = format!("{}{frac}s", u % 60);
    u /= 60;
    if u > 0 {
        out = format!("{}m{out}", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{u}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// Splits `v` into `v / 10^prec` and the fraction `.ddd` with trailing zeros dropped (empty when
/// the fraction is zero), like Go's `fmtFrac`.
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (4_000_000_000_000, "1h6m40s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (i64::MAX, "2562047h47m16.854775807s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn times_match_go() {
        assert_eq!(rfc3339_seconds(1_767_323_045, 999_999_999).as_deref(), Ok("2026-01-02T03:04:05Z"));
        assert_eq!(rfc3339_micros(1_767_323_045, 123_456_789).as_deref(), Ok("2026-01-02T03:04:05.123456Z"));
        assert_eq!(rfc3339_micros(1_767_323_045, 0).as_deref(), Ok("2026-01-02T03:04:05.000000Z"));
        assert!(rfc3339_seconds(i64::MAX, 0).is_err());
        assert!(rfc3339_seconds(0, -1).is_err());
    }
}
