//! The byte scanner every part of the decoder reads through: a cursor over the payload,
//! whitespace, single expected bytes, `null`, and objects member by member.

use crate::error::{Error, Result};

/// A cursor over one payload.
pub(super) struct Reader<'a> {
    /// The payload.
    pub(super) b: &'a [u8],
    /// The next byte to read.
    pub(super) i: usize,
    /// A string reused for text that is read, looked at and dropped (keys, names).
    pub(super) scratch: String,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `payload`.
    pub(super) fn new(payload: &'a [u8]) -> Self {
        Reader {
            b: payload,
            i: 0,
            scratch: String::new(),
        }
    }
}

impl Reader<'_> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(super) fn next(&mut self) -> Result<u8> {
        let c = self
            .peek()
            .ok_or_else(|| Error::Decode(format!("EOF while parsing at byte {}", self.i)))?;
        self.i += 1;
        Ok(c)
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    pub(super) fn unexpected(&self, c: u8, wanted: &str) -> Error {
        Error::Decode(format!(
            "expected {wanted} at byte {}, found `{}`",
            self.i.saturating_sub(1),
            c.escape_ascii()
        ))
    }

    #[inline]
    pub(super) fn expect(&mut self, want: u8) -> Result<()> {
        let c = self.next()?;
        if c == want {
            Ok(())
        } else {
            Err(self.unexpected(c, &format!("`{}`", want as char)))
        }
    }

    /// `null` (consumed) or not (nothing consumed).
    #[inline]
    pub(super) fn null(&mut self) -> bool {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// An object whose members `member` reads (from the key on).
    pub(super) fn object(&mut self, mut member: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            member(self)?;
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(()),
                c => return Err(self.unexpected(c, "`,` or `}`")),
            }
        }
    }
}
