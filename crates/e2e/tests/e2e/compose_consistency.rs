//! Keeps `docker-compose.yml` honest without Docker.
//!
//! Nothing here starts a container: the compose file is parsed as YAML (merge keys
//! applied, as compose does), the four binaries are built and asked for `--help`, and
//! what the file hands them must be what they accept:
//!
//! - every `--flag` in a project service's `entrypoint` + `command` is a flag of that
//!   binary (and subcommand);
//! - every `GPUSTREAM_*` variable in its `environment` is listed as `[env: NAME=` by
//!   that `--help`, or is a secret the package reads by name outside its flags;
//! - `AWS_*` variables appear only where the binary takes `--lake`, and each is a name
//!   object_store's `AmazonS3Builder::from_env` really reads.
//!
//! and the stack around them is wired as documented: every `${VAR}` is defined in
//! `.env.example` with the same default and every variable there is used, published
//! ports are bound to 127.0.0.1, long-running services have healthchecks,
//! `depends_on` uses conditions, bind-mounted files exist, and `docker/prometheus.yml`
//! scrapes every ops endpoint where its service listens.
//!
//! Image pins and the Compose specification's schema are checked by
//! `scripts/lint-compose.sh`, not here.
//!
//! `checks_catch_broken_compose_files` breaks a copy of the file on purpose to show that
//! each check can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;

use object_store::aws::AmazonS3ConfigKey;
use serde_norway::Value;

/// The workspace's binaries; each is also the name of its package and its directory.
const BINARIES: [&str; 4] = [
    "producer",
    "stream-processor",
    "consumer-influx",
    "batch-analytics",
];

/// Variables a project service may set that no flag reads: the tracing filter and
/// Rust's own backtrace switch.
const RUNTIME_VARS: [&str; 2] = ["RUST_LOG", "RUST_BACKTRACE"];

/// Where the image puts `data/` (see the Dockerfile).
const IMAGE_DATA_DIR: &str = "/opt/gpustream/data/";

/// Prometheus's scrape configuration, mounted by the `prometheus` service.
const PROMETHEUS_CONFIG: &str = "docker/prometheus.yml";

fn root() -> PathBuf {
    gpustream_test_kit::data::workspace_root()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn parse_compose(text: &str) -> Value {
    let mut value: Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("docker-compose.yml: {e}"));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("docker-compose.yml: merge keys: {e}"));
    value
}

fn compose_text() -> String {
    read("docker-compose.yml")
}

fn env_example_text() -> String {
    read(".env.example")
}

fn parse_prometheus(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{PROMETHEUS_CONFIG}: {e}"))
}

fn prometheus_text() -> String {
    read(PROMETHEUS_CONFIG)
}

/// Fails with every problem at once, one per line.
fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------
// Reading the compose file

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn services(compose: &Value) -> Vec<(String, &Value)> {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((scalar(k)?, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// A service built from this repository's Dockerfile (build context `.`) runs one of our
/// binaries; an image built from another context (`docker/minio`) does not.
fn is_project_service(svc: &Value) -> bool {
    let context = match svc.get("build") {
        None => None,
        Some(Value::String(context)) => Some(context.clone()),
        Some(build) => Some(
            build
                .get("context")
                .and_then(scalar)
                .unwrap_or_else(|| ".".to_string()),
        ),
    };
    context.is_some_and(|c| c.trim_end_matches('/') == ".")
        || svc
            .get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.starts_with("gpustream:"))
}

/// `entrypoint`/`command` as words: a string is split on whitespace (the project
/// services use the list form, which needs no shell rules).
fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => vec![format!("{other:?}")],
    }
}

/// The process arguments: the image has no ENTRYPOINT, so `entrypoint` + `command`.
fn argv(svc: &Value) -> Vec<String> {
    let mut args = words(svc.get("entrypoint"));
    args.extend(words(svc.get("command")));
    args
}

/// `environment` in either form (map, or list of `KEY=VALUE`).
fn environment(svc: &Value) -> BTreeMap<String, Option<String>> {
    match svc.get("environment") {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((scalar(k)?, scalar(v))))
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(scalar)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item, None),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The healthcheck's command as one string, if the service has an enabled one.
fn healthcheck(svc: &Value) -> Option<String> {
    let hc = svc.get("healthcheck")?;
    if hc.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let test = words(hc.get("test")).join(" ");
    (!test.is_empty() && test != "NONE").then_some(test)
}

