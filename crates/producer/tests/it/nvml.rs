//! The NVML sampler above the NVML calls, with a scripted backend: enumeration with MIG,
//! 100 ms scheduling, mapping and throttle decoding, XID, a lost GPU among healthy ones;
//! and, on this machine without a driver, the one clear error.

// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gpustream::throttle;
use gpustream::{AnomalyEvent, AnomalyState, Metric, Sample, Source};
use producer::nvml::{
    DeviceInfo, GpuBackend, GpuId, RawReading, ReadError, SamplerOptions, enumerate, run_sampler,
    to_metrics,
};
use producer::sink::VecSink;

fn dev(index: u32, mig: Option<u32>) -> DeviceInfo {
    DeviceInfo {
        index,
        mig,
        uuid: match mig {
            None => format!("GPU-{index:04}"),
            Some(m) => format!("MIG-{index:04}-{m}"),
        },
        name: "NVIDIA A100-SXM4-80GB".into(),
        bus_id: format!("00000000:{:02X}:00.0", 0x10 + index),
    }
}

fn reading(load: u32) -> RawReading {
    RawReading {
        gpu_util: Some(load),
        mem_util: Some(load / 2),
        mem_used: Some(10 * 1024 * 1024 * 1024),
        mem_total: Some(80 * 1024 * 1024 * 1024),
        temp: Some(61),
        power_mw: Some(312_456),
        power_limit_mw: Some(400_000),
        energy_mj: Some(123_456_789),
        clock_graphics: Some(1410),
        clock_sm: Some(1410),
        clock_mem: Some(1593),
        fan_pct: None,
        pstate: Some(0),
        throttle: Some(throttle::SW_POWER_CAP | throttle::HW_THERMAL_SLOWDOWN),
        ecc_corrected: Some(3),
        ecc_uncorrected: Some(0),
        pcie_tx_kbps: Some(1200),
        pcie_rx_kbps: Some(54000),
        retired_pages: None,
        remapped_rows: Some(0),
    }
}

/// A scripted machine: `gpus` physical GPUs, MIG slots per GPU, failures per (uuid, call).
#[derive(Default)]
struct Fake {
    gpus: u32,
    mig: HashMap<u32, (u32, Vec<u32>)>, // index → (slots, occupied slots)
    lost_from: HashMap<String, (usize, Option<usize>)>, // uuid → (first lost call, back at call)
    calls: HashMap<String, usize>,
    xids: Vec<(usize, String, u64)>, // (tick, uuid, code)
    tick: usize,
    read_delay: Duration,
}

impl GpuBackend for Fake {
    fn device_count(&mut self) -> Result<u32, String> {
        Ok(self.gpus)
    }
    fn device(&mut self, index: u32) -> Result<DeviceInfo, String> {
        Ok(dev(index, None))
    }
    fn mig_slots(&mut self, index: u32) -> Option<u32> {
        self.mig.get(&index).map(|(slots, _)| *slots)
    }
    fn mig_device(&mut self, index: u32, slot: u32) -> Result<DeviceInfo, String> {
        match self.mig.get(&index) {
            Some((_, used)) if used.contains(&slot) => Ok(dev(index, Some(slot))),
            _ => Err("Not Found".into()),
        }
    }
    fn read(&mut self, d: &DeviceInfo) -> Result<RawReading, ReadError> {
        std::thread::sleep(self.read_delay);
        let n = self.calls.entry(d.uuid.clone()).or_default();
        let call = *n;
        *n += 1;
        if let Some((from, back)) = self.lost_from.get(&d.uuid)
            && call >= *from
            && back.is_none_or(|b| call < b)
        {
            return Err(ReadError::Lost("fell off the bus".into()));
        }
        Ok(reading(50 + call as u32))
    }
    fn xid_events(&mut self) -> Vec<(String, u64)> {
        let t = self.tick;
        self.tick += 1;
        self.xids
            .iter()
            .filter(|(at, _, _)| *at == t)
            .map(|(_, u, c)| (u.clone(), *c))
            .collect()
    }
}

fn opts(interval_ms: u64, ticks: u64) -> SamplerOptions {
    SamplerOptions {
        interval: Duration::from_millis(interval_ms),
        host: "node1".into(),
        gpu_id: GpuId::Uuid,
        ticks: Some(ticks),
        lost_after: 3,
    }
}

