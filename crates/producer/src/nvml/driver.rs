//! The only code that talks to NVML (through `nvml-wrapper`, which loads
//! `libnvidia-ml.so` at run time, so the producer builds and starts without a driver).

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, RetirementCause, TemperatureSensor,
};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, EventSet, Nvml};

use super::{DeviceInfo, GpuBackend, RawReading, ReadError};
use crate::error::{Error, Result};

/// What to tell a user whose machine cannot load NVML.
pub const NO_DRIVER_HINT: &str = "this machine has no usable NVIDIA driver (NVML). To try the pipeline without a GPU, use `producer simulate` (a simulated fleet with labelled faults) or `producer replay` (GPU-Z logs)";

/// NVML, loaded and initialised for the life of the process.
pub struct NvmlBackend {
    nvml: &'static Nvml,
    events: Option<EventSet<'static>>,
}

fn s<T>(r: std::result::Result<T, NvmlError>) -> std::result::Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl NvmlBackend {
    /// Loads and initialises NVML; without a driver, one clear [`Error::NoDriver`].
    pub fn init() -> Result<NvmlBackend> {
        let nvml = Nvml::init().map_err(|e| {
            let why = match &e {
                NvmlError::LibloadingError(inner) => {
                    format!("libnvidia-ml.so could not be loaded ({inner})")
                }
                NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not running".into(),
                NvmlError::LibraryNotFound => "libnvidia-ml.so was not found".into(),
                other => format!("NVML could not be initialised ({other})"),
            };
            Error::NoDriver(format!("{why}: {NO_DRIVER_HINT}"))
        })?;
        // NVML lives as long as the process: devices and event sets borrow it.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let mut backend = NvmlBackend { nvml, events: None };
        backend.register_xid_events();
        Ok(backend)
    }

    /// Driver version, for the log.
    pub fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }

    fn register_xid_events(&mut self) {
        let Ok(count) = self.nvml.device_count() else {
            return;
        };
        let Ok(mut set) = self.nvml.create_event_set() else {
            tracing::warn!("NVML event sets unavailable: XID errors will not be reported");
            return;
        };
        for i in 0..count {
            let Ok(dev) = self.nvml.device_by_index(i) else {
                continue;
            };
            match dev.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(s) => set = s,
                Err(e) => {
                    tracing::warn!(index = i, "XID events not available: {}", e.error);
                    return;
                }
            }
        }
        self.events = Some(set);
    }

    fn handle(&self, dev: &DeviceInfo) -> std::result::Result<Device<'static>, NvmlError> {
        let parent = self.nvml.device_by_index(dev.index)?;
        match dev.mig {
            Some(slot) => parent.mig_device_by_index(slot),
            None => Ok(parent),
        }
    }
}

fn info(d: &Device<'_>, index: u32, mig: Option<u32>, bus_id: String) -> DeviceInfo {
    DeviceInfo {
        index,
        mig,
        uuid: d.uuid().unwrap_or_else(|_| format!("gpu{index}")),
        name: d.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        bus_id,
    }
}

impl GpuBackend for NvmlBackend {
    fn device_count(&mut self) -> std::result::Result<u32, String> {
        s(self.nvml.device_count())
    }

    fn device(&mut self, index: u32) -> std::result::Result<DeviceInfo, String> {
        let d = s(self.nvml.device_by_index(index))?;
        let bus = d.pci_info().map(|p| p.bus_id).unwrap_or_default();
        Ok(info(&d, index, None, bus))
    }

    fn mig_slots(&mut self, index: u32) -> Option<u32> {
        let d = self.nvml.device_by_index(index).ok()?;
        let mode = d.mig_mode().ok()?;
        if mode.current != 1 {
            return None;
        }
        d.mig_device_count().ok()
    }

    fn mig_device(&mut self, index: u32, slot: u32) -> std::result::Result<DeviceInfo, String> {
        let parent = s(self.nvml.device_by_index(index))?;
        let bus = parent.pci_info().map(|p| p.bus_id).unwrap_or_default();
        let d = s(parent.mig_device_by_index(slot))?;
        let mut i = info(&d, index, Some(slot), bus);
        if let Ok(pname) = parent.name() {
            i.name = format!("{pname} MIG {}", i.name);
        }
        Ok(i)
    }

