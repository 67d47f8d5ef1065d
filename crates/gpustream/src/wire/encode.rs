//! The wire encoder the producer runs for every sample: writes the same bytes
//! serde_json writes for [`super::WireSample`] (a test compares them on real logs and
//! the simulated fleet), straight into a reused buffer.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::sample::Sample;

/// Appends the wire message of `s` to `out`.
pub fn encode_into(s: &Sample, out: &mut Vec<u8>) {
    out.reserve(256 + 24 * s.metrics.present().count());
    out.extend_from_slice(b"{\"schema_version\":");
    integer(out, u64::from(super::SCHEMA_VERSION));
    out.extend_from_slice(b",\"event_id\":");
    string(out, &s.event_id);
    out.extend_from_slice(b",\"event_time\":\"");
    time(out, s.event_time);
    out.extend_from_slice(b"\",\"host\":");
    string(out, &s.host);
    out.extend_from_slice(b",\"gpu\":");
    string(out, &s.gpu);
    out.extend_from_slice(b",\"gpu_index\":");
    integer(out, u64::from(s.gpu_index));
    if let Some(name) = &s.gpu_name {
        out.extend_from_slice(b",\"gpu_name\":");
        string(out, name);
    }
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(s.source.as_str().as_bytes());
    out.extend_from_slice(b"\",\"session\":");
    string(out, &s.session);
    out.extend_from_slice(b",\"seq\":");
    integer(out, s.seq);
    out.extend_from_slice(b",\"metrics\":{");
    let mut first = true;
    for (metric, value) in s.metrics.present() {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        // Catalogue names need no escaping.
        out.extend_from_slice(metric.column().as_bytes());
        out.extend_from_slice(b"\":");
        if metric.kind().is_integer() {
            signed(out, value as i64);
        } else {
            float(out, value);
        }
    }
    out.push(b'}');
    if !s.unsupported.is_empty() {
        out.extend_from_slice(b",\"unsupported\":[");
        for (i, m) in s.unsupported.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(m.column().as_bytes());
            out.push(b'"');
        }
        out.push(b']');
    }
    if !s.extra.is_empty() {
        out.extend_from_slice(b",\"extra\":{");
        for (i, (name, value)) in s.extra.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, name);
            out.push(b':');
            float(out, *value);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

fn integer(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn signed(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// As serde_json writes a finite `f64` (shortest round-trip form, `.0` on integers);
/// non-finite values, which samples never hold, as `null` like serde_json.
fn float(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
    } else if !short_decimal(out, v) {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    }
}

/// Writes `v` if it is a decimal of at most three fraction digits and 15 significant
/// digits (what GPU-Z logs and sensors hold), in the form `zmij` writes; returns
/// `false`, writing nothing, for any other value.
///
/// Why this is the shortest round-trip form: `m / 10^k` is computed exactly rounded, so
/// when it equals `v`, the decimal `m·10^-k` reads back as `v`; and two decimals of at
/// most 15 significant digits never read back as the same `f64`, so no shorter decimal
/// does. `zmij` writes such values (decimal exponent -3..=14) without an exponent.
/// Float formatting was half the encoder's instructions (BENCHMARKS.md, "Parse + encode").
fn short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
    const LIMIT: f64 = 1e15;
    let a = v.abs();
    if a >= LIMIT {
        return false;
    }
    for (digits, scale) in SCALES.iter().enumerate() {
        let scaled = a * scale;
        if scaled >= LIMIT {
            return false;
        }
        // Rounded half up by truncation (one instruction; `f64::round` is a libm call
        // on baseline x86-64). Exact: below 1e15 < 2^53.
        let m = (scaled + 0.5) as u64;
        if m as f64 / scale != a {
            continue;
        }
        let pow = [1u64, 10, 100, 1000][digits];
        if v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(m / pow).as_bytes());
        out.push(b'.');
        let mut frac = m % pow;
        if frac == 0 {
            out.push(b'0');
            return true;
        }
        // Fraction digits with leading zeros kept and trailing zeros dropped.
        let mut width = digits;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        let mut text = [b'0'; 3];
        for slot in text[..width].iter_mut().rev() {
            *slot = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        out.extend_from_slice(&text[..width]);
        return true;
    }
    false
}

/// A JSON string with serde_json's escapes: `"`, `\` and control characters.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let escape: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// RFC 3339 in UTC as chrono's serde writes it (`Z`, fractional seconds in 0, 3, 6 or
/// 9 digits as needed).
fn time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_bytes(),
        );
        return;
    }
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let year = year as u32;
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, t.month());
    out.push(b'-');
    two(out, t.day());
    out.push(b'T');
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    let nanos = t.nanosecond();
    // A leap second is carried in the nanoseconds (>= 1e9) and written as :60.
    two(out, t.second() + nanos / 1_000_000_000);
    let nanos = nanos % 1_000_000_000;
    let (value, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if digits > 0 {
        out.push(b'.');
        let text = format!("{value:0width$}", width = digits);
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::short_decimal;

    fn zmij(v: f64) -> String {
        zmij::Buffer::new().format_finite(v).to_string()
    }

    /// Where the fast path writes, it writes what zmij (and so serde_json) writes.
    fn check(v: f64) -> bool {
        let mut out = Vec::new();
        let taken = short_decimal(&mut out, v);
        if taken {
            assert_eq!(
                String::from_utf8_lossy(&out),
                zmij(v),
                "value {v:e} ({:#x})",
                v.to_bits()
            );
        } else {
            assert!(out.is_empty(), "wrote on refusal for {v:e}");
        }
        taken
    }

    #[test]
    fn sensor_decimals_are_written_as_zmij_writes_them() {
        let mut taken = 0;
        for k in 0..=3 {
            let scale = [1.0, 10.0, 100.0, 1000.0][k];
            for m in 0..120_000u64 {
                for sign in [1.0, -1.0] {
                    taken += usize::from(check(sign * m as f64 / scale));
                }
            }
        }
        // Every one of them has at most three fraction digits.
        assert_eq!(taken, 4 * 120_000 * 2);
    }

    #[test]
    fn other_values_are_refused_or_agree() {
        // Large decimals near the 15-digit limit, tiny and huge magnitudes, sums that
        // are not short decimals, and pseudo-random bit patterns.
        for v in [
            999_999_999_999_999.0,
            99_999_999_999_999.9,
            123_456_789_012.345,
            1e15,
            1e16,
            0.0005,
            0.0001,
            1e-7,
            0.1 + 0.2,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            -0.0,
            5e-324,
        ] {
            check(v);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                check(v);
            }
            // Decimals with up to 15 significant digits at every scale.
            let m = (x >> 14) % 1_000_000_000_000_000;
            for scale in [1.0, 10.0, 100.0, 1000.0, 10_000.0] {
                check(m as f64 / scale);
            }
        }
    }
}
