//! Known-answer tests of the nightly tables on small hand-computable lakes, written
//! through the lake's Delta table writer in the stream processor's `date`/`hour`
//! partitioning.

use batch_analytics::model::AnalysisOptions;
use batch_analytics::nightly::{NIGHTLY_TABLES, csv_path, table_location};
use batch_analytics::{NightlyOptions, NightlyOutput, run_nightly, run_sql};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use gpustream::{Metric, Sample, Source};
use gpustream_lake::Lake;

use crate::fixture::*;

/// A sample of host `h1` at `t`, with the given readings.
pub fn reading(
    gpu: &str,
    session: &str,
    t: DateTime<Utc>,
    seq: u64,
    m: &[(Metric, f64)],
) -> Sample {
    sim_sample("h1", gpu, "Known GPU", session, t, seq, m)
}

pub async fn run(lake: &Lake, date: &str, analysis: AnalysisOptions) -> NightlyOutput {
    run_with(lake, date, analysis, None).await
}

#[tokio::test]
async fn energy_of_300_w_for_an_hour_with_a_gap_and_a_second_session() {
    let (dir, lake) = new_lake();
    let start = at("2024-05-01T10:00:00Z");
    let mut samples = Vec::new();
    let mut seq = 0;
    // Session s1: 300 W every second 10:00:00–11:00:00, nothing from 10:20:01 to
    // 10:29:59. The counter keeps counting through the gap (the GPU ran, nothing was
    // logged), so neither the trapezoids nor the counter may bridge it.
    for s in 0..=3600i64 {
        if s > 1200 && s < 1800 {
            continue;
        }
        seq += 1;
        let counter = 5e6 + 300_000.0 * s as f64;
        samples.push(reading(
            "gpu0",
            "s1",
            start + Duration::seconds(s),
            seq,
            &[(Metric::BoardPower, 300.0), (Metric::Energy, counter)],
        ));
    }
    // Session s2 starts one second after s1's last sample: that second belongs to no
    // session. 10 samples → 9 intervals of 300 W.
    for s in 1..=10i64 {
        seq += 1;
        samples.push(reading(
            "gpu0",
            "s2",
            at("2024-05-01T11:00:00Z") + Duration::seconds(s),
            seq,
            &[(Metric::BoardPower, 300.0)],
        ));
    }
    append_samples(&lake, &samples).await;
    // Another day's samples and anomalies, whose files the tables reference but that
    // are unreadable on disk: the run must not even open them (partition pruning on
    // samples and anomalies).
    let next_day = at("2024-05-02T00:00:05Z");
    append_samples(
        &lake,
        &[reading(
            "gpu0",
            "s3",
            next_day,
            1,
            &[(Metric::BoardPower, 1.0)],
        )],
    )
    .await;
    let event = anomaly(
        "x",
        gpustream::AnomalyState::Firing,
        "gpu_temp_high",
        gpustream::Severity::Warning,
        "2024-05-02T00:00:05Z",
        "2024-05-02T00:00:05Z",
        90.0,
    );
    append_anomalies(&lake, &[event]).await;
    for table in ["samples", "anomalies"] {
        let files = files_of_day(&lake, table, "2024-05-02").await;
        assert_eq!(files.len(), 1, "{table}");
        std::fs::write(
            dir.path().join(table).join(&files[0]),
            b"not parquet, but referenced by the table",
        )
        .expect("corrupt");
    }
    // The corruption is real: reading that day fails.
    let err = run_sql(
        &session(&lake).await,
        "SELECT sum(board_power_w) FROM samples WHERE date = '2024-05-02'",
    )
    .await
    .expect_err("the other day's file is unreadable");
    assert!(!err.to_string().is_empty());
    let out = run(&lake, "2024-05-01", AnalysisOptions::default()).await;
    let b = table(&out, "daily_gpu");
    assert_eq!(ints(&b, "samples"), vec![Some(3601 - 599 + 10)]);
    // (1200 s + 1800 s + 9 s) × 300 W = 902 700 J.
    close(floats(&b, "energy_kwh")[0], 902_700.0 / 3.6e6);
    close(floats(&b, "integrated_hours")[0], 3009.0 / 3600.0);
    assert_eq!(ints(&b, "gaps"), vec![Some(1)]);
    // The counter covers s1 only: 3000 s × 300 W.
    close(floats(&b, "energy_counter_kwh")[0], 0.25);
    close(floats(&b, "energy_counter_diff_pct")[0], 0.0);
    // The hourly energy splits at 11:00 (intervals are booked to the hour they end in).
    let h = table(&out, "hourly");
    assert_eq!(ints(&h, "hour"), vec![Some(10), Some(11)]);
    let e = floats(&h, "energy_kwh");
    close(e[0], (1200.0 + 1799.0) * 300.0 / 3.6e6);
    close(e[1], (1.0 + 9.0) * 300.0 / 3.6e6);
    // Fleet = the one GPU.
    let f = table(&out, "daily_fleet");
    assert_eq!(strings(&f, "host"), vec![Some("*".into())]);
    close(floats(&f, "energy_kwh")[0], 902_700.0 / 3.6e6);
}

