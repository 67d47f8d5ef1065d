//! Byte → text decoding of GPU-Z logs.
//!
//! GPU-Z writes single-byte Windows-1252/Latin-1 text (the degree sign is 0xB0, which a
//! strict UTF-8 decoder rejects). Copies re-saved by other tools are UTF-16 LE/BE or
//! UTF-8, usually with a BOM. NUL holes (left when another program truncates a live log)
//! are line breaks: what follows a hole starts a fresh line.
//!
//! This module decodes a log held in memory or pieces of one whose encoding is known;
//! [`crate::lines`] reads a log of any size line by line with a fixed buffer.

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

/// Decodes a whole log held in memory into text with `\n` line breaks only where lines
/// end (CR before LF is left for the line splitter) and NUL runs replaced by one `\n`.
///
/// For logs of bounded size (tests, fuzzing); [`crate::lines::LineReader`] reads a log of
/// any size into the same lines, numbered the same way.
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    let mut text = String::with_capacity(bytes.len());
    let encoding = match detect(bytes) {
        Some((Encoding::Utf16Le, bom)) => {
            utf16_into(&bytes[bom..], true, &mut text);
            Encoding::Utf16Le
        }
        Some((Encoding::Utf16Be, bom)) => {
            utf16_into(&bytes[bom..], false, &mut text);
            Encoding::Utf16Be
        }
        Some((_, bom)) => {
            text.push_str(&String::from_utf8_lossy(&bytes[bom..]));
            Encoding::Utf8
        }
        None => match std::str::from_utf8(bytes) {
            Ok(s) => {
                text.push_str(s);
                Encoding::Utf8
            }
            Err(_) => {
                latin1_into(bytes, &mut text);
                Encoding::Latin1
            }
        },
    };
    (replace_nul_runs(text), encoding)
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
    if bytes.len() < 8 && bom(bytes).is_none() {
        return None;
    }
    // Single-byte text: each line is read as UTF-8 if it is valid, else Latin-1.
    Some(detect(bytes).unwrap_or((Encoding::Latin1, 0)))
}

/// The encoding the start of a log (its first 64 bytes, or all of a shorter log) shows:
/// a BOM, or UTF-16 without one (a zero in every other byte). `None`: single-byte text,
/// UTF-8 or Latin-1, which only the whole log can tell apart.
pub(crate) fn detect(head: &[u8]) -> Option<(Encoding, usize)> {
    if let Some(found) = bom(head) {
        Some(found)
    } else if looks_utf16(head, true) {
        Some((Encoding::Utf16Le, 0))
    } else if looks_utf16(head, false) {
        Some((Encoding::Utf16Be, 0))
    } else {
        None
    }
}

fn bom(bytes: &[u8]) -> Option<(Encoding, usize)> {
    if bytes.starts_with(&[0xFE, 0xFF]) {
        Some((Encoding::Utf16Be, 2))
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        Some((Encoding::Utf16Le, 2))
    } else if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((Encoding::Utf8, 3))
    } else {
        None
    }
}

/// Decodes a piece of a log whose encoding is known (a line, in follow mode), NUL runs
/// replaced by one `\n`. Single-byte pieces that are valid UTF-8 are read as UTF-8,
/// others as Latin-1.
pub fn decode_as(bytes: &[u8], encoding: Encoding) -> String {
    let mut text = String::with_capacity(bytes.len());
    match encoding {
        Encoding::Utf16Le => utf16_into(bytes, true, &mut text),
        Encoding::Utf16Be => utf16_into(bytes, false, &mut text),
        Encoding::Utf8 | Encoding::Latin1 => match std::str::from_utf8(bytes) {
            Ok(s) => text.push_str(s),
            Err(_) => latin1_into(bytes, &mut text),
        },
    }
    replace_nul_runs(text)
}

/// Appends Latin-1 text: every byte is the code point of the same value. Runs of ASCII
/// are copied as they are (a log is almost all ASCII); only bytes ≥ 0x80 become two
/// UTF-8 bytes.
pub(crate) fn latin1_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() + bytes.len() / 64);
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
}

/// Appends UTF-16 text; an odd last byte is ignored, unpaired surrogates become U+FFFD.
pub(crate) fn utf16_into(bytes: &[u8], little_endian: bool, out: &mut String) {
    let units = bytes.chunks_exact(2).map(|c| {
        if little_endian {
            u16::from_le_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], c[1]])
        }
    });
    out.extend(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
}

/// BOM-less UTF-16: ASCII text has a zero in every other byte of the first line.
pub(crate) fn looks_utf16(bytes: &[u8], little_endian: bool) -> bool {
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
        let mut fast = String::new();
        latin1_into(&bytes, &mut fast);
        assert_eq!(fast, slow);
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

    #[test]
    fn decode_as_reads_pieces_of_a_followed_log() {
        assert_eq!(
            decode_as(b"Date , GPU Temperature [\xb0C] ,", Encoding::Latin1),
            "Date , GPU Temperature [°C] ,"
        );
        assert_eq!(decode_as("[°C]".as_bytes(), Encoding::Latin1), "[°C]");
        let le: Vec<u8> = "a\0\0b".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode_as(&le, Encoding::Utf16Le), "a\nb");
    }

    #[test]
    fn sniff_needs_a_bom_or_eight_bytes() {
        assert_eq!(sniff(&[0xEF, 0xBB, 0xBF]), Some((Encoding::Utf8, 3)));
        let le: Vec<u8> = "Date , X ,"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(sniff(&le), Some((Encoding::Utf16Le, 0)));
        assert_eq!(sniff(b"Date"), None);
    }
}
