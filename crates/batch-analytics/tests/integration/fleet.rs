//! Known-answer tests of the fleet tables (`waste`, `energy_by_owner`, `throttling`,
//! `health`, `cohorts`) on hand-built lakes, the allocation labels through the command
//! line, and the simulator's labelled faults landing in the right tables.

use batch_analytics::model::AnalysisOptions;
use chrono::Duration;
use datafusion::arrow::array::RecordBatch;
use gpustream::Metric;
use gpustream_lake::Lake;
use gpustream_sim::fleet::{FaultKind, FaultLabel, Fleet, FleetConfig};

use crate::fixture::*;

const KWH: f64 = 3.6e6;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

const LABELS: &str = "host,gpu,start,end,user,job,project\n\
    h1,gpu0,2024-06-01T00:00:00Z,2024-06-01T01:30:00Z,alice,job1,projA\n\
    h2,*,2024-06-01T00:00:00Z,2024-06-01T03:00:00Z,bob,job2,\n";

/// h1/gpu0: a sample a minute 00:00–02:00 at 120 W (no counter), load idle (2 %)
/// 00:00–00:40, busy 00:41–01:00, idle 01:01–01:20, busy 01:21–01:24, idle
/// 01:25–02:00. h2/gpu1: a sample every 10 s 00:00–00:10 at 200 W, busy, with an
/// energy counter that says 250 W and resets to 0 at 00:05:00.
async fn usage_lake() -> (tempfile::TempDir, Lake) {
    let (dir, lake) = new_lake();
    let t0 = at("2024-06-01T00:00:00Z");
    let mut samples = Vec::new();
    for m in 0..=120i64 {
        let idle = m <= 40 || (61..=80).contains(&m) || m >= 85;
        samples.push(sim_sample(
            "h1",
            "gpu0",
            "A",
            "s",
            t0 + Duration::minutes(m),
            m as u64,
            &[
                (Metric::GpuLoad, if idle { 2.0 } else { 80.0 }),
                (Metric::BoardPower, 120.0),
            ],
        ));
    }
    let mut counter = 1e6;
    for k in 0..=60i64 {
        if k == 30 {
            counter = 0.0;
        } else if k > 0 {
            counter += 2.5e6;
        }
        samples.push(sim_sample(
            "h2",
            "gpu1",
            "B",
            "s",
            t0 + Duration::seconds(10 * k),
            k as u64,
            &[
                (Metric::GpuLoad, 90.0),
                (Metric::BoardPower, 200.0),
                (Metric::Energy, counter),
            ],
        ));
    }
    append_samples(&lake, &samples).await;
    (dir, lake)
}