#[tokio::test]
async fn spikes_inside_sessions_only() {
    let (_dir, lake) = new_lake();
    let t0 = at("2024-05-02T08:00:00Z");
    let mut samples = Vec::new();
    let mut seq = 0;
    let mut push = |session: &str, s: i64, temp: f64| {
        seq += 1;
        samples.push(reading(
            "gpu0",
            session,
            t0 + Duration::seconds(s),
            seq,
            &[(Metric::GpuTemp, temp)],
        ));
    };
    // Session a ends at 40 °C; session b starts at 75 °C one second later: no spike.
    for s in 0..10 {
        push("a", s, 40.0);
    }
    for s in 10..20 {
        push("b", s, 75.0);
    }
    // Session c: a gap of 10 minutes between 40 °C and 70 °C: no spike either.
    push("c", 100, 40.0);
    push("c", 101, 40.0);
    push("c", 701, 70.0);
    push("c", 702, 70.0);
    // Session d: a slow rise of 20 °C over 200 s (3 °C per 30 s): no spike.
    for s in 0..=200 {
        push("d", 1000 + s, 40.0 + f64::from(s as i32) * 0.1);
    }
    // Session e: 40, 40, 40, 45, 52, 58, 60, 55, 49, 45 every second: one spike from
    // the last 40 (s=2) to the peak 60 (s=6), above 50 °C until 55 (s=7).
    for (s, v) in [40.0, 40.0, 40.0, 45.0, 52.0, 58.0, 60.0, 55.0, 49.0, 45.0]
        .into_iter()
        .enumerate()
    {
        push("e", 2000 + s as i64, v);
    }
    append_samples(&lake, &samples).await;
    let out = run(&lake, "2024-05-02", AnalysisOptions::default()).await;
    let b = table(&out, "spikes");
    assert_eq!(b.num_rows(), 1, "{:?}", strings(&b, "session"));
    assert_eq!(strings(&b, "session"), vec![Some("e".into())]);
    close(floats(&b, "start_c")[0], 40.0);
    close(floats(&b, "peak_c")[0], 60.0);
    close(floats(&b, "rise_c")[0], 20.0);
    close(floats(&b, "rise_s")[0], 4.0);
    close(floats(&b, "duration_s")[0], 5.0);
    assert_eq!(ints(&b, "samples"), vec![Some(4)]);

    // The thresholds are options: with a 5 °C rise in 300 s the slow rise is a spike too.
    let loose = AnalysisOptions {
        spike_rise_c: 5.0,
        spike_window_s: 300.0,
        ..AnalysisOptions::default()
    };
    let out = run(&lake, "2024-05-02", loose).await;
    let sessions = strings(&table(&out, "spikes"), "session");
    assert!(sessions.contains(&Some("d".into())), "{sessions:?}");
    assert!(!sessions.contains(&Some("b".into())), "{sessions:?}");
    assert!(!sessions.contains(&Some("c".into())), "{sessions:?}");
}