fn is_one_shot(svc: &Value) -> bool {
    svc.get("restart").and_then(scalar).as_deref() == Some("no")
}

fn profiles(svc: &Value) -> Vec<String> {
    words(svc.get("profiles"))
}

/// Published ports as written (short syntax), or rebuilt from the long syntax.
fn ports(svc: &Value) -> Vec<String> {
    let Some(Value::Sequence(items)) = svc.get("ports") else {
        return Vec::new();
    };
    items
        .iter()
        .map(|p| match p {
            Value::Mapping(_) => format!(
                "{}:{}:{}",
                p.get("host_ip").and_then(scalar).unwrap_or_default(),
                p.get("published").and_then(scalar).unwrap_or_default(),
                p.get("target").and_then(scalar).unwrap_or_default()
            ),
            other => scalar(other).unwrap_or_else(|| format!("{other:?}")),
        })
        .collect()
}

/// The container side of a short-syntax port mapping (`127.0.0.1:9731:9731/tcp` → 9731).
fn container_port(mapping: &str) -> &str {
    let target = mapping.rsplit(':').next().unwrap_or(mapping);
    target.split('/').next().unwrap_or(target)
}

// ---------------------------------------------------------------------------------------
// The truth: the binaries' own --help

#[derive(Debug, Default)]
struct Help {
    /// Long flags, with their dashes (`--brokers`).
    flags: BTreeSet<String>,
    /// Short flags (`-h`).
    shorts: BTreeSet<String>,
    /// Variables clap lists as `[env: NAME=...]`.
    env: BTreeSet<String>,
    /// Subcommands, without clap's `help`.
    subcommands: BTreeSet<String>,
    /// Whether a subcommand must be given (`Usage: x <COMMAND>`, not `[COMMAND]`).
    subcommand_required: bool,
}

