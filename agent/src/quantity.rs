//! Kubernetes resource quantities (`resource.Quantity`): parse `3800m`, `15Gi`, `1e3`, sum
//! them exactly, and print the sum in Kubernetes' canonical form, so that the capacity the
//! agent reports reads like what `kubectl describe node` shows.
//!
//! `k8s-openapi`'s `Quantity` is only the string, hence this module. Values are held exactly
//! in nano-units (10⁻⁹) in an `i128`: a million nodes of 16Ei would still fit. Like
//! Kubernetes, precision below a nano-unit is rounded up (away from zero).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How a quantity is written; sums keep the format of their first operand, as Kubernetes'
/// `Quantity.Add` keeps the receiver's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, `Gi`, ... (powers of 1024).
    BinarySI,
    /// `n`, `u`, `m`, `k`, `M`, `G`, ... (powers of 1000).
    DecimalSI,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// An exact quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {text:?}: {reason}")]
pub struct QuantityError {
    pub text: String,
    pub reason: &'static str,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
/// Decimal SI suffixes by power of ten: n (−9) to E (18), in steps of three.
const DECIMAL_SUFFIXES: [(i32, &str); 10] =
    [(-9, "n"), (-6, "u"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"), (15, "P"), (18, "E")];

impl Quantity {
    /// The value in nano-units (`1` is 10⁻⁹, `1_000_000_000` is one).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// `self + other` in `self`'s format; `None` on overflow.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity { nanos: self.nanos.checked_add(other.nanos)?, format: self.format })
    }

    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let err = |reason| QuantityError { text: text.to_string(), reason };
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            Some(_) => (false, text),
            None => return Err(err("empty")),
        };
        let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(err("no digits"));
        }
        if fraction.contains('.') {
            return Err(err("more than one decimal point"));
        }
        // The number as an integer mantissa and a count of decimal places.
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(|| err("too many digits"))?;
        }
        let places = i32::try_from(fraction.len()).map_err(|_| err("too many digits"))?;
        let (format, multiplier) = parse_suffix(suffix).ok_or_else(|| err("unknown suffix"))?;
        let nanos = match multiplier {
            Multiplier::Binary(power) => {
                let factor = 1024i128.checked_pow(power).ok_or_else(|| err("too large"))?;
                let scaled = mantissa
                    .checked_mul(factor)
                    .and_then(|v| v.checked_mul(NANOS_PER_UNIT))
                    .ok_or_else(|| err("too large"))?;
                div_round_up(scaled, pow10(places).ok_or_else(|| err("too many digits"))?)
            }
            Multiplier::Decimal(exponent) => {
                let shift =
                    exponent.checked_add(9).and_then(|e| e.checked_sub(places)).ok_or_else(|| err("too large"))?;
                if shift >= 0 {
                    mantissa
                        .checked_mul(pow10(shift).ok_or_else(|| err("too large"))?)
                        .ok_or_else(|| err("too large"))?
                } else {
                    // Below a nano-unit: a huge negative shift rounds any non-zero value up to 1n.
                    match pow10(-shift) {
                        Some(divisor) => div_round_up(mantissa, divisor),
                        None => i128::from(mantissa != 0),
                    }
                }
            }
        };
        Ok(Quantity { nanos: if negative { -nanos } else { nanos }, format })
    }
}

enum Multiplier {
    /// 1024^n.
    Binary(u32),
    /// 10^n.
    Decimal(i32),
}

fn parse_suffix(suffix: &str) -> Option<(Format, Multiplier)> {
    if let Some(power) = BINARY_SUFFIXES.iter().skip(1).position(|s| *s == suffix) {
        return Some((Format::BinarySI, Multiplier::Binary(u32::try_from(power).ok()? + 1)));
    }
    if let Some((exponent, _)) = DECIMAL_SUFFIXES.iter().find(|(_, s)| *s == suffix) {
        return Some((Format::DecimalSI, Multiplier::Decimal(*exponent)));
    }
    // `e3`, `E-3`: an exponent needs digits ("E" alone is exa, matched above).
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4 {
        return None;
    }
    Some((Format::DecimalExponent, Multiplier::Decimal(exponent.parse().ok()?)))
}

