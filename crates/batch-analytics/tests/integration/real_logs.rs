//! The nightly job over the real GPU-Z logs of `../shared/data/gpuz/`, parsed with the
//! producer's parser: stable across re-runs, and identical on a local lake and on S3.
//!
//! The six logs were recorded years apart; each is moved (whole days, time of day and
//! intervals kept) to start on [`FLEET_DAY`], as six GPUs of six hosts, so the
//! comparison and the report show them side by side. With `GPUSTREAM_REPORT_DIR`
//! set, the reports are also saved there (`scripts/render-report.sh` uses this).

use std::path::PathBuf;

use batch_analytics::run_range;
use batch_analytics::sql::render;
use batch_analytics::{NightlyOptions, NightlyOutput};
use chrono::{Duration, NaiveDate};
use gpustream::Sample;
use gpustream_lake::Lake;
use gpuz::{Identity, ParseOptions, parse_log};

use crate::fixture::*;

const FLEET_DAY: &str = "2024-01-15";

const LOGS: [(&str, &str); 6] = [
    (
        "nvidia-turing-usbc_GalacticViper-ObsidianGitTest.head3000.txt",
        "turing",
    ),
    ("amd-rx5700xt_MateusRodriguesCosta-AMDdebug.txt", "rx5700xt"),
    ("nvidia-ada-class_richardtokar-python_work.txt", "ada"),
    (
        "intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt",
        "irisxe",
    ),
    (
        "nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt",
        "gtx-1377mhz",
    ),
    (
        "nvidia-pascal-class_Ben-Wu-gpuz-log-utils_utf16be.txt",
        "pascal",
    ),
];

fn shared(name: &str) -> PathBuf {
    gpustream_test_kit::data::shared_log(name)
}

/// Every log parsed and moved onto the fleet day.
pub fn fleet_samples() -> Vec<(String, Vec<Sample>)> {
    let day: NaiveDate = FLEET_DAY.parse().expect("date");
    LOGS.iter()
        .enumerate()
        .map(|(i, (file, gpu))| {
            let bytes = std::fs::read(shared(file))
                .unwrap_or_else(|e| panic!("{file}: {e} (is ../shared beside the checkout?)"));
            let identity = Identity {
                host: format!("ws{}", i + 1),
                gpu: (*gpu).into(),
                gpu_index: 0,
                gpu_name: None,
            };
            let mut log = parse_log(file, &bytes, &identity, &ParseOptions::default());
            assert!(!log.samples.is_empty(), "{file}: no samples");
            let first = log.samples[0].event_time.date_naive();
            let shift = Duration::days((day - first).num_days());
            for s in &mut log.samples {
                s.event_time += shift;
            }
            (format!("gpuz-{gpu}"), log.samples)
        })
        .collect()
}

async fn write_fleet(lake: &Lake) -> (NaiveDate, NaiveDate, usize) {
    let mut total = 0;
    let (mut lo, mut hi) = (NaiveDate::MAX, NaiveDate::MIN);
    for (_, samples) in fleet_samples() {
        total += samples.len();
        for s in &samples {
            lo = lo.min(s.event_time.date_naive());
            hi = hi.max(s.event_time.date_naive());
        }
        append_samples(lake, &samples).await;
    }
    (lo, hi, total)
}

fn options() -> NightlyOptions {
    let mut o = NightlyOptions {
        csv: false,
        report: true,
        ..NightlyOptions::default()
    };
    o.analysis.timezone = chrono_tz::Europe::Berlin;
    o
}

/// Every table of every day as text, for comparisons.
fn show(runs: &[NightlyOutput]) -> Vec<String> {
    runs.iter()
        .flat_map(|r| {
            r.tables.iter().map(move |t| {
                format!(
                    "{} {}\n{}",
                    r.date,
                    t.name,
                    render(t.batch.schema(), std::slice::from_ref(&t.batch)).expect("render")
                )
            })
        })
        .collect()
}

fn save_reports(runs: &[NightlyOutput]) {
    let Ok(dir) = std::env::var("GPUSTREAM_REPORT_DIR") else {
        return;
    };
    std::fs::create_dir_all(&dir).expect("report dir");
    for r in runs {
        let path = PathBuf::from(&dir).join(format!("report-{}.html", r.date));
        let html = r.report_html.as_deref().expect("report requested");
        std::fs::write(&path, html).expect("write report");
        eprintln!("report saved: {}", path.display());
    }
}

