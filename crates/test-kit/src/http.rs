//! A blocking HTTP `GET` (no client in blocking test code) and readers of the Prometheus
//! text exposition every service serves on `/metrics`.

use std::time::Duration;

/// Minimal HTTP/1.0 `GET`: status and body, `None` when nothing answers.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The value of `series` — a metric name, optionally with labels
/// (`gpustream_consumer_lag{partition="0"}`) — summed over every series of that metric
/// whose labels include the given ones; `None` when there is none.
///
/// ```
/// let text = "# HELP x y\nx_total 3\ny{a=\"1\",b=\"2\"} 2.5\n";
/// use gpustream_test_kit::http::metric;
/// assert_eq!(metric(text, "y{a=\"1\"}"), Some(2.5));
/// assert_eq!(metric(text, "x_total"), Some(3.0));
/// assert_eq!(metric(text, "z"), None);
/// ```
pub fn metric(text: &str, series: &str) -> Option<f64> {
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => (n, rest.trim_end_matches('}')),
        None => (series, ""),
    };
    let pairs: Vec<(&str, &str)> = labels
        .split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
        .collect();
    metric_sum(text, name, &pairs)
}

/// Every series of the exposition whose name starts with `prefix`, with its value.
pub fn series(text: &str, prefix: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum over every series of metric `name` whose labels include all of `labels`
/// (`None` when there is none), e.g. the records a component consumed over all topics:
/// `metric_sum(text, "gpustream_records_in_total", &[("component", "stream-processor")])`.
///
/// ```
/// let text = "x{component=\"a\",topic=\"t1\"} 2\nx{component=\"a\",topic=\"t2\"} 3\nx{component=\"b\",topic=\"t1\"} 7\n";
/// use gpustream_test_kit::http::metric_sum;
/// assert_eq!(metric_sum(text, "x", &[("component", "a")]), Some(5.0));
/// assert_eq!(metric_sum(text, "x", &[("topic", "t1")]), Some(9.0));
/// assert_eq!(metric_sum(text, "y", &[]), None);
/// ```
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let have: Vec<&str> = label_text.split(',').collect();
        if wanted.iter().all(|w| have.contains(&w.as_str()))
            && let Ok(v) = value.parse::<f64>()
        {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}
