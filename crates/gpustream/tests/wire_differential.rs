//! The fast wire encoder and decoder against the serde reference: the same bytes out,
//! the same samples in, and the same messages refused, on generated samples with every
//! optional part and awkward strings, and on thousands of mutations of them.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use gpustream::wire::{
    decode_sample, decoder_disagreement, encode_sample, encode_sample_serde, same_sample,
};
use gpustream::{Metric, Metrics, Sample, Source};

/// xorshift64*: reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const STRINGS: &[&str] = &[
    "ws1",
    "GPU 0",
    "quote\"d",
    "back\\slash",
    "tab\tnew\nline\r",
    "ctl\u{1}\u{8}\u{c}\u{1f}",
    "ünïcødé 東京 🚀",
    "slash/ok",
    "del\u{7f}",
    "",
];

fn sample(rng: &mut Rng) -> Sample {
    let mut metrics = Metrics::default();
    for m in Metric::ALL {
        if rng.below(3) == 0 {
            let v = match if m.kind().is_integer() {
                0
            } else {
                rng.below(5)
            } {
                0 => (rng.next() % 1000) as f64,
                1 => (rng.next() % 100_000) as f64 / 10.0,
                2 => (rng.next() % 10_000_000) as f64 / 10_000.0,
                3 => 1e-7 * (rng.next() % 1000) as f64,
                _ => 1.5e16 + (rng.next() % 10) as f64,
            };
            metrics.set(*m, v);
        }
    }
    let mut extra = BTreeMap::new();
    for _ in 0..rng.below(3) {
        extra.insert(
            format!("{} [X]", STRINGS[rng.below(STRINGS.len())]),
            (rng.next() % 5000) as f64 / 8.0,
        );
    }
    let nanos = match rng.below(4) {
        0 => 0,
        1 => 500_000_000,
        2 => 123_456_000,
        _ => 123_456_789,
    };
    let pick = |rng: &mut Rng| STRINGS[rng.below(STRINGS.len() - 1)].to_string();
    Sample {
        event_id: format!("{:032x}", rng.next()),
        event_time: Utc
            .timestamp_opt(1_600_000_000 + (rng.next() % 300_000_000) as i64, nanos)
            .single()
            .unwrap(),
        host: pick(rng),
        gpu: pick(rng),
        gpu_index: (rng.next() % 16) as u32,
        gpu_name: (rng.below(2) == 0).then(|| pick(rng)),
        source: [Source::Gpuz, Source::Nvml, Source::Sim][rng.below(3)],
        session: pick(rng),
        seq: rng.next() % 1_000_000_000,
        metrics,
        unsupported: (0..rng.below(3))
            .map(|_| Metric::ALL[rng.below(Metric::ALL.len())])
            .collect(),
        extra,
    }
}

/// Both decoders agree: the same sample, or both refuse.
fn agree(payload: &[u8]) {
    if let Some(why) = decoder_disagreement(payload) {
        panic!("{why}");
    }
}

#[test]
fn the_encoder_writes_serdes_bytes() {
    let mut rng = Rng(0x5eed);
    for _ in 0..5_000 {
        let s = sample(&mut rng);
        let fast = encode_sample(&s).unwrap();
        let reference = encode_sample_serde(&s).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&reference)
        );
        assert_eq!(decode_sample(&fast).unwrap(), s);
    }
}

#[test]
fn the_decoder_agrees_with_serde_on_mutations() {
    let mut rng = Rng(0xdec0de);
    let tokens: &[&[u8]] = &[
        b" ",
        b"\n",
        b",",
        b":",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"\\",
        b"null",
        b"1",
        b"-0",
        b"1.5",
        b"1e999",
        b"\"x\"",
        b"\"gpu\":\"g\"",
        b"\"seq\":1",
        b"\\u0041",
        b"\xff",
        b"0",
        b"\"metrics\":{}",
        b"\"unsupported\":null",
        b"\"gpu_name\":null",
        b"\"schema_version\":2",
    ];
    for _ in 0..20_000 {
        let s = sample(&mut rng);
        let mut p = encode_sample_serde(&s).unwrap();
        agree(&p);
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(p.len() + 1);
            match rng.below(3) {
                0 if !p.is_empty() => {
                    let end = (at + 1 + rng.below(8)).min(p.len());
                    p.drain(at.min(p.len())..end);
                }
                1 => {
                    let t = tokens[rng.below(tokens.len())];
                    p.splice(at..at, t.iter().copied());
                }
                _ => {
                    if at < p.len() {
                        p[at] = (rng.next() & 0xff) as u8;
                    }
                }
            }
        }
        agree(&p);
    }
}

#[test]
fn the_decoder_reads_any_member_order_and_spacing() {
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let s = sample(&mut rng);
        let value: serde_json::Value =
            serde_json::from_slice(&encode_sample_serde(&s).unwrap()).unwrap();
        let serde_json::Value::Object(map) = value else {
            panic!("an object")
        };
        let mut members: Vec<(String, serde_json::Value)> = map.into_iter().collect();
        for i in (1..members.len()).rev() {
            members.swap(i, rng.below(i + 1));
        }
        members.push((
            "unknown_field".into(),
            serde_json::json!({"a": [1, 2, {"b": null}]}),
        ));
        let text = format!(
            " {{ {} }} ",
            members
                .iter()
                .map(|(k, v)| format!("{} :\t{}", serde_json::to_string(k).unwrap(), v))
                .collect::<Vec<_>>()
                .join(" ,\n ")
        );
        agree(text.as_bytes());
        assert!(same_sample(&decode_sample(text.as_bytes()).unwrap(), &s));
    }
}