#[tokio::test]
async fn waste_and_energy_by_owner_known_answers() {
    let (_dir, lake) = usage_lake().await;
    let options = AnalysisOptions {
        grid_g_per_kwh: Some(400.0),
        ..AnalysisOptions::default()
    };
    let out = run_with(&lake, "2024-06-01", options.clone(), Some(LABELS)).await;

    // Intervals are booked at the sample that ends them. gpu0: 120 one-minute intervals,
    // those ending before 01:30 (89) are alice's, the other 31 unallocated. Idle runs:
    // 00:00–00:40 (40 min, alice), 01:01–01:20 (19 min: too short), 01:25–02:00 (35 min:
    // 4 alice, 31 unallocated). gpu1: 60 ten-second intervals, all bob's.
    let w = table(&out, "waste");
    assert_eq!(
        strings(&w, "gpu"),
        vec![s("gpu0"), s("gpu0"), s("gpu1")],
        "per GPU, unallocated first"
    );
    assert_eq!(
        bools(&w, "allocated"),
        vec![Some(false), Some(true), Some(true)]
    );
    assert_eq!(strings(&w, "user_name"), vec![None, s("alice"), s("bob")]);
    assert_eq!(strings(&w, "job"), vec![None, s("job1"), s("job2")]);
    assert_eq!(strings(&w, "project"), vec![None, s("projA"), None]);
    let h = |min: f64| min / 60.0;
    assert_floats(
        &w,
        "observed_hours",
        &[Some(h(31.0)), Some(h(89.0)), Some(h(10.0))],
    );
    assert_floats(&w, "idle_hours", &[Some(h(31.0)), Some(h(44.0)), Some(0.0)]);
    assert_eq!(ints(&w, "idle_runs"), vec![Some(1), Some(2), Some(0)]);
    // Unallocated time is all waste; allocated time only when idle.
    assert_floats(
        &w,
        "waste_hours",
        &[Some(h(31.0)), Some(h(44.0)), Some(0.0)],
    );
    let minute_j = 120.0 * 60.0;
    assert_floats(
        &w,
        "idle_energy_kwh",
        &[
            Some(31.0 * minute_j / KWH),
            Some(44.0 * minute_j / KWH),
            Some(0.0),
        ],
    );
    // gpu1 has a counter: 59 differences of 2.5 MJ... of 2500 J, and the reset interval
    // (ending 00:05:00) by its trapezoid, 200 W × 10 s.
    let gpu1_j = 59.0 * 2500.0 + 2000.0;
    assert_floats(
        &w,
        "energy_kwh",
        &[
            Some(31.0 * minute_j / KWH),
            Some(89.0 * minute_j / KWH),
            Some(gpu1_j / KWH),
        ],
    );
    assert_floats(
        &w,
        "waste_energy_kwh",
        &[
            Some(31.0 * minute_j / KWH),
            Some(44.0 * minute_j / KWH),
            Some(0.0),
        ],
    );

    let e = table(&out, "energy_by_owner");
    assert_eq!(strings(&e, "user_name"), vec![None, s("alice"), s("bob")]);
    assert_eq!(
        bools(&e, "allocated"),
        vec![Some(false), Some(true), Some(true)]
    );
    assert_eq!(ints(&e, "gpus"), vec![Some(1), Some(1), Some(1)]);
    assert_floats(
        &e,
        "gpu_hours",
        &[Some(h(31.0)), Some(h(89.0)), Some(h(10.0))],
    );
    assert_floats(
        &e,
        "energy_counter_kwh",
        &[Some(0.0), Some(0.0), Some(59.0 * 2500.0 / KWH)],
    );
    assert_floats(
        &e,
        "energy_trapezoid_kwh",
        &[
            Some(31.0 * minute_j / KWH),
            Some(89.0 * minute_j / KWH),
            Some(2000.0 / KWH),
        ],
    );
    let kwh = floats(&e, "energy_kwh");
    close(kwh[2], gpu1_j / KWH);
    let co2 = floats(&e, "co2e_kg");
    for (k, c) in kwh.iter().zip(&co2) {
        close(*c, k.expect("kwh") * 0.4);
    }

    // Without labels allocation is unknown: only idle time is waste, and a longer
    // threshold or a lower one changes which runs count.
    let out = run_with(&lake, "2024-06-01", options.clone(), None).await;
    let w = table(&out, "waste");
    assert_eq!(bools(&w, "allocated"), vec![None, None]);
    assert_eq!(strings(&w, "user_name"), vec![None, None]);
    assert_floats(&w, "waste_hours", &[Some(h(75.0)), Some(0.0)]);
    assert_eq!(ints(&w, "idle_runs"), vec![Some(2), Some(0)]);
    let e = table(&out, "energy_by_owner");
    assert_eq!(e.num_rows(), 1, "one unlabelled row");
    assert_eq!(ints(&e, "gpus"), vec![Some(2)]);
    let shorter = AnalysisOptions {
        waste_min_idle_s: 15.0 * 60.0,
        ..options.clone()
    };
    let w = table(&run_with(&lake, "2024-06-01", shorter, None).await, "waste");
    assert_floats(&w, "idle_hours", &[Some(h(75.0 + 19.0)), Some(0.0)]);
    let stricter = AnalysisOptions {
        waste_idle_below_pct: 1.0,
        ..options
    };
    let w = table(
        &run_with(&lake, "2024-06-01", stricter, None).await,
        "waste",
    );
    assert_floats(&w, "idle_hours", &[Some(0.0), Some(0.0)]);
    assert!(
        out.report_html
            .as_deref()
            .is_some_and(|r| r.contains("Waste") && r.contains("Energy by owner"))
    );
}

