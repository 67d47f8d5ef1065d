//! The wire decoder the stream processor runs for every message: a JSON reader made for
//! the sample object, which fills a reused [`Sample`] in place (no allocation once its
//! strings have grown to size) and accepts exactly what the serde-derived decoder
//! accepts (a differential test compares the two on every shape of input).

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::sample::{Sample, Source};

/// Fields of a sample, as bits of the "seen" mask.
const EVENT_ID: u16 = 1;
const EVENT_TIME: u16 = 1 << 1;
const HOST: u16 = 1 << 2;
const GPU: u16 = 1 << 3;
const GPU_INDEX: u16 = 1 << 4;
const GPU_NAME: u16 = 1 << 5;
const SOURCE: u16 = 1 << 6;
const SESSION: u16 = 1 << 7;
const SEQ: u16 = 1 << 8;
const METRICS: u16 = 1 << 9;
const UNSUPPORTED: u16 = 1 << 10;
const EXTRA: u16 = 1 << 11;
const VERSION: u16 = 1 << 12;

/// The fields every message must have, with their names for the error.
const REQUIRED: &[(u16, &str)] = &[
    (EVENT_ID, "event_id"),
    (EVENT_TIME, "event_time"),
    (HOST, "host"),
    (GPU, "gpu"),
    (GPU_INDEX, "gpu_index"),
    (SOURCE, "source"),
    (SESSION, "session"),
    (SEQ, "seq"),
    (METRICS, "metrics"),
];

