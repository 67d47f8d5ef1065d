//! Kafka wire format: one JSON object per message, versioned.
//!
//! The JSON Schema in `schema/sample.v1.schema.json` documents it; a test checks that
//! what [`encode_sample`] writes validates against it.

mod decode;
mod encode;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sample::Sample;

pub use decode::decode_into;
pub use encode::encode_into;

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
}