#[tokio::test]
async fn throttling_minutes_and_thermal_headroom() {
    let (_dir, lake) = new_lake();
    let t0 = at("2024-06-03T10:00:00Z");
    let mut samples = Vec::new();
    // gpu0 ("Known GPU"): PerfCap codes at 1-second samples; each interval counts for
    // the reasons of the sample that ends it: 1, 1, 2, 3, 16 (idle), 4, 8, 32, none, 2.
    let caps = [
        Some(0),
        Some(1),
        Some(1),
        Some(2),
        Some(3),
        Some(16),
        Some(4),
        Some(8),
        Some(32),
        None,
        Some(2),
    ];
    for (i, cap) in caps.iter().enumerate() {
        let mut m = vec![(Metric::GpuTemp, 60.0 + i as f64)];
        if let Some(c) = cap {
            m.push((Metric::PerfCap, f64::from(*c)));
        }
        samples.push(sim_sample(
            "h1",
            "gpu0",
            "Known GPU",
            "s",
            t0 + Duration::seconds(i as i64),
            i as u64,
            &m,
        ));
    }
    // gpu1 (another model): NVML bits, 2 s apart: SW thermal | idle, sync boost, none.
    for (i, bits) in [0x20 | 0x1, 0x20, 0x10, 0].iter().enumerate() {
        samples.push(sim_sample(
            "h1",
            "gpu1",
            "Other GPU",
            "s",
            t0 + Duration::seconds(2 * i as i64),
            i as u64,
            &[
                (Metric::ThrottleReasons, f64::from(*bits)),
                (Metric::GpuTemp, 80.0),
            ],
        ));
    }
    // gpu2 reports no code at all.
    for i in 0..3 {
        samples.push(sim_sample(
            "h1",
            "gpu2",
            "Other GPU",
            "s",
            t0 + Duration::seconds(i),
            i as u64,
            &[(Metric::GpuLoad, 50.0)],
        ));
    }
    append_samples(&lake, &samples).await;
    let options = AnalysisOptions {
        model_thermal_limits: vec![("Known GPU".into(), 80.0)],
        ..AnalysisOptions::default()
    };
    let out = run_with(&lake, "2024-06-03", options, None).await;
    let t = table(&out, "throttling");
    assert_eq!(strings(&t, "gpu"), vec![s("gpu0"), s("gpu1"), s("gpu2")]);
    let m = |sec: f64| Some(sec / 60.0);
    assert_floats(&t, "coded_minutes", &[m(9.0), m(6.0), Some(0.0)]);
    assert_floats(&t, "throttled_minutes", &[m(8.0), m(4.0), None]);
    assert_floats(&t, "throttled_power_minutes", &[m(3.0), m(0.0), None]);
    assert_floats(&t, "throttled_thermal_minutes", &[m(3.0), m(2.0), None]);
    assert_floats(&t, "throttled_voltage_minutes", &[m(2.0), m(0.0), None]);
    assert_floats(&t, "throttled_other_minutes", &[m(1.0), m(2.0), None]);
    assert_floats(&t, "throttled_hw_slowdown_minutes", &[m(0.0), m(0.0), None]);
    // gpu0: temperatures 60..=70, p99 at rank 9.9 → 69.9; limit 80 from its model.
    assert_floats(&t, "gpu_temp_c_p99", &[Some(69.9), Some(80.0), None]);
    assert_floats(&t, "temp_limit_c", &[Some(80.0), Some(85.0), Some(85.0)]);
    assert_eq!(
        strings(&t, "temp_limit_source"),
        vec![s("model"), s("default"), s("default")]
    );
    assert_floats(
        &t,
        "thermal_headroom_c",
        &[Some(80.0 - 69.9), Some(5.0), None],
    );
}

