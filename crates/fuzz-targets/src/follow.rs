//! `follow_state`: a follow-mode state file → a resumed parser.

use std::path::Path;

use gpuz::parser::Parsed;
use gpuz::{Identity, ParseOptions};
use producer::follow::FollowState;

/// Where the state file is read from; its errors must name it.
const PATH: &str = "/fuzz/follow-state.json";

/// What the followed file holds after the saved position when the input gives nothing
/// else: a header, a row, and a last row without its line break.
const APPENDED: &[u8] =
    b"Date , GPU Temperature [\xb0C] , GPU Load [%] , Fan Speed (RPM) [RPM] ,\r\n\
2024-03-31 01:59:59 , 50.0 , 10 , 0 ,\r\n2024-03-31 02:30:00 , 51.0 , - , 0 ,";

/// Reads `data` up to its first NUL byte as a state file, and what follows the NUL (or
/// a small log) as what each followed file holds after its saved position. Checks:
///
/// - no panic, no hang;
/// - an error names the state file;
/// - a state reads back the same after being written as `save` writes it;
/// - every file's saved parser resumes on the appended bytes: the position moves by
///   their length, line numbers carry on after the saved one, issues name the file.
pub fn follow_state(data: &[u8]) {
    let (state, appended) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, APPENDED),
    };
    let path = Path::new(PATH);
    let state = match FollowState::parse(state, path) {
        Ok(s) => s,
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(PATH), "error without the file: {shown}");
            return;
        }
    };
    let json = serde_json::to_vec_pretty(&state).expect("a state serialises");
    match FollowState::parse(&json, path) {
        Ok(again) => assert_eq!(again, state, "written and read back"),
        Err(e) => panic!("a written state does not read back: {e}"),
    }
    let identity = Identity {
        host: "fuzz-host".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        gpu_name: None,
    };
    let opts = ParseOptions {
        timezone: chrono_tz::Europe::Berlin,
        fallback_header: None,
    };
    for (name, saved) in state.files.iter().take(4) {
        let mut out = Vec::new();
        let after = saved.resume(name, identity.clone(), &opts, appended, &mut out);
        assert_eq!(
            Some(after.pos),
            saved
                .pos
                .checked_add(appended.len() as u64)
                .or(Some(u64::MAX)),
            "the position moves by what was read"
        );
        assert!(after.line >= saved.line);
        for p in &out {
            if let Parsed::Issue(issue) = p {
                assert_eq!(&issue.file, name);
                assert!(
                    issue.line > saved.line || saved.line == usize::MAX,
                    "line {} after line {}",
                    issue.line,
                    saved.line
                );
                assert!(issue.line <= after.line);
            }
        }
    }
}
