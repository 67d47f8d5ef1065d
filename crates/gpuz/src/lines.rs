//! A log read line by line through one fixed buffer, whatever its size.
//!
//! The encoding is decided on the first 64 bytes (a BOM, or UTF-16 without one); lines
//! end at `\n` (a `\r` before it is left for the parser) and at a run of NUL characters,
//! which counts as one line break: a hole left by truncation, however long, is never
//! held in memory. A line that crosses the end of the buffer is carried over, up to
//! [`MAX_LINE`] bytes; a longer one is reported with its length and its start only.
//!
//! Single-byte text (no BOM, not UTF-16) is UTF-8 when the whole log is valid UTF-8 and
//! Latin-1 otherwise. A reader that has not seen the whole log decides line by line
//! ([`SingleByte::PerLine`]); a first pass tells the second which one it is.

use std::io::{self, Read};

use crate::decode::{Encoding, detect, latin1_into, utf16_into};

/// Buffer size of [`LineReader::new`].
pub const DEFAULT_BUFFER: usize = 64 * 1024;
/// The smallest buffer: the start of a log that tells its encoding must fit.
pub const MIN_BUFFER: usize = 64;
/// Longest line kept whole, in bytes of the file. GPU-Z lines are under 1 KiB.
pub const MAX_LINE: usize = 1 << 20;

/// How single-byte text (no BOM, not UTF-16) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleByte {
    /// Each line as UTF-8 when it is valid UTF-8, else as Latin-1: what can be decided
    /// without having read the whole log.
    PerLine,
    /// Every line as UTF-8 (the whole log is valid UTF-8).
    Utf8,
    /// Every line as Latin-1 (the log is not valid UTF-8).
    Latin1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// UTF-8; invalid sequences become U+FFFD.
    Utf8,
    Latin1,
    PerLine,
    Utf16 {
        little_endian: bool,
    },
}

impl Mode {
    fn unit(self) -> usize {
        match self {
            Mode::Utf16 { .. } => 2,
            _ => 1,
        }
    }
}

/// One line of a log.
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based line number, counting a NUL run as a line break.
    pub no: usize,
    /// The text, without its line break (a `\r` before it is kept).
    pub text: &'a str,
    /// For a line longer than [`MAX_LINE`]: its length in bytes (`text` is its start).
    pub too_long: Option<u64>,
}

/// Where the bytes of the line being returned are.
enum Span {
    /// `buf[a..b]`; `true` when known to be all ASCII.
    Buffer(usize, usize, bool),
    Carry,
}

/// Reads a log line by line (see the module documentation).
pub struct LineReader<R> {
    src: R,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    /// Set once the start of the log was read.
    mode: Option<Mode>,
    encoding: Option<Encoding>,
    single_byte: SingleByte,
    /// The start of a line longer than what is left of the buffer.
    carry: Vec<u8>,
    /// Bytes of that line so far, kept or not.
    carry_len: u64,
    text: String,
    line_no: usize,
    /// Inside a NUL run whose first NUL already ended a line.
    in_nul_run: bool,
    finished: bool,
    /// Single-byte text: every line so far was valid UTF-8.
    all_utf8: bool,
    /// Single-byte text read per line: a line with non-ASCII characters was read as UTF-8.
    read_non_ascii_utf8: bool,
    bytes_read: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader with a [`DEFAULT_BUFFER`]-byte buffer.
    pub fn new(src: R, single_byte: SingleByte) -> Self {
        Self::with_buffer(src, single_byte, DEFAULT_BUFFER)
    }

    /// A reader with a buffer of `capacity` bytes (at least [`MIN_BUFFER`]).
    pub fn with_buffer(src: R, single_byte: SingleByte, capacity: usize) -> Self {
        LineReader {
            src,
            buf: vec![0; capacity.max(MIN_BUFFER)].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            mode: None,
            encoding: None,
            single_byte,
            carry: Vec::new(),
            carry_len: 0,
            text: String::new(),
            line_no: 0,
            in_nul_run: false,
            finished: false,
            all_utf8: true,
            read_non_ascii_utf8: false,
            bytes_read: 0,
        }
    }

