use std::time::Duration;

use clap::Parser;

use super::{Cli, OutputFormat, Settings};
use crate::model::AnalysisOptions;

fn parse(args: &[&str]) -> Cli {
    match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => panic!("{e}"),
    }
}

/// Why `config --print` refuses the file at `path` (`what` names the expected failure).
fn config_error(path: &str, what: &str) -> String {
    parse(&["batch-analytics", "--config", path, "config", "--print"])
        .effective()
        .expect_err(what)
        .to_string()
}

#[test]
fn the_project_configuration_file_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gpustream.toml");
    let cli = parse(&["batch-analytics", "--config", path, "config", "--print"]);
    let s = cli
        .effective()
        .expect("config/gpustream.toml [batch_analytics]");
    assert_eq!(s.lake, "./lake");
    assert_eq!(s.timezone.as_deref(), Some("UTC"));
    assert_eq!(s.idle_below, 10.0, "not in the file: the default");
    // A flag wins over the file.
    let cli = parse(&[
        "batch-analytics",
        "--config",
        path,
        "daily",
        "--lake",
        "/tmp/other",
        "--timezone",
        "Europe/Berlin",
    ]);
    let s = cli.effective().expect("effective");
    assert_eq!(
        (s.lake.as_str(), s.timezone.as_deref()),
        ("/tmp/other", Some("Europe/Berlin"))
    );
}

#[test]
fn defaults_without_a_file() {
    let s = parse(&["batch-analytics", "config", "--print"])
        .effective()
        .expect("defaults");
    let d = Settings::default();
    assert_eq!(s, d);
    assert_eq!(d.spike_window, Duration::from_secs(30));
    assert_eq!(d.target_file_size, 128 << 20);
    assert_eq!(d.retention, Duration::from_secs(24 * 3600));
    assert!(s.open_lake().unwrap_err().to_string().contains("--lake"));
}

#[test]
fn file_below_flags_typos_name_the_line_and_print_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gpustream.toml");
    std::fs::write(
        &path,
        "[batch_analytics]\nlake = \"s3://b/lake\"\nspike_window = \"1m\"\ntarget_file_size = \"64MiB\"\nretention = \"7d\"\ncsv = true\nformat = \"csv\"\n",
    )
    .expect("write");
    let p = path.to_str().expect("utf-8 path");
    let s = parse(&[
        "batch-analytics",
        "--config",
        p,
        "maintain",
        "--target-file-size",
        "32MiB",
    ])
    .effective()
    .expect("effective");
    assert_eq!(s.lake, "s3://b/lake");
    assert_eq!(s.spike_window, Duration::from_secs(60));
    assert_eq!(s.target_file_size, 32 << 20, "flag over file");
    assert_eq!(s.retention, Duration::from_secs(7 * 86400));
    assert!(s.csv);
    assert_eq!(s.format, OutputFormat::Csv);
    // What `config --print` writes is a file that loads to the same settings.
    let printed = s.to_toml();
    assert!(
        printed.contains("target_file_size = \"32MiB\""),
        "{printed}"
    );
    std::fs::write(&path, &printed).expect("write back");
    let again = parse(&["batch-analytics", "--config", p, "config", "--print"])
        .effective()
        .expect("printed settings load");
    assert_eq!(again, s);

    std::fs::write(
        &path,
        "[batch_analytics]\nlake = \"x\"\nretension = \"1h\"\n",
    )
    .expect("write");
    let err = config_error(p, "typo");
    assert!(err.contains(&format!("{p}:3:")), "{err}");
    assert!(err.contains("did you mean `retention`"), "{err}");

    std::fs::write(&path, "[batch_analytics]\ntarget_file_size = \"huge\"\n").expect("write");
    let err = config_error(p, "bad size");
    assert!(err.contains(&format!("{p}:2:")), "{err}");
    assert!(err.contains("target_file_size"), "{err}");
}

#[test]
fn fleet_settings_from_flags_are_checked() {
    let s = parse(&[
        "batch-analytics",
        "daily",
        "--lake",
        "x",
        "--waste-idle-below",
        "3",
        "--waste-min-idle",
        "45m",
        "--grid-intensity",
        "380",
        "--thermal-limit",
        "83",
        "--model-thermal-limit",
        "NVIDIA A100-SXM4-80GB=88",
        "--model-thermal-limit",
        "odd=name=90",
        "--cohort-power-bucket",
        "50",
    ])
    .effective()
    .expect("effective");
    let o = s.nightly_options().expect("valid");
    let a = &o.analysis;
    assert_eq!(a.waste_idle_below_pct, 3.0);
    assert_eq!(a.waste_min_idle_s, 2700.0);
    assert_eq!(a.grid_g_per_kwh, Some(380.0));
    assert_eq!(a.thermal_limit_c, 83.0);
    assert_eq!(
        a.model_thermal_limits,
        [
            ("NVIDIA A100-SXM4-80GB".to_string(), 88.0),
            ("odd=name".to_string(), 90.0)
        ]
    );
    assert_eq!(a.cohort_power_bucket_w, 50.0);
    assert!(o.allocations.is_none(), "no labels: allocation unknown");
    let mut defaults = Settings::default()
        .nightly_options()
        .expect("defaults")
        .analysis;
    defaults.timezone = chrono_tz::Tz::UTC;
    assert_eq!(defaults, AnalysisOptions::default(), "one set of defaults");

    for (flag, value, message) in [
        ("--model-thermal-limit", "A100", "MODEL=CELSIUS"),
        ("--model-thermal-limit", "A100=hot", "MODEL=CELSIUS"),
        ("--waste-idle-below", "0", "--waste-idle-below"),
        ("--grid-intensity", "-1", "--grid-intensity"),
        ("--cohort-power-bucket", "0", "--cohort-power-bucket"),
        (
            "--allocations",
            "/nonexistent/labels.csv",
            "/nonexistent/labels.csv",
        ),
    ] {
        let arg = format!("{flag}={value}");
        let s = parse(&["batch-analytics", "daily", "--lake", "x", &arg])
            .effective()
            .expect("effective");
        let err = s.nightly_options().expect_err(value).to_string();
        assert!(err.contains(message), "{flag} {value}: {err}");
    }
}

#[test]
fn bool_flags_and_durations() {
    let s = parse(&[
        "batch-analytics",
        "daily",
        "--lake",
        "x",
        "--csv",
        "--no-maintain",
        "--no-report=false",
        "--gap-floor",
        "1500ms",
    ])
    .effective()
    .expect("effective");
    assert!(s.csv && s.no_maintain && !s.no_report);
    assert_eq!(s.gap_floor, Duration::from_millis(1500));
    assert!(
        Cli::try_parse_from(["batch-analytics", "maintain", "--target-file-size", "lots"]).is_err()
    );
    assert!(
        Cli::try_parse_from([
            "batch-analytics",
            "maintain",
            "--date",
            "2024-01-02",
            "--before",
            "2024-01-03"
        ])
        .is_err(),
        "--date excludes --before"
    );
}