fn pow10(exponent: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exponent).ok()?)
}

/// `value / divisor` rounded away from zero (`value` is non-negative here: the sign is
/// applied after).
fn div_round_up(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    if value % divisor == 0 { quotient } else { quotient + 1 }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// Kubernetes' canonical form: binary quantities use the largest power of 1024 that
    /// divides them exactly (small or fractional ones fall back to decimal, as in
    /// Kubernetes), decimal ones the largest power of 1000 that leaves an integer mantissa.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.unsigned_abs();
        let whole_units = magnitude.is_multiple_of(NANOS_PER_UNIT as u128);
        let units = magnitude / NANOS_PER_UNIT as u128;
        if self.format == Format::BinarySI && whole_units && units >= 1024 {
            let mut power = 0;
            let mut mantissa = units;
            while power < BINARY_SUFFIXES.len() - 1 && mantissa.is_multiple_of(1024) {
                mantissa /= 1024;
                power += 1;
            }
            return write!(f, "{sign}{mantissa}{}", BINARY_SUFFIXES[power]);
        }
        if magnitude == 0 {
            return f.write_str("0");
        }
        // Mantissa × 10^exponent, with the exponent a multiple of three from −9 up to 18.
        let mut mantissa = magnitude;
        let mut exponent: i32 = -9;
        while exponent < 18 && mantissa.is_multiple_of(1000) {
            mantissa /= 1000;
            exponent += 3;
        }
        if self.format == Format::DecimalExponent {
            return if exponent == 0 {
                write!(f, "{sign}{mantissa}")
            } else {
                write!(f, "{sign}{mantissa}e{exponent}")
            };
        }
        let suffix = DECIMAL_SUFFIXES.iter().find(|(e, _)| *e == exponent).map(|(_, s)| *s).unwrap_or("");
        write!(f, "{sign}{mantissa}{suffix}")
    }
}

