//! Every message the producer emits for the real logs, the generated sample log and the
//! simulated fleet validates against `schema/sample.v1.schema.json`, and decodes back to the same sample.

use std::path::PathBuf;

use gpuz::{Identity, ParseOptions, parse_log};

use gpustream_test_kit::data::{shared_logs, workspace_root as root};

#[test]
fn every_emitted_message_validates_against_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("schema/sample.v1.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let mut files: Vec<PathBuf> = shared_logs();
    files.push(root().join("data/sample-gpuz-log.txt"));
    assert!(files.len() >= 7);
    let mut checked = 0;
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let id = Identity {
            host: "host, with \"quotes\"".into(),
            gpu: "gpu 0".into(),
            gpu_index: 3,
            gpu_name: Some("RTX".into()),
        };
        let log = parse_log(
            &f.display().to_string(),
            &bytes,
            &id,
            &ParseOptions::default(),
        );
        assert!(!log.samples.is_empty(), "{}", f.display());
        for s in &log.samples {
            let bytes = gpustream::wire::encode_sample(s).unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Err(e) = validator.validate(&json) {
                panic!("{}: seq {}: {e}\n{json}", f.display(), s.seq);
            }
            assert_eq!(&gpustream::wire::decode_sample(&bytes).unwrap(), s);
            checked += 1;
        }
    }
    assert!(checked > 9000, "{checked}");

    // The simulated fleet, every fault kind included (ECC, XID, throttle bits ...).
    let mut fleet = gpustream_sim::fleet::Fleet::new(gpustream_sim::fleet::FleetConfig {
        hosts: 2,
        gpus_per_host: 4,
        seed: 9,
        interval: std::time::Duration::from_secs(5),
        ..Default::default()
    });
    let mut fleet_checked = 0;
    for _ in 0..8000 {
        for s in fleet.next_tick() {
            let bytes = gpustream::wire::encode_sample(&s).unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Err(e) = validator.validate(&json) {
                panic!("fleet {}/{} seq {}: {e}\n{json}", s.host, s.gpu, s.seq);
            }
            assert_eq!(gpustream::wire::decode_sample(&bytes).unwrap(), s);
            fleet_checked += 1;
        }
    }
    let kinds: std::collections::HashSet<_> = fleet.labels().iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds.len(),
        gpustream_sim::fleet::FaultKind::ALL.len(),
        "{kinds:?}"
    );
    assert!(fleet_checked > 50_000, "{fleet_checked}");
}

#[test]
fn schema_lists_exactly_the_metric_catalogue() {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("schema/sample.v1.schema.json")).unwrap(),
    )
    .unwrap();
    let props = schema["properties"]["metrics"]["properties"]
        .as_object()
        .unwrap();
    let mut in_schema: Vec<&str> = props.keys().map(String::as_str).collect();
    let mut in_code: Vec<&str> = gpustream::Metric::ALL.iter().map(|m| m.column()).collect();
    in_schema.sort_unstable();
    in_code.sort_unstable();
    assert_eq!(in_schema, in_code);
    for m in gpustream::Metric::ALL {
        let ty = props[m.column()]["type"].as_str().unwrap();
        assert_eq!(
            ty,
            if m.kind().is_integer() {
                "integer"
            } else {
                "number"
            },
            "{}",
            m.column()
        );
    }
}
