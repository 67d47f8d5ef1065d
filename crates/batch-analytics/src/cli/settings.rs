//! The effective settings: flags over the `[batch_analytics]` section of the
//! configuration file over the defaults, and the options of each job they make.

use std::num::NonZeroU64;
use std::time::Duration;

use gpustream_lake::Lake;
use gpustream_lake::delta::MaintainOptions;
use gpustream_runtime::config::{load_file, resolve, serde_duration};
use serde::{Deserialize, Serialize};

use super::SECTION;
use super::args::{Cli, Command, OutputFormat};
use crate::daily::resolve_timezone;
use crate::error::{Error, Result};
use crate::maintain::serde_size;
use crate::model::AnalysisOptions;
use crate::nightly::NightlyOptions;

/// Every key of the `[batch_analytics]` section, with its effective value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Lake root URL (required).
    pub lake: String,
    /// IANA timezone (`None`: the machine's zone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Idle below this load, percent.
    pub idle_below: f64,
    /// Busy at or above this load, percent.
    pub busy_from: f64,
    /// A spike rises more than this, °C ...
    pub spike_rise: f64,
    /// ... within this time.
    #[serde(with = "serde_duration")]
    pub spike_window: Duration,
    /// Gap: an interval this many times the typical one.
    pub gap_factor: f64,
    /// Intervals up to this are never gaps.
    #[serde(with = "serde_duration")]
    pub gap_floor: Duration,
    /// Intervals above this are always gaps.
    #[serde(with = "serde_duration")]
    pub max_interval: Duration,
    /// Allocation labels file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<String>,
    /// `waste`: idle below this load, percent.
    pub waste_idle_below: f64,
    /// `waste`: idle runs from this long on.
    #[serde(with = "serde_duration")]
    pub waste_min_idle: Duration,
    /// `energy_by_owner`: g CO2e per kWh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_intensity: Option<f64>,
    /// `throttling`: default temperature limit, °C.
    pub thermal_limit: f64,
    /// `throttling`: `MODEL=CELSIUS` limits.
    pub model_thermal_limit: Vec<String>,
    /// `cohorts`: power bucket width, W.
    pub cohort_power_bucket: f64,
    /// `cohorts`: outlier threshold, °C.
    pub cohort_outlier: f64,
    /// Also write CSV copies.
    pub csv: bool,
    /// Also write the report to this local file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Do not write the report into the lake.
    pub no_report: bool,
    /// Do not maintain after `daily`.
    pub no_maintain: bool,
    /// Compaction target file size, bytes.
    #[serde(with = "serde_size")]
    pub target_file_size: u64,
    /// Vacuum retention.
    #[serde(with = "serde_duration")]
    pub retention: Duration,
    /// Output format of `sql`.
    pub format: OutputFormat,
}

impl Default for Settings {
    fn default() -> Self {
        let analysis = AnalysisOptions::default();
        let upkeep = MaintainOptions::default();
        Settings {
            lake: String::new(),
            timezone: None,
            idle_below: analysis.idle_below_pct,
            busy_from: analysis.busy_from_pct,
            spike_rise: analysis.spike_rise_c,
            spike_window: Duration::from_secs_f64(analysis.spike_window_s),
            gap_factor: analysis.gap_factor,
            gap_floor: Duration::from_secs_f64(analysis.gap_floor_s),
            max_interval: Duration::from_secs_f64(analysis.max_interval_s),
            allocations: None,
            waste_idle_below: analysis.waste_idle_below_pct,
            waste_min_idle: Duration::from_secs_f64(analysis.waste_min_idle_s),
            grid_intensity: analysis.grid_g_per_kwh,
            thermal_limit: analysis.thermal_limit_c,
            model_thermal_limit: Vec::new(),
            cohort_power_bucket: analysis.cohort_power_bucket_w,
            cohort_outlier: analysis.cohort_outlier_c,
            csv: false,
            report: None,
            no_report: false,
            no_maintain: false,
            target_file_size: upkeep.target_file_size.get(),
            retention: upkeep.retention,
            format: OutputFormat::Table,
        }
    }
}

impl Settings {
    /// Opens the lake; an error names where `lake` can be set when it is not.
    pub fn open_lake(&self) -> Result<Lake> {
        if self.lake.trim().is_empty() {
            return Err(Error::Config(gpustream_runtime::Error::Setting {
                name: "lake".into(),
                message: format!(
                    "required: set --lake, GPUSTREAM_LAKE or `lake` in [{SECTION}] of the --config file"
                ),
            }));
        }
        Ok(Lake::open(&self.lake)?)
    }

