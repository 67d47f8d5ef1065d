//! The allocation labels file (`--allocations FILE`): which user, job and project held
//! which GPU when, as CSV.
//!
//! ```text
//! host,gpu,start,end,user,job,project
//! node01,gpu0,2024-05-01T08:00:00Z,2024-05-01T20:00:00Z,alice,4711,climate
//! node01,*,2024-05-02T00:00:00+02:00,2024-05-02T06:00:00+02:00,bob,4712,
//! ```
//!
//! - The first line names the columns, in any order: `host`, `gpu`, `start`, `end`,
//!   `user`, `job` are required, `project` is optional (empty = none).
//! - `gpu` is the samples' `gpu` (the GPU id within the host), or `*` for every GPU of
//!   the host.
//! - `start` and `end` are RFC 3339 instants with an offset; the allocation covers
//!   `start <= t < end`.
//! - Blank lines and lines starting with `#` are skipped; a field may be quoted with
//!   `"` (a quote inside doubled), on one line.
//! - One GPU cannot be held by two rows at the same time.
//!
//! Every mistake is an [`Error::Allocations`] naming the file, the line and the field;
//! nothing here panics on input.

use std::path::Path;

use chrono::DateTime;

use crate::error::{Error, Result};
use crate::model::{Allocation, Allocations, Owner};

/// The columns of a labels file, in the order of the documentation.
pub const COLUMNS: [&str; 7] = ["host", "gpu", "start", "end", "user", "job", "project"];

/// Columns that must be present.
const REQUIRED: [&str; 6] = ["host", "gpu", "start", "end", "user", "job"];

/// Reads and checks a labels file.
pub fn load(path: &Path) -> Result<Allocations> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Allocations {
        file: path.display().to_string(),
        line: 0,
        field: None,
        message: format!("cannot read the allocations file: {e}"),
    })?;
    parse(&path.display().to_string(), &text)
}

/// Parses labels from `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Allocations> {
    let err = |line: usize, field: Option<&str>, message: String| Error::Allocations {
        file: file.to_string(),
        line,
        field: field.map(str::to_string),
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        return Err(err(
            1,
            None,
            format!("empty file: expected a header line `{}`", COLUMNS.join(",")),
        ));
    };
    let names = split(header).map_err(|m| err(header_line, None, m))?;
    let mut position = [None; COLUMNS.len()];
    for (i, name) in names.iter().enumerate() {
        let name = name.trim();
        let Some(k) = COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)) else {
            return Err(err(
                header_line,
                Some(name),
                format!(
                    "unknown column{}; the columns are {}",
                    gpustream_runtime::config::did_you_mean(name, &COLUMNS),
                    COLUMNS.join(", ")
                ),
            ));
        };
        if position[k].replace(i).is_some() {
            return Err(err(header_line, Some(name), "column given twice".into()));
        }
    }
    for (k, c) in COLUMNS.iter().enumerate() {
        if REQUIRED.contains(c) && position[k].is_none() {
            return Err(err(header_line, Some(c), "required column missing".into()));
        }
    }

    let mut rows = Vec::new();
    for (line, row) in lines {
        let fields = split(row).map_err(|m| err(line, None, m))?;
        if fields.len() != names.len() {
            return Err(err(
                line,
                None,
                format!("{} field(s), the header has {}", fields.len(), names.len()),
            ));
        }
        let get = |k: usize| position[k].map(|i| fields[i].trim());
        let required = |k: usize| -> Result<&str> {
            match get(k) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(err(line, Some(COLUMNS[k]), "empty".into())),
            }
        };
        let instant = |k: usize| -> Result<i64> {
            let v = required(k)?;
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_micros())
                .map_err(|e| {
                    err(
                        line,
                        Some(COLUMNS[k]),
                        format!(
                            "`{v}` is not an RFC 3339 instant with an offset, e.g. 2024-05-01T08:00:00Z ({e})"
                        ),
                    )
                })
        };
        let (host, gpu) = (required(0)?, required(1)?);
        let (start_us, end_us) = (instant(2)?, instant(3)?);
        if end_us <= start_us {
            return Err(err(line, Some("end"), "must be after `start`".to_string()));
        }
        rows.push(Allocation {
            line,
            host: host.to_string(),
            gpu: (gpu != "*").then(|| gpu.to_string()),
            start_us,
            end_us,
            owner: Owner {
                user: required(4)?.to_string(),
                job: required(5)?.to_string(),
                project: get(6).filter(|p| !p.is_empty()).map(str::to_string),
            },
        });
    }
    Allocations::new(rows).map_err(|o| {
        err(
            o.second,
            None,
            format!(
                "overlaps line {}: a GPU cannot be held by two allocations at once",
                o.first
            ),
        )
    })
}