fn run(
    fake: &mut Fake,
    o: &SamplerOptions,
) -> (
    Vec<Sample>,
    Vec<AnomalyEvent>,
    producer::nvml::SamplerReport,
) {
    let mut sink = VecSink::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let mut on_event = move |e: &AnomalyEvent| -> producer::Result<()> {
        ev.lock().unwrap().push(e.clone());
        Ok(())
    };
    let report = run_sampler(
        fake,
        o,
        &mut sink,
        &mut on_event,
        &Arc::new(AtomicBool::new(false)),
    )
    .expect("sampler");
    let events = events.lock().unwrap().clone();
    (sink.0, events, report)
}

#[test]
fn mig_instances_are_enumerated_after_their_parent() {
    let mut fake = Fake {
        gpus: 3,
        ..Fake::default()
    };
    // GPU 1 in MIG mode with 7 slots, instances in slots 0 and 3.
    fake.mig.insert(1, (7, vec![0, 3]));
    let devs = enumerate(&mut fake).unwrap();
    let ids: Vec<&str> = devs.iter().map(|d| d.uuid.as_str()).collect();
    assert_eq!(
        ids,
        [
            "GPU-0000",
            "GPU-0001",
            "MIG-0001-0",
            "MIG-0001-3",
            "GPU-0002"
        ]
    );

    let (samples, _, report) = run(&mut fake, &opts(100, 2));
    assert_eq!(report.devices, 5);
    assert_eq!(samples.len(), 10);
    let mig = samples.iter().find(|s| s.gpu == "MIG-0001-3").unwrap();
    assert_eq!(mig.gpu_index, 1);
}

#[test]
fn ticks_every_100_ms_on_an_absolute_clock() {
    let mut fake = Fake {
        gpus: 2,
        read_delay: Duration::from_millis(7),
        ..Fake::default()
    };
    let t = Instant::now();
    let (samples, _, report) = run(&mut fake, &opts(100, 20));
    let took = t.elapsed();
    // 20 ticks: the last is due 1.9 s after the first; reads of 14 ms per tick must not
    // add up into drift. (On a loaded machine a late wake-up may skip a tick; it is then
    // counted, and the schedule still holds.)
    let missed = report.missed_ticks as u32;
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(
        took < Duration::from_millis(2300) + Duration::from_millis(100) * missed,
        "{took:?}"
    );
    assert!(missed <= 2, "{report}");
    assert_eq!(samples.len(), 40);
    for gpu in ["GPU-0000", "GPU-0001"] {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.gpu == gpu).collect();
        assert_eq!(
            mine.iter().map(|s| s.seq).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        let mut gaps = 0;
        for w in mine.windows(2) {
            let ms = (w[1].event_time - w[0].event_time).num_milliseconds();
            assert!(ms >= 100 && ms % 100 == 0, "{ms}");
            gaps += ms / 100 - 1;
        }
        assert_eq!(gaps, i64::from(missed), "every gap is a counted skip");
    }
    assert!(
        samples
            .iter()
            .all(|s| s.source == Source::Nvml && s.host == "node1")
    );
}

#[test]
fn slow_reads_skip_ticks_instead_of_bunching() {
    let mut fake = Fake {
        gpus: 1,
        read_delay: Duration::from_millis(250),
        ..Fake::default()
    };
    let (samples, _, report) = run(&mut fake, &opts(100, 4));
    assert_eq!(samples.len(), 4);
    assert!(report.missed_ticks >= 6, "{report}");
    // Event times are the due times of the ticks actually taken.
    for w in samples.windows(2) {
        let gap = (w[1].event_time - w[0].event_time).num_milliseconds();
        assert!(gap >= 200 && gap % 100 == 0, "{gap}");
    }
}

#[test]
fn readings_map_to_canonical_metrics_and_throttle_reasons_decode() {
    let m = to_metrics(&reading(87));
    assert_eq!(m.get(Metric::GpuLoad), Some(87.0));
    assert_eq!(m.get(Metric::MemoryControllerLoad), Some(43.0));
    assert_eq!(m.get(Metric::MemoryUsed), Some(10240.0));
    assert_eq!(m.get(Metric::MemoryTotal), Some(81920.0));
    assert_eq!(m.get(Metric::BoardPower), Some(312.456));
    assert_eq!(m.get(Metric::PowerLimit), Some(400.0));
    assert_eq!(m.get(Metric::Energy), Some(123_456_789.0));
    assert_eq!(m.get(Metric::SmClock), Some(1410.0));
    assert_eq!(m.get(Metric::MemoryClock), Some(1593.0));
    assert_eq!(m.get(Metric::PcieRx), Some(54000.0));
    assert_eq!(m.get(Metric::FanPct), None, "not supported → absent, not 0");
    assert_eq!(m.get(Metric::RetiredPages), None);
    let bits = m.get(Metric::ThrottleReasons).unwrap() as u64;
    assert_eq!(
        throttle::decode(bits),
        vec!["sw_power_cap", "hw_thermal_slowdown"]
    );
    assert_eq!(
        throttle::decode(0x1 | 0x20 | 0x80 | 0x400),
        vec![
            "gpu_idle",
            "sw_thermal_slowdown",
            "hw_power_brake_slowdown",
            "bit10"
        ]
    );
}