    /// The options of a nightly run, checked.
    pub fn nightly_options(&self) -> Result<NightlyOptions> {
        let timezone = resolve_timezone(self.timezone.as_deref())?;
        let analysis = AnalysisOptions {
            timezone,
            idle_below_pct: self.idle_below,
            busy_from_pct: self.busy_from,
            spike_rise_c: self.spike_rise,
            spike_window_s: self.spike_window.as_secs_f64(),
            gap_factor: self.gap_factor,
            gap_floor_s: self.gap_floor.as_secs_f64(),
            max_interval_s: self.max_interval.as_secs_f64(),
            waste_idle_below_pct: self.waste_idle_below,
            waste_min_idle_s: self.waste_min_idle.as_secs_f64(),
            grid_g_per_kwh: self.grid_intensity,
            thermal_limit_c: self.thermal_limit,
            model_thermal_limits: self
                .model_thermal_limit
                .iter()
                .map(String::as_str)
                .map(parse_model_limit)
                .collect::<Result<_>>()?,
            cohort_power_bucket_w: self.cohort_power_bucket,
            cohort_outlier_c: self.cohort_outlier,
        };
        // Written so a NaN threshold is refused too.
        let ordered = analysis.idle_below_pct <= analysis.busy_from_pct;
        if !ordered {
            return Err(Error::Options(format!(
                "--idle-below ({}) must not be above --busy-from ({})",
                analysis.idle_below_pct, analysis.busy_from_pct
            )));
        }
        let sane = analysis.spike_rise_c > 0.0 && analysis.gap_factor >= 1.0;
        if !sane {
            return Err(Error::Options(
                "--spike-rise must be positive and --gap-factor at least 1".into(),
            ));
        }
        // Each written so a NaN is refused too.
        let checks = [
            (
                analysis.waste_idle_below_pct > 0.0 && analysis.waste_idle_below_pct <= 100.0,
                "--waste-idle-below must be above 0 and at most 100",
            ),
            (
                analysis.grid_g_per_kwh.is_none_or(|g| g >= 0.0),
                "--grid-intensity must not be negative",
            ),
            (
                analysis.thermal_limit_c.is_finite(),
                "--thermal-limit must be a number",
            ),
            (
                analysis.cohort_power_bucket_w > 0.0 && analysis.cohort_power_bucket_w.is_finite(),
                "--cohort-power-bucket must be positive",
            ),
            (
                analysis.cohort_outlier_c >= 0.0,
                "--cohort-outlier must not be negative",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(Error::Options((*message).into()));
        }
        let allocations = match &self.allocations {
            Some(path) if !path.trim().is_empty() => Some(std::sync::Arc::new(
                crate::allocations::load(std::path::Path::new(path))?,
            )),
            _ => None,
        };
        Ok(NightlyOptions {
            analysis,
            csv: self.csv,
            report: !self.no_report,
            render_report: self.report.is_some(),
            allocations,
        })
    }

    /// The options of table upkeep.
    pub fn maintain_options(&self) -> Result<MaintainOptions> {
        let target_file_size = NonZeroU64::new(self.target_file_size)
            .ok_or_else(|| Error::Options("--target-file-size must be positive".into()))?;
        Ok(MaintainOptions {
            target_file_size,
            retention: self.retention,
        })
    }

    /// The settings as the `[batch_analytics]` section of a configuration file.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("[{SECTION}]\n{body}")
    }
}

/// Parses one `MODEL=CELSIUS` thermal limit (the model may itself contain `=`: the
/// last one separates).
fn parse_model_limit(entry: &str) -> Result<(String, f64)> {
    let bad = || {
        Error::Options(format!(
            "--model-thermal-limit `{entry}`: expected MODEL=CELSIUS, e.g. \"NVIDIA A100-SXM4-80GB=85\""
        ))
    };
    let (model, limit) = entry.rsplit_once('=').ok_or_else(bad)?;
    let limit: f64 = limit.trim().parse().map_err(|_| bad())?;
    if model.trim().is_empty() || !limit.is_finite() {
        return Err(bad());
    }
    Ok((model.trim().to_string(), limit))
}

impl Cli {
    /// The effective settings: the command's flags and their environment variables over
    /// the configuration file's `[batch_analytics]` section over the defaults.
    pub fn effective(&self) -> Result<Settings> {
        let file = load_file(self.config.as_deref())?;
        let file = file.as_ref();
        let settings = match &self.command {
            Command::Daily(a) => resolve(file, SECTION, a),
            Command::Sql(a) => resolve(file, SECTION, a),
            Command::Maintain(a) => resolve(file, SECTION, a),
            Command::Convert(a) => resolve(file, SECTION, a),
            Command::Generate(a) => resolve(file, SECTION, a),
            Command::Config(a) => resolve(file, SECTION, a),
        }?;
        Ok(settings)
    }
}
