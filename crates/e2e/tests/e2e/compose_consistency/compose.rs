//! Reading `docker-compose.yml`: services, their arguments, environment, healthchecks
//! and ports, in whichever of the Compose forms the file writes them.

use std::collections::BTreeMap;

use serde_norway::Value;

pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn services(compose: &Value) -> Vec<(String, &Value)> {
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
pub(super) fn is_project_service(svc: &Value) -> bool {
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
pub(super) fn argv(svc: &Value) -> Vec<String> {
    let mut args = words(svc.get("entrypoint"));
    args.extend(words(svc.get("command")));
    args
}

/// `environment` in either form (map, or list of `KEY=VALUE`).
pub(super) fn environment(svc: &Value) -> BTreeMap<String, Option<String>> {
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
pub(super) fn healthcheck(svc: &Value) -> Option<String> {
    let hc = svc.get("healthcheck")?;
    if hc.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let test = words(hc.get("test")).join(" ");
    (!test.is_empty() && test != "NONE").then_some(test)
}

pub(super) fn is_one_shot(svc: &Value) -> bool {
    svc.get("restart").and_then(scalar).as_deref() == Some("no")
}

pub(super) fn profiles(svc: &Value) -> Vec<String> {
    words(svc.get("profiles"))
}

/// Published ports as written (short syntax), or rebuilt from the long syntax.
pub(super) fn ports(svc: &Value) -> Vec<String> {
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
pub(super) fn container_port(mapping: &str) -> &str {
    let target = mapping.rsplit(':').next().unwrap_or(mapping);
    target.split('/').next().unwrap_or(target)
}
