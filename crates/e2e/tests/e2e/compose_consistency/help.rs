//! The truth: the binaries' own `--help`, parsed, and the secrets a package reads by
//! name outside its flags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{BINARIES, root};

#[derive(Debug, Default)]
pub(super) struct Help {
    /// Long flags, with their dashes (`--brokers`).
    pub(super) flags: BTreeSet<String>,
    /// Short flags (`-h`).
    pub(super) shorts: BTreeSet<String>,
    /// Variables clap lists as `[env: NAME=...]`.
    pub(super) env: BTreeSet<String>,
    /// Subcommands, without clap's `help`.
    pub(super) subcommands: BTreeSet<String>,
    /// Whether a subcommand must be given (`Usage: x <COMMAND>`, not `[COMMAND]`).
    pub(super) subcommand_required: bool,
}

/// Reads clap's help layout: unindented section titles (`Commands:`, `Options:`),
/// indented entries; an option entry starts with its flags (`-h, --help`).
pub(super) fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(usage) = line.strip_prefix("Usage:") {
            help.subcommand_required = usage.contains("<COMMAND>");
            continue;
        }
        if !line.starts_with(' ') {
            in_commands = line.trim_end() == "Commands:";
            continue;
        }
        let entry = line.trim_start();
        if in_commands {
            if let Some(name) = entry.split_whitespace().next().filter(|n| *n != "help") {
                help.subcommands.insert(name.to_string());
            }
            continue;
        }
        if !entry.starts_with('-') {
            continue;
        }
        for token in entry.split(|c: char| c.is_whitespace() || c == ',') {
            if token.is_empty() {
                continue;
            }
            if let Some(long) = token.strip_prefix("--") {
                let name = long.split(['=', '<', '[']).next().unwrap_or_default();
                if !name.is_empty() {
                    help.flags.insert(format!("--{name}"));
                }
                break;
            }
            if token.len() == 2 && token.starts_with('-') {
                help.shorts.insert(token.to_string());
            } else {
                break;
            }
        }
    }
    // Whitespace is normalised so that a wrapped `[env: NAME=` is still found.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for rest in flat.split("[env: ").skip(1) {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            help.env.insert(name);
        }
    }
    help
}

/// The four binaries, as `cargo test --workspace` built them.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static FOUND: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| {
        BINARIES
            .iter()
            .map(|b| (b.to_string(), gpustream_test_kit::bins::path(b)))
            .collect()
    })
}

fn run_help(path: &Path, subcommand: Option<&str>) -> String {
    let out = Command::new(path)
        .args(subcommand)
        .arg("--help")
        // A GPUSTREAM_* or GPUSTREAM_CONFIG of the test's own environment must not
        // change what the binary prints (clap shows env values in help).
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("running {} --help: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} {} --help failed: {}",
        path.display(),
        subcommand.unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Help of every binary and every subcommand, keyed by (binary, subcommand).
pub(super) type Helps = BTreeMap<(String, Option<String>), Help>;

pub(super) fn helps() -> &'static Helps {
    static HELPS: OnceLock<Helps> = OnceLock::new();
    HELPS.get_or_init(|| {
        let mut all = Helps::new();
        for (name, path) in binaries() {
            let top = parse_help(&run_help(path, None));
            for sub in &top.subcommands {
                let help = parse_help(&run_help(path, Some(sub)));
                all.insert((name.clone(), Some(sub.clone())), help);
            }
            all.insert((name.clone(), None), top);
        }
        all
    })
}

/// True if the package names the variable as a string literal: how secrets are read
/// (`gpustream_runtime::config::secret_from_env`, never a flag, so never in `--help`).
/// `NAME_FILE` counts as `NAME`, as `secret_from_env` reads both.
pub(super) fn read_by_name_in_package(package: &str, var: &str) -> bool {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let base = var.strip_suffix("_FILE").unwrap_or(var);
    let literal = format!("\"{base}\"");
    let mut files = Vec::new();
    rust_files(&root().join("crates").join(package).join("src"), &mut files);
    files.iter().any(|f| {
        std::fs::read_to_string(f)
            .map(|s| s.contains(&literal))
            .unwrap_or(false)
    })
}
