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

/// Value of the sample line whose name-with-labels is exactly `series`
/// (e.g. `gpustream_consumer_lag{partition="0"}`).
///
/// ```
/// let text = "# HELP x y\nx_total 3\ny{a=\"1\"} 2.5\n";
/// assert_eq!(gpustream_test_kit::http::metric(text, "y{a=\"1\"}"), Some(2.5));
/// assert_eq!(gpustream_test_kit::http::metric(text, "z"), None);
/// ```
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
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
