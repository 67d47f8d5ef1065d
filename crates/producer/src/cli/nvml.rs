//! `producer nvml`: this machine's NVIDIA GPUs (and MIG instances) through NVML.

use std::net::SocketAddr;
use std::time::Duration;

use gpustream_runtime::config::{parse_duration, serde_duration, serde_opt_duration};
use serde::{Deserialize, Serialize};

use super::{
    Cli, CommonArgs, DEFAULT_COMPRESSION, DEFAULT_MESSAGE_TIMEOUT, DEFAULT_PARTITIONS, Effective,
    ModeSettings, Ops, SHARED_KEYS, check_delivered, open_sink, ops_addr, preflight, sink_options,
    stop_on_signal, this_host,
};
use crate::error::{Error, Result};
use crate::nvml::driver::NvmlBackend;
use crate::nvml::{GpuId, MIN_INTERVAL, SamplerOptions, run_sampler_with_health};
use crate::sink::{SampleSink, SinkOptions};

/// The flags of `producer nvml` (file keys in `[producer.nvml]` have the same names
/// with `_`).
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct NvmlArgs {
    /// Keys every mode shares.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Topic for "GPU lost" events (anomaly events, rule `gpu_lost`) [default:
    /// gpu-anomalies].
    #[arg(long, env = "GPUSTREAM_EVENTS_TOPIC")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_topic: Option<String>,
    /// Sample interval, 100ms at the least [default: 1s].
    #[arg(long, env = "GPUSTREAM_INTERVAL", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub interval: Option<Duration>,
    /// Host name in the samples [default: this machine's].
    #[arg(long, env = "GPUSTREAM_HOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What identifies a GPU in the samples: its NVML UUID, PCI bus id, or index
    /// [default: uuid].
    #[arg(long, env = "GPUSTREAM_GPU_ID", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_id: Option<GpuId>,
    /// Samples per GPU, then exit (default: until stopped).
    #[arg(long, env = "GPUSTREAM_SAMPLES", value_name = "K")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Failed reads in a row after which a GPU counts as lost [default: 3].
    #[arg(long, env = "GPUSTREAM_LOST_AFTER", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_after: Option<u32>,
}

/// Every key of `[producer.nvml]`, with its effective value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NvmlSettings {
    /// Topic of samples.
    pub topic: String,
    /// Topic of "GPU lost" events.
    pub events_topic: String,
    /// Sample interval.
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    /// Host name in the samples.
    pub host: String,
    /// Which identity is the `gpu` id.
    pub gpu_id: GpuId,
    /// Samples per GPU (none: until stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Failed reads in a row that make a GPU lost.
    pub lost_after: u32,
    /// Create the topics if they do not exist.
    pub create_topic: bool,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Compression codec.
    pub compression: String,
    /// Retry time of a message before it fails.
    #[serde(with = "serde_duration")]
    pub message_timeout: Duration,
    /// Ops endpoint (none: the default unless `samples` ends the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for NvmlSettings {
    fn default() -> Self {
        NvmlSettings {
            topic: gpustream_runtime::kafka::SAMPLES_TOPIC.into(),
            events_topic: gpustream_runtime::kafka::ANOMALIES_TOPIC.into(),
            interval: Duration::from_secs(1),
            host: this_host(),
            gpu_id: GpuId::Uuid,
            samples: None,
            lost_after: 3,
            create_topic: false,
            partitions: DEFAULT_PARTITIONS,
            compression: DEFAULT_COMPRESSION.into(),
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            metrics_addr: None,
        }
    }
}

impl ModeSettings for NvmlSettings {
    const MODE: &'static str = "nvml";
    const SHARED: &'static [&'static str] = SHARED_KEYS;
}

impl NvmlSettings {
    /// The sampler's options, checked.
    pub fn sampler(&self) -> Result<SamplerOptions> {
        if self.interval < MIN_INTERVAL {
            return Err(Error::Invalid(
                "--interval must be at least 100ms (NVML updates most readings no faster)".into(),
            ));
        }
        crate::sink::check_compression(&self.compression)?;
        Ok(SamplerOptions {
            interval: self.interval,
            host: self.host.clone(),
            gpu_id: self.gpu_id,
            ticks: self.samples,
            lost_after: self.lost_after.max(1),
        })
    }

    /// Where `/metrics` and `/health` are served: `metrics_addr`, else the default
    /// address unless `samples` ends the run.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        ops_addr(self.metrics_addr, self.samples.is_none())
    }

    /// The sinks' compression and delivery timeout.
    pub fn sink_options(&self) -> SinkOptions {
        sink_options(&self.compression, self.message_timeout)
    }
}

/// Samples the GPUs until `samples` or stopped.
pub async fn run(cli: &Cli, args: &NvmlArgs) -> Result<()> {
    let Effective { kafka, settings } = cli.effective::<NvmlSettings>(args)?;
    let opts = settings.sampler()?;
    // NVML first: without a driver, that is the one error worth reporting.
    let mut backend = NvmlBackend::init()?;
    tracing::info!(driver = ?backend.driver_version(), "NVML initialised");
    let stop = stop_on_signal();
    let ops = Ops::start(settings.ops_addr()).await?;
    preflight(&kafka).await?;
    let create = settings.create_topic.then_some(settings.partitions);
    let sink_opts = settings.sink_options();
    let mut sink = open_sink(
        &kafka,
        &settings.topic,
        &sink_opts,
        create,
        Some(ops.observer("nvml")),
    )
    .await?;
    let mut events = open_sink(&kafka, &settings.events_topic, &sink_opts, create, None).await?;
    let health = ops.health.clone();
    // NVML's event set may not change threads: the sampler runs on this one, which tokio
    // hands over to blocking work.
    tokio::task::block_in_place(move || {
        let mut events_sent = 0u64;
        let mut on_event = |ev: &gpustream::AnomalyEvent| -> Result<()> {
            let payload = serde_json::to_vec(ev).map_err(|e| Error::Encode(e.to_string()))?;
            events_sent += 1;
            events.send_bytes(&ev.key(), &payload)
        };
        let report = run_sampler_with_health(
            &mut backend,
            &opts,
            &mut sink,
            &mut on_event,
            &stop,
            &health,
        )?;
        println!("{report}");
        check_delivered(&sink, report.sent, report.delivery)?;
        let totals = events.flush(Duration::from_secs(60))?;
        check_delivered(&events, events_sent, totals)
    })
}
