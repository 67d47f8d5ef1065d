//! JSON numbers: the token as the grammar allows it, a fast exact path for plain
//! decimals, unsigned integers and finite floats.

use super::reader::Reader;
use crate::error::{Error, Result};

impl Reader<'_> {
    /// The text of a JSON number token (validated by the JSON grammar).
    pub(super) fn number_token(&mut self) -> Result<(&str, bool)> {
        let start = self.i;
        let mut integer = true;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            Some(c) => {
                self.i += 1;
                return Err(self.unexpected(c, "a number"));
            }
            None => return Err(Error::Decode("EOF while parsing a number".into())),
        }
        if self.peek() == Some(b'.') {
            integer = false;
            self.i += 1;
            let digits = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == digits {
                return Err(Error::Decode(format!("invalid number at byte {}", self.i)));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            let digits = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == digits {
                return Err(Error::Decode(format!("invalid number at byte {}", self.i)));
            }
        }
        // ASCII only by construction.
        let text = std::str::from_utf8(&self.b[start..self.i])
            .map_err(|_| Error::Decode("invalid number".into()))?;
        Ok((text, integer))
    }

    /// `-?digits[.digits]` with at most 15 significant digits, followed by a delimiter:
    /// exactly `mantissa / 10^k` (both exact in an f64, so the quotient is correctly
    /// rounded, as the standard parser's). Anything else is left to the full parser.
    #[inline]
    pub(super) fn simple_decimal(&mut self) -> Option<f64> {
        let b = &self.b[self.i..];
        let mut j = 0;
        let negative = b.first() == Some(&b'-');
        if negative {
            j = 1;
        }
        let int_start = j;
        let mut mantissa: u64 = 0;
        let mut digits = 0;
        j = significant_digits(b, j, &mut mantissa, &mut digits)?;
        let int_len = j - int_start;
        // JSON: no empty integer part, no leading zeros.
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut scale = 0;
        if b.get(j) == Some(&b'.') {
            j += 1;
            let frac_start = j;
            j = significant_digits(b, j, &mut mantissa, &mut digits)?;
            scale = j - frac_start;
            if scale == 0 {
                return None;
            }
        }
        match b.get(j) {
            Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') | None => {}
            _ => return None,
        }
        const POW10: [f64; 16] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        ];
        let v = mantissa as f64 / POW10[scale];
        self.i += j;
        Some(if negative { -v } else { v })
    }

    pub(super) fn unsigned(&mut self, field: &str) -> Result<u64> {
        let (text, integer) = self.number_token()?;
        // `-0` too: serde_json reads it as the float -0.0, not an integer.
        if !integer || text.starts_with('-') {
            return Err(Error::Decode(format!(
                "invalid type: `{text}` for `{field}`, expected an unsigned integer"
            )));
        }
        text.parse::<u64>()
            .map_err(|_| Error::Decode(format!("`{field}` {text} is out of range")))
    }

    #[inline]
    pub(super) fn float(&mut self) -> Result<f64> {
        if let Some(v) = self.simple_decimal() {
            return Ok(v);
        }
        let (text, _) = self.number_token()?;
        let v: f64 = text
            .parse()
            .map_err(|_| Error::Decode(format!("invalid number `{text}`")))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::Decode(format!("number `{text}` out of range")))
        }
    }
}

/// Reads the decimal digits of `b` from `j` on into `mantissa`, counting them in
/// `digits`; returns where they end, or `None` once there are more than 15 (past what
/// an f64 holds exactly).
#[inline(always)]
fn significant_digits(
    b: &[u8],
    mut j: usize,
    mantissa: &mut u64,
    digits: &mut u32,
) -> Option<usize> {
    while let Some(&c) = b.get(j) {
        if !c.is_ascii_digit() {
            break;
        }
        *mantissa = *mantissa * 10 + u64::from(c - b'0');
        *digits += 1;
        j += 1;
        if *digits > 15 {
            return None;
        }
    }
    Some(j)
}