#[tokio::test]
async fn health_counters_xids_history_and_drain_list() {
    let (_dir, lake) = new_lake();
    let mut samples = Vec::new();
    let mut push = |gpu: &str, session: &str, t: &str, m: &[(Metric, f64)]| {
        let seq = samples.len() as u64;
        samples.push(sim_sample("h1", gpu, "G", session, at(t), seq, m));
    };
    use Metric::{EccCorrected as Corr, EccUncorrected as Unc, RemappedRows as Rows, Xid};
    // The day before: gpu0 +10 corrected, +1 uncorrected.
    push(
        "gpu0",
        "a",
        "2024-06-01T10:00:00Z",
        &[(Corr, 10.0), (Unc, 0.0)],
    );
    push(
        "gpu0",
        "a",
        "2024-06-01T11:00:00Z",
        &[(Corr, 20.0), (Unc, 1.0)],
    );
    // The day: gpu0 +500 corrected (10 × its previous mean of 10 a day... 50 × that),
    // 2 rows remapped, XID 48 once and 13 twice.
    push(
        "gpu0",
        "a",
        "2024-06-02T10:00:00Z",
        &[(Corr, 20.0), (Unc, 1.0), (Rows, 0.0)],
    );
    push("gpu0", "a", "2024-06-02T10:00:01Z", &[(Xid, 13.0)]);
    push("gpu0", "a", "2024-06-02T10:00:02Z", &[(Xid, 13.0)]);
    push("gpu0", "a", "2024-06-02T10:00:03Z", &[(Xid, 48.0)]);
    push(
        "gpu0",
        "a",
        "2024-06-02T11:00:00Z",
        &[(Corr, 520.0), (Unc, 1.0), (Rows, 2.0)],
    );
    // gpu1: corrected 100 → 105 in session a, then session b (a driver reload) 3 → 4:
    // +5, a reset, +1; XID 31 (an application error) only.
    push("gpu1", "a", "2024-06-02T08:00:00Z", &[(Corr, 100.0)]);
    push(
        "gpu1",
        "a",
        "2024-06-02T08:00:01Z",
        &[(Corr, 105.0), (Xid, 31.0)],
    );
    push("gpu1", "b", "2024-06-02T09:00:00Z", &[(Corr, 3.0)]);
    push("gpu1", "b", "2024-06-02T09:00:01Z", &[(Corr, 4.0)]);
    append_samples(&lake, &samples).await;
    let first = run_with(&lake, "2024-06-01", AnalysisOptions::default(), None).await;
    let d1 = table(&first, "health");
    assert_floats(&d1, "ecc_uncorrected_new", &[Some(1.0)]);
    assert_eq!(bools(&d1, "drain"), vec![Some(true)]);
    assert_eq!(ints(&d1, "history_days"), vec![Some(0)]);

    let out = run_with(&lake, "2024-06-02", AnalysisOptions::default(), None).await;
    let hl = table(&out, "health");
    assert_eq!(strings(&hl, "gpu"), vec![s("gpu0"), s("gpu1")]);
    assert_floats(&hl, "ecc_corrected_new", &[Some(500.0), Some(6.0)]);
    assert_floats(&hl, "ecc_corrected_total", &[Some(520.0), Some(4.0)]);
    assert_floats(&hl, "ecc_uncorrected_new", &[Some(0.0), None]);
    assert_floats(&hl, "remapped_rows_new", &[Some(2.0), None]);
    assert_floats(&hl, "retired_pages_new", &[None, None]);
    assert_eq!(ints(&hl, "counter_resets"), vec![Some(0), Some(1)]);
    assert_eq!(ints(&hl, "history_days"), vec![Some(1), Some(0)]);
    assert_floats(&hl, "ecc_corrected_prev_mean", &[Some(10.0), None]);
    assert_floats(&hl, "ecc_corrected_trend", &[Some(490.0), None]);
    assert_floats(&hl, "ecc_uncorrected_prev_sum", &[Some(1.0), None]);
    assert_eq!(ints(&hl, "xid_events"), vec![Some(3), Some(1)]);
    assert_eq!(ints(&hl, "xid_hardware_events"), vec![Some(1), Some(0)]);
    assert_eq!(strings(&hl, "xid_codes"), vec![s("13:2;48:1"), s("31:1")]);
    // gpu0: remap 40 + XID 13 5 + XID 48 40 + recent uncorrected 20 + corrected rise 20,
    // capped at 100. gpu1: an application XID, 5.
    assert_eq!(ints(&hl, "risk_score"), vec![Some(100), Some(5)]);
    assert_eq!(bools(&hl, "drain"), vec![Some(true), Some(false)]);
    assert_eq!(
        strings(&hl, "risk_reasons"),
        vec![
            s("remap:40,xid_13:5,xid_48:40,recent_uncorrected_ecc:20,corrected_ecc_rise:20"),
            s("xid_31:5")
        ]
    );
    let html = out.report_html.expect("report");
    assert!(
        html.contains("Drain list (1):</b> h1/gpu0"),
        "health card list"
    );
    // Re-running the day before does not change what the day sees of it.
    run_with(&lake, "2024-06-01", AnalysisOptions::default(), None).await;
    let again = run_with(&lake, "2024-06-02", AnalysisOptions::default(), None).await;
    assert_eq!(
        strings(&table(&again, "health"), "risk_reasons"),
        strings(&hl, "risk_reasons")
    );
}

