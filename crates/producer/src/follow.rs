//! Follow mode: publish the rows of logs GPU-Z is still writing, like `tail -F`.
//!
//! - Only complete lines are parsed; a partial last line waits for its line break.
//! - Truncation (the file got shorter) restarts reading at the top of the same file.
//! - Rotation (the path now names another file) drains the old file to its end, then
//!   reads the new one from the top; a missing path is waited for. "Another file" is
//!   decided by the operating system's file identity, through `same-file`: device and
//!   inode on Unix, volume serial number and file index on Windows.
//! - The read position and the parser's state (header, session, sequence number) are
//!   saved to a state file after the sink confirmed delivery of everything before them,
//!   so a restart neither re-sends nor skips rows. After a crash (no final save), the rows
//!   since the last save (at most `checkpoint_every`) are sent again with the same ids.
//!
//! Whole-session checks (sensors that read 0 for a whole session → unsupported) need the
//! session's end, so follow mode does not mark sensors unsupported.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use same_file::Handle;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::replay::{LogInput, ReplayReport};
use crate::sink::SampleSink;
use gpuz::decode::{Encoding, decode_as, sniff};
use gpuz::parser::Parsed;
use gpuz::{Identity, LineParser, ParseOptions, ParserState};

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// How often to look for new data when there is none.
    pub poll: Duration,
    /// Where the read positions are kept between runs (`None`: always start at the top).
    pub state_file: Option<PathBuf>,
    /// Longest time between two saves of the state while rows keep coming.
    pub checkpoint_every: Duration,
    /// Issues printed per file before only counting them.
    pub max_issues_logged: usize,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll: Duration::from_millis(250),
            state_file: None,
            checkpoint_every: Duration::from_secs(1),
            max_issues_logged: 20,
        }
    }
}

/// The saved position in one followed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// Device of the file that was read (with `ino`, its identity): a different file at
    /// the same path (rotated while we were down) is read from the top. On systems other
    /// than Unix, where the standard library has no stable file index, 0.
    pub dev: u64,
    /// Inode number; on systems other than Unix (Windows), the file's creation time in
    /// nanoseconds since the epoch. There `head_hash` carries more of the weight: NTFS
    /// gives a file created under a name deleted less than 15 s before the old creation
    /// time ("tunnelling").
    pub ino: u64,
    /// Byte offset just after the last line that was published.
    pub pos: u64,
    /// XXH3 of the file's first bytes (up to 4 KiB, and at most `pos`: a GPU-Z header and
    /// its first rows, whose times differ from one log to the next): catches an inode that
    /// was reused for a new file.
    pub head_hash: u64,
    /// Length the hash covers.
    pub head_len: u64,
    /// Encoding found at the top of the file.
    pub encoding: Encoding,
    /// Lines read so far (for line numbers in reports).
    pub line: usize,
    /// Where the parser stands.
    pub parser: ParserState,
}

/// The state file: one [`FileState`] per followed path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowState {
    /// By path, as given.
    pub files: BTreeMap<String, FileState>,
}

impl FollowState {
    /// Reads a state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<FollowState> {
        match std::fs::read(path) {
            Ok(bytes) => FollowState::parse(&bytes, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FollowState::default()),
            Err(source) => Err(Error::File {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Reads the bytes of a state file; `path` (where they were read) names it in the
    /// error.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<FollowState> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a follow state file ({e}); remove it to start from the top",
                path.display()
            ))
        })
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let file_err = |source| Error::File {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Encode(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(file_err)?;
        f.write_all(&bytes).map_err(file_err)?;
        f.sync_all().map_err(file_err)?;
        std::fs::rename(&tmp, path).map_err(file_err)
    }
}

impl FileState {
    /// What a restart does once it has found the file of this saved position again:
    /// the parser carries on where it stood, with `appended` (what the file holds after
    /// `pos`) read as a final read of the file reads it (a last line without its line
    /// break included), lines numbered on from `line`. Returns the position after it.
    ///
    /// Follow mode runs this same code after comparing the file's identity; it is public
    /// so that a state file can be checked without files or a sink (tests, fuzzing).
    pub fn resume(
        &self,
        name: &str,
        identity: Identity,
        parse: &ParseOptions,
        appended: &[u8],
        out: &mut Vec<Parsed>,
    ) -> FileState {
        let mut tail = Tail::new(name, Path::new(name), identity, parse);
        tail.resume_from(self);
        tail.pending.extend_from_slice(appended);
        tail.consume_lines(true, out);
        FileState {
            pos: tail.pos,
            line: tail.line,
            parser: tail.parser.state(),
            ..self.clone()
        }
    }
}

const HEAD_LEN: u64 = 4096;

