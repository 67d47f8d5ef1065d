//! Event times (RFC 3339) as the wire carries them.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Event times as RFC 3339, in any offset: the common `YYYY-MM-DDTHH:MM:SS[.f]Z` is read
/// by hand, anything else by chrono.
pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let fast = (|| {
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        if *b.last()? != b'Z' {
            return None;
        }
        let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (h, mi, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let nanos = match b[19] {
            b'Z' if b.len() == 20 => 0,
            b'.' => {
                let frac = &b[20..b.len() - 1];
                if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let mut v = 0u32;
                for &c in frac {
                    v = v * 10 + u32::from(c - b'0');
                }
                v * 10u32.pow(9 - frac.len() as u32)
            }
            _ => return None,
        };
        let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?;
        let time = chrono::NaiveTime::from_hms_nano_opt(h, mi, s, nanos)?;
        Some(date.and_time(time).and_utc())
    })();
    match fast {
        Some(t) => Ok(t),
        // chrono's own (slightly relaxed) RFC 3339, as its serde decoder reads it.
        None => text
            .parse::<DateTime<chrono::FixedOffset>>()
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::Decode(format!("event_time `{text}`: {e}"))),
    }
}
