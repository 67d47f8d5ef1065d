//! Buckets on the test S3 endpoint (moto).

use std::io::{Read, Write};
use std::time::Duration;

/// Creates `bucket` with a bare path-style `PUT /bucket` (moto accepts unsigned
/// requests); panics unless the server answers 200.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the S3 endpoint must be http://host:port, got {endpoint}"))
        .trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read response");
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200"),
        "creating bucket {bucket}: {status}"
    );
}

/// A new bucket with a unique, S3-valid name starting with `prefix` (lower case).
pub fn new_bucket(endpoint: &str, prefix: &str) -> String {
    let bucket = crate::unique(prefix).to_lowercase();
    create_bucket(endpoint, &bucket);
    bucket
}
