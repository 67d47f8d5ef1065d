//! Cell → number, with the result of `str::parse::<f64>` bit for bit.
//!
//! GPU-Z writes plain decimals (`63.0`, `1767.5`, `0.8250`, `52`). For those a decimal
//! mantissa below 2^53 divided by an exact power of ten (10^0 ..= 10^22) is correctly
//! rounded by IEEE division (Clinger's fast path), so it equals what the standard parser
//! gives; everything else (exponents, `inf`, `+`, long mantissas) goes to the standard
//! parser.

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `s.parse::<f64>().ok()`, faster for plain decimals.
///
/// ```
/// use gpuz::number::parse_f64;
/// assert_eq!(parse_f64("1767.5"), Some(1767.5));
/// assert_eq!(parse_f64("-0"), Some(-0.0));
/// assert_eq!(parse_f64("1e3"), Some(1000.0));
/// assert_eq!(parse_f64("-"), None);
/// assert_eq!(parse_f64("12a"), None);
/// ```
pub fn parse_f64(s: &str) -> Option<f64> {
    match plain_decimal(s.as_bytes()) {
        Some(v) => Some(v),
        None => s.parse().ok(),
    }
}

/// `[-]digits[.digits]` with at most 19 digits and a mantissa that is exact in an
/// `f64`; `None` for anything else (not necessarily invalid: the caller falls back).
fn plain_decimal(b: &[u8]) -> Option<f64> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    let mut fraction: Option<usize> = None;
    for (i, &c) in digits.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            // At most 20 digits: a 20th may wrap, and is refused below.
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            count += 1;
        } else if c == b'.' && fraction.is_none() {
            fraction = Some(i);
        } else {
            return None;
        }
    }
    // `.` alone is not a number; 19 digits always fit in a u64.
    if count == 0 || count > 19 || mantissa > (1 << 53) {
        return None;
    }
    let scale = fraction.map_or(0, |dot| digits.len() - dot - 1);
    let value = mantissa as f64 / *POW10.get(scale)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(s: &str) {
        let std: Option<f64> = s.parse().ok();
        let ours = parse_f64(s);
        assert_eq!(
            ours.map(f64::to_bits),
            std.map(f64::to_bits),
            "{s:?}: ours {ours:?}, std {std:?}"
        );
    }

    #[test]
    fn agrees_with_the_standard_parser_bit_for_bit() {
        for s in [
            "",
            "-",
            ".",
            "-.",
            "0",
            "-0",
            "0.0",
            "-0.0",
            "00012.50",
            "1.",
            ".5",
            "-.5",
            "1..2",
            "1.2.3",
            "+1",
            "1e3",
            "1E-2",
            "inf",
            "-inf",
            "NaN",
            "infinity",
            " 1",
            "1 ",
            "0x10",
            "63.0",
            "1767.5",
            "0.8250",
            "0.1",
            "0.3",
            "9007199254740992",
            "9007199254740993",
            "9007199254740993.0",
            "1234567890123456789",
            "12345678901234567890",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "99999999999999999999",
            "4.35",
            "2.675",
            "1.0000000000000002",
            "123456789.123456789",
            "-1e309",
            "1e-400",
            "\u{b0}1",
            "1\u{a0}",
        ] {
            same(s);
        }
    }

    #[test]
    fn agrees_on_seeded_random_decimals() {
        let mut seed = 42u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..200_000 {
            let int_len = (next() % 12) as usize;
            let frac_len = (next() % 12) as usize;
            let mut s = String::new();
            if next() % 4 == 0 {
                s.push('-');
            }
            for _ in 0..int_len {
                s.push(char::from(b'0' + (next() % 10) as u8));
            }
            if next() % 3 != 0 {
                s.push('.');
                for _ in 0..frac_len {
                    s.push(char::from(b'0' + (next() % 10) as u8));
                }
            }
            same(&s);
        }
    }
}
