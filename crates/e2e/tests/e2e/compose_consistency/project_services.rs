//! The services that run our binaries: every flag and variable the compose file hands
//! them is one the binary accepts, and their ops endpoint is where it listens.

use std::collections::BTreeSet;
use std::str::FromStr;

use object_store::aws::AmazonS3ConfigKey;
use serde_norway::Value;

use super::compose::{
    argv, container_port, environment, healthcheck, is_project_service, ports, services,
};
use super::help::{Helps, read_by_name_in_package};
use super::{BINARIES, IMAGE_DATA_DIR, RUNTIME_VARS, root};

/// Flags and variables of the services that run our binaries.
pub(super) fn project_service_problems(compose: &Value, helps: &Helps) -> Vec<String> {
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