/// Reads clap's help layout: unindented section titles (`Commands:`, `Options:`),
/// indented entries; an option entry starts with its flags (`-h, --help`).
fn parse_help(text: &str) -> Help {
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
type Helps = BTreeMap<(String, Option<String>), Help>;

fn helps() -> &'static Helps {
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
fn read_by_name_in_package(package: &str, var: &str) -> bool {
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

// ---------------------------------------------------------------------------------------
// The checks; each returns its problems, naming the service and the flag or variable.

/// Flags and variables of the services that run our binaries.
fn project_service_problems(compose: &Value, helps: &Helps) -> Vec<String> {
    let mut problems = Vec::new();
    let mut binaries_run = BTreeSet::new();
    for (name, svc) in services(compose) {
        if !is_project_service(svc) {
            continue;
        }
        let args = argv(svc);
        let Some(program) = args.first() else {
            problems.push(format!(
                "service `{name}`: no entrypoint/command, so it would run the image's \
                 default instead of one of {BINARIES:?}"
            ));
            continue;
        };
        let binary = program.rsplit('/').next().unwrap_or(program).to_string();
        let Some(top) = helps.get(&(binary.clone(), None)) else {
            problems.push(format!(
                "service `{name}`: runs `{binary}`, which is not one of the workspace \
                 binaries {BINARIES:?}"
            ));
            continue;
        };
        binaries_run.insert(binary.clone());

        let mut rest = &args[1..];
        let mut subcommand = None;
        if !top.subcommands.is_empty() {
            match rest.first() {
                Some(sub) if top.subcommands.contains(sub) => {
                    subcommand = Some(sub.clone());
                    rest = &rest[1..];
                }
                _ if !top.subcommand_required => {}
                other => {
                    problems.push(format!(
                        "service `{name}`: `{binary}` needs a subcommand ({:?}), got {:?}",
                        top.subcommands, other
                    ));
                    continue;
                }
            }
        }
        let help = &helps[&(binary.clone(), subcommand.clone())];
        let invocation = match &subcommand {
            Some(sub) => format!("{binary} {sub}"),
            None => binary.clone(),
        };

        for arg in rest {
            if arg == "--" {
                break;
            }
            if arg.starts_with("--") {
                let flag = arg.split('=').next().unwrap_or(arg);
                if !help.flags.contains(flag) {
                    problems.push(format!(
                        "service `{name}`: `{invocation}` has no flag `{flag}` \
                         (its flags: {})",
                        help.flags.iter().cloned().collect::<Vec<_>>().join(" ")
                    ));
                }
            } else if arg.len() > 1
                && arg.starts_with('-')
                && arg[1..].parse::<f64>().is_err()
                && !help.shorts.contains(arg)
            {
                problems.push(format!(
                    "service `{name}`: `{invocation}` has no short flag `{arg}`"
                ));
            }
            if let Some(file) = arg.strip_prefix(IMAGE_DATA_DIR)
                && !root().join("data").join(file).is_file()
            {
                problems.push(format!(
                    "service `{name}`: `{arg}` is not in the image: data/{file} does not exist"
                ));
            }
        }

        if svc.get("env_file").is_some() {
            problems.push(format!(
                "service `{name}`: env_file hides variables from this check; list them \
                 under `environment` instead"
            ));
        }
        let env = environment(svc);
        for var in env.keys() {
            if var.starts_with("GPUSTREAM_") {
                if !help.env.contains(var) && !read_by_name_in_package(&binary, var) {
                    problems.push(format!(
                        "service `{name}`: `{invocation}` does not read {var} (its --help \
                         lists [env: ...] only for {})",
                        help.env.iter().cloned().collect::<Vec<_>>().join(" ")
                    ));
                }
            } else if var.starts_with("AWS_") {
                if !help.flags.contains("--lake") {
                    problems.push(format!(
                        "service `{name}`: {var} is set but `{invocation}` has no --lake, \
                         so nothing reads it"
                    ));
                } else if AmazonS3ConfigKey::from_str(&var.to_ascii_lowercase()).is_err() {
                    problems.push(format!(
                        "service `{name}`: {var} is not a variable object_store's S3 \
                         builder reads (AmazonS3Builder::from_env ignores it)"
                    ));
                }
            } else if !RUNTIME_VARS.contains(&var.as_str()) {
                problems.push(format!(
                    "service `{name}`: {var} is neither a GPUSTREAM_* variable of \
                     `{invocation}`, an AWS_* lake setting nor one of {RUNTIME_VARS:?}"
                ));
            }
        }

        // The ops endpoint: what the healthcheck probes and the published port expose
        // must be where --metrics-addr listens, on an address reachable from outside.
        let metrics_addr = env.get("GPUSTREAM_METRICS_ADDR").cloned().flatten();
        let metrics_port = metrics_addr
            .as_deref()
            .and_then(|a| a.rsplit_once(':'))
            .map(|(host, port)| (host.to_string(), port.to_string()));
        if let Some(test) = healthcheck(svc).filter(|t| t.contains("/health")) {
            match &metrics_port {
                Some((_, port)) if test.contains(&format!(":{port}/health")) => {}
                Some((_, port)) => problems.push(format!(
                    "service `{name}`: healthcheck `{test}` does not probe port {port} of \
                     GPUSTREAM_METRICS_ADDR"
                )),
                None => problems.push(format!(
                    "service `{name}`: healthcheck probes /health but GPUSTREAM_METRICS_ADDR \
                     is not set (the default listens on 127.0.0.1 only)"
                )),
            }
        }
        for mapping in ports(svc) {
            match &metrics_port {
                Some((host, port)) if container_port(&mapping) == port => {
                    if host.starts_with("127.") || host == "localhost" || host == "[::1]" {
                        problems.push(format!(
                            "service `{name}`: port `{mapping}` is published but \
                             GPUSTREAM_METRICS_ADDR={host}:{port} listens on loopback \
                             inside the container; use 0.0.0.0:{port}"
                        ));
                    }
                }
                _ => problems.push(format!(
                    "service `{name}`: published port `{mapping}` is not the port of \
                     GPUSTREAM_METRICS_ADDR ({})",
                    metrics_addr.as_deref().unwrap_or("unset")
                )),
            }
        }
    }
    for bin in BINARIES {
        if !binaries_run.contains(bin) {
            problems.push(format!("no service runs the `{bin}` binary"));
        }
    }
    problems
}

#[derive(Debug, PartialEq)]
enum Fallback {
    /// `$VAR` or `${VAR}`.
    None,
    /// `${VAR:-x}` or `${VAR-x}`.
    Default(String),
    /// `${VAR:?msg}` or `${VAR?msg}`.
    Required,
    /// `${VAR:+x}` or `${VAR+x}`.
    Alternative,
    /// Anything else after the name.
    Malformed(String),
}

#[derive(Debug)]
struct Reference {
    name: String,
    fallback: Fallback,
}

/// Compose's interpolation references in one string, nested ones included; `$$` is a
/// literal `$` for the container and is skipped.
fn references(s: &str) -> Vec<Reference> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(inner_and_more) = after.strip_prefix('{') {
            let mut depth = 1;
            let close = inner_and_more.char_indices().find_map(|(i, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            });
            let Some(close) = close else {
                found.push(Reference {
                    name: String::new(),
                    fallback: Fallback::Malformed(format!("unclosed `${{` in `{s}`")),
                });
                break;
            };
            let inner = &inner_and_more[..close];
            let name_len = inner.find(|c| !is_name(c)).unwrap_or(inner.len());
            let (name, modifier) = inner.split_at(name_len);
            let (fallback, nested) = if modifier.is_empty() {
                (Fallback::None, "")
            } else if let Some(x) = modifier
                .strip_prefix(":-")
                .or_else(|| modifier.strip_prefix('-'))
            {
                (Fallback::Default(x.to_string()), x)
            } else if let Some(x) = modifier
                .strip_prefix(":?")
                .or_else(|| modifier.strip_prefix('?'))
            {
                (Fallback::Required, x)
            } else if let Some(x) = modifier
                .strip_prefix(":+")
                .or_else(|| modifier.strip_prefix('+'))
            {
                (Fallback::Alternative, x)
            } else {
                (Fallback::Malformed(modifier.to_string()), "")
            };
            found.push(Reference {
                name: name.to_string(),
                fallback,
            });
            found.extend(references(nested));
            rest = &inner_and_more[close + 1..];
        } else {
            let name_len = after.find(|c| !is_name(c)).unwrap_or(after.len());
            if name_len > 0 {
                found.push(Reference {
                    name: after[..name_len].to_string(),
                    fallback: Fallback::None,
                });
            }
            rest = &after[name_len..];
        }
    }
    found
}

