//! The parser against the real GPU-Z logs in `../shared/data/gpuz/` and hand-made edge cases.

use gpustream::Metric;
use gpustream_test_kit::data::shared_log as shared;
use gpuz::{Identity, IssueKind, ParseOptions, SkipReason, parse_log};

fn identity() -> Identity {
    Identity {
        host: "ws1".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        gpu_name: None,
    }
}

fn parse(name: &str) -> gpuz::ParsedLog {
    let bytes = std::fs::read(shared(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (is ../shared beside the checkout?)"));
    parse_log(name, &bytes, &identity(), &ParseOptions::default())
}

/// (file, data rows, sessions) as documented in SOURCES.md.
const LOGS: [(&str, u64, u64); 6] = [
    (
        "nvidia-turing-usbc_GalacticViper-ObsidianGitTest.head3000.txt",
        2999,
        1,
    ),
    ("amd-rx5700xt_MateusRodriguesCosta-AMDdebug.txt", 1673, 12),
    ("nvidia-ada-class_richardtokar-python_work.txt", 356, 1),
    (
        "intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt",
        1006,
        2,
    ),
    ("nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt", 1182, 1),
    (
        "nvidia-pascal-class_Ben-Wu-gpuz-log-utils_utf16be.txt",
        1868,
        1,
    ),
];

#[test]
fn every_row_of_every_real_log_becomes_a_sample() {
    for (name, rows, sessions) in LOGS {
        let log = parse(name);
        assert_eq!(log.summary.data_rows, rows, "{name}: data rows");
        assert_eq!(
            log.samples.len() as u64,
            rows,
            "{name}: samples; issues: {:?}",
            log.issues.first()
        );
        assert_eq!(log.summary.headers, sessions, "{name}: sessions");
        assert_eq!(log.summary.skipped_total(), 0, "{name}");
        let ids: std::collections::HashSet<_> =
            log.samples.iter().map(|s| s.event_id.as_str()).collect();
        assert_eq!(ids.len() as u64, rows, "{name}: event ids unique");
        assert!(
            log.samples
                .windows(2)
                .all(|w| w[0].event_time <= w[1].event_time),
            "{name}: time never goes backwards"
        );
        let distinct_sessions: std::collections::HashSet<_> =
            log.samples.iter().map(|s| s.session.as_str()).collect();
        assert_eq!(
            distinct_sessions.len() as u64,
            sessions,
            "{name}: session ids"
        );
    }
}

#[test]
fn parsing_is_deterministic() {
    let a = parse(LOGS[1].0);
    let b = parse(LOGS[1].0);
    assert_eq!(a.samples, b.samples);
}

#[test]
fn turing_values_match_the_file_exactly() {
    let log = parse(LOGS[0].0);
    let first = &log.samples[0];
    // 2023-06-16 10:17:08 , 1995.0 , 1767.5 , 63.0 , 76.4 , 52 , 0 , 52 , 0 , ...
    assert_eq!(first.event_time.to_string(), "2023-06-16 10:17:08 UTC");
    assert_eq!(first.metrics.get(Metric::CoreClock), Some(1995.0));
    assert_eq!(first.metrics.get(Metric::MemoryClock), Some(1767.5));
    assert_eq!(first.metrics.get(Metric::GpuTemp), Some(63.0));
    assert_eq!(first.metrics.get(Metric::HotSpotTemp), Some(76.4));
    assert_eq!(first.metrics.get(Metric::FanPct), Some(52.0));
    assert_eq!(first.metrics.get(Metric::Fan2Pct), Some(52.0));
    // Fan RPM reads 0 for the whole session while the fans spin: unsupported, not a real 0.
    assert!(first.is_unsupported(Metric::FanRpm) && first.is_unsupported(Metric::Fan2Rpm));
    assert_eq!(first.reading(Metric::FanRpm), None);
    // Line 7: a one-sample NVAPI dropout, the first sensor columns are `-`, the rails report.
    let dropout = &log.samples[5];
    assert_eq!(dropout.event_time.to_string(), "2023-06-16 10:17:13 UTC");
    assert_eq!(dropout.metrics.get(Metric::GpuTemp), None);
    assert_eq!(dropout.metrics.get(Metric::CoreClock), None);
    assert!(
        dropout.metrics.get(Metric::UsbcPower).is_some()
            || dropout.metrics.get(Metric::PcieSlotPower).is_some()
    );
}

#[test]
fn amd_sessions_duplicates_and_unsupported_vrm() {
    let log = parse(LOGS[1].0);
    let s = &log.samples[0];
    assert_eq!(s.event_time.to_string(), "2020-03-16 17:13:05 UTC");
    assert_eq!(s.metrics.get(Metric::CoreClock), Some(789.0));
    assert_eq!(s.metrics.get(Metric::UvdClock), Some(105.0));
    assert_eq!(s.extra.get("UVD Clock [MHz] #2"), Some(&102.0));
    assert!(s.metrics.get(Metric::HotSpotTemp).is_some());
    assert!(s.metrics.get(Metric::MemoryShared).is_some());
    assert!(s.metrics.get(Metric::ChipPower).is_some());
    assert!(s.is_unsupported(Metric::Mem1VrmTemp) && s.is_unsupported(Metric::Mem2VrmTemp));
    assert!(!s.is_unsupported(Metric::GpuTemp));
}

#[test]
fn ada_power_tdp_zero_under_load_is_unsupported() {
    let log = parse(LOGS[2].0);
    assert!(
        log.samples
            .iter()
            .all(|s| s.is_unsupported(Metric::PowerTdp))
    );
    assert!(
        log.samples
            .iter()
            .all(|s| s.metrics.get(Metric::PerfCap) == Some(1.0))
    );
    assert!(
        log.samples
            .iter()
            .any(|s| s.metrics.get(Metric::PwrSrcPower).is_some())
    );
}

#[test]
fn intel_two_sessions_and_intermittent_voltage() {
    // Checked against the file itself: the second header is on line 152, and
    // `GPU Voltage [V]` alternates between `-` and a reading in both sessions.
    let log = parse(LOGS[3].0);
    let first_session = &log.samples[0].session;
    let (a, b): (Vec<_>, Vec<_>) = log
        .samples
        .iter()
        .partition(|s| &s.session == first_session);
    assert_eq!((a.len(), b.len()), (150, 856));
    assert_eq!(
        a[0].metrics.get(Metric::CoreVoltage),
        None,
        "line 2 reads `-`"
    );
    assert_eq!(
        a[9].metrics.get(Metric::CoreVoltage),
        Some(0.825),
        "line 11"
    );
    assert!(
        b.iter()
            .any(|s| s.metrics.get(Metric::CoreVoltage).is_none())
    );
    assert!(
        log.samples
            .iter()
            .any(|s| s.metrics.get(Metric::CpuTemp) == Some(100.0))
    );
    assert!(log.samples[0].metrics.get(Metric::ChipPower).is_some());
    assert!(log.samples[0].metrics.get(Metric::MemoryUsed).is_some());
}

#[test]
fn pascal_utf16be_old_names() {
    let log = parse(LOGS[5].0);
    assert_eq!(log.encoding, gpuz::decode::Encoding::Utf16Be);
    let s = &log.samples[0];
    assert_eq!(s.event_time.to_string(), "2018-07-02 15:23:03 UTC");
    assert_eq!(s.metrics.get(Metric::CoreClock), Some(139.0));
    assert_eq!(s.metrics.get(Metric::MemoryClock), Some(202.5));
    assert_eq!(s.metrics.get(Metric::GpuTemp), Some(30.0));
    assert_eq!(s.metrics.get(Metric::FanPct), Some(24.0));
    assert_eq!(s.metrics.get(Metric::FanRpm), Some(936.0));
    assert!(
        s.metrics.get(Metric::PowerTdp).is_some() && s.metrics.get(Metric::CoreVoltage).is_some()
    );
    assert!(
        s.extra.is_empty(),
        "every pascal column is known: {:?}",
        s.extra
    );
}

#[test]
fn hot_benchmark_peaks() {
    let log = parse(LOGS[4].0);
    let max = |m| {
        log.samples
            .iter()
            .filter_map(|s| s.metrics.get(m))
            .fold(f64::MIN, f64::max)
    };
    assert_eq!(max(Metric::GpuTemp), 91.5);
    assert_eq!(max(Metric::HotSpotTemp), 105.5);
    assert_eq!(max(Metric::BoardPower), 289.7);
    assert_eq!(
        log.samples
            .iter()
            .filter(|s| s.metrics.get(Metric::BoardPower).is_none())
            .count(),
        1
    );
}

// ---- hand-made edge cases -------------------------------------------------------

const HEADER: &str = "        Date        , GPU Clock [MHz] , GPU Temperature [\u{b0}C] , Fan Speed (RPM) [RPM] , Mystery Sensor [X] ,";

fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

fn parse_text(bytes: &[u8], opts: &ParseOptions) -> gpuz::ParsedLog {
    parse_log("edge.txt", bytes, &identity(), opts)
}

#[test]
fn nul_hole_with_row_glued_after_header() {
    let mut bytes = latin1(&format!(
        "{HEADER}\r\n2024-01-01 10:00:00 , 100.0 , 40.0 , 0 , 1 ,\r\n"
    ));
    bytes.extend(std::iter::repeat_n(0u8, 5000));
    bytes.extend(latin1(&format!("{HEADER}2024-01-01 10:00:05 , 200.0 , 41.0 , 0 , 2 ,\r\n2024-01-01 10:00:06 , 201.0 , - , 0 , 3 ,\r\n")));
    let log = parse_text(&bytes, &ParseOptions::default());
    assert_eq!(log.samples.len(), 3, "{:?}", log.issues);
    assert_eq!(log.summary.headers, 2);
    assert_eq!(log.samples[1].metrics.get(Metric::CoreClock), Some(200.0));
    assert_eq!(log.samples[1].extra.get("Mystery Sensor [X]"), Some(&2.0));
    assert_eq!(log.samples[2].metrics.get(Metric::GpuTemp), None);
    assert_ne!(log.samples[0].session, log.samples[1].session);
}

#[test]
fn file_without_header_is_reported_or_uses_the_given_header() {
    let bytes = latin1("2024-01-01 10:00:00 , 100.0 , 40.0 , 0 , 1 ,\n");
    let log = parse_text(&bytes, &ParseOptions::default());
    assert!(log.samples.is_empty());
    assert_eq!(log.issues.len(), 1);
    assert_eq!(
        log.issues[0].kind,
        IssueKind::RowSkipped(SkipReason::NoHeader)
    );
    assert!(
        log.issues[0].to_string().starts_with("edge.txt:1:"),
        "{}",
        log.issues[0]
    );

    let opts = ParseOptions {
        fallback_header: Some(HEADER.to_string()),
        ..Default::default()
    };
    let log = parse_text(&bytes, &opts);
    assert_eq!(log.samples.len(), 1);
    assert_eq!(log.samples[0].metrics.get(Metric::GpuTemp), Some(40.0));
}

#[test]
fn bad_cells_lose_only_the_field_and_bad_rows_are_reported() {
    let text = format!(
        "{HEADER}\n2024-01-01 10:00:00 , abc , 40.0 , 0 , 1 ,\nnot a date , 1 , 2 , 3 , 4 ,\n2024-01-01 10:00:02 , 100.0 ,\n"
    );
    let log = parse_text(&latin1(&text), &ParseOptions::default());
    assert_eq!(log.samples.len(), 2);
    assert_eq!(log.samples[0].metrics.get(Metric::CoreClock), None);
    assert_eq!(log.samples[0].metrics.get(Metric::GpuTemp), Some(40.0));
    assert_eq!(log.samples[1].metrics.get(Metric::CoreClock), Some(100.0));
    let msgs: Vec<String> = log.issues.iter().map(ToString::to_string).collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("edge.txt:2: field `GPU Clock [MHz]`")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("edge.txt:3: row skipped (bad_timestamp)")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("edge.txt:4: row has 2 cells")),
        "{msgs:?}"
    );
    assert_eq!(log.summary.data_rows, 3);
    assert_eq!(log.summary.skipped.get("bad_timestamp"), Some(&1));
}