#[test]
fn a_lost_gpu_raises_one_event_while_the_others_keep_sampling() {
    let mut fake = Fake {
        gpus: 3,
        ..Fake::default()
    };
    // GPU 1 is lost from its 4th read and answers again at its 9th.
    fake.lost_from.insert("GPU-0001".into(), (3, Some(8)));
    let (samples, events, report) = run(&mut fake, &opts(100, 12));
    let count = |g: &str| samples.iter().filter(|s| s.gpu == g).count();
    assert_eq!(count("GPU-0000"), 12);
    assert_eq!(count("GPU-0002"), 12);
    assert_eq!(count("GPU-0001"), 12 - 5);
    assert_eq!(report.lost_events, 1);
    assert_eq!(events.len(), 2, "{events:?}");
    let (fired, resolved) = (&events[0], &events[1]);
    assert_eq!(fired.rule, "gpu_lost");
    assert_eq!(fired.state, AnomalyState::Firing);
    assert_eq!(fired.gpu, "GPU-0001");
    assert!(fired.message.contains("fell off the bus"));
    assert_eq!(resolved.state, AnomalyState::Resolved);
    assert_eq!(resolved.anomaly_id, fired.anomaly_id);
    assert_eq!(resolved.started_at, fired.event_time);
    assert_eq!(
        (resolved.event_time - fired.event_time).num_milliseconds(),
        500
    );

    // Plain errors count only when they keep coming: lost_after in a row.
    let mut fake = Fake {
        gpus: 1,
        ..Fake::default()
    };
    fake.lost_from.insert("GPU-0000".into(), (2, None));
    let mut o = opts(100, 6);
    o.lost_after = 3;
    let (samples, events, _) = run(&mut fake, &o);
    assert_eq!(samples.len(), 2);
    assert_eq!(events.len(), 1, "one event, not one per failed read");
}

#[test]
fn xid_events_land_on_the_next_sample_of_their_gpu() {
    let mut fake = Fake {
        gpus: 2,
        ..Fake::default()
    };
    fake.xids.push((3, "GPU-0001".into(), 79));
    fake.xids.push((5, "GPU-9999".into(), 31)); // a device not sampled: logged, ignored
    let (samples, _, _) = run(&mut fake, &opts(100, 8));
    let with_xid: Vec<(&str, u64, f64)> = samples
        .iter()
        .filter_map(|s| {
            s.metrics
                .get(Metric::Xid)
                .map(|x| (s.gpu.as_str(), s.seq, x))
        })
        .collect();
    assert_eq!(with_xid, vec![("GPU-0001", 3, 79.0)]);
}

#[test]
fn gpu_id_can_be_bus_id_or_index() {
    let mut fake = Fake {
        gpus: 2,
        ..Fake::default()
    };
    fake.mig.insert(0, (2, vec![1]));
    let mut o = opts(100, 1);
    o.gpu_id = GpuId::BusId;
    let (s, _, _) = run(&mut fake, &o);
    let ids: Vec<&str> = s.iter().map(|s| s.gpu.as_str()).collect();
    assert_eq!(ids, ["00000000:10:00.0", "MIG-0000-1", "00000000:11:00.0"]);
    o.gpu_id = GpuId::Index;
    let (s, _, _) = run(&mut fake, &o);
    let ids: Vec<&str> = s.iter().map(|s| s.gpu.as_str()).collect();
    assert_eq!(ids, ["gpu0", "gpu0-mig1", "gpu1"]);
}

#[test]
fn without_a_driver_one_clear_error_and_a_hint() {
    if producer::nvml::driver::NvmlBackend::init().is_ok() {
        eprintln!(
            "without_a_driver_one_clear_error_and_a_hint: skipped (this machine has an NVIDIA driver)"
        );
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_producer"))
        .args(["nvml", "--brokers", "127.0.0.1:1", "--samples", "1"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run producer");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one error line, no backtrace, no broker noise:\n{stderr}"
    );
    assert!(
        lines[0].starts_with("producer: error: NVML unavailable"),
        "{stderr}"
    );
    assert!(lines[0].contains("libnvidia-ml"), "{stderr}");
    assert!(
        lines[0].contains("producer simulate") && lines[0].contains("producer replay"),
        "{stderr}"
    );
}
