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
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
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