/// Splits one line at commas; a field may be quoted (`"a, b"`, `"say ""hi"""`).
fn split(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    loop {
        // Leading blanks before a quote belong to the layout, not the field.
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') && field.is_empty() {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(format!("field {} has no closing quote", fields.len() + 1));
                    }
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some(c) => {
                    return Err(format!(
                        "field {}: `{c}` after a closing quote",
                        fields.len() + 1
                    ));
                }
            }
            continue;
        }
        loop {
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(c) => field.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::owner_at;

    const HEADER: &str = "host,gpu,start,end,user,job,project\n";

    fn parse_err(text: &str) -> String {
        parse("alloc.csv", text).expect_err("bad file").to_string()
    }

    #[test]
    fn a_labels_file_with_quotes_comments_and_any_column_order() {
        let a = parse(
            "alloc.csv",
            "# exported from the scheduler\n\
             job,user,host,gpu,start,end\n\
             \n\
             4711,alice,n1,gpu0,2024-05-01T08:00:00Z,2024-05-01T10:00:00Z\n\
             \"47,12\", \"bob \"\"b\"\"\" ,n1,*,2024-05-01T12:00:00+02:00,2024-05-01T11:00:00Z\r\n",
        )
        .expect("valid");
        assert_eq!(a.len(), 2);
        let seg = a.segments("n1", "gpu0");
        let at = |s: &str| {
            let t = DateTime::parse_from_rfc3339(s)
                .expect("t")
                .timestamp_micros();
            owner_at(&seg, t).and_then(|o| a.owner(o)).cloned()
        };
        let alice = at("2024-05-01T09:59:59Z").expect("alice");
        assert_eq!((alice.user.as_str(), alice.job.as_str()), ("alice", "4711"));
        assert_eq!(alice.project, None, "no project column");
        assert_eq!(at("2024-05-01T07:59:59Z"), None);
        // 12:00+02:00 = 10:00Z: bob's host-wide row starts where alice's ends (her end
        // is exclusive) and ends at 11:00.
        let bob = at("2024-05-01T10:00:00Z").expect("bob");
        assert_eq!(
            (bob.user.as_str(), bob.job.as_str()),
            ("bob \"b\"", "47,12")
        );
        assert_eq!(at("2024-05-01T11:00:00Z"), None, "end is exclusive");
        assert_eq!(a.segments("n1", "gpu5").len(), 1, "`*` is every GPU");
    }

    #[test]
    fn bad_rows_name_the_file_the_line_and_the_field() {
        let e = parse_err(&format!(
            "{HEADER}n1,gpu0,2024-05-01T08:00:00Z,2024-05-01T09:00:00Z,a,1,p\n\
             n1,gpu0,yesterday,2024-05-01T09:00:00Z,a,1,p\n"
        ));
        assert!(
            e.starts_with("alloc.csv:3: field `start`: `yesterday`"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{HEADER}n1,gpu0,2024-05-01T08:00:00,2024-05-01T09:00:00Z,a,1,p\n"
        ));
        assert!(
            e.contains("alloc.csv:2: field `start`") && e.contains("offset"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{HEADER}n1,gpu0,2024-05-01T09:00:00Z,2024-05-01T08:00:00Z,a,1,p\n"
        ));
        assert!(e.contains("alloc.csv:2: field `end`: must be after"), "{e}");
        let e = parse_err(&format!(
            "{HEADER}n1,gpu0,2024-05-01T08:00:00Z,2024-05-01T09:00:00Z,,1,p\n"
        ));
        assert!(e.contains("alloc.csv:2: field `user`: empty"), "{e}");
        let e = parse_err(&format!("{HEADER}n1,gpu0,2024-05-01T08:00:00Z\n"));
        assert!(
            e.contains("alloc.csv:2: 3 field(s), the header has 7"),
            "{e}"
        );
        let e = parse_err("host,gpu,strat,end,user,job\n");
        assert!(e.contains("alloc.csv:1: field `strat`"), "{e}");
        assert!(e.contains("did you mean `start`"), "{e}");
        let e = parse_err("host,gpu,end,user,job\n");
        assert!(
            e.contains("alloc.csv:1: field `start`: required column missing"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{HEADER}n1,\"gpu0,2024-05-01T08:00:00Z,2024-05-01T09:00:00Z,a,1,p\n"
        ));
        assert!(
            e.contains("alloc.csv:2:") && e.contains("closing quote"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{HEADER}n1,*,2024-05-01T08:00:00Z,2024-05-01T09:00:00Z,a,1,p\n\
             # a comment line still counts for line numbers\n\
             n1,gpu2,2024-05-01T08:30:00Z,2024-05-01T08:40:00Z,b,2,p\n"
        ));
        assert!(e.contains("alloc.csv:4: overlaps line 2"), "{e}");
        let e = parse_err("# only a comment\n");
        assert!(e.contains("empty file"), "{e}");
        let e = load(Path::new("/nonexistent/alloc.csv"))
            .expect_err("missing")
            .to_string();
        assert!(
            e.contains("/nonexistent/alloc.csv") && e.contains("cannot read"),
            "{e}"
        );
    }
}
