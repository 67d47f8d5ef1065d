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
//!
//! Each check returns its problems, naming the service and the flag or variable:
//! `project_services` (flags, variables, ops endpoint), `interpolation` (`.env.example`),
//! `stack` (ports, health, dependencies, mounts) and `prometheus`; `compose` reads the
//! file and `help` the binaries.

mod compose;
mod help;
mod interpolation;
mod project_services;
mod prometheus;
mod stack;

use std::path::PathBuf;

use serde_norway::Value;

use help::{helps, parse_help};
use interpolation::{Fallback, interpolation_problems, references};
use project_services::project_service_problems;
use prometheus::prometheus_problems;
use stack::{file_problems, health_and_dependency_problems, port_problems};

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
// Tests

/// Runs one check on the real compose file; fails with every problem it finds.
fn check_compose(what: &str, check: impl FnOnce(&Value) -> Vec<String>) {
    assert_no_problems(what, &check(&parse_compose(&compose_text())));
}

#[test]
fn project_services_use_only_real_flags_and_variables() {
    check_compose("docker-compose.yml vs the binaries", |c| {
        project_service_problems(c, helps())
    });
}

#[test]
fn interpolated_variables_match_env_example() {
    check_compose("docker-compose.yml vs .env.example", |c| {
        interpolation_problems(c, &env_example_text())
    });
}

#[test]
fn published_ports_are_loopback_only() {
    check_compose("docker-compose.yml ports", port_problems);
}

#[test]
fn services_have_healthchecks_and_conditional_dependencies() {
    check_compose(
        "docker-compose.yml health and depends_on",
        health_and_dependency_problems,
    );
}

#[test]
fn mounted_files_and_volumes_exist() {
    check_compose("docker-compose.yml files", file_problems);
}

#[test]
fn prometheus_scrapes_every_metrics_endpoint() {
    check_compose("docker/prometheus.yml vs docker-compose.yml", |c| {
        prometheus_problems(c, &parse_prometheus(&prometheus_text()))
    });
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
