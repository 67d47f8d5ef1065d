//! How the stack is wired: loopback-only ports, healthchecks and conditional
//! `depends_on`, bind mounts and volumes that exist.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::compose::{healthcheck, is_one_shot, ports, profiles, scalar, services};
use super::root;

pub(super) fn port_problems(compose: &Value) -> Vec<String> {
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

pub(super) fn health_and_dependency_problems(compose: &Value) -> Vec<String> {
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

/// Bind-mounted files and directories exist, named volumes are declared, the build
/// context has the Dockerfile, and the obsolete `version` key is gone.
pub(super) fn file_problems(compose: &Value) -> Vec<String> {
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
