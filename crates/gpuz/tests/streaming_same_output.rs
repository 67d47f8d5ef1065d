//! The streaming reader gives exactly what the whole-file parser gave: the same samples
//! (event ids, times, sessions, sequence numbers, metrics, `unsupported`, `extra`), the
//! same issues (file, line, field, kind, detail), the same counts and encoding.
//!
//! The whole-file parser is gone; what it produced was saved, before it was replaced, to
//! `tests/expected/same_output.txt` (one block per case: a digest of every 500 samples and
//! of all issues). The cases are every real log of `../shared/data/gpuz/` as it is, the
//! same logs re-encoded (UTF-16 LE/BE with and without BOM, UTF-8 with and without BOM,
//! LF only), read in other time zones, cut and damaged at seeded random places (NUL
//! holes, garbage bytes, rows glued after headers, deleted ranges, truncation), and
//! small hand-made inputs (split surrogates, odd lengths, invalid UTF-8).
//!
//! Every case is read through the streaming reader with several buffer sizes, down to
//! one byte, so a line, a UTF-16 code unit or a NUL run cut by a buffer boundary is
//! covered. `GPUZ_BLESS=1` rewrites the expectation file (only after a deliberate change
//! of output).

use std::fmt::Write as _;
use std::io::Read;

use gpustream::Sample;
use gpustream_test_kit::data::shared_logs;
use gpuz::{Event, Identity, Issue, LogReader, LogScan, ParseOptions, ParsedLog};

const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/expected/same_output.txt"
);
const BLOCK: usize = 500;

fn identity() -> Identity {
    Identity {
        host: "ws1".into(),
        gpu: "gpu0".into(),
        gpu_index: 3,
        gpu_name: Some("Test GPU".into()),
    }
}

/// FNV-1a, 64 bit: a digest that needs no dependency and never changes.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, s: &str) {
        for b in s.bytes().chain([0x1e]) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Every field of a sample, floats in Rust's shortest round-trip form.
fn sample_line(s: &Sample) -> String {
    let mut out = format!(
        "{}|{}|{}|{}|{}|{:?}|{}|{}|{}|m:",
        s.event_id,
        s.event_time.timestamp_micros(),
        s.host,
        s.gpu,
        s.gpu_index,
        s.gpu_name,
        s.source,
        s.session,
        s.seq
    );
    for (m, v) in s.metrics.present() {
        let _ = write!(out, "{}={v:?},", m.column());
    }
    out.push_str("|u:");
    for m in &s.unsupported {
        let _ = write!(out, "{},", m.column());
    }
    out.push_str("|x:");
    for (k, v) in &s.extra {
        let _ = write!(out, "{k}={v:?},");
    }
    out
}

fn issue_line(i: &Issue) -> String {
    format!(
        "{}|{}|{:?}|{:?}|{}",
        i.file, i.line, i.field, i.kind, i.detail
    )
}

/// What a case produced, condensed to a few lines.
fn condense(label: &str, log: &ParsedLog) -> String {
    let s = &log.summary;
    let mut out = format!(
        "case {label}\n  encoding {:?}; headers {}, data rows {}, samples {}, skipped {:?}, field issues {}\n",
        log.encoding, s.headers, s.data_rows, s.samples, s.skipped, s.field_issues
    );
    let _ = writeln!(out, "  {} samples", log.samples.len());
    for (b, block) in log.samples.chunks(BLOCK).enumerate() {
        let mut h = Fnv::new();
        for smp in block {
            h.add(&sample_line(smp));
        }
        let _ = writeln!(out, "  samples[{}..] {:016x}", b * BLOCK, h.0);
    }
    let mut h = Fnv::new();
    for i in &log.issues {
        h.add(&issue_line(i));
    }
    let _ = writeln!(out, "  {} issues {:016x}", log.issues.len(), h.0);
    out
}

// ---- the cases ---------------------------------------------------------------------

/// A log's text as the old decoder read it, for re-encoding: the UTF-16BE log by its
/// BOM, the others byte for byte as Latin-1.
fn text_of(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]));
        char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{fffd}'))
            .collect()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

fn utf16(s: &str, bom: bool, le: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
    }
    for u in s.encode_utf16() {
        out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    out
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() as usize) % n
        }
    }
}

