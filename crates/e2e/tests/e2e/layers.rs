//! The workspace's crates depend downward only: each crate may use crates of a lower
//! layer, never one of its own layer or above (dev-dependencies included, except the
//! test kit, which every crate's tests may use). Checked on `cargo metadata`, so a new
//! edge that breaks the layering fails here.

use std::collections::BTreeMap;

/// Layer of every workspace crate: 0 is the model, the binaries' crates share a layer
/// (none may depend on another), the end-to-end tests are the top.
const LAYERS: &[(&str, u32)] = &[
    ("gpustream", 0),
    ("gpuz", 1),
    ("gpustream-lake", 1),
    ("gpustream-runtime", 1),
    ("gpustream-sim", 2),
    ("gpustream-test-kit", 3),
    ("producer", 4),
    ("stream-processor", 4),
    ("consumer-influx", 4),
    ("batch-analytics", 4),
    ("e2e-tests", 5),
    ("gpustream-fuzz-targets", 5),
];

const TEST_KIT: &str = "gpustream-test-kit";

#[test]
fn crates_depend_downward_only() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(gpustream_test_kit::data::workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let packages = meta["packages"].as_array().expect("packages");
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for name in &names {
        assert!(
            layers.contains_key(name),
            "crate `{name}` has no layer in LAYERS: place it before adding it"
        );
    }
    let mut violations = Vec::new();
    for p in packages {
        let name = p["name"].as_str().expect("name");
        let layer = layers[name];
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("dependency name");
            let Some(&dep_layer) = layers.get(dep) else {
                continue; // not a workspace crate
            };
            let dev = d["kind"].as_str() == Some("dev");
            let allowed = dep_layer < layer || (dev && dep == TEST_KIT && name != TEST_KIT);
            if !allowed {
                violations.push(format!(
                    "{name} (layer {layer}) -> {dep} (layer {dep_layer}){}",
                    if dev { " [dev]" } else { "" }
                ));
            }
            // The end-to-end crate is itself a test crate.
            if dep == TEST_KIT && !dev && name != "e2e-tests" {
                violations.push(format!("{name} depends on the test kit outside its tests"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies that do not point downward:\n  {}",
        violations.join("\n  ")
    );
}