#[tokio::test]
async fn correlations_percentiles_and_time_shares() {
    let (_dir, lake) = new_lake();
    let t0 = at("2024-05-03T00:00:00Z");
    let mut samples = Vec::new();
    // gpu0: load 0..=100, power = 2 × load + 10 (perfectly correlated), temperature
    // constant 50, core clock = 3000 − 10 × load (perfectly anti-correlated), memory
    // used never reported. Hot spot 1..=101 for percentiles.
    for i in 0..=100u64 {
        let load = i as f64;
        samples.push(reading(
            "gpu0",
            "s",
            t0 + Duration::seconds(i as i64),
            i,
            &[
                (Metric::GpuLoad, load),
                (Metric::BoardPower, 2.0 * load + 10.0),
                (Metric::GpuTemp, 50.0),
                (Metric::CoreClock, 3000.0 - 10.0 * load),
                (Metric::HotSpotTemp, (i + 1) as f64),
            ],
        ));
    }
    // gpu1: time shares and throttle reasons.
    let loads = [
        Some(0.0),
        Some(5.0),
        Some(9.99),
        Some(10.0),
        Some(50.0),
        Some(69.9),
        Some(70.0),
        Some(80.0),
        Some(100.0),
        None,
    ];
    let caps = [
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        Some(16),
        Some(4),
        Some(8),
        Some(32),
        None,
        None,
    ];
    for (i, (l, c)) in loads.iter().zip(caps).enumerate() {
        let mut m = vec![];
        if let Some(l) = l {
            m.push((Metric::GpuLoad, *l));
        }
        if let Some(c) = c {
            m.push((Metric::PerfCap, f64::from(c)));
        }
        samples.push(reading(
            "gpu1",
            "s",
            t0 + Duration::seconds(i as i64),
            i as u64,
            &m,
        ));
    }
    append_samples(&lake, &samples).await;
    let out = run(&lake, "2024-05-03", AnalysisOptions::default()).await;

    let d = table(&out, "daily_gpu");
    assert_eq!(
        strings(&d, "gpu"),
        vec![Some("gpu0".into()), Some("gpu1".into())]
    );
    // Hot spot 1..=101: ranks p × 100 → p50 = 51, p95 = 96, p99 = 100.
    close(floats(&d, "hot_spot_c_p50")[0], 51.0);
    close(floats(&d, "hot_spot_c_p95")[0], 96.0);
    close(floats(&d, "hot_spot_c_p99")[0], 100.0);
    // Load 0..=100 → p95 = 95; constant temperature: stddev 0, all percentiles 50.
    close(floats(&d, "gpu_load_pct_p95")[0], 95.0);
    close(floats(&d, "gpu_temp_c_stddev")[0], 0.0);
    close(floats(&d, "gpu_temp_c_p99")[0], 50.0);
    // gpu0: idle = loads 0..9 (10 of 101), busy = 70..100 (31 of 101).
    close(floats(&d, "idle_share")[0], 10.0 / 101.0);
    close(floats(&d, "busy_share")[0], 31.0 / 101.0);
    // gpu1: 9 loads, 3 idle (0, 5, 9.99), 3 busy (70, 80, 100); 10 and 69.9 neither.
    close(floats(&d, "idle_share")[1], 1.0 / 3.0);
    close(floats(&d, "busy_share")[1], 1.0 / 3.0);
    // 8 PerfCap codes: 0, 1, 2, 3, 16 (idle: not throttled), 4, 8, 32.
    close(floats(&d, "throttled_share")[1], 6.0 / 8.0);
    close(floats(&d, "throttled_power_share")[1], 2.0 / 8.0);
    close(floats(&d, "throttled_thermal_share")[1], 2.0 / 8.0);
    close(floats(&d, "throttled_voltage_share")[1], 2.0 / 8.0);
    close(floats(&d, "throttled_other_share")[1], 1.0 / 8.0);
    close(floats(&d, "throttled_hw_slowdown_share")[1], 0.0);
    assert_eq!(
        floats(&d, "throttled_share")[0],
        None,
        "gpu0 reports no codes"
    );

    let c = table(&out, "correlations");
    // 36 unordered pairs × 3 load states per GPU, each pair once.
    assert_eq!(c.num_rows(), 2 * 36 * 3);
    let find = |gpu: &str, state: &str, a: &str, b: &str| {
        let (g, s, ma, mb) = (
            strings(&c, "gpu"),
            strings(&c, "load_state"),
            strings(&c, "metric_a"),
            strings(&c, "metric_b"),
        );
        let i = (0..c.num_rows())
            .find(|&i| {
                g[i].as_deref() == Some(gpu)
                    && s[i].as_deref() == Some(state)
                    && ma[i].as_deref() == Some(a)
                    && mb[i].as_deref() == Some(b)
            })
            .unwrap_or_else(|| panic!("no row {gpu} {state} {a} {b}"));
        (
            ints(&c, "n")[i],
            floats(&c, "r")[i],
            strings(&c, "skipped_reason")[i].clone(),
        )
    };
    let (n, r, why) = find("gpu0", "all", "gpu_load_pct", "power_w");
    assert_eq!((n, why), (Some(101), None));
    close(r, 1.0);
    let (_, r, _) = find("gpu0", "all", "gpu_load_pct", "core_clock_mhz");
    close(r, -1.0);
    let (n, r, why) = find("gpu0", "idle", "gpu_load_pct", "power_w");
    assert_eq!(n, Some(10));
    close(r, 1.0);
    assert_eq!(why, None);
    assert_eq!(find("gpu0", "busy", "gpu_load_pct", "power_w").0, Some(31));
    let (n, r, why) = find("gpu0", "all", "gpu_temp_c", "gpu_load_pct");
    assert_eq!((n, r), (Some(101), None));
    assert_eq!(why.as_deref(), Some("gpu_temp_c is constant (50)"));
    let (n, r, why) = find("gpu0", "all", "gpu_load_pct", "memory_used_mb");
    assert_eq!((n, r), (Some(0), None));
    assert_eq!(
        why.as_deref(),
        Some("no samples with both gpu_load_pct and memory_used_mb")
    );

    // The comparison: gpu0's perf/W proxy is Σ(clock × load / 100) / Σ power.
    let g = table(&out, "gpu_comparison");
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..=100 {
        let l = f64::from(i);
        num += (3000.0 - 10.0 * l) * l / 100.0;
        den += 2.0 * l + 10.0;
    }
    close(floats(&g, "perf_per_watt")[0], num / den);
    close(floats(&g, "perf_per_watt_rel")[0], 1.0);
    assert_eq!(
        floats(&g, "perf_per_watt")[1],
        None,
        "gpu1 has no clock or power"
    );
}

