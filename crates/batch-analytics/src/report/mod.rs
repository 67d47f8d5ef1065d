//! The self-contained HTML report of a nightly run: inline CSS and SVG, no script, no
//! network. Opens the same way from a laptop, a mail attachment or an object store.
//!
//! A view of the [`crate::model`] only: it knows nothing of how the day was read or
//! where the report is written. The page and its tables are here, the SVG charts in
//! `charts`, the fleet page (waste, energy by owner, throttling, health cards,
//! cohorts) in `fleet`.

mod charts;
mod fleet;

pub use charts::PALETTE;

use std::fmt::Write;

use chrono::DateTime;

use crate::model::{
    AnalysisMetric, DayResult, GpuDay, JOULES_PER_KWH, Spike, ThrottleReason, perf_per_watt,
};

const MAX_SPIKES: usize = 100;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn label(g: &GpuDay) -> String {
    match &g.gpu_name {
        Some(n) if !n.is_empty() => format!("{}/{} ({n})", g.host, g.gpu),
        _ => format!("{}/{}", g.host, g.gpu),
    }
}

fn short(g: &GpuDay) -> String {
    format!("{}/{}", g.host, g.gpu)
}

/// A table's GPU cell: `host/gpu` with the model below it, so a wide table of many
/// columns still fits the page (a model name is as wide as three columns).
fn gpu_cell(g: &GpuDay) -> String {
    match &g.gpu_name {
        Some(n) if !n.is_empty() => format!(
            "{}<br><span class=\"sub\">{}</span>",
            esc(&short(g)),
            esc(n)
        ),
        _ => esc(&short(g)),
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "–".into(),
    }
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{:.1} %", v * 100.0),
        None => "–".into(),
    }
}

