//! Unknown fields, stepped over as serde skips them.

use super::reader::Reader;
use crate::error::{Error, Result};

impl Reader<'_> {
    /// Skips any JSON value as serde_json skips an unknown field (`IgnoredAny`): the
    /// grammar is checked, but neither the UTF-8 of strings nor the code points of `\u`
    /// escapes, and nesting is unlimited (an explicit stack, not recursion).
    pub(super) fn skip_value(&mut self) -> Result<()> {
        // The containers open around the value being read, innermost last.
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    self.skip_str()?;
                }
                Some(c @ (b'{' | b'[')) => {
                    self.i += 1;
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        open.push(c);
                        if c == b'{' {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                Some(b't') if self.b[self.i..].starts_with(b"true") => self.i += 4,
                Some(b'f') if self.b[self.i..].starts_with(b"false") => self.i += 5,
                Some(b'n') if self.null() => {}
                _ => {
                    self.number_token()?;
                }
            }
            // A value ended: close what it ends, or go on to the next member.
            loop {
                let Some(&container) = open.last() else {
                    return Ok(());
                };
                self.ws();
                match (container, self.next()?) {
                    (b'{', b',') => {
                        self.ws();
                        self.skip_key()?;
                        break;
                    }
                    (_, b',') => break,
                    (b'{', b'}') | (b'[', b']') => {
                        open.pop();
                    }
                    (b'{', c) => return Err(self.unexpected(c, "`,` or `}`")),
                    (_, c) => return Err(self.unexpected(c, "`,` or `]`")),
                }
            }
        }
    }

    /// `"key":` of an object being skipped.
    pub(super) fn skip_key(&mut self) -> Result<()> {
        self.expect(b'"')?;
        self.skip_str()?;
        self.ws();
        self.expect(b':')
    }

    /// The rest of a string being skipped, from after its opening quote.
    pub(super) fn skip_str(&mut self) -> Result<()> {
        loop {
            let rest = &self.b[self.i..];
            let stop = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or_else(|| Error::Decode("EOF while parsing a string".into()))?;
            self.i += stop + 1;
            match rest[stop] {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        self.hex4()?;
                    }
                    other => return Err(self.unexpected(other, "an escape character")),
                },
                c => {
                    return Err(Error::Decode(format!(
                        "control character (\\u{c:04X}) found while parsing a string at byte {}",
                        self.i - 1
                    )));
                }
            }
        }
    }
}