#[tokio::test]
async fn local_hours_across_dst_changes() {
    let (_dir, lake) = new_lake();
    let ny = AnalysisOptions {
        timezone: chrono_tz::America::New_York,
        ..AnalysisOptions::default()
    };
    let mut samples = Vec::new();
    // Spring forward, 2024-03-10: 05:30Z = 00:30 EST, 06:30Z = 01:30 EST,
    // 07:30Z = 03:30 EDT (02:xx does not exist).
    // Fall back, 2024-11-03: 05:30Z = 01:30 EDT and 06:30Z = 01:30 EST: one hour of day.
    for (i, t) in [
        "2024-03-10T05:30:00Z",
        "2024-03-10T06:30:00Z",
        "2024-03-10T07:30:00Z",
        "2024-11-03T05:30:00Z",
        "2024-11-03T06:30:00Z",
        "2024-11-03T07:30:00Z",
    ]
    .iter()
    .enumerate()
    {
        samples.push(reading(
            "gpu0",
            "s",
            at(t),
            i as u64,
            &[(Metric::GpuLoad, 10.0 * i as f64)],
        ));
    }
    append_samples(&lake, &samples).await;
    let spring = table(&run(&lake, "2024-03-10", ny.clone()).await, "hourly");
    assert_eq!(ints(&spring, "hour"), vec![Some(0), Some(1), Some(3)]);
    assert_eq!(
        strings(&spring, "timezone")[0].as_deref(),
        Some("America/New_York")
    );
    let fall = table(&run(&lake, "2024-11-03", ny).await, "hourly");
    assert_eq!(ints(&fall, "hour"), vec![Some(1), Some(2)]);
    assert_eq!(ints(&fall, "samples"), vec![Some(2), Some(1)]);
    close(floats(&fall, "gpu_load_pct_mean")[0], 35.0);
    // In UTC the same samples fall in hours 5, 6, 7.
    let utc = table(
        &run(&lake, "2024-11-03", AnalysisOptions::default()).await,
        "hourly",
    );
    assert_eq!(ints(&utc, "hour"), vec![Some(5), Some(6), Some(7)]);
}