    /// The encoding: known from the start of the log, except for single-byte text read
    /// per line, which is known at its end (`None` before).
    pub fn encoding(&self) -> Option<Encoding> {
        match self.mode {
            Some(Mode::PerLine) if !self.finished => None,
            Some(Mode::PerLine) if self.all_utf8 => Some(Encoding::Utf8),
            Some(Mode::PerLine) => Some(Encoding::Latin1),
            _ => self.encoding,
        }
    }

    /// Whether some line would read differently once the whole log's encoding is known:
    /// single-byte text read per line, not all valid UTF-8, and a line with non-ASCII
    /// characters that was read as UTF-8 (Latin-1 would have read it otherwise).
    pub fn read_lines_differently(&self) -> bool {
        self.mode == Some(Mode::PerLine) && !self.all_utf8 && self.read_non_ascii_utf8
    }

    /// Bytes read from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line, `None` at the end of the log.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mode = match self.mode {
            Some(m) => m,
            None => self.start()?,
        };
        let unit = mode.unit();
        self.carry.clear();
        self.carry_len = 0;
        let span = loop {
            if self.finished {
                return Ok(None);
            }
            let window = &self.buf[self.pos..self.end];
            let usable = window.len() - window.len() % unit;
            if self.in_nul_run {
                let skip = leading_nul_units(&window[..usable], unit);
                self.pos += skip;
                if skip == usable && !self.eof {
                    self.fill(unit)?;
                    continue;
                }
                self.in_nul_run = false;
                continue;
            }
            match find_break(&window[..usable], mode) {
                Some((at, nul, ascii)) => {
                    let span = (self.pos, self.pos + at);
                    self.pos += at + unit;
                    self.in_nul_run = nul;
                    break self.take(span, ascii);
                }
                None if self.eof => {
                    // The last line (an odd last byte of UTF-16 is no character).
                    self.finished = true;
                    let span = (self.pos, self.pos + usable);
                    self.pos = self.end;
                    if span.0 == span.1 && self.carry_len == 0 {
                        return Ok(None);
                    }
                    break self.take(span, false);
                }
                None => self.fill(unit)?,
            }
        };
        self.line_no += 1;
        let too_long = (self.carry_len > MAX_LINE as u64).then_some(self.carry_len);
        let (bytes, known_ascii) = match span {
            Span::Buffer(a, b, ascii) => (&self.buf[a..b], ascii),
            Span::Carry => (&self.carry[..], false),
        };
        // Known from the search for the line break, or looked at only where it matters.
        let ascii = || known_ascii || bytes.is_ascii();
        let text = match mode {
            Mode::Utf16 { little_endian } => {
                self.text.clear();
                utf16_into(bytes, little_endian, &mut self.text);
                self.text.as_str()
            }
            Mode::Latin1 => {
                if ascii()
                    && let Ok(s) = std::str::from_utf8(bytes)
                {
                    s
                } else {
                    self.text.clear();
                    latin1_into(bytes, &mut self.text);
                    self.text.as_str()
                }
            }
            Mode::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => s,
                Err(_) => {
                    self.text.clear();
                    self.text.push_str(&String::from_utf8_lossy(bytes));
                    self.text.as_str()
                }
            },
            Mode::PerLine => match std::str::from_utf8(bytes) {
                Ok(s) => {
                    self.read_non_ascii_utf8 |= !ascii();
                    s
                }
                Err(_) => {
                    self.all_utf8 = false;
                    self.text.clear();
                    latin1_into(bytes, &mut self.text);
                    self.text.as_str()
                }
            },
        };
        Ok(Some(Line {
            no: self.line_no,
            text,
            too_long,
        }))
    }

    /// Reads the start of the log and decides how to read it.
    fn start(&mut self) -> io::Result<Mode> {
        while self.end < MIN_BUFFER && !self.eof {
            self.read_more()?;
        }
        let head = &self.buf[..self.end];
        let (mode, encoding, skip) = match detect(head) {
            Some((Encoding::Utf16Le, bom)) => (
                Mode::Utf16 {
                    little_endian: true,
                },
                Some(Encoding::Utf16Le),
                bom,
            ),
            Some((Encoding::Utf16Be, bom)) => (
                Mode::Utf16 {
                    little_endian: false,
                },
                Some(Encoding::Utf16Be),
                bom,
            ),
            Some((enc, bom)) => (Mode::Utf8, Some(enc), bom),
            None => match self.single_byte {
                SingleByte::PerLine => (Mode::PerLine, None, 0),
                SingleByte::Utf8 => (Mode::Utf8, Some(Encoding::Utf8), 0),
                SingleByte::Latin1 => (Mode::Latin1, Some(Encoding::Latin1), 0),
            },
        };
        self.pos = skip;
        self.mode = Some(mode);
        self.encoding = encoding;
        Ok(mode)
    }

    /// Ends the line at `buf[a..b]` (`ascii`: known to be all ASCII): in the buffer, or
    /// after what was carried over.
    fn take(&mut self, (a, b): (usize, usize), ascii: bool) -> Span {
        if self.carry_len == 0 {
            self.carry_len = (b - a) as u64;
            Span::Buffer(a, b, ascii)
        } else {
            self.keep(a, b);
            Span::Carry
        }
    }

    /// Adds `buf[a..b]` (whole units) to the carried line, up to [`MAX_LINE`] bytes.
    fn keep(&mut self, a: usize, b: usize) {
        let unit = self.mode.map_or(1, Mode::unit);
        self.carry_len += (b - a) as u64;
        let room = MAX_LINE.saturating_sub(self.carry.len());
        let n = (b - a).min(room);
        let n = n - n % unit;
        self.carry.extend_from_slice(&self.buf[a..a + n]);
    }

    /// Makes room and reads more. Called when the unread bytes hold no line break.
    fn fill(&mut self, unit: usize) -> io::Result<()> {
        if self.end == self.buf.len() {
            if self.pos == 0 {
                // A line longer than the buffer: keep its start aside.
                let usable = self.end - self.end % unit;
                if !self.in_nul_run {
                    self.keep(0, usable);
                }
                self.pos = usable;
            }
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        self.read_more()
    }

    fn read_more(&mut self) -> io::Result<()> {
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Count of NUL units at the start of `bytes`.
fn leading_nul_units(bytes: &[u8], unit: usize) -> usize {
    bytes
        .chunks_exact(unit)
        .take_while(|u| u.iter().all(|&b| b == 0))
        .count()
        * unit
}

/// The first line break in `bytes`: its offset, whether it is a NUL (else `\n`), and
/// whether the bytes before it are all ASCII (known for single-byte text only).
fn find_break(bytes: &[u8], mode: Mode) -> Option<(usize, bool, bool)> {
    match mode {
        Mode::Utf16 { little_endian } => {
            let nl: [u8; 2] = if little_endian {
                [b'\n', 0]
            } else {
                [0, b'\n']
            };
            bytes
                .chunks_exact(2)
                .position(|u| u == nl || u == [0, 0])
                .map(|i| (2 * i, bytes[2 * i] == bytes[2 * i + 1], false))
        }
        _ => find_nl_or_nul(bytes).map(|(i, ascii)| (i, bytes[i] == 0, ascii)),
    }
}

/// The first `\n` or NUL byte, eight bytes at a time, and whether every byte before it
/// is ASCII (which spares the text decoder a pass of its own).
fn find_nl_or_nul(bytes: &[u8]) -> Option<(usize, bool)> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    // Flags zero bytes; the lowest flag is exact (a borrow only flags bytes above it).
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut high = 0;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let x = u64::from_le_bytes(word);
        let hit = zero(x) | zero(x ^ NL);
        if hit != 0 {
            let at = hit.trailing_zeros() / 8;
            let before = (1u64 << (8 * at)) - 1;
            high |= x & HI & before;
            return Some((base + at as usize, high == 0));
        }
        high |= x & HI;
        base += 8;
    }
    let mut ascii = high == 0;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b'\n' || b == 0 {
            return Some((base + i, ascii));
        }
        ascii &= b.is_ascii();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `n` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines_with(
        bytes: &[u8],
        cap: usize,
        step: usize,
    ) -> (Vec<(usize, String)>, Option<Encoding>) {
        let mut r = LineReader::with_buffer(Trickle(bytes, step), SingleByte::PerLine, cap);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().expect("read") {
            out.push((l.no, l.text.to_string()));
        }
        (out, r.encoding())
    }

    /// Every buffer size and read size gives the same lines.
    fn lines(bytes: &[u8]) -> (Vec<(usize, String)>, Option<Encoding>) {
        let first = lines_with(bytes, DEFAULT_BUFFER, usize::MAX);
        for (cap, step) in [(64, 1), (65, 3), (64, 64), (100, 7), (4096, 4096)] {
            assert_eq!(
                lines_with(bytes, cap, step),
                first,
                "buffer {cap}, reads of {step}"
            );
        }
        first
    }

    fn texts(v: &[(usize, String)]) -> Vec<&str> {
        v.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn find_nl_or_nul_matches_a_plain_search() {
        let mut bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251 + 1) as u8).collect();
        bytes.retain(|&b| b != b'\n');
        assert_eq!(find_nl_or_nul(&bytes), None);
        for at in [0, 1, 7, 8, 9, 15, 16, 100, 299.min(bytes.len() - 1)] {
            for b in [0u8, b'\n'] {
                let mut v = bytes.clone();
                v[at] = b;
                if at + 3 < v.len() {
                    v[at + 3] = 0;
                }
                assert_eq!(find_nl_or_nul(&v).map(|f| f.0), Some(at), "{b} at {at}");
            }
        }
        // 0x80 and 0x8a bytes next to a match must not hide it.
        assert_eq!(
            find_nl_or_nul(&[0x80, 0x8a, 0x0b, 0x09, 1, 0x0a, 0, 0]),
            Some((5, false))
        );
        // Whether the bytes before the break are ASCII, wherever a high byte sits.
        for len in 0..20 {
            for high in 0..=len {
                let mut v = vec![b'a'; len];
                v.push(b'\n');
                v.extend_from_slice(&[0xb0; 9]);
                if high < len {
                    v[high] = 0xb0;
                }
                assert_eq!(find_nl_or_nul(&v), Some((len, high == len)), "{len} {high}");
            }
        }
    }

    #[test]
    fn latin1_degree_sign_and_crlf() {
        let (l, e) = lines(b"Date , GPU Temperature [\xb0C] ,\r\n2024-01-01 00:00:00 , 1 ,\r\n");
        assert_eq!(e, Some(Encoding::Latin1));
        assert_eq!(
            texts(&l),
            [
                "Date , GPU Temperature [°C] ,\r",
                "2024-01-01 00:00:00 , 1 ,\r"
            ]
        );
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let s = "Date , GPU Load [%] ,\n1 , 2 ,";
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let le_nobom: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for (bytes, enc) in [(be, Encoding::Utf16Be), (le_nobom, Encoding::Utf16Le)] {
            let (l, e) = lines(&bytes);
            assert_eq!(e, Some(enc));
            assert_eq!(texts(&l), ["Date , GPU Load [%] ,", "1 , 2 ,"]);
        }
    }

    #[test]
    fn utf8_with_bom_is_lossy_and_without_bom_is_per_line() {
        let (l, e) = lines(b"\xef\xbb\xbfDate , T [\xe2\x82] ,\n");
        assert_eq!(e, Some(Encoding::Utf8));
        assert_eq!(texts(&l), ["Date , T [\u{fffd}] ,"]);
        let (l, e) = lines("Date , T [°C] ,\n".as_bytes());
        assert_eq!(e, Some(Encoding::Utf8));
        assert_eq!(texts(&l), ["Date , T [°C] ,"]);
    }

    #[test]
    fn nul_runs_are_one_line_break_and_count_as_one() {
        let mut bytes = b"Date , A [V] ,".to_vec();
        bytes.extend(std::iter::repeat_n(0u8, 10_000));
        bytes.extend_from_slice(b"2023-01-01 00:00:00 , 1.0 ,\n\0\0\nx");
        let (l, _) = lines(&bytes);
        assert_eq!(
            l,
            [
                (1, "Date , A [V] ,".to_string()),
                (2, "2023-01-01 00:00:00 , 1.0 ,".to_string()),
                (3, String::new()),
                (4, String::new()),
                (5, "x".to_string()),
            ]
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut_and_measured() {
        let mut bytes = vec![b'a'; MAX_LINE + 5000];
        bytes.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::with_buffer(&bytes[..], SingleByte::PerLine, 4096);
        let l = r.next_line().expect("read").expect("line");
        assert_eq!(l.too_long, Some(MAX_LINE as u64 + 5000));
        assert_eq!(l.text.len(), MAX_LINE);
        let l = r.next_line().expect("read").expect("line");
        assert_eq!((l.no, l.text, l.too_long), (2, "next", None));
        assert!(r.next_line().expect("read").is_none());
    }

    #[test]
    fn mixed_single_byte_text_is_flagged_for_a_second_reading() {
        let mut r = LineReader::new(&b"caf\xc3\xa9\n\xb0C\n"[..], SingleByte::PerLine);
        while r.next_line().expect("read").is_some() {}
        assert_eq!(r.encoding(), Some(Encoding::Latin1));
        assert!(r.read_lines_differently());
        let mut r = LineReader::new(&b"caf\xc3\xa9\n\xb0C\n"[..], SingleByte::Latin1);
        let l = r.next_line().expect("read").expect("line");
        assert_eq!(l.text, "caf\u{c3}\u{a9}");
    }

    /// The same lines, numbered the same, as the whole text [`crate::decode::decode`]
    /// gives, for seeded random bytes in every encoding.
    #[test]
    fn agrees_with_decoding_the_whole_log() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let alphabet = b"\0\0\n\n\r,. 0123456789abcDate\xb0\xc3\xa9\xd8\xdc\xff\xfe\xef\xbb\xbf";
        for round in 0..400 {
            let len = usize::from(next()) * (1 + round % 7);
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[usize::from(next()) % alphabet.len()])
                .collect();
            let bom: &[u8] = match round % 5 {
                0 => &[0xFF, 0xFE],
                1 => &[0xFE, 0xFF],
                2 => &[0xEF, 0xBB, 0xBF],
                _ => &[],
            };
            bytes.splice(0..0, bom.iter().copied());
            let (text, encoding) = crate::decode::decode(&bytes);
            let mut want: Vec<&str> = text.split('\n').collect();
            if want.last() == Some(&"") {
                want.pop();
            }
            let single_byte = if std::str::from_utf8(&bytes).is_ok() {
                SingleByte::Utf8
            } else {
                SingleByte::Latin1
            };
            for (cap, step) in [(DEFAULT_BUFFER, usize::MAX), (64, 5), (65, 1)] {
                let mut r = LineReader::with_buffer(Trickle(&bytes, step), single_byte, cap);
                let mut got = Vec::new();
                while let Some(l) = r.next_line().expect("read") {
                    assert_eq!(l.no, got.len() + 1);
                    got.push(l.text.to_string());
                }
                assert_eq!(got, want, "round {round}, buffer {cap}, {bytes:?}");
                assert_eq!(r.encoding(), Some(encoding), "round {round}");
            }
        }
    }
}