#[test]
fn dst_fall_back_keeps_order_and_unique_ids() {
    // Europe/Berlin fell back from 03:00 CEST to 02:00 CET on 2023-10-29.
    let mut text = format!("{HEADER}\n");
    for t in ["02:30:00", "02:59:59", "02:00:00", "02:30:00", "03:00:00"] {
        text.push_str(&format!("2023-10-29 {t} , 1 , 40 , 0 , 1 ,\n"));
    }
    let opts = ParseOptions {
        timezone: "Europe/Berlin".parse().unwrap(),
        ..Default::default()
    };
    let log = parse_text(&latin1(&text), &opts);
    let utc: Vec<String> = log
        .samples
        .iter()
        .map(|s| s.event_time.format("%H:%M:%S").to_string())
        .collect();
    assert_eq!(
        utc,
        ["00:30:00", "00:59:59", "01:00:00", "01:30:00", "02:00:00"]
    );
    let ids: std::collections::HashSet<_> = log.samples.iter().map(|s| &s.event_id).collect();
    assert_eq!(ids.len(), 5);
}

#[test]
fn utf8_replacement_char_and_c_units() {
    let text = "\u{feff}Date , GPU Temperature [\u{fffd}C] , Hot Spot [C] ,\n2024-01-01 00:00:00 , 50.5 , 60.5 ,\n";
    let log = parse_text(text.as_bytes(), &ParseOptions::default());
    assert_eq!(log.samples[0].metrics.get(Metric::GpuTemp), Some(50.5));
    assert_eq!(log.samples[0].metrics.get(Metric::HotSpotTemp), Some(60.5));
}

#[test]
fn garbage_never_panics() {
    let mut seed = 7u64;
    for len in [0usize, 1, 2, 3, 17, 256, 4096] {
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            bytes.push((seed >> 33) as u8);
        }
        let _ = parse_text(&bytes, &ParseOptions::default());
        let mut with_header = latin1(HEADER);
        with_header.push(b'\n');
        with_header.extend(&bytes);
        let _ = parse_text(&with_header, &ParseOptions::default());
    }
}
