//! Corpus mutation without coverage feedback: what CI can afford every run.
//!
//! The coverage-guided fuzzers need an instrumented build of every crate (FUZZING.md has
//! its cost), which CI cannot spend on each run. The saved corpora already cover every
//! edge the long runs reached, so CI takes those inputs and mutates them the way
//! libFuzzer's default mutators do (bytes and bits changed, ranges erased, copied and
//! spliced from another input, numbers rewritten, tokens the parsers treat specially
//! inserted) for a fixed time per target, in the normal test build
//! (`tests/mutate.rs`). It finds what lies a few mutations from a saved input; the
//! long coverage-guided runs find the rest.
//!
//! ```
//! use gpustream_fuzz_targets::mutate::Mutator;
//!
//! let corpus = vec![b"GPU Temperature [\xc2\xb0C] , 45.0".to_vec(), b"[kafka]".to_vec()];
//! let mut m = Mutator::new(7, corpus, 4096);
//! let input = m.next_input();
//! assert!(input.len() <= 4096);
//! ```

use gpustream_sim::rng::Rng;

/// Byte strings the parsers under test treat specially: number edges, separators,
/// quotes and escapes, encodings, timestamps and section headers.
const TOKENS: &[&[u8]] = &[
    b"-0",
    b"0",
    b"-1",
    b"1e308",
    b"-1e308",
    b"1e-320",
    b"NaN",
    b"inf",
    b"-inf",
    b"18446744073709551616",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"4294967296",
    b"0.0005",
    b"1.2345678901234567",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\n",
    b"\r\n",
    b"\r",
    b"\t",
    b",",
    b" , ",
    b"=",
    b"[",
    b"]",
    b"[[",
    b"{",
    b"}",
    b"#",
    b"\0",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x9a\x80",
    b"2025-03-14 09:00:10",
    b"2025-13-32 25:61:61",
    b"0000-01-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
    b"+262142-12-31T23:59:30Z",
    b"Date",
    b"null",
    b"true",
    b"\"\"\"",
    b"'''",
];

/// Generates mutated inputs from a corpus; the same seed and corpus give the same
/// sequence, so a finding replays from the seed printed next to it.
pub struct Mutator {
    rng: Rng,
    corpus: Vec<Vec<u8>>,
    max_len: usize,
}

impl Mutator {
    /// A mutator over `corpus` (an empty corpus starts from the empty input) whose
    /// inputs are at most `max_len` bytes long.
    pub fn new(seed: u64, corpus: Vec<Vec<u8>>, max_len: usize) -> Self {
        let corpus = if corpus.is_empty() {
            vec![Vec::new()]
        } else {
            corpus
        };
        Mutator {
            rng: Rng::new(seed),
            corpus,
            max_len: max_len.max(1),
        }
    }

