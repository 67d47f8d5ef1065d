//! Compose's `${VAR}` interpolation against `.env.example`: every reference defined
//! there with the same default, every variable there used, secrets never defaulted.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::compose::scalar;

#[derive(Debug, PartialEq)]
pub(super) enum Fallback {
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
pub(super) struct Reference {
    pub(super) name: String,
    pub(super) fallback: Fallback,
}

/// Compose's interpolation references in one string, nested ones included; `$$` is a
/// literal `$` for the container and is skipped.
pub(super) fn references(s: &str) -> Vec<Reference> {
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
pub(super) fn interpolation_problems(compose: &Value, env_example: &str) -> Vec<String> {
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
