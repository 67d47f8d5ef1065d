//! A line → its cells, trimmed, as spans of the line: no allocation once the list of
//! spans has grown to the widest line.
//!
//! GPU-Z pads every cell with spaces (`        1995.0   ,`), so most of a line is
//! padding. The fast path looks at eight bytes at a time: which are commas, which are
//! not blanks, without a branch per byte. Lines with control characters (tabs, stray
//! CRs) and cells that start or end with a non-ASCII character (where Unicode white
//! space may need trimming) take the plain path, which gives the same spans.

use std::ops::Range;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;

const fn splat(b: u8) -> u64 {
    (b as u64) * 0x0101_0101_0101_0101
}

/// High bit set in each byte of `x` that equals `c` (exact: no carries between bytes).
fn eq_mask(x: u64, c: u8) -> u64 {
    let y = x ^ splat(c);
    !(((y & LO7) + LO7) | y | LO7)
}

/// High bit set in each byte of `x` greater than `c` (`c` < 0x80; bytes ≥ 0x80 count).
fn gt_mask(x: u64, c: u8) -> u64 {
    (((x & LO7) + splat(0x7f - c)) | x) & HI
}

/// High bit set in each byte of `x` below `c` (0 < `c` < 0x80).
fn lt_mask(x: u64, c: u8) -> u64 {
    !(((x & LO7) + splat(0x80 - c)) | x) & HI
}

/// Trims a cell as `str::trim` does: an ASCII trim, then a Unicode one if a non-ASCII
/// character is left at an end.
pub(crate) fn trim_cell(cell: &str) -> &str {
    let t = cell.trim_ascii();
    match (t.chars().next(), t.chars().next_back()) {
        (Some(a), Some(z)) if !a.is_ascii() || !z.is_ascii() => t.trim(),
        _ => t,
    }
}

/// Splits a line at commas into trimmed cell spans. Every GPU-Z line ends with a
/// trailing comma: the one empty last field is dropped.
pub(crate) fn split_cells(line: &str, out: &mut Vec<Range<usize>>) {
    out.clear();
    if !split_fast(line, out) {
        out.clear();
        split_plain(line, out);
    }
    if out.len() > 1 && out.last().is_some_and(|c| c.is_empty()) {
        out.pop();
    }
}

/// The cells of a line as strings.
pub(crate) fn cell_strs<'a>(line: &'a str, cells: &[Range<usize>]) -> Vec<&'a str> {
    cells.iter().map(|r| &line[r.clone()]).collect()
}

fn split_plain(line: &str, out: &mut Vec<Range<usize>>) {
    let base = line.as_ptr() as usize;
    for cell in line.split(',') {
        let t = trim_cell(cell);
        let start = t.as_ptr() as usize - base;
        out.push(start..start + t.len());
    }
}

/// The cell being read: where it started, and its first and last non-blank bytes.
struct Cell {
    start: usize,
    first: usize,
    end: usize,
}

impl Cell {
    const NONE: usize = usize::MAX;

    fn at(start: usize) -> Cell {
        Cell {
            start,
            first: Cell::NONE,
            end: start,
        }
    }

    /// Notes non-blank bytes at `offset + i` for the bytes `i` flagged in `mask`.
    fn content(&mut self, offset: usize, mask: u64) {
        if mask != 0 {
            if self.first == Cell::NONE {
                self.first = offset + (mask.trailing_zeros() / 8) as usize;
            }
            self.end = offset + ((63 - mask.leading_zeros()) / 8) as usize + 1;
        }
    }

    /// The trimmed span of the cell ending at `stop` (its comma or the end of the line).
    fn span(&self, line: &str, stop: usize) -> Range<usize> {
        if self.first == Cell::NONE {
            return self.start..self.start;
        }
        let b = line.as_bytes();
        if b[self.first].is_ascii() && b[self.end - 1].is_ascii() {
            return self.first..self.end;
        }
        // A non-ASCII character at an end may be Unicode white space.
        let t = trim_cell(&line[self.start..stop]);
        let start = t.as_ptr() as usize - line.as_ptr() as usize;
        start..start + t.len()
    }
}

