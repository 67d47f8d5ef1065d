//! Byte → text decoding of GPU-Z logs.
//!
//! GPU-Z writes single-byte Windows-1252/Latin-1 text (the degree sign is 0xB0, which a
//! strict UTF-8 decoder rejects). Copies re-saved by other tools are UTF-16 LE/BE or
//! UTF-8, usually with a BOM. NUL holes (left when another program truncates a live log)
//! are turned into line breaks: what follows a hole starts a fresh line.

/// The encoding a log was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    /// UTF-8 (with or without BOM).
    Utf8,
    /// UTF-16 little endian.
    Utf16Le,
    /// UTF-16 big endian.
    Utf16Be,
    /// Latin-1 / Windows-1252 (GPU-Z's own output).
    Latin1,
}

/// Decodes a whole log into text with `\n` line breaks only where lines end
/// (CR before LF is left for the line splitter) and NUL runs replaced by one `\n`.
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    let (text, enc) = if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        (decode_utf16(rest, u16::from_be_bytes), Encoding::Utf16Be)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        (decode_utf16(rest, u16::from_le_bytes), Encoding::Utf16Le)
    } else if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        (String::from_utf8_lossy(rest).into_owned(), Encoding::Utf8)
    } else if looks_utf16(bytes, true) {
        (decode_utf16(bytes, u16::from_le_bytes), Encoding::Utf16Le)
    } else if looks_utf16(bytes, false) {
        (decode_utf16(bytes, u16::from_be_bytes), Encoding::Utf16Be)
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_string(), Encoding::Utf8),
            Err(_) => (latin1(bytes), Encoding::Latin1),
        }
    };
    (replace_nul_runs(text), enc)
}

/// How the start of a file says it is encoded: the encoding and the length of its BOM.
/// `None` while too few bytes are there to tell (a log still being written).
///
/// ```
/// use gpuz::decode::{sniff, Encoding};
/// assert_eq!(sniff(&[0xFF, 0xFE, b'D', 0]), Some((Encoding::Utf16Le, 2)));
/// assert_eq!(sniff(b"Date , GPU Load [%] ,\r\n"), Some((Encoding::Latin1, 0)));
/// assert_eq!(sniff(b"Da"), None);
/// ```
pub fn sniff(bytes: &[u8]) -> Option<(Encoding, usize)> {
    if bytes.starts_with(&[0xFE, 0xFF]) {
        Some((Encoding::Utf16Be, 2))
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        Some((Encoding::Utf16Le, 2))
    } else if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((Encoding::Utf8, 3))
    } else if bytes.len() < 8 {
        None
    } else if looks_utf16(bytes, true) {
        Some((Encoding::Utf16Le, 0))
    } else if looks_utf16(bytes, false) {
        Some((Encoding::Utf16Be, 0))
    } else {
        // Single-byte text: each line is read as UTF-8 if it is valid, else Latin-1.
        Some((Encoding::Latin1, 0))
    }
}

/// Decodes a piece of a log whose encoding is known (a line, in follow mode), NUL runs
/// replaced by one `\n` as in [`decode`]. Single-byte pieces that are valid UTF-8 are
/// read as UTF-8, others as Latin-1.
pub fn decode_as(bytes: &[u8], encoding: Encoding) -> String {
    let text = match encoding {
        Encoding::Utf16Le => decode_utf16(bytes, u16::from_le_bytes),
        Encoding::Utf16Be => decode_utf16(bytes, u16::from_be_bytes),
        Encoding::Utf8 | Encoding::Latin1 => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => latin1(bytes),
        },
    };
    replace_nul_runs(text)
}

/// Latin-1 maps every byte to the code point of the same value. Runs of ASCII are copied
/// as they are (a log is almost all ASCII); only bytes ≥ 0x80 become two UTF-8 bytes.
fn latin1(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 64);
    let mut rest = bytes;
    while !rest.is_empty() {
        let ascii = rest
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        // An ASCII run is valid UTF-8 as it is.
        out.push_str(std::str::from_utf8(run).unwrap_or_default());
        if let Some((&b, after)) = tail.split_first() {
            out.push(char::from(b));
            rest = after;
        } else {
            rest = tail;
        }
    }
    out
}

/// BOM-less UTF-16: ASCII text has a zero in every other byte of the first line.
fn looks_utf16(bytes: &[u8], little_endian: bool) -> bool {
    let probe = &bytes[..bytes.len().min(64) & !1];
    if probe.len() < 8 {
        return false;
    }
    probe.chunks_exact(2).all(|p| {
        let (lo, hi) = if little_endian {
            (p[0], p[1])
        } else {
            (p[1], p[0])
        };
        hi == 0 && lo != 0 && lo.is_ascii()
    })
}

fn decode_utf16(bytes: &[u8], from: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| from([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn replace_nul_runs(text: String) -> String {
    if !text.contains('\0') {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut in_hole = false;
    for c in text.chars() {
        if c == '\0' {
            if !in_hole {
                out.push('\n');
                in_hole = true;
            }
        } else {
            in_hole = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_fast_path_matches_per_byte_mapping() {
        let bytes: Vec<u8> = (0u8..=255)
            .chain(b"abc \xb0C\xff".iter().copied())
            .collect();
        let slow: String = bytes.iter().map(|&b| b as char).collect();
        assert_eq!(latin1(&bytes), slow);
        assert_eq!(latin1(b""), "");
    }

    #[test]
    fn latin1_degree_sign() {
        let (t, e) = decode(b"Date , GPU Temperature [\xb0C] ,\r\n");
        assert_eq!(e, Encoding::Latin1);
        assert!(t.contains("[°C]"));
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let s = "Date , GPU Load [%] ,\n";
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(s.encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(s.encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        let le_nobom: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&be), (s.to_string(), Encoding::Utf16Be));
        assert_eq!(decode(&le), (s.to_string(), Encoding::Utf16Le));
        assert_eq!(decode(&le_nobom), (s.to_string(), Encoding::Utf16Le));
    }

    #[test]
    fn utf8_bom_and_replacement_char() {
        let (t, e) = decode("\u{feff}Date , GPU Temperature [\u{fffd}C] ,\n".as_bytes());
        assert_eq!(e, Encoding::Utf8);
        assert!(t.starts_with("Date"));
    }

    #[test]
    fn nul_hole_becomes_one_line_break() {
        let (t, _) = decode(b"Date , A [V] ,\0\0\0\x002023-01-01 00:00:00 , 1.0 ,\n");
        assert_eq!(t, "Date , A [V] ,\n2023-01-01 00:00:00 , 1.0 ,\n");
    }
}
