//! `gpuz_parse`: GPU-Z log bytes → samples.

use std::collections::HashSet;

use gpustream::wire::{decode_sample, encode_sample, encode_sample_serde};
use gpustream::{Metric, Sample};
use gpuz::{Identity, IssueKind, ParseOptions, parse_log};

use crate::wire::truncate_integer_metrics;

/// The file name every issue must carry.
const FILE: &str = "fuzz/GPU-Z Sensor Log.txt";

/// Zones with every kind of local-time trouble: none, the common one-hour DST shifts
/// on both hemispheres, half-hour DST, a 30/45-minute offset, a zone that skipped a day.
const ZONES: [chrono_tz::Tz; 8] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Sydney,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Pacific::Apia,
    chrono_tz::America::Sao_Paulo,
];

/// A header for rows that come before any header line (`--header`).
const FALLBACK_HEADER: &str = "Date , GPU Clock [MHz] , GPU Temperature [°C] , Fan Speed (%) [%] , \
     Fan Speed (RPM) [RPM] , GPU Load [%] , Board Power Draw [W] , PerfCap Reason [] ,";

/// Parses `data` as a GPU-Z log. Its last byte also picks the options: bits 0-2 the
/// timezone, bit 4 a fallback header. Checks:
///
/// - no panic, no hang;
/// - every issue names the file, a line of the decoded text and, for a bad value, the
///   field; the summary counts what was returned;
/// - event ids are unique and sequence numbers increase (the exactly-once dedupe
///   relies on both); every value is finite;
/// - every sample survives the wire: the fast encoder writes serde_json's bytes and the
///   decoder gives the sample back (integer metrics truncated, as the wire format does).
pub fn gpuz_parse(data: &[u8]) {
    let options = data.last().copied().unwrap_or(0);
    let opts = ParseOptions {
        timezone: ZONES[usize::from(options & 7)],
        fallback_header: (options & 0x10 != 0).then(|| FALLBACK_HEADER.to_string()),
    };
    let identity = Identity {
        host: "fuzz-host".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        gpu_name: Some("Fuzz GPU".into()),
    };
    let log = parse_log(FILE, data, &identity, &opts);

    let (text, _) = gpuz::decode::decode(data);
    let lines = text.split('\n').count();
    let mut field_issues = 0;
    for issue in &log.issues {
        assert_eq!(issue.file, FILE);
        assert!(
            (1..=lines).contains(&issue.line),
            "issue on line {} of {lines}: {issue}",
            issue.line
        );
        match issue.kind {
            IssueKind::InvalidValue => {
                field_issues += 1;
                assert!(
                    issue.field.is_some(),
                    "a bad value names its field: {issue}"
                );
            }
            IssueKind::CellCount => field_issues += 1,
            IssueKind::RowSkipped(_) | IssueKind::NonexistentLocalTime => {}
        }
        let shown = issue.to_string();
        assert!(
            shown.starts_with(&format!("{FILE}:{}: ", issue.line)),
            "{shown}"
        );
    }
    let s = &log.summary;
    assert_eq!(s.samples, log.samples.len() as u64);
    assert_eq!(s.data_rows, s.samples + s.skipped_total());
    assert_eq!(s.field_issues, field_issues);

    let mut ids = HashSet::new();
    let mut last_seq = None;
    for sample in &log.samples {
        assert!(ids.insert(sample.event_id.as_str()), "duplicate event id");
        assert!(last_seq < Some(sample.seq), "sequence numbers increase");
        last_seq = Some(sample.seq);
        check_values(sample);
        wire_round_trip(sample);
    }
}

fn check_values(sample: &Sample) {
    for (m, v) in sample.metrics.present() {
        assert!(v.is_finite(), "{}: {v}", m.column());
    }
    for (name, v) in &sample.extra {
        assert!(v.is_finite(), "extra `{name}`: {v}");
    }
    for m in &sample.unsupported {
        assert!(Metric::ALL.contains(m));
    }
}

fn wire_round_trip(sample: &Sample) {
    let fast = encode_sample(sample).expect("encodes");
    let reference = encode_sample_serde(sample).expect("encodes");
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&reference)
    );
    let back = decode_sample(&fast).unwrap_or_else(|e| {
        panic!(
            "a parsed sample does not decode: {e}\n{}",
            String::from_utf8_lossy(&fast)
        )
    });
    assert_eq!(back, truncate_integer_metrics(sample));
}
