//! `wire_decode`: Kafka message bytes → a sample.

use std::sync::OnceLock;

use gpustream::wire::{
    decode_sample, decode_sample_into, decoder_disagreement, empty_sample, encode_sample,
    encode_sample_serde,
};
use gpustream::{Metric, Sample, Source};
use stream_processor::detect::Detector;
use stream_processor::rollups::{RollupConfig, Windower};
use stream_processor::rules::RuleSet;

/// Decodes `data` as a wire message. Checks:
///
/// - no panic, no hang;
/// - the hand-written decoder accepts exactly what the serde-derived reference accepts,
///   and reads the same sample (floats within 2 ulp: serde_json's default float parser
///   is not correctly rounded, the standard library's is);
/// - decoding into a reused sample that still holds another message gives the same;
/// - an accepted message re-encodes to serde_json's bytes and decodes back to itself
///   (integer metrics truncated, as the wire format writes them), and that is a fixpoint;
/// - the stream processor's rollup windows and detector take every accepted message,
///   next to the earliest and the latest event times (a poison pill would crash it).
pub fn wire_decode(data: &[u8]) {
    if let Some(why) = decoder_disagreement(data) {
        panic!("{why}");
    }
    let fast = decode_sample(data);

    let mut reused = dirty_sample();
    let into = decode_sample_into(data, &mut reused);
    assert_eq!(into.is_ok(), fast.is_ok(), "decode_sample_into: {into:?}");

    let Ok(sample) = fast else { return };
    assert_eq!(
        reused, sample,
        "a reused sample keeps nothing of its last message"
    );
    let bytes = encode_sample(&sample).expect("encodes");
    let reference = encode_sample_serde(&sample).expect("encodes");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&reference)
    );
    let back = decode_sample(&bytes).unwrap_or_else(|e| {
        panic!(
            "re-encoded message does not decode: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(back, truncate_integer_metrics(&sample));
    let again = encode_sample(&back).expect("encodes");
    assert_eq!(bytes, again, "encode ∘ decode is a fixpoint");
    process(&sample);
}

/// What the stream processor does with every message it accepts: rollup windows and
/// the detector, with the sample next to the earliest and the latest event times a
/// message can have, so that interval and window arithmetic meets its extremes.
fn process(sample: &Sample) {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    let rules = RULES.get_or_init(RuleSet::defaults);
    let at = |text: &str| {
        let mut s = sample.clone();
        s.event_time = text.parse().expect("a valid time");
        s
    };
    let earliest = at("0000-01-01T00:00:00Z");
    let latest = at("9999-12-31T23:59:59.999999999Z");
    let mut rollups = Vec::new();
    let mut windower = Windower::new(RollupConfig::default());
    for s in [&earliest, sample, &latest] {
        windower.observe(s, 0, &mut rollups);
    }
    let mut windower = Windower::new(RollupConfig::default());
    for s in [&latest, sample] {
        windower.observe(s, 0, &mut rollups);
    }
    let mut events = Vec::new();
    let mut detector = Detector::new(rules.clone());
    for s in [&earliest, sample, &latest] {
        detector.observe(s, &mut events);
    }
}

/// The sample as the wire carries it: integer metrics truncated toward zero (and
/// saturated), as `value as i64`.
pub fn truncate_integer_metrics(s: &Sample) -> Sample {
    let mut out = s.clone();
    for (m, v) in s.metrics.present() {
        if m.kind().is_integer() {
            out.metrics.set(m, v as i64 as f64);
        }
    }
    out
}

/// A sample holding every optional part, as left by a previous message.
fn dirty_sample() -> Sample {
    let mut s = empty_sample();
    s.event_id = "previous-event".into();
    s.host = "previous-host".into();
    s.gpu = "previous-gpu".into();
    s.gpu_name = Some("previous name".into());
    s.session = "previous-session".into();
    s.seq = 99;
    s.gpu_index = 7;
    s.source = Source::Nvml;
    s.metrics.set(Metric::GpuTemp, 50.0);
    s.unsupported.push(Metric::FanRpm);
    s.extra.insert("previous extra".into(), 1.0);
    s
}