/// Every string value with its YAML path (compose interpolates values, not keys).
fn strings_with_paths(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_with_paths(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = scalar(k).unwrap_or_else(|| format!("{k:?}"));
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                strings_with_paths(v, &sub, out);
            }
        }
        Value::Tagged(t) => strings_with_paths(&t.value, path, out),
        _ => {}
    }
}

/// `NAME=value` lines of an env file; comments and blank lines skipped.
fn parse_env_file(text: &str, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!(".env.example line {}: not NAME=value", i + 1));
            continue;
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            problems.push(format!(
                ".env.example line {}: `{name}` is not an upper-case variable name",
                i + 1
            ));
        }
        if vars.insert(name.to_string(), value.to_string()).is_some() {
            problems.push(format!(".env.example defines {name} twice"));
        }
    }
    vars
}

/// Passwords and secret keys are required from .env, never defaulted in the compose
/// file (a default would be a published password).
fn is_secret(name: &str) -> bool {
    name.contains("PASSWORD") || name.contains("SECRET")
}

/// `${VAR...}` references against `.env.example`.
fn interpolation_problems(compose: &Value, env_example: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let defined = parse_env_file(env_example, &mut problems);
    let mut strings = Vec::new();
    strings_with_paths(compose, "", &mut strings);
    let mut used = BTreeSet::new();
    for (path, text) in &strings {
        for Reference { name, fallback } in references(text) {
            used.insert(name.clone());
            let Some(example) = defined.get(&name) else {
                problems.push(format!(
                    "{path}: uses ${{{name}}} but .env.example does not define {name}"
                ));
                continue;
            };
            match &fallback {
                Fallback::None => problems.push(format!(
                    "{path}: ${{{name}}} has no fallback; write ${{{name}:-default}} or, for \
                     a secret, ${{{name}:?set {name} in .env}}"
                )),
                Fallback::Malformed(what) => {
                    problems.push(format!("{path}: malformed interpolation of {name}: {what}"))
                }
                Fallback::Default(_) | Fallback::Alternative if is_secret(&name) => {
                    problems.push(format!(
                        "{path}: {name} is a secret: require it with ${{{name}:?...}} rather \
                         than giving it a default"
                    ))
                }
                Fallback::Default(default) if !default.contains('$') && default != example => {
                    problems.push(format!(
                        "{path}: default of {name} is `{default}` but .env.example sets \
                         `{example}`"
                    ))
                }
                Fallback::Required if !is_secret(&name) => problems.push(format!(
                    "{path}: {name} is not a secret: give it a default (${{{name}:-...}}) \
                     so that a minimal .env works"
                )),
                Fallback::Required if example.is_empty() => problems.push(format!(
                    "{path}: {name} is required but empty in .env.example, so \
                     `cp .env.example .env && docker compose up` fails"
                )),
                _ => {}
            }
        }
    }
    for name in defined.keys() {
        if !used.contains(name) {
            problems.push(format!(
                ".env.example defines {name} but docker-compose.yml never uses it"
            ));
        }
    }
    problems
}