/// Sums `(resource name, quantity)` entries by name (all Nodes' `cpu`, `memory`, `pods`,
/// ...), as OCM sums Nodes' capacity. Entries that do not parse are skipped and returned,
/// so that one odd node does not hide the rest of the cluster's capacity.
pub fn sum_quantities<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (BTreeMap<String, String>, Vec<QuantityError>) {
    let mut sums: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, text) in entries {
        let quantity = match Quantity::parse(text) {
            Ok(q) => q,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match sums.get_mut(name) {
            Some(sum) => match sum.checked_add(quantity) {
                Some(total) => *sum = total,
                None => errors.push(QuantityError { text: text.to_string(), reason: "sum overflows" }),
            },
            None => {
                sums.insert(name.to_string(), quantity);
            }
        }
    }
    (sums.into_iter().map(|(k, v)| (k, v.to_string())).collect(), errors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap()
    }

    fn sum(texts: &[&str]) -> String {
        texts.iter().map(|t| q(t)).reduce(|a, b| a.checked_add(b).unwrap()).unwrap().to_string()
    }

    #[test]
    fn parses_suffixes_exactly() {
        assert_eq!(q("3800m").nanos(), 3_800_000_000);
        assert_eq!(q("4").nanos(), 4 * NANOS_PER_UNIT);
        assert_eq!(q("15Gi").nanos(), 15 * (1 << 30) * NANOS_PER_UNIT);
        assert_eq!(q("1k").nanos(), 1000 * NANOS_PER_UNIT);
        assert_eq!(q("1M").nanos(), 1_000_000 * NANOS_PER_UNIT);
        assert_eq!(q("2E").nanos(), 2 * 10i128.pow(18) * NANOS_PER_UNIT);
        assert_eq!(q("1e3").nanos(), 1000 * NANOS_PER_UNIT);
        assert_eq!(q("5E-3").nanos(), 5_000_000);
        assert_eq!(q("1.5Gi").nanos(), 1536 * (1 << 20) * NANOS_PER_UNIT);
        assert_eq!(q("0.5").nanos(), 500_000_000);
        assert_eq!(q(".5").nanos(), 500_000_000);
        assert_eq!(q("-1").nanos(), -NANOS_PER_UNIT);
        assert_eq!(q("+7n").nanos(), 7);
        assert_eq!(q("100u").nanos(), 100_000);
        assert_eq!(q("1Ei").nanos(), (1i128 << 60) * NANOS_PER_UNIT);
        // Below a nano-unit rounds up.
        assert_eq!(q("0.1n").nanos(), 1);
        assert_eq!(q("1e-30").nanos(), 1);
        assert_eq!(q("0e-30").nanos(), 0);
        assert_eq!(q("3800m").format(), Format::DecimalSI);
        assert_eq!(q("15Gi").format(), Format::BinarySI);
        assert_eq!(q("1e3").format(), Format::DecimalExponent);
    }

    #[test]
    fn rejects_malformed_quantities() {
        for bad in ["", "-", "abc", "1.2.3", "1Qi", "--1", "1e", "e3", "1 Gi", "1Gi ", "1ki", "1e99999", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(Quantity::parse("99999999999999999999999999999999999999999").is_err());
        assert!(Quantity::parse("999999999999999999999Ei").is_err());
    }

    #[test]
    fn prints_canonical_forms() {
        for (text, canonical) in [
            ("3800m", "3800m"),
            ("4", "4"),
            ("1000m", "1"),
            ("1500", "1500"),
            ("2000", "2k"),
            ("16Gi", "16Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("0", "0"),
            ("0Gi", "0"),
            ("1e3", "1e3"),
            ("1000e0", "1e3"),
            ("5E-3", "5e-3"),
            ("-3800m", "-3800m"),
            ("-2Gi", "-2Gi"),
            ("0.1", "100m"),
            ("110", "110"),
        ] {
            assert_eq!(q(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn sums_keep_the_first_format() {
        assert_eq!(sum(&["3800m", "3800m", "3800m"]), "11400m");
        assert_eq!(sum(&["4", "4", "4"]), "12");
        assert_eq!(sum(&["16Gi", "16Gi", "16Gi"]), "48Gi");
        assert_eq!(sum(&["15Gi", "512Mi"]), "15872Mi");
        assert_eq!(sum(&["100Mi", "100M"]), "204857600");
        assert_eq!(sum(&["100M", "100Mi"]), "204857600");
        assert_eq!(sum(&["1", "500m"]), "1500m");
        assert_eq!(sum(&["500m", "500m"]), "1");
        assert_eq!(sum(&["1e3", "1"]), "1001");
        assert_eq!(sum(&["110", "110", "110"]), "330");
    }

    #[test]
    fn sums_resource_lists_and_reports_bad_entries() {
        let node = |cpu: &str, memory: &str| -> BTreeMap<String, String> {
            [("cpu".to_string(), cpu.to_string()), ("memory".to_string(), memory.to_string())].into()
        };
        let mut gpu = node("2", "8Gi");
        gpu.insert("nvidia.com/gpu".into(), "1".into());
        let lists = [node("3800m", "15Gi"), node("3800m", "15Gi"), gpu, node("lots", "1Gi")];
        let (sums, errors) = sum_quantities(lists.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(sums.get("cpu").map(String::as_str), Some("9600m"));
        assert_eq!(sums.get("memory").map(String::as_str), Some("39Gi"));
        assert_eq!(sums.get("nvidia.com/gpu").map(String::as_str), Some("1"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].text, "lots");
    }
}