/// Damages `bytes` at `n` seeded places.
fn mutate(bytes: &mut Vec<u8>, header: &[u8], rng: &mut Lcg, n: usize) {
    for _ in 0..n {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            // A NUL hole, as left by a truncating program.
            0 => {
                let len = 1 + rng.below(3000);
                bytes.splice(at..at, std::iter::repeat_n(0u8, len));
            }
            // A header with a row glued after it (after a hole).
            1 => {
                let mut ins = vec![0u8; rng.below(40)];
                ins.extend_from_slice(header);
                bytes.splice(at..at, ins);
            }
            // Random bytes.
            2 => {
                let ins: Vec<u8> = (0..1 + rng.below(12)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, ins);
            }
            // A deleted range.
            3 => {
                let end = (at + 1 + rng.below(200)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            // A digit turned into a letter or a dash.
            4 => {
                if let Some(p) = bytes[at.min(bytes.len())..]
                    .iter()
                    .position(u8::is_ascii_digit)
                {
                    bytes[at + p] = if rng.below(2) == 0 { b'x' } else { b'-' };
                }
            }
            // A comma removed or added.
            5 => {
                if rng.below(2) == 0 {
                    if let Some(p) = bytes[at.min(bytes.len())..].iter().position(|&b| b == b',') {
                        bytes.remove(at + p);
                    }
                } else {
                    bytes.insert(at, b',');
                }
            }
            // A CR or LF out of place.
            6 => bytes.insert(at, if rng.below(2) == 0 { b'\r' } else { b'\n' }),
            // A zero for a whole value (unsupported marking across sessions).
            _ => {
                if let Some(p) = bytes[at.min(bytes.len())..]
                    .windows(4)
                    .position(|w| w[0] == b' ' && w[1].is_ascii_digit())
                {
                    bytes[at + p + 1] = b'0';
                }
            }
        }
    }
}

struct Case {
    label: String,
    bytes: Vec<u8>,
    /// The file the bytes are, when they are a file's.
    path: Option<std::path::PathBuf>,
    opts: ParseOptions,
}

fn case(label: impl Into<String>, bytes: Vec<u8>) -> Case {
    Case {
        label: label.into(),
        bytes,
        path: None,
        opts: ParseOptions::default(),
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let logs = shared_logs();
    assert!(logs.len() >= 6, "the shared real logs: {logs:?}");
    let mut rng = Lcg(20240601);
    for path in &logs {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_string();
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = text_of(&bytes);
        let mut as_is = case(format!("{name} as is"), bytes.clone());
        as_is.path = Some(path.clone());
        out.push(as_is);
        out.push(case(
            format!("{name} utf16le bom"),
            utf16(&text, true, true),
        ));
        out.push(case(format!("{name} utf16le"), utf16(&text, false, true)));
        out.push(case(format!("{name} utf16be"), utf16(&text, false, false)));
        let mut bom8 = vec![0xEF, 0xBB, 0xBF];
        bom8.extend_from_slice(text.as_bytes());
        out.push(case(format!("{name} utf8 bom"), bom8));
        out.push(case(format!("{name} utf8"), text.as_bytes().to_vec()));
        out.push(case(
            format!("{name} latin1 lf"),
            latin1(&text.replace("\r\n", "\n")),
        ));
        for tz in ["Europe/Berlin", "America/New_York"] {
            let mut c = case(format!("{name} in {tz}"), bytes.clone());
            c.opts.timezone = tz.parse().expect("zone");
            out.push(c);
        }
        // Damaged copies of the start of the file (Latin-1, as GPU-Z writes).
        let plain = latin1(&text);
        let header_end = plain
            .iter()
            .position(|&b| b == b'\n')
            .map_or(plain.len(), |p| p + 1);
        let header: Vec<u8> = plain[..header_end]
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        for k in 0..6 {
            let mut b = plain[..plain.len().min(40_000)].to_vec();
            mutate(&mut b, &header, &mut rng, 1 + 3 * k);
            out.push(case(format!("{name} damaged #{k}"), b.clone()));
            if k % 2 == 0 {
                // The same damage in UTF-16, where a hole can also cut a code unit.
                let t: String = b.iter().map(|&c| char::from(c)).collect();
                let mut u = utf16(&t, k == 0, true);
                let cut = rng.below(u.len());
                u.truncate(u.len() - cut.min(3));
                out.push(case(format!("{name} damaged #{k} utf16le"), u));
            }
        }
        // The rows of the file without their header, read with the header given.
        let mut headerless = case(format!("{name} headerless"), plain[header_end..].to_vec());
        headerless.opts.fallback_header = Some(String::from_utf8_lossy(&header).into_owned());
        out.push(headerless);
    }
    out.extend(hand_made());
    out
}

const HEADER: &str = "        Date        , GPU Clock [MHz] , GPU Temperature [\u{b0}C] , Fan Speed (RPM) [RPM] , Mystery Sensor [X] ,";

fn hand_made() -> Vec<Case> {
    let mut out = Vec::new();
    let rows = "2024-01-01 10:00:00 , 100.0 , 40.0 , 0 , 1 ,\r\n2024-01-01 10:00:01 , 101.0 , 41.5 , 0 , 2 ,\r\n";
    let text = format!("{HEADER}\r\n{rows}");
    out.push(case("empty", Vec::new()));
    out.push(case("one line break", b"\n".to_vec()));
    out.push(case("two bytes", b"Da".to_vec()));
    out.push(case("bom only le", vec![0xFF, 0xFE]));
    out.push(case("bom only utf8", vec![0xEF, 0xBB, 0xBF]));
    out.push(case("nul only", vec![0; 100]));
    let mut odd = utf16(&text, true, true);
    odd.push(b'x');
    out.push(case("utf16 odd length", odd));
    let mut hi = utf16(&text, true, false);
    hi.extend_from_slice(&[0xD8, 0x3D]);
    out.push(case("utf16 trailing high surrogate", hi));
    let mut lone = utf16(&text.replace("Mystery", "Myst\u{1F600}ry"), false, true);
    // A lone low surrogate, and a high one followed by a line break.
    lone.extend_from_slice(&[0x00, 0xDC, b'\n', 0x00, 0x3D, 0xD8, b'\n', 0x00]);
    out.push(case("utf16 emoji and lone surrogates", lone));
    let mut bad8 = vec![0xEF, 0xBB, 0xBF];
    bad8.extend_from_slice(text.replace("Mystery", "Myst\u{e9}ry").as_bytes());
    bad8.extend_from_slice(b"2024-01-01 10:00:02 , 1\xe2\x82 , 4\xff , 0 , 3 ,\n\xf0\x9f");
    out.push(case("utf8 bom with invalid bytes", bad8));
    let mut valid8 = text.as_bytes().to_vec();
    valid8.extend_from_slice("2024-01-01 10:00:02 , 1 , 2 , 0 , \u{e9} ,\n".as_bytes());
    out.push(case("utf8 without bom", valid8.clone()));
    valid8.extend_from_slice(b"2024-01-01 10:00:03 , 1 , 2 , 0 , \xb0 ,\n");
    out.push(case("mostly utf8 with one latin1 byte", valid8));
    let mut glued = latin1(&text);
    glued.extend(std::iter::repeat_n(0u8, 5000));
    glued.extend(latin1(&format!(
        "{HEADER}2024-01-01 10:00:05 , 200.0 , 41.0 , 0 , 2 ,\r\n2024-01-01 10:00:06 , 201.0 , - , 0 , 3 ,"
    )));
    out.push(case(
        "nul hole, row glued after header, no final break",
        glued,
    ));
    let mut cr = latin1(&text.replace("\r\n", "\r"));
    cr.extend_from_slice(b"\r\n\r\n  \r\n");
    out.push(case("cr only", cr));
    out.push(case(
        "rows before the first header",
        latin1(&format!("{rows}{text}")),
    ));
    let mut dst = format!("{HEADER}\n");
    for t in [
        "2023-03-26 01:59:59",
        "2023-03-26 02:30:00",
        "2023-03-26 03:00:00",
        "2023-10-29 02:30:00",
        "2023-10-29 02:59:59",
        "2023-10-29 02:00:00",
        "2023-10-29 02:30:00",
        "2023-10-29 03:00:00",
    ] {
        let _ = writeln!(dst, "{t} , 1 , 40 , 0 , 1 ,");
    }
    let mut c = case("dst in Europe/Berlin", latin1(&dst));
    c.opts.timezone = "Europe/Berlin".parse().expect("zone");
    out.push(c);
    let sessions = format!(
        "{HEADER}\n2024-01-01 10:00:00 , 0 , 0.0 , 0 , 0 ,\n2024-01-01 10:00:01 , 0 , - , 0 , x ,\n\
         Date , Fan Speed (%) [%] , Fan Speed (RPM) [RPM] , Board Power Draw [W] , Power Consumption (%) [% TDP] ,\n\
         2024-01-01 11:00:00 , 30 , 0 , 0.0 , 0.0 ,\n2024-01-01 11:00:01 , 0 , 0 , 0.0 , 0.0 ,\n\
         Date , Fan Speed (%) [%] , Fan Speed (RPM) [RPM] , GPU Chip Power Draw [W] , Power Consumption (%) [% TDP] ,\n\
         2024-01-01 12:00:00 , 0 , 0 , 12.5 , 0.0 , 7 , 8 ,\n2024-01-01 12:00:01 , - , 0 , - , 0.0\n2024-01-01 12:00:02.500 , 1e3 , inf , NaN , -0 ,\n"
    );
    out.push(case("zeros across sessions", latin1(&sessions)));
    let mut garbage = latin1(HEADER);
    garbage.push(b'\n');
    let mut rng = Lcg(99);
    garbage.extend((0..5000).map(|_| rng.next() as u8));
    out.push(case("garbage after a header", garbage));
    out
}

// ---- the path under test -----------------------------------------------------------

/// Hands out at most `n` bytes per read, as a slow pipe would.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Both passes over `src`, everything collected, checked against what the first pass
/// announced.
fn stream<R: Read>(c: &Case, scan: &LogScan, src: R, capacity: usize) -> ParsedLog {
    let mut reader =
        LogReader::with_buffer("case.txt", src, &identity(), &c.opts, Some(scan), capacity);
    let mut samples = Vec::new();
    let mut issues = Vec::new();
    while let Some(event) = reader.next_event().expect("read") {
        match event {
            Event::Sample(s) => samples.push(s.clone()),
            Event::Issue(i) => issues.push(i),
        }
    }
    assert_eq!(
        reader.summary(),
        &scan.summary,
        "{}: first pass counts",
        c.label
    );
    assert_eq!(
        issues.len() as u64,
        scan.issues,
        "{}: first pass issues",
        c.label
    );
    ParsedLog {
        samples,
        issues,
        summary: reader.summary().clone(),
        encoding: reader.encoding().expect("known at the end"),
    }
}

/// The case read in every way the streaming reader offers: from memory with
/// [`gpuz::parse_log`], from its file, and through buffers of several sizes, fed a few
/// bytes per read.
fn read_case(c: &Case) -> Vec<(String, ParsedLog)> {
    let mut out = vec![(
        "parse_log".to_string(),
        gpuz::parse_log("case.txt", &c.bytes, &identity(), &c.opts),
    )];
    if let Some(path) = &c.path {
        let open = || std::fs::File::open(path).expect("open");
        let scan = gpuz::scan("case.txt", open(), &c.opts).expect("scan");
        out.push((
            "from the file".to_string(),
            stream(c, &scan, open(), gpuz::lines::DEFAULT_BUFFER),
        ));
    }
    let small = c.bytes.len() <= 64 * 1024;
    let ways: &[(usize, usize)] = if small {
        &[(64, usize::MAX), (65, 7), (100, 1), (4096, 33)]
    } else {
        &[(101, usize::MAX), (4096, 1000)]
    };
    for &(capacity, step) in ways {
        let scan = gpuz::reader::scan_with_buffer(
            "case.txt",
            std::io::Cursor::new(&c.bytes),
            &c.opts,
            capacity,
        )
        .expect("scan");
        out.push((
            format!("buffer {capacity}, reads of {step}"),
            stream(c, &scan, Trickle(&c.bytes, step), capacity),
        ));
    }
    out
}

#[test]
fn streaming_reader_gives_what_the_whole_file_parser_gave() {
    let mut got = String::new();
    let mut per_case = Vec::new();
    for c in cases() {
        let mut first: Option<String> = None;
        for (how, log) in read_case(&c) {
            let text = condense(&c.label, &log);
            match &first {
                None => first = Some(text),
                Some(f) => assert_eq!(
                    &text, f,
                    "{}: {how} differs from the first way of reading it",
                    c.label
                ),
            }
        }
        let text = first.expect("at least one way of reading");
        got.push_str(&text);
        per_case.push(text);
    }
    if std::env::var_os("GPUZ_BLESS").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expected"))
            .expect("mkdir");
        std::fs::write(EXPECTED, &got).expect("write expectations");
        return;
    }
    let expected = std::fs::read_to_string(EXPECTED).expect("tests/expected/same_output.txt");
    // One block per case, each starting with a `case ` line.
    let mut expected_cases: Vec<String> = Vec::new();
    for line in expected.lines() {
        match expected_cases.last_mut() {
            Some(block) if !line.starts_with("case ") => {
                block.push_str(line);
                block.push('\n');
            }
            _ => expected_cases.push(format!("{line}\n")),
        }
    }
    assert_eq!(
        expected_cases.len(),
        per_case.len(),
        "number of cases changed"
    );
    for (g, w) in per_case.iter().zip(&expected_cases) {
        assert_eq!(g, w, "output differs from the saved whole-file output");
    }
}