    /// The next input: a corpus entry with one to eight stacked mutations.
    pub fn next_input(&mut self) -> Vec<u8> {
        let pick = self.below(self.corpus.len());
        let mut data = self.corpus.get(pick).cloned().unwrap_or_default();
        let stacked = 1 + self.below(8);
        for _ in 0..stacked {
            self.mutate(&mut data);
        }
        data.truncate(self.max_len);
        data
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    /// A position in `data` (0 for an empty input), or just past its end with `end`.
    fn position(&mut self, data: &[u8], end: bool) -> usize {
        self.below(data.len() + usize::from(end))
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        match self.below(11) {
            0 if !data.is_empty() => {
                let at = self.position(data, false);
                data[at] ^= 1 << self.below(8);
            }
            1 if !data.is_empty() => {
                let at = self.position(data, false);
                data[at] = self.rng.next_u64() as u8;
            }
            2 => {
                let at = self.position(data, true);
                let n = 1 + self.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if !data.is_empty() => {
                let at = self.position(data, false);
                let n = 1 + self.below((data.len() - at).min(64));
                data.drain(at..at + n);
            }
            4 if !data.is_empty() => {
                // A range copied elsewhere in the same input: repeated lines, cells, keys.
                let from = self.position(data, false);
                let n = 1 + self.below((data.len() - from).min(256));
                let part = data[from..from + n].to_vec();
                let at = self.position(data, true);
                data.splice(at..at, part);
            }
            5 => {
                // A piece of another input: a header from one log before rows of another.
                let other = self.below(self.corpus.len());
                let donor = self.corpus.get(other).cloned().unwrap_or_default();
                if !donor.is_empty() {
                    let from = self.position(&donor, false);
                    let n = 1 + self.below((donor.len() - from).min(512));
                    let at = self.position(data, true);
                    data.splice(at..at, donor[from..from + n].iter().copied());
                }
            }
            6 => {
                let token = TOKENS[self.below(TOKENS.len())];
                let at = self.position(data, true);
                data.splice(at..at, token.iter().copied());
            }
            7 if !data.is_empty() => {
                // A token over existing bytes: a value replaced rather than extended.
                let token = TOKENS[self.below(TOKENS.len())];
                let at = self.position(data, false);
                let end = (at + token.len()).min(data.len());
                data.splice(at..end, token.iter().copied());
            }
            8 => self.rewrite_number(data),
            9 if !data.is_empty() => {
                let at = self.position(data, false);
                data.truncate(at);
            }
            _ => {
                // Lines swapped: rows out of order, a section moved.
                let lines: Vec<usize> = data
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i)
                    .collect();
                if lines.len() >= 2 {
                    let a = lines[self.below(lines.len())];
                    let b = lines[self.below(lines.len())];
                    let (lo, hi) = (a.min(b), a.max(b));
                    if lo < hi {
                        data[lo + 1..=hi].rotate_left(1 + self.below(hi - lo));
                    }
                }
            }
        }
    }

    /// A run of ASCII digits replaced by another number: off by one, zero, negative,
    /// huge, or random.
    fn rewrite_number(&mut self, data: &mut Vec<u8>) {
        let starts: Vec<usize> = (0..data.len())
            .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
            .collect();
        if starts.is_empty() {
            return;
        }
        let start = starts[self.below(starts.len())];
        let end = data[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(data.len(), |n| start + n);
        let old: u128 = std::str::from_utf8(&data[start..end])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let new = match self.below(6) {
            0 => old.saturating_add(1).to_string(),
            1 => old.saturating_sub(1).to_string(),
            2 => "0".to_string(),
            3 => format!("-{old}"),
            4 => u64::MAX.to_string(),
            _ => (self.rng.next_u64() >> self.below(64)).to_string(),
        };
        data.splice(start..end, new.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs_and_lengths_bounded() {
        let corpus = vec![
            b"Date , GPU Clock [MHz] ,\n2025-03-14 09:00:10 , 1500.0 ,\n".to_vec(),
            b"[kafka]\nbrokers = \"a:9092\"\n".to_vec(),
        ];
        let mut a = Mutator::new(42, corpus.clone(), 64);
        let mut b = Mutator::new(42, corpus.clone(), 64);
        let mut changed = 0;
        for _ in 0..2000 {
            let x = a.next_input();
            assert_eq!(x, b.next_input());
            assert!(x.len() <= 64);
            changed += usize::from(!corpus.contains(&x));
        }
        // Almost every input differs from what it was made from.
        assert!(changed > 1900, "{changed} of 2000 inputs were mutated");
    }

    #[test]
    fn an_empty_corpus_still_gives_inputs() {
        let mut m = Mutator::new(1, Vec::new(), 16);
        let grown = (0..200).filter(|_| !m.next_input().is_empty()).count();
        assert!(grown > 50, "{grown}");
    }

    #[test]
    fn numbers_are_rewritten_in_place() {
        let mut m = Mutator::new(3, Vec::new(), 64);
        let mut seen_other = false;
        for _ in 0..50 {
            let mut data = b"a=41,b".to_vec();
            m.rewrite_number(&mut data);
            assert!(data.starts_with(b"a=") && data.ends_with(b",b"), "{data:?}");
            seen_other |= data != b"a=41,b";
        }
        assert!(seen_other);
    }
}