/// Decodes `payload` into `out`, reusing its allocations. On error `out` holds a partly
/// decoded sample and must not be used.
pub fn decode_into(payload: &[u8], out: &mut Sample) -> Result<()> {
    let mut r = Reader {
        b: payload,
        i: 0,
        scratch: String::new(),
    };
    out.metrics = Default::default();
    out.unsupported.clear();
    out.extra.clear();
    // `gpu_name` keeps its allocation: it is set to `None` below when absent.
    let mut seen = 0u16;
    r.ws();
    r.expect(b'{')?;
    r.ws();
    if r.peek() == Some(b'}') {
        r.i += 1;
    } else {
        loop {
            r.ws();
            let key = r.key()?;
            r.ws();
            r.expect(b':')?;
            r.ws();
            let bit = match key {
                Key::Version => {
                    let v = r.unsigned("schema_version")?;
                    if v != u64::from(super::SCHEMA_VERSION) {
                        return Err(Error::Decode(format!(
                            "unsupported schema_version {v} (this build reads {})",
                            super::SCHEMA_VERSION
                        )));
                    }
                    VERSION
                }
                Key::EventId => {
                    r.string_into(&mut out.event_id)?;
                    EVENT_ID
                }
                Key::EventTime => {
                    let mut text = std::mem::take(&mut r.scratch);
                    r.string_into(&mut text)?;
                    out.event_time = parse_time(&text)?;
                    r.scratch = text;
                    EVENT_TIME
                }
                Key::Host => {
                    r.string_into(&mut out.host)?;
                    HOST
                }
                Key::Gpu => {
                    r.string_into(&mut out.gpu)?;
                    GPU
                }
                Key::GpuIndex => {
                    let v = r.unsigned("gpu_index")?;
                    out.gpu_index = u32::try_from(v)
                        .map_err(|_| Error::Decode(format!("gpu_index {v} is out of range")))?;
                    GPU_INDEX
                }
                Key::GpuName => {
                    if r.null() {
                        out.gpu_name = None;
                    } else {
                        let mut name = out.gpu_name.take().unwrap_or_default();
                        r.string_into(&mut name)?;
                        out.gpu_name = Some(name);
                    }
                    GPU_NAME
                }
                Key::Source => {
                    let mut text = std::mem::take(&mut r.scratch);
                    r.string_into(&mut text)?;
                    out.source = match text.as_str() {
                        "gpuz" => Source::Gpuz,
                        "nvml" => Source::Nvml,
                        "sim" => Source::Sim,
                        other => {
                            return Err(Error::Decode(format!(
                                "unknown variant `{other}`, expected one of `gpuz`, `nvml`, `sim`"
                            )));
                        }
                    };
                    r.scratch = text;
                    SOURCE
                }
                Key::Session => {
                    r.string_into(&mut out.session)?;
                    SESSION
                }
                Key::Seq => {
                    out.seq = r.unsigned("seq")?;
                    SEQ
                }
                Key::Metrics => {
                    r.metrics(out)?;
                    METRICS
                }
                Key::Unsupported => {
                    r.unsupported(out)?;
                    UNSUPPORTED
                }
                Key::Extra => {
                    r.extra(out)?;
                    EXTRA
                }
                Key::Other => {
                    r.skip_value()?;
                    0
                }
            };
            if bit != 0 && seen & bit != 0 {
                return Err(Error::Decode(format!("duplicate field `{}`", key.name())));
            }
            seen |= bit;
            r.ws();
            match r.next()? {
                b',' => continue,
                b'}' => break,
                c => return Err(r.unexpected(c, "`,` or `}`")),
            }
        }
    }
    r.ws();
    if r.i != r.b.len() {
        return Err(Error::Decode(format!(
            "trailing characters at byte {}",
            r.i
        )));
    }
    if seen & GPU_NAME == 0 {
        out.gpu_name = None;
    }
    if seen & VERSION == 0 {
        return Err(Error::Decode("missing field `schema_version`".into()));
    }
    for (bit, name) in REQUIRED {
        if seen & bit == 0 {
            return Err(Error::Decode(format!("missing field `{name}`")));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Key {
    Version,
    EventId,
    EventTime,
    Host,
    Gpu,
    GpuIndex,
    GpuName,
    Source,
    Session,
    Seq,
    Metrics,
    Unsupported,
    Extra,
    Other,
}

impl Key {
    fn from(name: &[u8]) -> Key {
        match name {
            b"schema_version" => Key::Version,
            b"event_id" => Key::EventId,
            b"event_time" => Key::EventTime,
            b"host" => Key::Host,
            b"gpu" => Key::Gpu,
            b"gpu_index" => Key::GpuIndex,
            b"gpu_name" => Key::GpuName,
            b"source" => Key::Source,
            b"session" => Key::Session,
            b"seq" => Key::Seq,
            b"metrics" => Key::Metrics,
            b"unsupported" => Key::Unsupported,
            b"extra" => Key::Extra,
            _ => Key::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Key::Version => "schema_version",
            Key::EventId => "event_id",
            Key::EventTime => "event_time",
            Key::Host => "host",
            Key::Gpu => "gpu",
            Key::GpuIndex => "gpu_index",
            Key::GpuName => "gpu_name",
            Key::Source => "source",
            Key::Session => "session",
            Key::Seq => "seq",
            Key::Metrics => "metrics",
            Key::Unsupported => "unsupported",
            Key::Extra => "extra",
            Key::Other => "?",
        }
    }
}

/// Event times as RFC 3339, in any offset: the common `YYYY-MM-DDTHH:MM:SS[.f]Z` is read
/// by hand, anything else by chrono.
fn parse_time(text: &str) -> Result<DateTime<Utc>> {
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

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    scratch: String,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Result<u8> {
        let c = self
            .peek()
            .ok_or_else(|| Error::Decode(format!("EOF while parsing at byte {}", self.i)))?;
        self.i += 1;
        Ok(c)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn unexpected(&self, c: u8, wanted: &str) -> Error {
        Error::Decode(format!(
            "expected {wanted} at byte {}, found `{}`",
            self.i.saturating_sub(1),
            c.escape_ascii()
        ))
    }

    fn expect(&mut self, want: u8) -> Result<()> {
        let c = self.next()?;
        if c == want {
            Ok(())
        } else {
            Err(self.unexpected(c, &format!("`{}`", want as char)))
        }
    }

    /// `null` (consumed) or not (nothing consumed).
    fn null(&mut self) -> bool {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// An object key: the raw bytes when it has no escape, else decoded.
    fn key(&mut self) -> Result<Key> {
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
    fn string_into(&mut self, out: &mut String) -> Result<()> {
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
    fn plain_str(&mut self) -> Result<Option<&str>> {
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

    /// The metric a key without escapes names, read from the raw bytes (a catalogue
    /// name is ASCII, so a match needs no UTF-8 check); `None` (nothing consumed) for
    /// anything else, which the caller reads in full.
    fn metric_key(&mut self) -> Option<Metric> {
        let b: &[u8] = self.b;
        let rest = b
            .get(self.i + 1..)
            .filter(|_| b.get(self.i) == Some(&b'"'))?;
        let stop = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[stop] != b'"' {
            return None;
        }
        let metric = Metric::from_column_bytes(&rest[..stop])?;
        self.i += stop + 2;
        Some(metric)
    }

    fn escape(&mut self, out: &mut String) -> Result<()> {
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

    fn hex4(&mut self) -> Result<u16> {
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

    /// The text of a JSON number token (validated by the JSON grammar).
    fn number_token(&mut self) -> Result<(&str, bool)> {
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
    fn simple_decimal(&mut self) -> Option<f64> {
        let b = &self.b[self.i..];
        let mut j = 0;
        let negative = b.first() == Some(&b'-');
        if negative {
            j = 1;
        }
        let int_start = j;
        let mut mantissa: u64 = 0;
        let mut digits = 0;
        while let Some(&c) = b.get(j) {
            if !c.is_ascii_digit() {
                break;
            }
            mantissa = mantissa * 10 + u64::from(c - b'0');
            digits += 1;
            j += 1;
            if digits > 15 {
                return None;
            }
        }
        let int_len = j - int_start;
        // JSON: no empty integer part, no leading zeros.
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut scale = 0;
        if b.get(j) == Some(&b'.') {
            j += 1;
            let frac_start = j;
            while let Some(&c) = b.get(j) {
                if !c.is_ascii_digit() {
                    break;
                }
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                j += 1;
                if digits > 15 {
                    return None;
                }
            }
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

    fn unsigned(&mut self, field: &str) -> Result<u64> {
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

    fn float(&mut self) -> Result<f64> {
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

    /// `{"column": number, ...}` into the sample's metric slots.
    fn metrics(&mut self, out: &mut Sample) -> Result<()> {
        self.object(|r| {
            let metric = match r.metric_key() {
                Some(m) => m,
                None => r.metric_name()?,
            };
            r.ws();
            r.expect(b':')?;
            r.ws();
            let value = r.float()?;
            out.metrics.set(metric, value);
            Ok(())
        })
    }

    /// A metric key read in full (escapes, or an unknown name for the error).
    fn metric_name(&mut self) -> Result<Metric> {
        if let Some(name) = self.plain_str()? {
            return Metric::from_column(name)
                .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")));
        }
        let mut name = std::mem::take(&mut self.scratch);
        self.string_into(&mut name)?;
        let m = Metric::from_column(&name)
            .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")));
        self.scratch = name;
        m
    }

    /// `{"name": number, ...}` into the sample's extra columns.
    fn extra(&mut self, out: &mut Sample) -> Result<()> {
        self.object(|r| {
            let mut name = String::new();
            r.string_into(&mut name)?;
            r.ws();
            r.expect(b':')?;
            r.ws();
            let value = r.float()?;
            out.extra.insert(name, value);
            Ok(())
        })
    }

    /// `["column", ...]` into the sample's unsupported metrics.
    fn unsupported(&mut self, out: &mut Sample) -> Result<()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let mut name = std::mem::take(&mut self.scratch);
            self.string_into(&mut name)?;
            let metric = Metric::from_column(&name)
                .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")))?;
            out.unsupported.push(metric);
            self.scratch = name;
            self.ws();
            match self.next()? {
                b',' => continue,
                b']' => return Ok(()),
                c => return Err(self.unexpected(c, "`,` or `]`")),
            }
        }
    }

    /// An object whose members `member` reads (from the key on).
    fn object(&mut self, mut member: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
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

    /// Skips any JSON value as serde_json skips an unknown field (`IgnoredAny`): the
    /// grammar is checked, but neither the UTF-8 of strings nor the code points of `\u`
    /// escapes, and nesting is unlimited (an explicit stack, not recursion).
    fn skip_value(&mut self) -> Result<()> {
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
    fn skip_key(&mut self) -> Result<()> {
        self.expect(b'"')?;
        self.skip_str()?;
        self.ws();
        self.expect(b':')
    }

    /// The rest of a string being skipped, from after its opening quote.
    fn skip_str(&mut self) -> Result<()> {
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

fn push_utf8(out: &mut String, bytes: &[u8]) -> Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(s);
            Ok(())
        }
        Err(_) => Err(Error::Decode("invalid UTF-8 in a string".into())),
    }
}