fn port_problems(compose: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, svc) in services(compose) {
        if svc.get("network_mode").and_then(Value::as_str) == Some("host") {
            problems.push(format!(
                "service `{name}`: network_mode host bypasses the loopback-only ports"
            ));
        }
        for mapping in ports(svc) {
            if !mapping.starts_with("127.0.0.1:") {
                problems.push(format!(
                    "service `{name}`: port `{mapping}` is published on every interface; \
                     bind it as \"127.0.0.1:HOST:CONTAINER\""
                ));
            }
        }
    }
    problems
}

fn health_and_dependency_problems(compose: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let all: BTreeMap<String, &Value> = services(compose).into_iter().collect();
    for (name, svc) in &all {
        if !is_one_shot(svc) && healthcheck(svc).is_none() {
            problems.push(format!(
                "service `{name}`: keeps running but has no healthcheck (add one, or mark a \
                 one-shot with restart: \"no\")"
            ));
        }
        match svc.get("depends_on") {
            None => {}
            Some(Value::Mapping(deps)) => {
                for (dep, spec) in deps {
                    let dep = scalar(dep).unwrap_or_default();
                    let condition = spec.get("condition").and_then(Value::as_str);
                    let Some(target) = all.get(&dep) else {
                        problems.push(format!(
                            "service `{name}`: depends on `{dep}`, which is not a service"
                        ));
                        continue;
                    };
                    match condition {
                        Some("service_healthy") if healthcheck(target).is_none() => {
                            problems.push(format!(
                                "service `{name}`: waits for `{dep}` to be healthy, but \
                                 `{dep}` has no healthcheck"
                            ))
                        }
                        Some("service_completed_successfully") if !is_one_shot(target) => problems
                            .push(format!(
                                "service `{name}`: waits for `{dep}` to complete, but `{dep}` \
                                 is not a one-shot (restart: \"no\")"
                            )),
                        Some(
                            "service_healthy"
                            | "service_completed_successfully"
                            | "service_started",
                        ) => {}
                        other => problems.push(format!(
                            "service `{name}`: depends_on `{dep}` needs a condition \
                             (service_healthy, service_completed_successfully or \
                             service_started), got {other:?}"
                        )),
                    }
                    if profiles(svc).is_empty() && !profiles(target).is_empty() {
                        problems.push(format!(
                            "service `{name}`: starts by default but depends on `{dep}`, \
                             which only runs with profiles {:?}",
                            profiles(target)
                        ));
                    }
                }
            }
            Some(_) => problems.push(format!(
                "service `{name}`: depends_on is a list; use the long form with a condition \
                 so it waits for readiness, not just for the container to start"
            )),
        }
    }
    problems
}