/// The identity of a file as kept in the state file: `(device, inode)` on Unix.
#[cfg(unix)]
fn saved_identity(md: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (md.dev(), md.ino())
}

/// The identity of a file as kept in the state file: `(0, creation time)` where there
/// is no inode (Windows); see [`FileState::ino`].
#[cfg(not(unix))]
fn saved_identity(md: &Metadata) -> (u64, u64) {
    (0, created_nanos(md))
}

/// Creation time in nanoseconds since the epoch (0 where the file system has none).
#[cfg_attr(unix, allow(dead_code))]
fn created_nanos(md: &Metadata) -> u64 {
    md.created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn head_hash(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0; len as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut buf)?;
    Ok(xxhash_rust::xxh3::xxh3_64(&buf))
}

/// One followed file.
struct Tail {
    name: String,
    path: PathBuf,
    /// The open file; its handle is also its identity (compared with the path's).
    file: Option<Handle>,
    saved_id: (u64, u64),
    /// Offset just after the last complete line handed to the parser.
    pos: u64,
    /// Bytes after `pos` without a line break yet.
    pending: Vec<u8>,
    encoding: Option<Encoding>,
    line: usize,
    parser: LineParser,
    issues_logged: usize,
}

impl Tail {
    fn open(input: &LogInput, parse: &ParseOptions, saved: Option<&FileState>) -> Tail {
        let name = input.path.display().to_string();
        let mut tail = Tail::new(&name, &input.path, input.identity.clone(), parse);
        tail.reopen(saved);
        tail
    }

    /// A tail of `path` that has not opened it yet.
    fn new(name: &str, path: &Path, identity: Identity, parse: &ParseOptions) -> Tail {
        Tail {
            parser: LineParser::new(name, identity, parse),
            name: name.to_string(),
            path: path.to_path_buf(),
            file: None,
            saved_id: (0, 0),
            pos: 0,
            pending: Vec::new(),
            encoding: None,
            line: 0,
            issues_logged: 0,
        }
    }

    /// Takes up the position and the parser of a saved state of the same file.
    fn resume_from(&mut self, st: &FileState) {
        self.pos = st.pos;
        self.encoding = Some(st.encoding);
        self.line = st.line;
        self.parser.restore(st.parser.clone());
    }

    /// Opens the file at the path, resuming from `saved` when it is the same file.
    fn reopen(&mut self, saved: Option<&FileState>) {
        self.file = None;
        self.pos = 0;
        self.pending.clear();
        self.encoding = None;
        self.line = 0;
        let Ok(mut file) = File::open(&self.path) else {
            tracing::info!(file = %self.name, "waiting for the file to appear");
            return;
        };
        let Ok(md) = file.metadata() else { return };
        self.saved_id = saved_identity(&md);
        if let Some(st) = saved {
            let same = (st.dev, st.ino) == self.saved_id
                && md.len() >= st.pos
                && st.head_len <= md.len()
                // Never written above HEAD_LEN: a larger one is a damaged state file, and
                // hashing it would read (and allocate) up to the whole followed file.
                && st.head_len <= HEAD_LEN
                && head_hash(&mut file, st.head_len).ok() == Some(st.head_hash);
            if same {
                self.resume_from(st);
                tracing::info!(file = %self.name, pos = st.pos, line = st.line, "resuming where the last run stopped");
            } else {
                // Keep the sequence going so ids stay unique against what was sent before.
                let mut parser = st.parser.clone();
                parser.header_cells = None;
                parser.session = None;
                self.parser.restore(parser);
                tracing::warn!(file = %self.name, "the file changed since the last run (rotated or truncated): reading it from the top");
            }
        }
        match Handle::from_file(file) {
            Ok(handle) => self.file = Some(handle),
            Err(e) => tracing::warn!(file = %self.name, "cannot identify the file, retrying: {e}"),
        }
    }

    fn state(&mut self) -> Option<FileState> {
        let file = self.file.as_mut()?.as_file_mut();
        let head_len = self.pos.min(HEAD_LEN);
        let head_hash = head_hash(file, head_len).ok()?;
        Some(FileState {
            dev: self.saved_id.0,
            ino: self.saved_id.1,
            pos: self.pos,
            head_hash,
            head_len,
            encoding: self.encoding.unwrap_or(Encoding::Latin1),
            line: self.line,
            parser: self.parser.state(),
        })
    }

    /// Reads what was appended and feeds complete lines; returns whether anything was read.
    fn read_new(&mut self, out: &mut Vec<Parsed>) -> std::io::Result<bool> {
        let Some(file) = self.file.as_mut().map(Handle::as_file_mut) else {
            return Ok(false);
        };
        let from = self.pos + self.pending.len() as u64;
        file.seek(SeekFrom::Start(from))?;
        let before = self.pending.len();
        file.take(8 << 20).read_to_end(&mut self.pending)?;
        let got = self.pending.len() > before;
        self.consume_lines(false, out);
        Ok(got)
    }