/// Sanity of the figures that do not depend on hand computation.
fn check_plausible(runs: &[NightlyOutput], total: usize) {
    let mut samples = 0i64;
    for r in runs {
        let d = &r.table("daily_gpu").expect("daily_gpu").batch;
        samples += ints(d, "samples").iter().flatten().sum::<i64>();
        for e in floats(d, "energy_kwh").into_iter().flatten() {
            assert!((0.0..5.0).contains(&e), "{}: energy {e} kWh", r.date);
        }
        for col in ["idle_share", "busy_share", "throttled_share"] {
            for v in floats(d, col).into_iter().flatten() {
                assert!((0.0..=1.0).contains(&v), "{col} = {v}");
            }
        }
        let c = &r.table("correlations").expect("correlations").batch;
        for (v, why) in floats(c, "r").into_iter().zip(strings(c, "skipped_reason")) {
            assert!(v.is_some() != why.is_some(), "either r or a reason");
            if let Some(v) = v {
                assert!((-1.0..=1.0).contains(&v), "r = {v}");
            }
        }
        let s = &r.table("spikes").expect("spikes").batch;
        for (rise, dur) in floats(s, "rise_c").into_iter().zip(floats(s, "duration_s")) {
            assert!(rise.expect("rise") > 10.0 && dur.expect("duration") >= 0.0);
        }
    }
    assert_eq!(samples as usize, total, "every sample counted once");
    let day = runs
        .iter()
        .find(|r| r.date.to_string() == FLEET_DAY)
        .expect("fleet day");
    let cmp = &day.table("gpu_comparison").expect("comparison").batch;
    assert_eq!(
        cmp.num_rows(),
        LOGS.len(),
        "every log's GPU on the fleet day"
    );
    let energy = floats(&day.table("daily_gpu").expect("daily").batch, "energy_kwh");
    assert!(
        energy.iter().flatten().filter(|e| **e > 0.0).count() >= 4,
        "{energy:?}"
    );
    for section in [
        "Daily curves",
        "Hourly pattern",
        "Temperature spikes",
        "Correlation",
        "Energy per GPU",
        "GPU comparison",
    ] {
        assert!(
            day.report_html
                .as_deref()
                .is_some_and(|h| h.contains(section)),
            "report section {section}"
        );
    }
}

#[tokio::test]
async fn real_logs_are_stable_across_reruns() {
    let (_dir, lake) = new_lake();
    let (from, to, total) = write_fleet(&lake).await;
    let first = run_range(&session(&lake).await, from, to, &options())
        .await
        .expect("first run");
    check_plausible(&first, total);
    let again = run_range(&session(&lake).await, from, to, &options())
        .await
        .expect("re-run");
    assert_eq!(show(&first), show(&again));
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.report_html, b.report_html, "{}: the report too", a.date);
    }
    save_reports(&first);
}

#[tokio::test]
async fn real_logs_on_s3_match_the_local_lake() {
    if !crate::s3::enabled() {
        return;
    }
    let bucket = crate::s3::new_bucket("ba-real");
    let s3 = Lake::open(&format!("s3://{bucket}/lake")).expect("s3 lake");
    let (_dir, local) = new_lake();
    let (from, to, total) = write_fleet(&s3).await;
    write_fleet(&local).await;
    let on_s3 = run_range(&session(&s3).await, from, to, &options())
        .await
        .expect("s3 run");
    let on_local = run_range(&session(&local).await, from, to, &options())
        .await
        .expect("local run");
    check_plausible(&on_s3, total);
    assert_eq!(show(&on_s3), show(&on_local));
    // And once more on S3: each table's day is replaced by one commit, not added to.
    let mut versions = Vec::new();
    for t in batch_analytics::nightly::NIGHTLY_TABLES {
        let location = batch_analytics::nightly::table_location(t);
        versions.push((
            version(&s3, &location).await,
            rows_of_day(&s3, t, FLEET_DAY).await,
        ));
    }
    let again = run_range(&session(&s3).await, from, to, &options())
        .await
        .expect("s3 re-run");
    assert_eq!(show(&again), show(&on_local));
    let days = on_local.len() as u64;
    for (t, (v, rows)) in batch_analytics::nightly::NIGHTLY_TABLES
        .iter()
        .zip(versions)
    {
        let location = batch_analytics::nightly::table_location(t);
        assert_eq!(
            version(&s3, &location).await,
            v + days,
            "{t}: one commit a day"
        );
        assert_eq!(
            rows_of_day(&s3, t, FLEET_DAY).await,
            rows,
            "{t}: no duplicates"
        );
    }
    let back = batch_analytics::run_sql(
        &session(&s3).await,
        "SELECT sum(samples) AS n FROM daily_gpu",
    )
    .await
    .expect("read back");
    assert_eq!(
        ints(&one_batch(&back.batches), "n"),
        vec![Some(total as i64)]
    );
}
