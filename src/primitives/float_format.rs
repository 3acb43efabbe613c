//! `java_double_to_string`: a Float printed exactly as the reference Java VM prints it, i.e. Java's
//! `Double.toString(double)` with the JDK 19+ (Raffaello Giulietti's "Schubfach") semantics.
//!
//! Owns only the choice of decimal and its text layout. It must never hand-roll a binary-to-decimal
//! conversion (every digit comes from std's correctly rounded float formatting, every membership
//! test from std's correctly rounded parser), and it must never panic, whatever the input bits.
//!
//! Which decimal Java picks (the `Double.toString` specification): let `R` be the set of decimals
//! that round to `x` under IEEE 754 round-to-nearest-even, and `m` the minimal length (number of
//! significant digits) over `R`. If `m >= 2`, `T` is the set of decimals in `R` of length `m`;
//! if `m == 1`, `T` is the set of decimals in `R` of length 1 *or 2*. The decimal printed is the
//! element of `T` closest to `x`, or, of two equally close, the one whose last digit is even.
//!
//! Rust's shortest formatting (`{:e}`) finds the same minimal length `m`, but differs from Java in
//! two corner cases, both handled here:
//!
//! * the length-1-or-2 clause: `Double.MIN_VALUE` is `5e-324` in Rust but `4.9E-324` in Java (the
//!   two-digit `4.9e-324` is closer to the exact value 4.94065...e-324). This only matters for
//!   subnormals, whose rounding interval is wide enough to hold several two-digit decimals.
//! * exact ties between the two closest shortest candidates: Rust rounds half up, Java half even
//!   (2^50 + 0.25 is `1.1258999068426243e15` in Rust, `1.1258999068426242E15` in Java).

/// Formats `f` exactly as Java's `Double.toString(double)` (JDK 19+ semantics: shortest decimal
/// digits that round-trip).
///
/// `NaN`, `Infinity`, `-Infinity`, `0.0`, `-0.0`; plain notation (`100.0`, `0.001`, `1234567.5`)
/// when the decimal lies in `[1e-3, 1e7)`; computerized scientific notation (`1.0E7`, `1.0E-4`,
/// `4.9E-324`) otherwise. There is always at least one digit after the point.
#[must_use]
pub fn java_double_to_string(f: f64) -> String {
    if f.is_nan() {
        // Java has a single NaN spelling, whatever the sign and payload bits.
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        let text = if f.is_sign_negative() { "-Infinity" } else { "Infinity" };
        return text.to_owned();
    }
    if f == 0.0 {
        let text = if f.is_sign_negative() { "-0.0" } else { "0.0" };
        return text.to_owned();
    }
    match java_decimal(f.abs()) {
        Some(decimal) => layout(f.is_sign_negative(), &decimal),
        // Unreachable: std's `{:e}` output of a finite non-zero float always parses. Rust's own
        // round-trip text is the least-bad answer if that ever changed.
        None => format!("{f:?}"),
    }
}

/// A positive decimal `d.ddd × 10^exp`: `digits` holds ASCII digits only, is non-empty, starts
/// with a non-zero digit and has no trailing zeros.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    digits: String,
    exp: i32,
}

impl Decimal {
    /// Reads std's `{:e}` output for a positive finite non-zero float, e.g. `1.2345e-5`, `5e-324`.
    fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exp) = text.split_once('e')?;
        let exp = exp.parse::<i32>().ok()?;
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.len() != 1 || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if int_part == "0" || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits = String::with_capacity(1 + frac_part.len());
        digits.push_str(int_part);
        digits.push_str(frac_part.trim_end_matches('0'));
        Some(Decimal { digits, exp })
    }
}

/// The decimal Java chooses for the positive finite non-zero `x` (see the module doc).
fn java_decimal(x: f64) -> Option<Decimal> {
    // Rust's shortest round-trip digits: they have the minimal length `m`, and are one of the two
    // length-`m` decimals adjacent to `x` (the closer one when both round to `x`).
    let shortest = Decimal::parse(&format!("{x:e}"))?;
    // Java's candidate length: `m`, or 2 when `m == 1` (a length-1 decimal is also a length-2 one
    // with a trailing zero, so "length 1 or 2" is the two-significant-digit grid).
    let len = shortest.digits.len().max(2);
    // The grid point nearest to the exact value of `x`, ties to even: std's fixed-precision
    // formatting is exact and rounds half to even, the same rule as Java's.
    let nearest = format!("{:.*e}", len - 1, x);
    // If that nearest decimal rounds back to `x` it is in `R`, hence in `T`, and nothing in `T`
    // is closer: it is Java's choice. If it does not (it lies beyond a bound of the rounding
    // interval, which can only happen when `x` is a power of two, whose interval is half as wide
    // below as above), every candidate in `T` is on the other side of `x`, and the nearest of
    // those is `shortest`.
    let nearest = Some(nearest)
        .filter(|text| text.parse::<f64>().is_ok_and(|back| back.to_bits() == x.to_bits()))
        .and_then(|text| Decimal::parse(&text));
    Some(nearest.unwrap_or(shortest))
}