    /// Hands every complete line in `pending` to the parser (and the rest too if `all`).
    fn consume_lines(&mut self, all: bool, out: &mut Vec<Parsed>) {
        if self.encoding.is_none() {
            match sniff(&self.pending) {
                Some((enc, bom)) => {
                    self.encoding = Some(enc);
                    if self.pos == 0 && bom > 0 {
                        self.pending.drain(..bom);
                        self.pos = bom as u64;
                    }
                }
                None if all => self.encoding = Some(Encoding::Latin1),
                None => return,
            }
        }
        let enc = self.encoding.unwrap_or(Encoding::Latin1);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            let end = match enc {
                Encoding::Utf16Le => rest
                    .chunks_exact(2)
                    .position(|c| c == [b'\n', 0])
                    .map(|i| 2 * i + 2),
                Encoding::Utf16Be => rest
                    .chunks_exact(2)
                    .position(|c| c == [0, b'\n'])
                    .map(|i| 2 * i + 2),
                Encoding::Utf8 | Encoding::Latin1 => {
                    rest.iter().position(|&b| b == b'\n').map(|i| i + 1)
                }
            };
            let end = match end {
                Some(e) => e,
                None if all && !rest.is_empty() => rest.len(),
                None => break,
            };
            let text = decode_as(&rest[..end], enc);
            for piece in text.split('\n') {
                if piece.is_empty() {
                    continue;
                }
                // Saturating: a state file may hold any count.
                self.line = self.line.saturating_add(1);
                self.parser.feed(self.line, piece, out);
            }
            start += end;
        }
        self.pending.drain(..start);
        self.pos = self.pos.saturating_add(start as u64);
    }

    /// Detects truncation and rotation; returns what happened, if anything.
    fn check_replaced(&mut self, out: &mut Vec<Parsed>) -> Option<&'static str> {
        // The file now at the path, opened to learn its identity: where there are no
        // inodes (Windows), only an open handle tells one file from another.
        let (at_path, md) = match Handle::from_path(&self.path)
            .and_then(|h| h.as_file().metadata().map(|md| (h, md)))
        {
            Ok(found) => found,
            // Rotated away and not yet recreated: keep reading the old file.
            Err(_) => return None,
        };
        if self.file.is_none() {
            self.reopen(None);
            return self.file.is_some().then_some("appeared");
        }
        if self.file.as_ref() != Some(&at_path) {
            // Rotated: what the old file still holds comes first, then the new file.
            let _ = self.read_new(out);
            self.consume_lines(true, out);
            self.reopen(None);
            return Some("rotated");
        }
        if md.len() < self.pos + self.pending.len() as u64 {
            self.pos = 0;
            self.pending.clear();
            self.encoding = None;
            return Some("truncated");
        }
        None
    }
}

