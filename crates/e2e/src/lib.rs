//! End-to-end tests of the whole pipeline on real services, and what they share: the
//! Grafana dashboards as data ([`grafana`]), so every panel query can be run against a
//! real InfluxDB or a PromQL-compatible store. Generic test support lives in
//! `gpustream-test-kit`.
//!
//! The top of the workspace: it may depend on every other crate, and none on it.

pub mod grafana;