#[tokio::test]
async fn cohorts_compare_temperature_at_equal_power() {
    let (_dir, lake) = new_lake();
    let t0 = at("2024-06-04T00:00:00Z");
    let mut samples = Vec::new();
    // Model M: four GPUs, 40 samples at 110 W then 40 at 210 W, load 50 %. Temperatures
    // at 110 W: 60, 61, 62, 70; at 210 W: 70, 70, 70, 71. Core clock 1000 MHz, 800 on
    // gpu3. Model N: one GPU.
    let temps = [(60.0, 70.0), (61.0, 70.0), (62.0, 70.0), (70.0, 71.0)];
    for (g, (low, high)) in temps.iter().enumerate() {
        let gpu = format!("gpu{g}");
        let clock = if g == 3 { 800.0 } else { 1000.0 };
        for i in 0..80i64 {
            let (power, temp) = if i < 40 {
                (110.0, *low)
            } else {
                (210.0, *high)
            };
            samples.push(sim_sample(
                "h1",
                &gpu,
                "M",
                "s",
                t0 + Duration::seconds(i),
                i as u64,
                &[
                    (Metric::BoardPower, power),
                    (Metric::GpuTemp, temp),
                    (Metric::GpuLoad, 50.0),
                    (Metric::CoreClock, clock),
                ],
            ));
        }
    }
    for i in 0..30i64 {
        samples.push(sim_sample(
            "h2",
            "gpu0",
            "N",
            "s",
            t0 + Duration::seconds(i),
            i as u64,
            &[(Metric::BoardPower, 99.0), (Metric::GpuTemp, 50.0)],
        ));
    }
    // Too few samples in a bucket: no row for it.
    samples.push(sim_sample(
        "h1",
        "gpu0",
        "M",
        "s",
        t0 + Duration::seconds(100),
        100,
        &[(Metric::BoardPower, 400.0), (Metric::GpuTemp, 90.0)],
    ));
    append_samples(&lake, &samples).await;
    let out = run_with(&lake, "2024-06-04", AnalysisOptions::default(), None).await;
    let c = table(&out, "cohorts");
    assert_eq!(c.num_rows(), 9, "4 GPUs × 2 buckets of M, 1 of N");
    assert_eq!(strings(&c, "gpu_name")[0], s("M"));
    assert_eq!(strings(&c, "gpu_name")[8], s("N"));
    assert_eq!(ints(&c, "cohort_gpus")[0], Some(4));
    let mut from = [Some(100.0), Some(200.0)].repeat(4);
    from.push(Some(75.0));
    assert_floats(&c, "power_w_from", &from);
    let power_to = floats(&c, "power_w_to");
    close(power_to[0], 125.0);
    assert_eq!(ints(&c, "samples")[0], Some(40));
    assert_eq!(ints(&c, "peers")[0], Some(3));
    // gpu0 at 110 W: peers 61, 62, 70 → median 62, excess −2; at 210 W: 0.
    close(floats(&c, "peer_gpu_temp_c_median")[0], 62.0);
    close(floats(&c, "temp_excess_c")[0], -2.0);
    close(floats(&c, "gpu_temp_excess_c")[0], -1.0);
    // gpu3: 70 vs 61 → +9, 71 vs 70 → +1: weighted +5, an outlier at the 5 °C default.
    close(floats(&c, "temp_excess_c")[6], 9.0);
    close(floats(&c, "gpu_temp_excess_c")[6], 5.0);
    assert_eq!(
        bools(&c, "outlier"),
        [false, false, false, false, false, false, true, true, false]
            .map(Some)
            .to_vec()
    );
    // Model N alone: no peers to compare with.
    assert_eq!(ints(&c, "peers")[8], Some(0));
    assert_eq!(floats(&c, "temp_excess_c")[8], None);
    // perf/W: Σ(clock × load / 100) / Σ power = 40 × 500 + 40 × 500 over 40 × 110 +
    // 40 × 210 for gpu0..2; gpu3 with 400 MHz used; the model over all four (the 400 W
    // sample has no clock or load, so it is in no perf/W sum).
    close(floats(&c, "perf_per_watt")[0], 40_000.0 / 12_800.0);
    close(floats(&c, "perf_per_watt")[6], 32_000.0 / 12_800.0);
    close(
        floats(&c, "cohort_perf_per_watt")[0],
        152_000.0 / (4.0 * 12_800.0),
    );
    let html = out.report_html.expect("report");
    assert!(
        html.contains("Cohorts") && html.contains("h1/gpu3"),
        "cohorts in the report"
    );
}