    fn read(&mut self, dev: &DeviceInfo) -> std::result::Result<RawReading, ReadError> {
        let d = self.handle(dev).map_err(classify)?;
        // A cheap call first: a lost GPU fails it, and nothing else is worth trying then.
        let mem = match d.memory_info() {
            Ok(m) => Some(m),
            Err(e @ (NvmlError::GpuLost | NvmlError::Unknown)) => return Err(classify(e)),
            Err(_) => None,
        };
        let util = d.utilization_rates().ok();
        let ok = |r: std::result::Result<u32, NvmlError>| r.ok();
        let retired = [
            RetirementCause::MultipleSingleBitEccErrors,
            RetirementCause::DoubleBitEccError,
        ]
        .iter()
        .map(|c| d.retired_pages(*c).map(|v| v.len() as u64))
        .collect::<std::result::Result<Vec<u64>, _>>()
        .ok()
        .map(|v| v.iter().sum());
        Ok(RawReading {
            gpu_util: util.as_ref().map(|u| u.gpu),
            mem_util: util.as_ref().map(|u| u.memory),
            mem_used: mem.as_ref().map(|m| m.used),
            mem_total: mem.as_ref().map(|m| m.total),
            temp: ok(d.temperature(TemperatureSensor::Gpu)),
            power_mw: ok(d.power_usage()),
            power_limit_mw: ok(d.enforced_power_limit()),
            energy_mj: d.total_energy_consumption().ok(),
            clock_graphics: ok(d.clock_info(Clock::Graphics)),
            clock_sm: ok(d.clock_info(Clock::SM)),
            clock_mem: ok(d.clock_info(Clock::Memory)),
            fan_pct: ok(d.fan_speed(0)),
            pstate: d.performance_state().ok().map(|p| p.as_c()),
            throttle: d.current_throttle_reasons().ok().map(|t| t.bits()),
            ecc_corrected: d
                .total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
                .ok(),
            ecc_uncorrected: d
                .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
                .ok(),
            pcie_tx_kbps: ok(d.pcie_throughput(PcieUtilCounter::Send)),
            pcie_rx_kbps: ok(d.pcie_throughput(PcieUtilCounter::Receive)),
            retired_pages: retired,
            remapped_rows: remapped_rows(self.nvml, &d),
        })
    }

    fn xid_events(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Some(set) = &self.events else {
            return out;
        };
        // Drain without blocking: a wait of 0 ms answers Timeout when nothing is queued.
        while let Ok(ev) = set.wait(0) {
            if let Some(XidError::Value(code)) = ev.event_data {
                out.push((ev.device.uuid().unwrap_or_default(), code));
            }
        }
        out
    }
}

/// Corrected + uncorrected remapped rows (Ampere and later; `None` where unsupported).
/// nvml-wrapper 0.13 has no safe binding of `nvmlDeviceGetRemappedRows`, so this one call
/// goes through the raw symbol it loaded.
// The one FFI call of the workspace (`unsafe_code` is denied everywhere else).
#[allow(unsafe_code)]
fn remapped_rows(nvml: &Nvml, d: &Device<'_>) -> Option<u64> {
    let f = nvml.lib().nvmlDeviceGetRemappedRows.as_ref().ok()?;
    let (mut corr, mut unc, mut pending, mut failed) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: `d` is a live handle of this initialised NVML, and the four out-pointers
    // point to locals that outlive the call, as the NVML API requires.
    let rc = unsafe { f(d.handle(), &mut corr, &mut unc, &mut pending, &mut failed) };
    // 0 = NVML_SUCCESS; anything else (not supported, lost) leaves the field absent.
    (rc == 0).then(|| u64::from(corr) + u64::from(unc))
}

fn classify(e: NvmlError) -> ReadError {
    match e {
        NvmlError::GpuLost => {
            ReadError::Lost("NVML reports the GPU is lost (fell off the bus)".into())
        }
        other => ReadError::Other(other.to_string()),
    }
}