/// The eight-bytes-at-a-time splitter; `false` (spans unfinished) for a line with a
/// control character, which [`split_plain`] handles.
fn split_fast(line: &str, out: &mut Vec<Range<usize>>) -> bool {
    let b = line.as_bytes();
    let mut cell = Cell::at(0);
    let mut words = b.chunks_exact(8);
    let mut offset = 0;
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = u64::from_le_bytes(word);
        if lt_mask(x, b' ') != 0 {
            return false;
        }
        let mut commas = eq_mask(x, b',');
        let mut content = gt_mask(x, b' ') & !commas;
        while commas != 0 {
            let bit = commas.trailing_zeros();
            // Flags of the bytes before this comma.
            let before = (1u64 << bit) - 1;
            cell.content(offset, content & before);
            let at = offset + (bit / 8) as usize;
            out.push(cell.span(line, at));
            cell = Cell::at(at + 1);
            content &= !before;
            commas &= commas - 1;
        }
        cell.content(offset, content);
        offset += 8;
    }
    for (i, &c) in words.remainder().iter().enumerate() {
        let at = offset + i;
        if c < b' ' {
            return false;
        }
        if c == b',' {
            out.push(cell.span(line, at));
            cell = Cell::at(at + 1);
        } else if c > b' ' {
            if cell.first == Cell::NONE {
                cell.first = at;
            }
            cell.end = at + 1;
        }
    }
    out.push(cell.span(line, b.len()));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The splitter this replaces: `split(',')`, trim, a `Vec<&str>` per line.
    fn allocating(line: &str) -> Vec<&str> {
        let mut cells: Vec<&str> = line.split(',').map(trim_cell).collect();
        if cells.len() > 1 && cells.last().is_some_and(|c| c.is_empty()) {
            cells.pop();
        }
        cells
    }

    fn same(line: &str) {
        let mut spans = Vec::new();
        split_cells(line, &mut spans);
        assert_eq!(cell_strs(line, &spans), allocating(line), "{line:?}");
    }

    #[test]
    fn cells_trim_like_str_trim() {
        for cell in [
            "  12.5  ",
            "\t7\r",
            "\u{a0}3\u{a0}",
            " \u{2003}x ",
            "",
            "  ",
            "°C ",
        ] {
            assert_eq!(trim_cell(cell), cell.trim(), "{cell:?}");
        }
    }

    #[test]
    fn masks_are_exact() {
        for a in 0..=255u8 {
            for b in [0u8, 0x01, 0x1f, 0x20, 0x21, b',', b'-', 0x7f, 0x80, 0xff] {
                let x = u64::from_le_bytes([b, a, b, a, a, b, 0, 0xff]);
                let bytes = x.to_le_bytes();
                for (i, &v) in bytes.iter().enumerate() {
                    let flag = |m: u64| m >> (8 * i + 7) & 1 == 1;
                    assert_eq!(flag(eq_mask(x, b',')), v == b',', "{v:#x} == ,");
                    assert_eq!(flag(gt_mask(x, b' ')), v > b' ', "{v:#x} > space");
                    assert_eq!(flag(lt_mask(x, b' ')), v < b' ', "{v:#x} < space");
                }
            }
        }
    }

    #[test]
    fn cells_split_like_the_allocating_splitter() {
        for line in [
            "        Date        , GPU Clock [MHz] , GPU Temperature [°C] ,",
            "2023-06-16 10:17:08 ,        1995.0   ,           1767.5   ,    -   ,",
            "a,,b",
            ",",
            ",,,,,,,,,,,,,,,,,",
            "x",
            "",
            "        ",
            "\u{a0}é ,\u{2003} z\u{a0},  °C,°C  ,",
            "1 , 2 , , ",
            "1\t, 2 ,",
            ",-,-,- ,-",
            "0123456,89abcdef,",
        ] {
            same(line);
        }
    }

    #[test]
    fn seeded_random_lines_split_alike() {
        let alphabet = [
            " ", " ", " ", " ", ",", ",", "-", "0", "1.5", "x", "\t", "\r", "\u{a0}", "é",
            "\u{2003}", "°", "\u{1}", "\u{7f}", "\u{b}", "\u{85}",
        ];
        let mut seed = 3u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 70;
            let line: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            same(&line);
        }
    }
}