#[tokio::test]
async fn allocations_file_through_the_command_line() {
    let (dir, _lake) = usage_lake().await;
    let path = dir.path().to_str().expect("path");
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, LABELS).expect("write labels");
    let config = dir.path().join("gpustream.toml");
    std::fs::write(
        &config,
        format!(
            "[batch_analytics]\nallocations = {:?}\ngrid_intensity = 250.0\nmodel_thermal_limit = [\"A=83\"]\n",
            labels.to_str().expect("path")
        ),
    )
    .expect("write config");
    let cli = <batch_analytics::cli::Cli as clap::Parser>::try_parse_from([
        "batch-analytics",
        "--config",
        config.to_str().expect("path"),
        "daily",
        "--lake",
        path,
        "--date",
        "2024-06-01",
        "--no-maintain",
        "--model-thermal-limit",
        "B=90",
    ])
    .expect("parse");
    let settings = cli.effective().expect("settings");
    assert_eq!(settings.model_thermal_limit, ["B=90"], "flag over file");
    assert_eq!(settings.grid_intensity, Some(250.0));
    let mut out = Vec::new();
    batch_analytics::cli::run(cli, &mut out).await.expect("run");
    let text = String::from_utf8(out).expect("utf-8");
    for t in [
        "waste",
        "energy_by_owner",
        "throttling",
        "health",
        "cohorts",
    ] {
        assert!(text.contains(&format!("{t} for 2024-06-01")), "{text}");
    }
    let back = batch_analytics::run_sql(
        &session(&Lake::open(path).expect("lake")).await,
        "SELECT user_name, co2e_kg FROM energy_by_owner WHERE date = '2024-06-01' AND user_name = 'bob'",
    )
    .await
    .expect("query");
    let b = one_batch(&back.batches);
    close(
        floats(&b, "co2e_kg")[0],
        (59.0 * 2500.0 + 2000.0) / KWH * 0.25,
    );

    // A bad row stops the run before anything is read, naming file, line and field.
    std::fs::write(
        &labels,
        format!("{LABELS}h3,gpu0,2024-06-01T00:00:00Z,soon,carol,job3,\n"),
    )
    .expect("write labels");
    let cli = <batch_analytics::cli::Cli as clap::Parser>::try_parse_from([
        "batch-analytics",
        "daily",
        "--lake",
        path,
        "--date",
        "2024-06-01",
        "--allocations",
        labels.to_str().expect("path"),
    ])
    .expect("parse");
    let err = batch_analytics::cli::run(cli, &mut Vec::new())
        .await
        .expect_err("bad labels")
        .to_string();
    let expected = format!("{}:4: field `end`: `soon`", labels.display());
    assert!(err.starts_with(&expected), "{err}");
}

