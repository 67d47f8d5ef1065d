//! Holding the fast decoder to the serde reference, as the differential tests and the
//! fuzzer do.

use crate::metric::Metric;
use crate::sample::Sample;

use super::{decode_sample, decode_sample_serde};

/// Equal samples, floats within 2 ulp: serde_json's default float parser is not
/// correctly rounded (the fast decoder uses the standard library's, which is), so the
/// two may differ in the last bit of a long decimal.
pub fn same_sample(a: &Sample, b: &Sample) -> bool {
    let close =
        |x: f64, y: f64| x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs());
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    for m in Metric::ALL {
        if let (Some(x), Some(y)) = (a.metrics.get(*m), b.metrics.get(*m))
            && close(x, y)
        {
            a2.metrics.clear(*m);
            b2.metrics.clear(*m);
        }
    }
    for (k, x) in &a.extra {
        if b.extra.get(k).is_some_and(|y| close(*x, *y)) {
            a2.extra.remove(k);
            b2.extra.remove(k);
        }
    }
    a2 == b2
}

/// How [`decode_sample`] and the reference [`decode_sample_serde`] disagree on
/// `payload`, both results shown; `None` when they agree: both refuse it, or both read
/// the same sample ([`same_sample`]).
pub fn decoder_disagreement(payload: &[u8]) -> Option<String> {
    let fast = decode_sample(payload);
    let reference = decode_sample_serde(payload);
    match (&fast, &reference) {
        (Ok(a), Ok(b)) if same_sample(a, b) => None,
        (Ok(a), Ok(b)) => Some(format!(
            "decoders read different samples from {:?}:\n fast: {a:?}\n serde: {b:?}",
            String::from_utf8_lossy(payload)
        )),
        (Err(_), Err(_)) => None,
        _ => Some(format!(
            "decoders disagree on {:?}:\n fast: {fast:?}\n serde: {reference:?}",
            String::from_utf8_lossy(payload)
        )),
    }
}