/// Follows `inputs` until `stop`, publishing every new row to `sink`.
pub fn follow(
    inputs: &[LogInput],
    parse: &ParseOptions,
    opts: &FollowOptions,
    sink: &mut dyn SampleSink,
    stop: &Arc<AtomicBool>,
) -> Result<ReplayReport> {
    let started = Instant::now();
    let mut state = match &opts.state_file {
        Some(p) => FollowState::load(p)?,
        None => FollowState::default(),
    };
    let mut tails: Vec<Tail> = inputs
        .iter()
        .map(|i| {
            let key = i.path.display().to_string();
            Tail::open(i, parse, state.files.get(&key))
        })
        .collect();
    let mut report = ReplayReport {
        passes: 1,
        ..ReplayReport::default()
    };
    let mut out = Vec::new();
    let mut last_save = Instant::now();
    let mut unsaved = false;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut progressed = false;
        for tail in &mut tails {
            if let Some(what) = tail.check_replaced(&mut out) {
                tracing::warn!(file = %tail.name, "{what}: reading from the top");
                progressed = true;
            }
            match tail.read_new(&mut out) {
                Ok(got) => progressed |= got,
                Err(source) => {
                    return Err(Error::File {
                        path: tail.name.clone(),
                        source,
                    });
                }
            }
            for p in out.drain(..) {
                match p {
                    Parsed::Sample(s, _) => {
                        sink.send(&s)?;
                        report.sent += 1;
                        unsaved = true;
                    }
                    Parsed::Issue(issue) => {
                        if tail.issues_logged < opts.max_issues_logged {
                            tail.issues_logged += 1;
                            tracing::warn!("{issue}");
                        }
                    }
                }
            }
        }
        let due = last_save.elapsed() >= opts.checkpoint_every;
        if (unsaved && (due || !progressed)) || stopping {
            // Positions are saved only once everything before them was delivered.
            let totals = sink.flush(Duration::from_secs(60))?;
            if totals.failed > 0 {
                return Err(Error::Undelivered {
                    failed: totals.failed,
                    total: report.sent,
                    first_error: "see the log".into(),
                });
            }
            if let Some(path) = &opts.state_file {
                for tail in &mut tails {
                    if let Some(st) = tail.state() {
                        state.files.insert(tail.name.clone(), st);
                    }
                }
                state.save(path)?;
            }
            last_save = Instant::now();
            unsaved = false;
        }
        if stopping {
            report.interrupted = true;
            break;
        }
        if !progressed {
            // Sleep in short steps so a stop is honoured quickly.
            let until = Instant::now() + opts.poll;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(opts.poll.min(Duration::from_millis(50)));
            }
        }
    }
    for tail in &tails {
        report.rows.merge(&tail.parser.summary);
    }
    report.delivery = sink.flush(Duration::from_secs(60))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            host: "h".into(),
            gpu: "g".into(),
            gpu_index: 0,
            gpu_name: None,
        }
    }

    /// Found writing the `follow_state` fuzz target (review): a state file whose line count or
    /// position sits at the end of its range overflowed it (a panic in debug builds) at the next
    /// line.
    #[test]
    fn a_state_at_the_end_of_its_counters_resumes() {
        let state = FileState {
            dev: 1,
            ino: 2,
            pos: u64::MAX - 3,
            head_hash: 0,
            head_len: 0,
            encoding: Encoding::Latin1,
            line: usize::MAX,
            parser: ParserState {
                header_cells: Some(vec!["Date".into(), "GPU Load [%]".into()]),
                session_ordinal: 1,
                session: None,
                seq: 7,
                last_utc: None,
            },
        };
        let identity = identity();
        let mut out = Vec::new();
        let appended = b"2024-01-01 00:00:00 , 5 ,\n2024-01-01 00:00:01 , 6 ,";
        let after = state.resume(
            "log",
            identity,
            &ParseOptions::default(),
            appended,
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((after.line, after.pos), (usize::MAX, u64::MAX));
        assert_eq!(after.parser.seq, 9);
    }

    /// Found writing the `follow_state` fuzz target: a state file's `head_len` is never
    /// above HEAD_LEN; a larger one (damaged or edited) used to be hashed, reading and
    /// allocating up to the whole followed file, and could even match.
    #[test]
    fn a_head_longer_than_ever_saved_is_another_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.txt");
        let body = "x".repeat(3 * HEAD_LEN as usize) + "\n";
        std::fs::write(&path, &body).expect("write");
        let md = std::fs::metadata(&path).expect("metadata");
        let (dev, ino) = saved_identity(&md);
        let state = |head_len: u64| FileState {
            dev,
            ino,
            pos: md.len(),
            head_hash: xxhash_rust::xxh3::xxh3_64(&body.as_bytes()[..head_len as usize]),
            head_len,
            encoding: Encoding::Utf8,
            line: 1,
            parser: ParserState {
                header_cells: None,
                session_ordinal: 0,
                session: None,
                seq: 0,
                last_utc: None,
            },
        };
        let identity = identity();
        let input = LogInput {
            path: path.clone(),
            identity,
        };
        let parse = ParseOptions::default();
        let honest = Tail::open(&input, &parse, Some(&state(HEAD_LEN)));
        assert_eq!(honest.pos, md.len(), "a state as saved resumes");
        let forged = Tail::open(&input, &parse, Some(&state(md.len())));
        assert_eq!(forged.pos, 0, "a head longer than HEAD_LEN is not trusted");
    }

    #[test]
    fn identity_tells_a_rotated_file_from_the_same_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.txt");
        std::fs::write(&path, "a\n").expect("write");
        let first = Handle::from_path(&path).expect("handle");
        let id = saved_identity(&std::fs::metadata(&path).expect("metadata"));
        std::fs::write(&path, "a\nb\n").expect("rewrite in place");
        assert!(
            first == Handle::from_path(&path).expect("handle"),
            "same file"
        );
        assert_eq!(id, saved_identity(&std::fs::metadata(&path).expect("md")));
        std::fs::rename(&path, dir.path().join("log.txt.1")).expect("rotate");
        std::fs::write(&path, "c\n").expect("new file");
        assert!(
            first != Handle::from_path(&path).expect("handle"),
            "another file"
        );
        // The fallback identity of systems without inodes reads a creation time here too.
        let md = std::fs::metadata(&path).expect("metadata");
        if md.created().is_ok() {
            assert!(created_nanos(&md) > 0);
        }
    }
}
