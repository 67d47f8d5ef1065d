//! JSON strings: object keys, strings into reused buffers, borrowed plain strings,
//! escapes.

use super::Key;
use super::reader::Reader;
use crate::error::{Error, Result};

impl Reader<'_> {
    /// An object key: the raw bytes when it has no escape, else decoded.
    #[inline]
    pub(super) fn key(&mut self) -> Result<Key> {
        self.expect(b'"')?;
        let start = self.i;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    let raw = &self.b[start..self.i];
                    if !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
                        return Err(Error::Decode("invalid UTF-8 in a key".into()));
                    }
                    let key = Key::from(raw);
                    self.i += 1;
                    return Ok(key);
                }
                // Escapes and control characters: the full string reader decides.
                b'\\' | 0..=0x1f => break,
                _ => self.i += 1,
            }
        }
        // Escapes (or EOF): decode the whole key.
        self.i = start - 1;
        let mut text = std::mem::take(&mut self.scratch);
        self.string_into(&mut text)?;
        let key = Key::from(text.as_bytes());
        self.scratch = text;
        Ok(key)
    }

    /// A JSON string into `out` (cleared first).
    #[inline]
    pub(super) fn string_into(&mut self, out: &mut String) -> Result<()> {
        out.clear();
        self.expect(b'"')?;
        loop {
            let rest = &self.b[self.i..];
            let stop = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or_else(|| Error::Decode("EOF while parsing a string".into()))?;
            push_utf8(out, &rest[..stop])?;
            self.i += stop;
            match rest[stop] {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    self.escape(out)?;
                }
                c => {
                    return Err(Error::Decode(format!(
                        "control character (\\u{c:04X}) found while parsing a string at byte {}",
                        self.i
                    )));
                }
            }
        }
    }

    /// A string without escapes, borrowed from the payload; `None` (nothing consumed)
    /// when it has an escape or a control character, so the caller decodes it in full.
    pub(super) fn plain_str(&mut self) -> Result<Option<&str>> {
        if self.peek() != Some(b'"') {
            return Ok(None);
        }
        let rest = &self.b[self.i + 1..];
        let Some(stop) = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        else {
            return Ok(None);
        };
        if rest[stop] != b'"' {
            return Ok(None);
        }
        let text = std::str::from_utf8(&rest[..stop])
            .map_err(|_| Error::Decode("invalid UTF-8 in a string".into()))?;
        self.i += stop + 2;
        Ok(Some(text))
    }

    pub(super) fn escape(&mut self, out: &mut String) -> Result<()> {
        let c = self.next()?;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                        return Err(Error::Decode("lone leading surrogate in hex escape".into()));
                    }
                    self.i += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(Error::Decode(
                            "invalid trailing surrogate in hex escape".into(),
                        ));
                    }
                    0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
                } else {
                    u32::from(hi)
                };
                char::from_u32(code)
                    .ok_or_else(|| Error::Decode("invalid unicode code point in escape".into()))?
            }
            other => return Err(self.unexpected(other, "an escape character")),
        };
        out.push(ch);
        Ok(())
    }

    pub(super) fn hex4(&mut self) -> Result<u16> {
        let hex = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| Error::Decode("EOF while parsing a hex escape".into()))?;
        let text =
            std::str::from_utf8(hex).map_err(|_| Error::Decode("invalid hex escape".into()))?;
        let v = u16::from_str_radix(text, 16)
            .map_err(|_| Error::Decode("invalid hex escape".into()))?;
        if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Decode("invalid hex escape".into()));
        }
        self.i += 4;
        Ok(v)
    }
}

fn push_utf8(out: &mut String, bytes: &[u8]) -> Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(s);
            Ok(())
        }
        Err(_) => Err(Error::Decode("invalid UTF-8 in a string".into())),
    }
}
