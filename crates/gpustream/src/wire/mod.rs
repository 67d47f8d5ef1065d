//! Kafka wire format: one JSON object per message, versioned.
//!
//! The JSON Schema in `schema/sample.v1.schema.json` documents it; a test checks that
//! what [`encode_sample`] writes validates against it.

mod decode;
mod encode;
mod reference;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sample::Sample;

pub use decode::decode_into;
pub use encode::encode_into;
pub use reference::{decoder_disagreement, same_sample};

/// Version written in every message's `schema_version` field.
pub const SCHEMA_VERSION: u32 = 1;

/// A borrowed sample with its schema version, ready to serialise as a wire message.
#[derive(Serialize)]
pub struct WireSample<'a> {
    schema_version: u32,
    #[serde(flatten)]
    sample: &'a Sample,
}

impl<'a> From<&'a Sample> for WireSample<'a> {
    fn from(sample: &'a Sample) -> Self {
        WireSample {
            schema_version: SCHEMA_VERSION,
            sample,
        }
    }
}

/// The version field alone; every other field is skipped without being built.
#[derive(Deserialize)]
struct Version {
    schema_version: u32,
}

/// Encodes a sample as a wire message (see [`encode_into`] to reuse a buffer).
pub fn encode_sample(sample: &Sample) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    encode_into(sample, &mut out);
    Ok(out)
}

/// The reference encoder: serde_json over [`WireSample`]. [`encode_into`] writes the
/// same bytes faster; tests and fuzzing compare the two.
pub fn encode_sample_serde(sample: &Sample) -> Result<Vec<u8>> {
    serde_json::to_vec(&WireSample::from(sample)).map_err(Error::Encode)
}

/// Decodes a wire message; rejects unknown schema versions and invalid fields (see
/// [`decode_into`] to reuse a sample's allocations).
pub fn decode_sample(payload: &[u8]) -> Result<Sample> {
    let mut s = empty_sample();
    decode_into(payload, &mut s)?;
    validate(&s)?;
    Ok(s)
}

/// [`decode_into`] plus the checks [`decode_sample`] makes.
pub fn decode_sample_into(payload: &[u8], out: &mut Sample) -> Result<()> {
    decode_into(payload, out)?;
    validate(out)
}

/// A sample to decode into.
pub fn empty_sample() -> Sample {
    Sample {
        event_id: String::new(),
        event_time: chrono::DateTime::UNIX_EPOCH,
        host: String::new(),
        gpu: String::new(),
        gpu_index: 0,
        gpu_name: None,
        source: crate::Source::Sim,
        session: String::new(),
        seq: 0,
        metrics: Default::default(),
        unsupported: Vec::new(),
        extra: Default::default(),
    }
}

/// The reference decoder: serde-derived, two passes (the version first, then the
/// sample). [`decode_sample`] accepts and rejects the same messages faster; tests and
/// fuzzing compare the two.
pub fn decode_sample_serde(payload: &[u8]) -> Result<Sample> {
    let version: Version =
        serde_json::from_slice(payload).map_err(|e| Error::Decode(e.to_string()))?;
    if version.schema_version != SCHEMA_VERSION {
        return Err(Error::Decode(format!(
            "unsupported schema_version {} (this build reads {SCHEMA_VERSION})",
            version.schema_version
        )));
    }
    let sample: Sample =
        serde_json::from_slice(payload).map_err(|e| Error::Decode(e.to_string()))?;
    validate(&sample)?;
    Ok(sample)
}

