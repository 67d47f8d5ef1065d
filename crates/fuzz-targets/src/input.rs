//! Structured values from fuzzer bytes: a cursor that never fails (an exhausted input
//! reads as zeros), so every byte string is a valid test case and small mutations make
//! small changes.

/// Reads values from the front of a byte string.
pub struct Input<'a> {
    bytes: &'a [u8],
}

/// Characters a key, tag value or string is built from: every one the InfluxDB
/// escaping rules or a JSON/TOML reader treats specially, then plain and multi-byte ones.
const ALPHABET: &[char] = &[
    '\\', ',', '=', ' ', '"', '\t', '\n', '\r', '#', '\'', '_', '\0', '\u{1}', '\u{7f}', '\u{a0}',
    'é', '°', '東', '🚀', '\u{feff}', '\u{2028}', 'a', 'b', 'z', 'A', '0', '9', '.', '-', '[', ']',
    '{', '}',
];

impl<'a> Input<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One byte (0 once the input is exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    /// `N` bytes, zero-padded.
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    /// A `u32`, little endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A `u64`, little endian.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// An `i64`, little endian.
    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    /// Whether the next byte is odd.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A value below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// An `f64`: mostly plain decimals, sometimes any bit pattern (NaN, infinities,
    /// subnormals, huge magnitudes).
    pub fn f64(&mut self) -> f64 {
        match self.byte() % 4 {
            0 => f64::from_bits(self.u64()),
            1 => f64::from(self.u32()) / 1000.0,
            2 => -f64::from(self.byte()) * 0.5,
            _ => f64::from(self.byte()),
        }
    }

    /// A string of up to 15 characters: each byte picks a character of [`ALPHABET`] or
    /// stands for itself when it is printable ASCII.
    pub fn string(&mut self) -> String {
        let len = usize::from(self.byte() % 16);
        (0..len)
            .map(|_| {
                let b = self.byte();
                match ALPHABET.get(usize::from(b)) {
                    Some(&c) => c,
                    None if b.is_ascii_graphic() => char::from(b),
                    None => ALPHABET[usize::from(b) % ALPHABET.len()],
                }
            })
            .collect()
    }
}