/// Labels of `kind` on `host/gpu`.
fn labels_of<'a>(
    labels: &'a [FaultLabel],
    host: &'a str,
    gpu: &'a str,
    kind: FaultKind,
) -> impl Iterator<Item = &'a FaultLabel> + 'a {
    labels
        .iter()
        .filter(move |l| l.host == host && l.gpu == gpu && l.kind == kind)
}

#[tokio::test]
async fn simulated_faults_land_in_the_fleet_tables() {
    let (_dir, lake) = new_lake();
    let start = at("2025-03-14T00:00:00Z");
    let mut fleet = Fleet::new(FleetConfig {
        hosts: 2,
        gpus_per_host: 4,
        seed: 7,
        interval: std::time::Duration::from_secs(5),
        start,
        faults: true,
    });
    // 14 hours of 5-second samples.
    let ticks = 14 * 720;
    let mut samples = Vec::new();
    for _ in 0..ticks {
        samples.extend(fleet.next_tick());
    }
    let end = fleet.tick_time(ticks);
    append_samples(&lake, &samples).await;
    let labels = fleet.labels();
    // Every kind the tables must see happened somewhere.
    for kind in [
        FaultKind::IdleAllocated,
        FaultKind::EccBurst,
        FaultKind::Xid,
        FaultKind::Overheating,
    ] {
        assert!(
            labels.iter().any(|l| l.kind == kind && l.end <= end),
            "seed 7 has no complete {kind} fault"
        );
    }
    // Every GPU is allocated all day to one job, so idle time is allocated idle time.
    let alloc = "host,gpu,start,end,user,job\n\
                 sim-host-00,*,2025-03-14T00:00:00Z,2025-03-15T00:00:00Z,alice,sim\n\
                 sim-host-01,*,2025-03-14T00:00:00Z,2025-03-15T00:00:00Z,alice,sim\n";
    // A healthy idle phase lasts at most 10 minutes; an idle_allocated fault 30 to 45:
    // with runs counted from 25 minutes, exactly the faults are idle runs.
    let options = AnalysisOptions {
        waste_min_idle_s: 25.0 * 60.0,
        ..AnalysisOptions::default()
    };
    let out = run_with(&lake, "2025-03-14", options, Some(alloc)).await;
    let w = table(&out, "waste");
    let th = table(&out, "throttling");
    let hl = table(&out, "health");
    let (w_host, w_gpu) = (strings(&w, "host"), strings(&w, "gpu"));
    let row_of = |b: &RecordBatch, host: &str, gpu: &str| {
        let (hs, gs) = (strings(b, "host"), strings(b, "gpu"));
        (0..b.num_rows())
            .find(|&i| hs[i].as_deref() == Some(host) && gs[i].as_deref() == Some(gpu))
            .unwrap_or_else(|| panic!("no row for {host}/{gpu}"))
    };
    assert!(bools(&w, "allocated").iter().all(|a| *a == Some(true)));
    let (idle_h, runs) = (floats(&w, "idle_hours"), ints(&w, "idle_runs"));
    let thermal = floats(&th, "throttled_thermal_minutes");
    let (unc, rows) = (
        floats(&hl, "ecc_uncorrected_new"),
        floats(&hl, "remapped_rows_new"),
    );
    let (xids, drain) = (ints(&hl, "xid_events"), bools(&hl, "drain"));
    let mut checked = [0usize; 4];
    for h in 0..2 {
        for g in 0..4 {
            let (host, gpu) = (format!("sim-host-0{h}"), format!("gpu{g}"));
            let secs = |l: &FaultLabel| (l.end.min(end) - l.start).num_milliseconds() as f64 / 1e3;

            // idle_allocated → waste.
            let idle: Vec<_> = labels_of(&labels, &host, &gpu, FaultKind::IdleAllocated).collect();
            let i = (0..w.num_rows())
                .find(|&i| w_host[i].as_deref() == Some(&host) && w_gpu[i].as_deref() == Some(&gpu))
                .expect("waste row");
            let idle_s = idle_h[i].expect("idle hours") * 3600.0;
            let labelled: f64 = idle.iter().map(|l| secs(l)).sum();
            if idle.is_empty() {
                assert_eq!(
                    idle_s, 0.0,
                    "{host}/{gpu}: idle without an idle_allocated fault"
                );
            } else {
                checked[0] += 1;
                // The run covers the fault (less the interval into it) and at most a
                // healthy idle phase (10 min) and the load's ramp on either side.
                assert!(
                    idle_s >= labelled - 5.0 * idle.len() as f64,
                    "{host}/{gpu}: {idle_s} s idle < {labelled} s labelled"
                );
                assert!(
                    idle_s <= labelled + idle.len() as f64 * 2.0 * 630.0,
                    "{host}/{gpu}: {idle_s} s idle"
                );
                let n = runs[i].expect("runs") as usize;
                assert!(
                    (1..=idle.len()).contains(&n),
                    "{host}/{gpu}: {n} runs for {} faults",
                    idle.len()
                );
            }

            // overheating → thermal throttling, and nothing else reaches it.
            let hot: Vec<_> = labels_of(&labels, &host, &gpu, FaultKind::Overheating).collect();
            let t = thermal[row_of(&th, &host, &gpu)].expect("throttle codes") * 60.0;
            if hot.is_empty() {
                assert_eq!(
                    t, 0.0,
                    "{host}/{gpu}: thermal throttling without overheating"
                );
            } else {
                checked[1] += 1;
                let labelled: f64 = hot.iter().map(|l| secs(l)).sum();
                assert!(
                    t > 0.0 && t <= labelled,
                    "{host}/{gpu}: {t} s thermal, {labelled} s overheating"
                );
            }

            // ecc_burst → uncorrected errors and a row remap each, on the drain list.
            let r = row_of(&hl, &host, &gpu);
            let bursts = labels_of(&labels, &host, &gpu, FaultKind::EccBurst)
                .filter(|l| l.start < end)
                .count() as f64;
            assert_eq!(rows[r], Some(bursts), "{host}/{gpu}: remapped rows");
            if bursts > 0.0 {
                checked[2] += 1;
                assert!(unc[r].expect("uncorrected") >= bursts, "{host}/{gpu}");
                assert_eq!(drain[r], Some(true), "{host}/{gpu}: drained");
            } else {
                assert_eq!(
                    unc[r],
                    Some(0.0),
                    "{host}/{gpu}: uncorrected without a burst"
                );
            }

            // xid → one XID event per fault.
            let faults = labels_of(&labels, &host, &gpu, FaultKind::Xid)
                .filter(|l| l.start < end)
                .count() as i64;
            checked[3] += usize::from(faults > 0);
            assert_eq!(xids[r], Some(faults), "{host}/{gpu}: XID events");
        }
    }
    assert!(
        checked.iter().all(|n| *n > 0),
        "each kind seen on some GPU: {checked:?}"
    );
    // The energy all belongs to the one job, from the simulator's energy counters.
    let e = table(&out, "energy_by_owner");
    assert_eq!(strings(&e, "user_name"), vec![s("alice")]);
    assert_eq!(ints(&e, "gpus"), vec![Some(8)]);
    assert!(floats(&e, "energy_counter_kwh")[0].is_some_and(|k| k > 0.0));
    assert_floats(&e, "energy_trapezoid_kwh", &[Some(0.0)]);
}