/// The port of a service's ops endpoint (`/metrics`, `/health`), from the
/// GPUSTREAM_METRICS_ADDR its environment sets.
fn metrics_port(svc: &Value) -> Option<String> {
    environment(svc)
        .get("GPUSTREAM_METRICS_ADDR")
        .cloned()
        .flatten()
        .and_then(|addr| addr.rsplit_once(':').map(|(_, port)| port.to_string()))
}

/// `host:port` of every static target in a Prometheus configuration.
fn scrape_targets(prometheus: &Value) -> Vec<String> {
    let sequence = |v: Option<&Value>| v.and_then(Value::as_sequence).cloned().unwrap_or_default();
    sequence(prometheus.get("scrape_configs"))
        .iter()
        .flat_map(|job| sequence(job.get("static_configs")))
        .flat_map(|config| sequence(config.get("targets")))
        .filter_map(|target| scalar(&target))
        .collect()
}

/// Prometheus scrapes every service that serves `/metrics` (GPUSTREAM_METRICS_ADDR) on the
/// port it listens on, and every target it scrapes is a service of the file.
fn prometheus_problems(compose: &Value, prometheus: &Value) -> Vec<String> {
    let targets = scrape_targets(prometheus);
    let all: BTreeMap<String, &Value> = services(compose).into_iter().collect();
    let mut problems = Vec::new();
    for (name, svc) in &all {
        let Some(port) = metrics_port(svc) else {
            continue;
        };
        let want = format!("{name}:{port}");
        if !targets.contains(&want) {
            problems.push(format!(
                "service `{name}`: serves /metrics on port {port} (GPUSTREAM_METRICS_ADDR) \
                 but {PROMETHEUS_CONFIG} does not scrape `{want}`"
            ));
        }
    }
    for target in &targets {
        let Some((host, port)) = target.rsplit_once(':') else {
            problems.push(format!(
                "{PROMETHEUS_CONFIG}: target `{target}` has no port"
            ));
            continue;
        };
        if host == "localhost" {
            continue;
        }
        match all.get(host) {
            None => problems.push(format!(
                "{PROMETHEUS_CONFIG}: target `{target}` is not a service of docker-compose.yml"
            )),
            Some(svc) if is_project_service(svc) => match metrics_port(svc) {
                Some(listens) if listens == port => {}
                listens => problems.push(format!(
                    "{PROMETHEUS_CONFIG}: target `{target}`, but service `{host}` serves \
                     /metrics on port {}",
                    listens.unwrap_or_else(|| "none (GPUSTREAM_METRICS_ADDR unset)".into())
                )),
            },
            Some(_) => {}
        }
    }
    problems
}