/// Per table: version, the day's files, the other day's files, rows of each day.
type TableState = (u64, Vec<String>, Vec<String>, i64, i64);

async fn table_state(lake: &Lake, name: &str) -> TableState {
    let location = table_location(name);
    (
        version(lake, &location).await,
        files_of_day(lake, &location, DAY).await,
        files_of_day(lake, &location, OTHER_DAY).await,
        rows_of_day(lake, name, DAY).await,
        rows_of_day(lake, name, OTHER_DAY).await,
    )
}

#[tokio::test]
async fn rerun_replaces_each_table_in_one_commit_and_sql_sees_them_all() {
    let (_dir, lake) = local_fixture_lake().await;
    let options = NightlyOptions {
        csv: true,
        report: true,
        ..NightlyOptions::default()
    };
    // The other day first: its outputs must survive the re-runs untouched.
    let other: NaiveDate = OTHER_DAY.parse().expect("date");
    run_nightly(&session(&lake).await, other, &options)
        .await
        .expect("other day");
    let first = run_nightly(&session(&lake).await, day(), &options)
        .await
        .expect("first");
    let mut before = Vec::new();
    for name in NIGHTLY_TABLES {
        before.push(table_state(&lake, name).await);
    }
    let second = run_nightly(&session(&lake).await, day(), &options)
        .await
        .expect("second");
    for (name, (version, files, other_files, rows, other_rows)) in NIGHTLY_TABLES.iter().zip(before)
    {
        let (a, b) = (
            first.table(name).expect("a"),
            second.table(name).expect("b"),
        );
        let after = table_state(&lake, name).await;
        assert_eq!(after.0, version + 1, "{name}: one commit per table and run");
        assert_eq!(b.version, version + 1, "{name}: the version reported");
        assert_eq!(
            after.3, rows,
            "{name}: the day's rows replaced, not duplicated"
        );
        assert_eq!(after.3, b.rows() as i64, "{name}: what was written");
        assert!(
            after.1.iter().all(|f| !files.contains(f)),
            "{name}: the day's files were replaced: {files:?} -> {:?}",
            after.1
        );
        assert_eq!(
            after.2, other_files,
            "{name}: the other day's files untouched"
        );
        assert_eq!(
            after.4, other_rows,
            "{name}: the other day's rows untouched"
        );
        assert_eq!(
            batch_analytics::sql::render(a.batch.schema(), std::slice::from_ref(&a.batch))
                .expect("render"),
            batch_analytics::sql::render(b.batch.schema(), std::slice::from_ref(&b.batch))
                .expect("render"),
            "{name}: same input, same output"
        );
        assert!(
            dir_has(&lake, &csv_path(name, day())).await,
            "{name}: CSV on request"
        );
    }
    assert_eq!(rows_of_day(&lake, "daily_gpu", DAY).await, 2);
    assert!(
        second
            .report_html
            .as_deref()
            .is_some_and(|h| h.contains("<svg"))
    );
    assert!(dir_has(&lake, &format!("analytics/_reports/date={DAY}/report.html")).await);

    // Every table by its name, next to the lake's own; the report and CSV folders are
    // not tables.
    let s = session(&lake).await;
    let names: Vec<String> = s.tables.iter().map(|t| t.name.clone()).collect();
    for name in NIGHTLY_TABLES.iter().chain(&["samples"]) {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with('_')), "{names:?}");
    let back = run_sql(
        &s,
        &format!(
            "SELECT (SELECT count(*) FROM daily_gpu WHERE date = '{DAY}') AS d, \
             (SELECT count(*) FROM correlations WHERE date = '{DAY}') AS c, \
             (SELECT sum(samples) FROM hourly WHERE date = '{DAY}') AS h"
        ),
    )
    .await
    .expect("query the outputs");
    let b = one_batch(&back.batches);
    assert_eq!(ints(&b, "d"), vec![Some(2)]);
    assert_eq!(ints(&b, "c"), vec![Some(2 * 36 * 3)]);
    assert_eq!(ints(&b, "h"), vec![Some(5)], "each sample in one hour");
}

