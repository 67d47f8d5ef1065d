//! The wire decoder the stream processor runs for every message: a JSON reader made for
//! the sample object, which fills a reused [`Sample`] in place (no allocation once its
//! strings have grown to size) and accepts exactly what the serde-derived decoder
//! accepts (a differential test compares the two on every shape of input).
//!
//! This module assembles the sample from its fields; `reader` scans bytes, `strings`
//! and `numbers` read JSON scalars, `fields` the sample's maps and lists, `skip` steps
//! over unknown fields and `time` reads event times.

mod fields;
mod numbers;
mod reader;
mod skip;
mod strings;
mod time;

use crate::error::{Error, Result};
use crate::sample::{Sample, Source};

use reader::Reader;
use time::parse_time;

/// Fields of a sample, as bits of the "seen" mask.
const EVENT_ID: u16 = 1;
const EVENT_TIME: u16 = 1 << 1;
const HOST: u16 = 1 << 2;
const GPU: u16 = 1 << 3;
const GPU_INDEX: u16 = 1 << 4;
const GPU_NAME: u16 = 1 << 5;
const SOURCE: u16 = 1 << 6;
const SESSION: u16 = 1 << 7;
const SEQ: u16 = 1 << 8;
const METRICS: u16 = 1 << 9;
const UNSUPPORTED: u16 = 1 << 10;
const EXTRA: u16 = 1 << 11;
const VERSION: u16 = 1 << 12;

/// The fields every message must have, with their names for the error.
const REQUIRED: &[(u16, &str)] = &[
    (EVENT_ID, "event_id"),
    (EVENT_TIME, "event_time"),
    (HOST, "host"),
    (GPU, "gpu"),
    (GPU_INDEX, "gpu_index"),
    (SOURCE, "source"),
    (SESSION, "session"),
    (SEQ, "seq"),
    (METRICS, "metrics"),
];

/// Decodes `payload` into `out`, reusing its allocations. On error `out` holds a partly
/// decoded sample and must not be used.
pub fn decode_into(payload: &[u8], out: &mut Sample) -> Result<()> {
    let mut r = Reader::new(payload);
    out.metrics = Default::default();
    out.unsupported.clear();
    out.extra.clear();
    // `gpu_name` keeps its allocation: it is set to `None` below when absent.
    let mut seen = 0u16;
    r.ws();
    r.expect(b'{')?;
    r.ws();
    if r.peek() == Some(b'}') {
        r.i += 1;
    } else {
        loop {
            r.ws();
            let key = r.key()?;
            r.ws();
            r.expect(b':')?;
            r.ws();
            let bit = match key {
                Key::Version => {
                    let v = r.unsigned("schema_version")?;
                    if v != u64::from(super::SCHEMA_VERSION) {
                        return Err(Error::Decode(format!(
                            "unsupported schema_version {v} (this build reads {})",
                            super::SCHEMA_VERSION
                        )));
                    }
                    VERSION
                }
                Key::EventId => {
                    r.string_into(&mut out.event_id)?;
                    EVENT_ID
                }
                Key::EventTime => {
                    let mut text = std::mem::take(&mut r.scratch);
                    r.string_into(&mut text)?;
                    out.event_time = parse_time(&text)?;
                    r.scratch = text;
                    EVENT_TIME
                }
                Key::Host => {
                    r.string_into(&mut out.host)?;
                    HOST
                }
                Key::Gpu => {
                    r.string_into(&mut out.gpu)?;
                    GPU
                }
                Key::GpuIndex => {
                    let v = r.unsigned("gpu_index")?;
                    out.gpu_index = u32::try_from(v)
                        .map_err(|_| Error::Decode(format!("gpu_index {v} is out of range")))?;
                    GPU_INDEX
                }
                Key::GpuName => {
                    if r.null() {
                        out.gpu_name = None;
                    } else {
                        let mut name = out.gpu_name.take().unwrap_or_default();
                        r.string_into(&mut name)?;
                        out.gpu_name = Some(name);
                    }
                    GPU_NAME
                }
                Key::Source => {
                    let mut text = std::mem::take(&mut r.scratch);
                    r.string_into(&mut text)?;
                    out.source = match text.as_str() {
                        "gpuz" => Source::Gpuz,
                        "nvml" => Source::Nvml,
                        "sim" => Source::Sim,
                        other => {
                            return Err(Error::Decode(format!(
                                "unknown variant `{other}`, expected one of `gpuz`, `nvml`, `sim`"
                            )));
                        }
                    };
                    r.scratch = text;
                    SOURCE
                }
                Key::Session => {
                    r.string_into(&mut out.session)?;
                    SESSION
                }
                Key::Seq => {
                    out.seq = r.unsigned("seq")?;
                    SEQ
                }
                Key::Metrics => {
                    r.metrics(out)?;
                    METRICS
                }
                Key::Unsupported => {
                    r.unsupported(out)?;
                    UNSUPPORTED
                }
                Key::Extra => {
                    r.extra(out)?;
                    EXTRA
                }
                Key::Other => {
                    r.skip_value()?;
                    0
                }
            };
            if bit != 0 && seen & bit != 0 {
                return Err(Error::Decode(format!("duplicate field `{}`", key.name())));
            }
            seen |= bit;
            r.ws();
            match r.next()? {
                b',' => continue,
                b'}' => break,
                c => return Err(r.unexpected(c, "`,` or `}`")),
            }
        }
    }
    r.ws();
    if r.i != r.b.len() {
        return Err(Error::Decode(format!(
            "trailing characters at byte {}",
            r.i
        )));
    }
    if seen & GPU_NAME == 0 {
        out.gpu_name = None;
    }
    if seen & VERSION == 0 {
        return Err(Error::Decode("missing field `schema_version`".into()));
    }
    for (bit, name) in REQUIRED {
        if seen & bit == 0 {
            return Err(Error::Decode(format!("missing field `{name}`")));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Key {
    Version,
    EventId,
    EventTime,
    Host,
    Gpu,
    GpuIndex,
    GpuName,
    Source,
    Session,
    Seq,
    Metrics,
    Unsupported,
    Extra,
    Other,
}

impl Key {
    fn from(name: &[u8]) -> Key {
        match name {
            b"schema_version" => Key::Version,
            b"event_id" => Key::EventId,
            b"event_time" => Key::EventTime,
            b"host" => Key::Host,
            b"gpu" => Key::Gpu,
            b"gpu_index" => Key::GpuIndex,
            b"gpu_name" => Key::GpuName,
            b"source" => Key::Source,
            b"session" => Key::Session,
            b"seq" => Key::Seq,
            b"metrics" => Key::Metrics,
            b"unsupported" => Key::Unsupported,
            b"extra" => Key::Extra,
            _ => Key::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Key::Version => "schema_version",
            Key::EventId => "event_id",
            Key::EventTime => "event_time",
            Key::Host => "host",
            Key::Gpu => "gpu",
            Key::GpuIndex => "gpu_index",
            Key::GpuName => "gpu_name",
            Key::Source => "source",
            Key::Session => "session",
            Key::Seq => "seq",
            Key::Metrics => "metrics",
            Key::Unsupported => "unsupported",
            Key::Extra => "extra",
            Key::Other => "?",
        }
    }
}
