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

#[derive(Deserialize)]
struct OwnedEnvelope {
    schema_version: u32,
    #[serde(flatten)]
    sample: Sample,
}

/// Encodes a sample as a wire message.
pub fn encode_sample(sample: &Sample) -> Result<Vec<u8>> {
    serde_json::to_vec(&WireSample::from(sample)).map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes a wire message; rejects unknown schema versions and invalid fields.
pub fn decode_sample(payload: &[u8]) -> Result<Sample> {
    let env: OwnedEnvelope =
        serde_json::from_slice(payload).map_err(|e| Error::Decode(e.to_string()))?;
    if env.schema_version != SCHEMA_VERSION {
        return Err(Error::Decode(format!(
            "unsupported schema_version {} (this build reads {SCHEMA_VERSION})",
            env.schema_version
        )));
    }
    validate(&env.sample)?;
    Ok(env.sample)
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