async fn dir_has(lake: &Lake, relative: &str) -> bool {
    use object_store::ObjectStoreExt;
    lake.store().head(&lake.path(relative)).await.is_ok()
}

#[tokio::test]
async fn range_and_cli_flags() {
    let (dir, _lake) = local_fixture_lake().await;
    let path = dir.path().to_str().expect("path");
    let report = dir.path().join("r-{date}.html");
    let cli = <batch_analytics::cli::Cli as clap::Parser>::try_parse_from([
        "batch-analytics",
        "daily",
        "--lake",
        path,
        "--from",
        DAY,
        "--to",
        OTHER_DAY,
        "--timezone",
        "Europe/Berlin",
        "--spike-rise",
        "5",
        "--spike-window",
        "1m",
        "--report",
        report.to_str().expect("path"),
    ])
    .expect("parse");
    let mut out = Vec::new();
    batch_analytics::cli::run(cli, &mut out).await.expect("run");
    let text = String::from_utf8(out).expect("utf-8");
    for d in [DAY, OTHER_DAY] {
        assert!(text.contains(&format!("daily_gpu for {d} (UTC)")), "{text}");
        assert!(text.contains(&format!("hourly for {d}")), "{text}");
        assert!(dir.path().join(format!("r-{d}.html")).exists());
    }
    // A reversed range and contradictory thresholds are refused before anything runs.
    for args in [
        vec!["--from", OTHER_DAY, "--to", DAY],
        vec!["--date", DAY, "--idle-below", "80", "--busy-from", "70"],
    ] {
        let mut argv = vec!["batch-analytics", "daily", "--lake", path];
        argv.extend(args);
        let cli = <batch_analytics::cli::Cli as clap::Parser>::try_parse_from(argv).expect("parse");
        let err = batch_analytics::cli::run(cli, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid options"), "{err}");
    }
    assert!(
        <batch_analytics::cli::Cli as clap::Parser>::try_parse_from([
            "batch-analytics",
            "daily",
            "--lake",
            path,
            "--date",
            DAY,
            "--from",
            DAY,
            "--to",
            DAY
        ])
        .is_err(),
        "--date excludes a range"
    );
}

fn anomaly(
    id: &str,
    state: gpustream::AnomalyState,
    rule: &str,
    severity: gpustream::Severity,
    at_time: &str,
    started: &str,
    value: f64,
) -> gpustream::AnomalyEvent {
    gpustream::AnomalyEvent {
        event_id: format!("{id}-{}", state.as_str()),
        anomaly_id: id.into(),
        state,
        rule: rule.into(),
        severity,
        host: "h1".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        source: Source::Sim,
        session: "s".into(),
        event_time: at(at_time),
        started_at: at(started),
        metric: Some("gpu_temp_c".into()),
        value: Some(value),
        threshold: Some(85.0),
        message: "test".into(),
        sample_event_id: "x".into(),
    }
}

#[tokio::test]
async fn anomaly_summary_counts_and_durations() {
    use gpustream::{AnomalyState::*, Severity::*};
    let (_dir, lake) = new_lake();
    let s = [reading(
        "gpu0",
        "s",
        at("2024-05-04T10:00:00Z"),
        1,
        &[(Metric::GpuTemp, 90.0)],
    )];
    append_samples(&lake, &s).await;
    // gpu_temp_high: one episode of 300 s, one of 60 s, one still open at the end of the
    // day; power_high: one episode resolved after 30 s.
    let events = [
        anomaly(
            "a",
            Firing,
            "gpu_temp_high",
            Warning,
            "2024-05-04T10:00:00Z",
            "2024-05-04T10:00:00Z",
            86.0,
        ),
        anomaly(
            "a",
            Resolved,
            "gpu_temp_high",
            Warning,
            "2024-05-04T10:05:00Z",
            "2024-05-04T10:00:00Z",
            84.0,
        ),
        anomaly(
            "b",
            Firing,
            "gpu_temp_high",
            Warning,
            "2024-05-04T12:00:00Z",
            "2024-05-04T12:00:00Z",
            91.0,
        ),
        anomaly(
            "b",
            Resolved,
            "gpu_temp_high",
            Warning,
            "2024-05-04T12:01:00Z",
            "2024-05-04T12:00:00Z",
            80.0,
        ),
        anomaly(
            "c",
            Firing,
            "gpu_temp_high",
            Warning,
            "2024-05-04T23:00:00Z",
            "2024-05-04T23:00:00Z",
            88.0,
        ),
        anomaly(
            "d",
            Firing,
            "power_high",
            Critical,
            "2024-05-04T09:00:00Z",
            "2024-05-04T09:00:00Z",
            400.0,
        ),
        anomaly(
            "d",
            Resolved,
            "power_high",
            Critical,
            "2024-05-04T09:00:30Z",
            "2024-05-04T09:00:00Z",
            300.0,
        ),
    ];
    append_anomalies(&lake, &events).await;
    let out = run(&lake, "2024-05-04", AnalysisOptions::default()).await;
    let a = table(&out, "anomaly_summary");
    assert_eq!(
        strings(&a, "rule"),
        vec![Some("gpu_temp_high".into()), Some("power_high".into())]
    );
    assert_eq!(
        strings(&a, "severity"),
        vec![Some("warning".into()), Some("critical".into())]
    );
    assert_eq!(ints(&a, "episodes"), vec![Some(3), Some(1)]);
    assert_eq!(ints(&a, "fired"), vec![Some(3), Some(1)]);
    assert_eq!(ints(&a, "resolved"), vec![Some(2), Some(1)]);
    assert_eq!(ints(&a, "open_at_end"), vec![Some(1), Some(0)]);
    close(floats(&a, "total_duration_s")[0], 360.0);
    close(floats(&a, "mean_duration_s")[0], 180.0);
    close(floats(&a, "max_duration_s")[0], 300.0);
    close(floats(&a, "max_value")[0], 91.0);
    close(floats(&a, "total_duration_s")[1], 30.0);
    assert!(
        out.report_html
            .as_deref()
            .is_some_and(|h| h.contains("power_high"))
    );
}
