//! The switch between unit-only runs and runs against the real services.

/// Addresses of the real services, from the environment `scripts/services.sh start`
/// writes to `.tools/run/services.env`.
#[derive(Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap servers (Tansu).
    pub brokers: String,
    /// InfluxDB 1.x base URL.
    pub influx_url: Option<String>,
    /// S3 endpoint (moto).
    pub s3_endpoint: Option<String>,
    /// VictoriaMetrics base URL (the InfluxDB v2 write API).
    pub vm_url: Option<String>,
    /// Alertmanager base URL.
    pub alertmanager_url: Option<String>,
}

impl Services {
    /// InfluxDB's URL; panics (a misconfigured run, not a skip) when it is not set.
    pub fn influx_url(&self) -> &str {
        self.influx_url
            .as_deref()
            .expect("GPUSTREAM_IT=1 needs GPUSTREAM_TEST_INFLUX_URL (scripts/services.sh start)")
    }

    /// The S3 endpoint; panics when it is not set.
    pub fn s3_endpoint(&self) -> &str {
        self.s3_endpoint
            .as_deref()
            .expect("GPUSTREAM_IT=1 needs GPUSTREAM_TEST_S3_ENDPOINT (scripts/services.sh start)")
    }

    /// VictoriaMetrics' URL; panics when it is not set.
    pub fn vm_url(&self) -> &str {
        self.vm_url
            .as_deref()
            .expect("GPUSTREAM_IT=1 needs GPUSTREAM_TEST_VM_URL (scripts/services.sh start)")
    }
}

/// Whether integration tests are switched on (`GPUSTREAM_IT=1`).
pub fn enabled() -> bool {
    std::env::var("GPUSTREAM_IT").as_deref() == Ok("1")
}

/// The services, or `None` (after printing that `test` was skipped) when integration
/// tests are off.
pub fn services(test: &str) -> Option<Services> {
    if !enabled() {
        eprintln!(
            "{test}: skipped (set GPUSTREAM_IT=1 and the service addresses: scripts/services.sh start; source .tools/run/services.env)"
        );
        return None;
    }
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Some(Services {
        brokers: var("GPUSTREAM_TEST_BROKERS")
            .expect("GPUSTREAM_IT=1 needs GPUSTREAM_TEST_BROKERS (scripts/services.sh start)"),
        influx_url: var("GPUSTREAM_TEST_INFLUX_URL"),
        s3_endpoint: var("GPUSTREAM_TEST_S3_ENDPOINT"),
        vm_url: var("GPUSTREAM_TEST_VM_URL"),
        alertmanager_url: var("GPUSTREAM_TEST_ALERTMANAGER_URL"),
    })
}
