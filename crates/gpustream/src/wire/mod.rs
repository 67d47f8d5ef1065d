//! Kafka wire format: one JSON object per message, versioned.
//!
//! The JSON Schema in `schema/sample.v1.schema.json` documents it; a test checks that
//! what [`encode_sample`] writes validates against it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sample::Sample;

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

/// Encodes a sample as a wire message.
pub fn encode_sample(sample: &Sample) -> Result<Vec<u8>> {
    serde_json::to_vec(&WireSample::from(sample)).map_err(Error::Encode)
}

/// Decodes a wire message; rejects unknown schema versions and invalid fields.
///
/// Two passes rather than one `#[serde(flatten)]` envelope: flatten buffers every field
/// as generic content before building the sample, which cost more than half of the
/// stream processor's decode time; skimming for the version first is cheap.
pub fn decode_sample(payload: &[u8]) -> Result<Sample> {
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