fn time(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f6f7f9; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--fg); background:var(--bg); }
header { background:#101828; color:#fff; padding:20px 32px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header p { margin:0; color:#d0d5dd; }
main { padding:20px 32px 40px; max-width:1400px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:0 0 20px; }
h2 { font-size:17px; margin:0 0 10px; }
p.note { color:var(--muted); margin:4px 0 10px; font-size:13px; }
.kpis { display:flex; gap:14px; flex-wrap:wrap; }
.kpi { flex:1 1 150px; background:var(--bg); border-radius:6px; padding:10px 14px; }
.kpi b { display:block; font-size:20px; }
.kpi span { color:var(--muted); font-size:12px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:var(--bg); font-weight:600; }
th:first-child, td:first-child, td.l, th.l { text-align:left; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:16px; }
.legend { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:12px; margin:6px 0; }
.legend i { display:inline-block; width:12px; height:3px; vertical-align:middle; margin-right:5px; }
svg text { font-size:11px; fill:#475467; font-family:inherit; }
.scroll { overflow-x:auto; }
table.wide th { white-space:normal; vertical-align:bottom; }
.sub { color:var(--muted); font-size:11px; }
.empty { color:var(--muted); font-style:italic; }
"#;

/// Renders the report of an analysed day.
pub fn render(day: &DayResult) -> String {
    let o = &day.options;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>GPU fleet report {date}</title><style>{CSS}{fleet_css}</style></head><body>\
         <header><h1>GPU fleet report — {date} (UTC day)</h1><p>{gpus} GPU(s), {samples} samples · \
         hours of day in {tz} · idle &lt; {idle}% load, busy ≥ {busy}% · spikes: &gt; {rise} °C within {win} s</p></header><main>",
        date = day.date,
        gpus = day.gpus.len(),
        samples = day.fleet.samples,
        tz = esc(o.timezone.name()),
        idle = o.idle_below_pct,
        busy = o.busy_from_pct,
        rise = o.spike_rise_c,
        win = o.spike_window_s,
        fleet_css = fleet::CSS,
    );
    if day.gpus.is_empty() {
        h.push_str("<section><p class=\"empty\">No samples for this day.</p></section></main></body></html>");
        return h;
    }
    kpis(&mut h, day);
    charts::curves(&mut h, day);
    charts::energy(&mut h, day);
    charts::heatmaps(&mut h, day);
    comparison(&mut h, day);
    spikes(&mut h, day);
    charts::correlations(&mut h, day);
    anomalies(&mut h, day);
    fleet::fleet(&mut h, day);
    h.push_str("</main></body></html>");
    h
}

fn kpis(h: &mut String, day: &DayResult) {
    let f = &day.fleet;
    let temp = f.summary(AnalysisMetric::GpuTemp);
    let power = f.summary(AnalysisMetric::Power);
    let items = [
        (
            format!("{:.3} kWh", f.energy_j / JOULES_PER_KWH),
            "energy (fleet)".to_string(),
        ),
        (pct(f.load_share(f.busy)), "busy share".into()),
        (pct(f.load_share(f.idle)), "idle share".into()),
        (
            pct(f.throttle_share(f.throttled_any)),
            "throttled share".into(),
        ),
        (
            format!("{} °C", num(temp.map(|s| s.p95), 1)),
            "GPU temperature p95".into(),
        ),
        (
            format!("{} W", num(power.map(|s| s.mean), 1)),
            "mean power per GPU".into(),
        ),
        (
            day.gpus
                .iter()
                .map(|g| g.spikes.len())
                .sum::<usize>()
                .to_string(),
            "temperature spikes".into(),
        ),
    ];
    h.push_str("<section><div class=\"kpis\">");
    for (v, l) in items {
        let _ = write!(
            h,
            "<div class=\"kpi\"><b>{}</b><span>{}</span></div>",
            esc(&v),
            esc(&l)
        );
    }
    h.push_str("</div></section>");
}

fn comparison(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>GPU comparison</h2><p class=\"note\">Perf/W proxy: Σ(core clock × load) / Σ power — effectively used MHz per watt; “busy” columns use only samples at ≥ busy load, the closest to “same workload”.</p><div class=\"scroll\"><table class=\"wide\"><tr><th>GPU</th><th>samples</th><th>load mean</th><th>busy</th><th>idle</th><th>throttled</th><th>temp mean</th><th>temp p95</th><th>hot spot p95</th><th>power mean</th><th>energy</th><th>busy temp</th><th>busy power</th><th>busy clock</th><th>perf/W</th><th>busy perf/W</th></tr>");
    use AnalysisMetric::{CoreClock, GpuLoad, GpuTemp, HotSpot, Power};
    for g in &day.gpus {
        let s = |m: AnalysisMetric| g.summary(m);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} %</td><td>{}</td><td>{}</td><td>{}</td><td>{} °C</td><td>{} °C</td><td>{} °C</td><td>{} W</td><td>{} kWh</td><td>{} °C</td><td>{} W</td><td>{} MHz</td><td>{}</td><td>{}</td></tr>",
            gpu_cell(g),
            g.samples,
            num(s(GpuLoad).map(|x| x.mean), 1),
            pct(g.load_share(g.busy)),
            pct(g.load_share(g.idle)),
            pct(g.throttle_share(g.throttled_any)),
            num(s(GpuTemp).map(|x| x.mean), 1),
            num(s(GpuTemp).map(|x| x.p95), 1),
            num(s(HotSpot).map(|x| x.p95), 1),
            num(s(Power).map(|x| x.mean), 1),
            num(Some(g.energy_j / JOULES_PER_KWH), 3),
            num(g.busy_means[GpuTemp].value(), 1),
            num(g.busy_means[Power].value(), 1),
            num(g.busy_means[CoreClock].value(), 0),
            num(perf_per_watt(g.perf_sums), 2),
            num(perf_per_watt(g.busy_perf_sums), 2),
        );
    }
    h.push_str("</table></div>");
    // Throttle reasons per GPU, where any GPU reports them.
    if day.gpus.iter().any(|g| g.throttle_n > 0) {
        h.push_str("<h2 style=\"margin-top:14px\">Throttle reasons (share of samples with a reason code)</h2><div class=\"scroll\"><table><tr><th>GPU</th>");
        for r in ThrottleReason::ALL {
            let _ = write!(h, "<th>{}</th>", r.name());
        }
        h.push_str("</tr>");
        for g in day.gpus.iter().filter(|g| g.throttle_n > 0) {
            let _ = write!(h, "<tr><td>{}</td>", gpu_cell(g));
            for n in g.throttled.values() {
                let _ = write!(h, "<td>{}</td>", pct(g.throttle_share(*n)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></div>");
    }
    h.push_str("</section>");
}

fn spikes(h: &mut String, day: &DayResult) {
    let mut all: Vec<(&GpuDay, &Spike)> = day
        .gpus
        .iter()
        .flat_map(|g| g.spikes.iter().map(move |s| (g, s)))
        .collect();
    all.sort_by(|a, b| (b.1.peak_c - b.1.start_c).total_cmp(&(a.1.peak_c - a.1.start_c)));
    let _ = write!(
        h,
        "<section><h2>Temperature spikes ({})</h2><p class=\"note\">Rises of more than {} °C within {} s inside one session, never across a gap; largest first{}. Times in UTC.</p>",
        all.len(),
        day.options.spike_rise_c,
        day.options.spike_window_s,
        if all.len() > MAX_SPIKES {
            format!(", first {MAX_SPIKES} shown")
        } else {
            String::new()
        }
    );
    if all.is_empty() {
        h.push_str("<p class=\"empty\">No spikes.</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>GPU</th><th>start</th><th>from</th><th>peak at</th><th>peak</th><th>rise</th><th>rise time</th><th>duration</th></tr>");
    for (g, s) in all.iter().take(MAX_SPIKES) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1} °C</td><td>{}</td><td>{:.1} °C</td><td>+{:.1} °C</td><td>{:.0} s</td><td>{:.0} s</td></tr>",
            esc(&short(g)),
            time(s.start_us),
            s.start_c,
            time(s.peak_us),
            s.peak_c,
            s.peak_c - s.start_c,
            (s.peak_us - s.start_us) as f64 / 1e6,
            (s.end_us - s.start_us) as f64 / 1e6,
        );
    }
    h.push_str("</table></div></section>");
}

fn anomalies(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>Anomalies</h2>");
    if day.anomalies.is_empty() {
        h.push_str("<p class=\"empty\">No anomaly events this day (or no anomalies table in the lake).</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>GPU</th><th class=\"l\">rule</th><th class=\"l\">severity</th><th>episodes</th><th>fired</th><th>resolved</th><th>open at end</th><th>total</th><th>mean</th><th>longest</th><th>max value</th></tr>");
    for a in &day.anomalies {
        let _ = write!(
            h,
            "<tr><td>{}/{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} s</td><td>{} s</td><td>{} s</td><td>{}</td></tr>",
            esc(&a.host),
            esc(&a.gpu),
            esc(&a.rule),
            esc(&a.severity),
            a.episodes,
            a.fired,
            a.resolved,
            a.open_at_end,
            num(a.total_duration_s, 0),
            num(a.mean_duration_s, 0),
            num(a.max_duration_s, 0),
            num(a.max_value, 1)
        );
    }
    h.push_str("</table></div></section>");
}