/// Bind-mounted files and directories exist, named volumes are declared, the build
/// context has the Dockerfile, and the obsolete `version` key is gone.
fn file_problems(compose: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if compose.get("version").is_some() {
        problems.push("top-level `version` is obsolete in the Compose spec".to_string());
    }
    let declared: BTreeSet<String> = compose
        .get("volumes")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    for (name, svc) in services(compose) {
        if let Some(context) = svc.get("build").and_then(|b| {
            b.as_str()
                .map(str::to_string)
                .or_else(|| b.get("context").and_then(scalar))
        }) {
            let dockerfile = svc
                .get("build")
                .and_then(|b| b.get("dockerfile"))
                .and_then(scalar)
                .unwrap_or_else(|| "Dockerfile".to_string());
            if !root().join(&context).join(&dockerfile).is_file() {
                problems.push(format!(
                    "service `{name}`: build context `{context}` has no {dockerfile}"
                ));
            }
        }
        let Some(Value::Sequence(volumes)) = svc.get("volumes") else {
            continue;
        };
        for volume in volumes {
            let source = match volume {
                Value::Mapping(_) => volume.get("source").and_then(scalar),
                other => scalar(other).and_then(|s| s.split(':').next().map(str::to_string)),
            };
            let Some(source) = source else { continue };
            if source.starts_with('.') || source.starts_with('/') {
                if !root().join(&source).exists() {
                    problems.push(format!(
                        "service `{name}`: bind mount source `{source}` does not exist \
                         (Docker would create an empty directory in its place)"
                    ));
                }
            } else if !declared.contains(&source) {
                problems.push(format!(
                    "service `{name}`: named volume `{source}` is not declared under the \
                     top-level `volumes`"
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn project_services_use_only_real_flags_and_variables() {
    let compose = parse_compose(&compose_text());
    assert_no_problems(
        "docker-compose.yml vs the binaries",
        &project_service_problems(&compose, helps()),
    );
}

#[test]
fn interpolated_variables_match_env_example() {
    let compose = parse_compose(&compose_text());
    assert_no_problems(
        "docker-compose.yml vs .env.example",
        &interpolation_problems(&compose, &env_example_text()),
    );
}

#[test]
fn published_ports_are_loopback_only() {
    let compose = parse_compose(&compose_text());
    assert_no_problems("docker-compose.yml ports", &port_problems(&compose));
}

#[test]
fn services_have_healthchecks_and_conditional_dependencies() {
    let compose = parse_compose(&compose_text());
    assert_no_problems(
        "docker-compose.yml health and depends_on",
        &health_and_dependency_problems(&compose),
    );
}

#[test]
fn mounted_files_and_volumes_exist() {
    let compose = parse_compose(&compose_text());
    assert_no_problems("docker-compose.yml files", &file_problems(&compose));
}

#[test]
fn prometheus_scrapes_every_metrics_endpoint() {
    let compose = parse_compose(&compose_text());
    assert_no_problems(
        "docker/prometheus.yml vs docker-compose.yml",
        &prometheus_problems(&compose, &parse_prometheus(&prometheus_text())),
    );
}

#[test]
fn dockerfile_builds_every_binary_and_ships_the_sample_data() {
    let dockerfile = read("Dockerfile");
    let mut problems = Vec::new();
    for bin in BINARIES {
        if !dockerfile.contains(&format!("-p {bin}")) {
            problems.push(format!("Dockerfile does not build `-p {bin}`"));
        }
        if !dockerfile.contains(&format!("target/release/{bin}")) {
            problems.push(format!("Dockerfile does not copy target/release/{bin}"));
        }
    }
    if !dockerfile.contains(&format!("COPY data/ {IMAGE_DATA_DIR}")) {
        problems.push(format!(
            "Dockerfile does not copy data/ to {IMAGE_DATA_DIR}"
        ));
    }
    assert_no_problems("Dockerfile", &problems);
}

#[test]
fn help_parser_reads_clap_layout() {
    let help = parse_help(
        "Does things\n\nUsage: x [OPTIONS] <COMMAND>\n\nCommands:\n  run   Runs\n  help  \
         Print help\n\nOptions:\n      --brokers <BROKERS>\n          Kafka [env: \
         GPUSTREAM_BROKERS=] [default: a:1]\n      --create-topic  Create it [env:\n          \
         GPUSTREAM_CREATE_TOPIC=]\n  -h, --help  Print help\n",
    );
    assert_eq!(
        help.flags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["--brokers", "--create-topic", "--help"]
    );
    assert!(help.shorts.contains("-h"));
    assert_eq!(
        help.env.iter().map(String::as_str).collect::<Vec<_>>(),
        ["GPUSTREAM_BROKERS", "GPUSTREAM_CREATE_TOPIC"]
    );
    assert_eq!(
        help.subcommands
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["run"]
    );
    assert!(help.subcommand_required);
    assert!(!parse_help("Usage: x [OPTIONS] [COMMAND]\n").subcommand_required);
}

#[test]
fn interpolation_references_are_found() {
    let refs = references("a ${A:-x} $$B ${C:?need C} $D ${E:-${F}} ${G:+y}");
    let got: Vec<(&str, &Fallback)> = refs
        .iter()
        .map(|r| (r.name.as_str(), &r.fallback))
        .collect();
    assert_eq!(
        got,
        [
            ("A", &Fallback::Default("x".into())),
            ("C", &Fallback::Required),
            ("D", &Fallback::None),
            ("E", &Fallback::Default("${F}".into())),
            ("F", &Fallback::None),
            ("G", &Fallback::Alternative),
        ]
    );
}

/// Each check fails on a copy of the real file broken in the way it guards against,
/// and its message names the service and the flag or variable.
#[test]
fn checks_catch_broken_compose_files() {
    let mut compose = parse_compose(&compose_text());
    fn edit(c: &mut Value, name: &str, f: impl FnOnce(&mut Value)) {
        f(c.get_mut("services")
            .and_then(|s| s.get_mut(name))
            .unwrap_or_else(|| panic!("service {name} in docker-compose.yml")));
    }
    edit(&mut compose, "producer", |s| {
        let command = s.get_mut("command").and_then(Value::as_sequence_mut);
        command
            .expect("producer has a command list")
            .push("--bogus-flag".into());
    });
    edit(&mut compose, "stream-processor", |s| {
        let env = s.get_mut("environment").and_then(Value::as_mapping_mut);
        let env = env.expect("stream-processor has an environment map");
        env.insert("GPUSTREAM_NO_SUCH_SETTING".into(), "1".into());
        env.insert("AWS_ENDPIONT".into(), "http://minio:9000".into());
    });
    edit(&mut compose, "consumer-influx", |s| {
        let env = s.get_mut("environment").and_then(Value::as_mapping_mut);
        let env = env.expect("consumer-influx has an environment map");
        env.insert("AWS_REGION".into(), "us-east-1".into());
        env.insert(
            "GPUSTREAM_INFLUX_URL".into(),
            "${UNDEFINED_IN_ENV_EXAMPLE:-x}".into(),
        );
        s.as_mapping_mut()
            .expect("service is a mapping")
            .insert("ports".into(), vec![Value::from("9732:9732")].into());
    });
    edit(&mut compose, "kafka-init", |s| {
        s.as_mapping_mut()
            .expect("service is a mapping")
            .remove("restart");
    });
    edit(&mut compose, "grafana", |s| {
        s.as_mapping_mut()
            .expect("service is a mapping")
            .insert("depends_on".into(), vec![Value::from("influxdb")].into());
    });

    let expect = |problems: &[String], needles: &[&str]| {
        assert!(
            problems
                .iter()
                .any(|p| needles.iter().all(|n| p.contains(n))),
            "no problem mentions all of {needles:?}; got:\n  - {}",
            problems.join("\n  - ")
        );
    };
    let flags = project_service_problems(&compose, helps());
    expect(&flags, &["`producer`", "--bogus-flag"]);
    expect(&flags, &["`stream-processor`", "GPUSTREAM_NO_SUCH_SETTING"]);
    expect(&flags, &["`stream-processor`", "AWS_ENDPIONT"]);
    expect(&flags, &["`consumer-influx`", "AWS_REGION", "--lake"]);

    let vars = interpolation_problems(&compose, &env_example_text());
    expect(&vars, &["consumer-influx", "UNDEFINED_IN_ENV_EXAMPLE"]);
    let vars = interpolation_problems(&compose, &format!("{}\nUNUSED_VAR=1\n", env_example_text()));
    expect(&vars, &["UNUSED_VAR", "never uses"]);

    expect(
        &port_problems(&compose),
        &["`consumer-influx`", "9732:9732"],
    );

    let health = health_and_dependency_problems(&compose);
    expect(&health, &["`kafka-init`", "healthcheck"]);
    expect(&health, &["`producer`", "`kafka-init`", "one-shot"]);
    expect(&health, &["`grafana`", "depends_on is a list"]);

    // Prometheus scraping an old port and a service that is gone: the service is not
    // scraped where it listens, and both stale targets are named.
    let text = prometheus_text();
    let stale = text.replace("\"stream-processor:9731\"", "\"stream-processor:9101\"");
    assert_ne!(
        stale, text,
        "{PROMETHEUS_CONFIG} scrapes stream-processor:9731"
    );
    let mut prometheus = parse_prometheus(&stale);
    prometheus
        .get_mut("scrape_configs")
        .and_then(Value::as_sequence_mut)
        .expect("scrape_configs is a list")
        .push(parse_prometheus(
            "{job_name: gone, static_configs: [{targets: [\"nowhere:1\"]}]}",
        ));
    let scrape = prometheus_problems(&compose, &prometheus);
    expect(&scrape, &["`stream-processor`", "`stream-processor:9731`"]);
    expect(&scrape, &["`stream-processor:9101`", "port 9731"]);
    expect(&scrape, &["`nowhere:1`", "not a service"]);
}