/// Lays `decimal` out the way `Double.toString` does.
fn layout(negative: bool, decimal: &Decimal) -> String {
    let digits = decimal.digits.as_str();
    let exp = decimal.exp;
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if (0..7).contains(&exp) {
        // 1 <= value < 10^7: integer digits, '.', fraction digits (at least one).
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        match (digits.get(..int_len), digits.get(int_len..)) {
            (Some(int_part), Some(frac_part)) if !frac_part.is_empty() => {
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac_part);
            }
            _ => {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len.saturating_sub(digits.len())));
                out.push_str(".0");
            }
        }
    } else if (-3..0).contains(&exp) {
        // 10^-3 <= value < 1: "0.", leading zeros, the digits.
        out.push_str("0.");
        let zeros = usize::try_from(-1 - exp).unwrap_or(0);
        out.extend(std::iter::repeat_n('0', zeros));
        out.push_str(digits);
    } else {
        // Computerized scientific notation: d.ddd, at least one fraction digit, 'E', exponent
        // with a '-' when negative and never a '+'.
        let mut chars = digits.chars();
        out.extend(chars.next());
        out.push('.');
        let rest = chars.as_str();
        out.push_str(if rest.is_empty() { "0" } else { rest });
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::java_double_to_string as j;

    #[test]
    fn special_values() {
        assert_eq!(j(0.0), "0.0");
        assert_eq!(j(-0.0), "-0.0");
        assert_eq!(j(f64::NAN), "NaN");
        assert_eq!(j(-f64::NAN), "NaN");
        assert_eq!(j(f64::INFINITY), "Infinity");
        assert_eq!(j(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn plain_notation() {
        assert_eq!(j(1.0), "1.0");
        assert_eq!(j(0.5), "0.5");
        assert_eq!(j(0.1), "0.1");
        assert_eq!(j(100.0), "100.0");
        assert_eq!(j(9999999.0), "9999999.0");
        assert_eq!(j(1234567.5), "1234567.5");
        assert_eq!(j(0.001), "0.001");
        assert_eq!(j(0.0123), "0.0123");
        assert_eq!(j(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(j(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(j(-2.5), "-2.5");
        assert_eq!(j(123.456), "123.456");
        assert_eq!(j(-0.001), "-0.001");
        assert_eq!(j(2.0f64.powi(52)), "4.503599627370496E15");
    }

    #[test]
    #[allow(clippy::approx_constant, reason = "the literal 3.14159 itself is under test, not PI")]
    fn pi_like_literal() {
        assert_eq!(j(3.14159), "3.14159");
        assert_eq!(j(-3.14159), "-3.14159");
    }

    #[test]
    fn scientific_notation() {
        assert_eq!(j(1e7), "1.0E7");
        assert_eq!(j(-1e7), "-1.0E7");
        assert_eq!(j(12345678.9), "1.23456789E7");
        assert_eq!(j(0.0001), "1.0E-4");
        assert_eq!(j(-0.0001), "-1.0E-4");
        assert_eq!(j(1.2345e-5), "1.2345E-5");
        assert_eq!(j(1e100), "1.0E100");
        assert_eq!(j(1e21), "1.0E21");
        assert_eq!(j(1e23), "1.0E23");
        assert_eq!(j(f64::MAX), "1.7976931348623157E308");
        assert_eq!(j(f64::MIN), "-1.7976931348623157E308");
        assert_eq!(j(f64::MIN_POSITIVE), "2.2250738585072014E-308");
    }

    #[test]
    fn notation_switches_at_java_thresholds() {
        // The largest double below 10^7 stays plain; the largest below 10^-3 goes scientific.
        assert_eq!(j(9999999.999999998), "9999999.999999998");
        assert_eq!(j(f64::from_bits(1e7f64.to_bits() - 1)), "9999999.999999998");
        assert_eq!(j(f64::from_bits(0.001f64.to_bits() - 1)), "9.999999999999998E-4");
        assert_eq!(j(f64::from_bits(1e7f64.to_bits() + 1)), "1.0000000000000002E7");
    }

    #[test]
    fn one_digit_shortest_prefers_a_closer_two_digit_decimal() {
        // Double.MIN_VALUE: exact value 4.940656...e-324; Rust's shortest is "5e-324".
        assert_eq!(j(5e-324), "4.9E-324");
        assert_eq!(j(-5e-324), "-4.9E-324");
        // 2 * MIN_VALUE = 9.881312...e-324; Rust's shortest is "1e-323".
        assert_eq!(j(1e-323), "9.9E-324");
        // 4 * MIN_VALUE = 1.976262...e-323; "2.0" is already the closest two-digit decimal.
        assert_eq!(j(2e-323), "2.0E-323");
    }

    #[test]
    fn exact_tie_between_shortest_candidates_goes_to_even() {
        // 2^50 + 0.25 is exactly halfway between ...624.2 and ...624.3, both of which round to it.
        assert_eq!(j(2.0f64.powi(50) + 0.25), "1.1258999068426242E15");
        // 2^50 + 0.75: halfway between ...624.7 and ...624.8; the even one is above.
        assert_eq!(j(2.0f64.powi(50) + 0.75), "1.1258999068426248E15");
    }

    #[test]
    fn lopsided_interval_above_a_power_of_two_keeps_the_only_candidate() {
        // 2^-24 = 5.9604644775390625e-8 is halfway between ...062e-8 and ...063e-8, but the
        // rounding interval below a power of two is half as wide: only ...063e-8 rounds back.
        assert_eq!(j(2.0f64.powi(-24)), "5.960464477539063E-8");
    }

    #[test]
    fn output_round_trips_and_never_panics() {
        // A deterministic sweep over bit patterns, including every exponent, subnormals and NaNs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u64 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let bits = if i % 4 == 0 { i } else { state };
            let x = f64::from_bits(bits);
            let text = j(x);
            let back: f64 = text.parse().unwrap_or_else(|_| panic!("{text:?} does not parse"));
            if x.is_nan() {
                assert!(back.is_nan(), "{text}");
            } else {
                assert_eq!(back.to_bits(), x.to_bits(), "{x:e} printed as {text}");
            }
            assert!(!text.contains('+'), "{text}");
            if x.is_finite() {
                let mantissa = text.split('E').next().unwrap_or_default();
                assert!(mantissa.contains('.'), "{text}");
                assert!(!mantissa.ends_with('.'), "{text}");
            }
        }
    }
}