/// Semantic checks the JSON shape cannot express.
fn validate(s: &Sample) -> Result<()> {
    let bad = |what: &str| Err(Error::Decode(format!("invalid sample: {what}")));
    if s.event_id.is_empty() {
        return bad("empty event_id");
    }
    if s.host.is_empty() {
        return bad("empty host");
    }
    if s.gpu.is_empty() {
        return bad("empty gpu");
    }
    // RFC 3339 (the schema's `date-time`) has four-digit years; chrono reads signed years
    // up to ±262143, where the processor's window and interval arithmetic overflows.
    if !(0..=9999).contains(&s.event_time.year()) {
        return bad(&format!(
            "event_time {} is outside the years 0000-9999 of RFC 3339",
            s.event_time
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"schema_version":1,"event_id":"e1","event_time":"2025-03-14T09:00:00Z","host":"h","gpu":"g","gpu_index":0,"source":"gpuz","session":"s","seq":3,"metrics":{"gpu_temp_c":61.5,"gpu_load_pct":40}}"#;

    #[test]
    fn decodes_and_round_trips() {
        let s = decode_sample(GOOD.as_bytes()).expect("decode");
        assert_eq!(s.metrics.get(crate::Metric::GpuTemp), Some(61.5));
        assert_eq!(s.metrics.get(crate::Metric::GpuLoad), Some(40.0));
        assert_eq!(s.seq, 3);
        let again = decode_sample(&encode_sample(&s).expect("encode")).expect("decode");
        assert_eq!(again, s);
    }

    #[test]
    fn escaped_metric_names_are_read() {
        let escaped = GOOD.replace("gpu_temp_c", r"gpu\u005ftemp_c");
        let s = decode_sample(escaped.as_bytes()).expect("decode");
        assert_eq!(s.metrics.get(crate::Metric::GpuTemp), Some(61.5));
    }

    /// The reused sample keeps its `gpu_name` allocation between messages: a message
    /// without the field (or with `null`) must still read as `None`.
    #[test]
    fn a_reused_sample_forgets_the_previous_gpu_name() {
        let named = GOOD.replace(r#""gpu":"g","#, r#""gpu":"g","gpu_name":"RTX 4090","#);
        let nulled = GOOD.replace(r#""gpu":"g","#, r#""gpu":"g","gpu_name":null,"#);
        let mut s = empty_sample();
        for (json, want) in [
            (named.as_str(), Some("RTX 4090")),
            (GOOD, None),
            (named.as_str(), Some("RTX 4090")),
            (nulled.as_str(), None),
        ] {
            decode_sample_into(json.as_bytes(), &mut s).expect(json);
            assert_eq!(s.gpu_name.as_deref(), want, "{json}");
            assert_eq!(s, decode_sample_serde(json.as_bytes()).expect(json));
        }
    }

    #[test]
    fn rejects_other_versions_unknown_metrics_and_missing_fields() {
        let err = |json: &str| decode_sample(json.as_bytes()).expect_err(json).to_string();
        assert!(
            err(&GOOD.replace(r#""schema_version":1"#, r#""schema_version":2"#))
                .contains("unsupported schema_version 2")
        );
        assert!(err(&GOOD.replace(r#""schema_version":1,"#, "")).contains("schema_version"));
        assert!(err(&GOOD.replace("gpu_load_pct", "gpu_load_typo")).contains("unknown metric"));
        assert!(err(&GOOD.replace(r#""host":"h","#, "")).contains("host"));
        assert!(err(&GOOD.replace(r#""event_id":"e1""#, r#""event_id":"""#)).contains("event_id"));
        assert!(err(&GOOD[..40]).contains("EOF"));
    }

    /// Found by fuzzing (`wire_decode`): `"gpu_index":-0` was read as 0 by the fast
    /// decoder and refused by the reference (serde_json reads `-0` as the float -0.0).
    #[test]
    fn negative_zero_is_not_an_unsigned_integer() {
        for field in ["\"gpu_index\":0", "\"seq\":3", "\"schema_version\":1"] {
            let (name, _) = field.split_once(':').expect("a field");
            let json = GOOD.replace(field, &format!("{name}:-0"));
            assert!(decode_sample_serde(json.as_bytes()).is_err(), "{json}");
            let err = decode_sample(json.as_bytes()).expect_err(&json).to_string();
            assert!(err.contains("expected an unsigned integer"), "{err}");
        }
    }

    /// serde_json skips an unknown field without checking its strings' UTF-8 or `\u`
    /// code points, and without a nesting limit; the fast decoder refused such messages
    /// (invalid UTF-8, a lone surrogate, 300 levels of arrays) that the reference took.
    #[test]
    fn unknown_fields_are_skipped_as_serde_skips_them() {
        let with = |value: &[u8]| {
            let mut m = b"{\"x\":".to_vec();
            m.extend_from_slice(value);
            m.push(b',');
            m.extend_from_slice(&GOOD.as_bytes()[1..]);
            m
        };
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let accepted: [&[u8]; 5] = [
            b"\"\xff\"",
            b"\"\\ud800\"",
            deep.as_bytes(),
            b"{\"\xfe\":[1,{\"a\":\"\\udfff\"}],\"b\":[]}",
            b" [ { } , [ ] , -0.5e+3 , true , null ] ",
        ];
        for value in accepted {
            let m = with(value);
            let shown = String::from_utf8_lossy(&m).into_owned();
            let reference = decode_sample_serde(&m).expect(&shown);
            assert_eq!(decode_sample(&m).expect(&shown), reference, "{shown}");
        }
        let refused: [&[u8]; 6] = [
            b"[1,]",
            b"\"\\x\"",
            b"{\"a\" 1}",
            b"\"\x01\"",
            b"[[[",
            b"{\"a\":1,}",
        ];
        for value in refused {
            let m = with(value);
            let shown = String::from_utf8_lossy(&m).into_owned();
            assert!(decode_sample_serde(&m).is_err(), "{shown}");
            assert!(decode_sample(&m).is_err(), "{shown}");
        }
    }

    /// Found writing the `wire_decode` fuzz target (review): chrono reads signed years beyond 9999,
    /// and one message at the end of its range overflowed the stream processor's rollup windows
    /// (`start + width`), a poison pill. Both decoders refuse it now.
    #[test]
    fn refuses_event_times_rfc_3339_cannot_write() {
        for time in [
            "+10000-01-01T00:00:00Z",
            "+262142-12-31T23:59:30Z",
            "-0001-01-01T00:00:00Z",
            "-200000-06-01T00:00:00Z",
        ] {
            let json = GOOD.replace("2025-03-14T09:00:00Z", time);
            let fast = decode_sample(json.as_bytes()).expect_err(time).to_string();
            assert!(
                fast.contains("outside the years 0000-9999"),
                "{time}: {fast}"
            );
            let serde = decode_sample_serde(json.as_bytes())
                .expect_err(time)
                .to_string();
            assert!(
                serde.contains("outside the years 0000-9999"),
                "{time}: {serde}"
            );
        }
        for time in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"] {
            let json = GOOD.replace("2025-03-14T09:00:00Z", time);
            let s = decode_sample(json.as_bytes()).expect(time);
            assert_eq!(
                decode_sample(&encode_sample(&s).expect("encodes")).expect(time),
                s
            );
        }
    }
}
