//! The self-contained HTML report of a nightly run: inline CSS and SVG, no script, no
//! network. Opens the same way from a laptop, a mail attachment or an object store.

use std::fmt::Write;

use chrono::DateTime;
use datafusion::arrow::array::RecordBatch;

use crate::analyze::{
    CURVE_BUCKETS, Correlation, GpuDay, MAIN_METRICS, N_METRICS, THROTTLE_REASONS, metric_pairs,
};
use crate::nightly::{DayResult, perf_per_watt};

const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];
/// GPUs drawn in the curves and correlation matrices (tables list all of them).
const MAX_DRAWN: usize = 10;
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
.empty { color:var(--muted); font-style:italic; }
"#;

/// Renders the report of an analysed day (`tables` are the built output tables).
pub fn render(day: &DayResult, _tables: &[(&'static str, RecordBatch)]) -> String {
    let o = &day.options;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>GPU fleet report {date}</title><style>{CSS}</style></head><body>\
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
    );
    if day.gpus.is_empty() {
        h.push_str("<section><p class=\"empty\">No samples for this day.</p></section></main></body></html>");
        return h;
    }
    kpis(&mut h, day);
    curves(&mut h, day);
    energy(&mut h, day);
    heatmaps(&mut h, day);
    comparison(&mut h, day);
    spikes(&mut h, day);
    correlations(&mut h, day);
    anomalies(&mut h, day);
    h.push_str("</main></body></html>");
    h
}

fn kpis(h: &mut String, day: &DayResult) {
    let f = &day.fleet;
    let temp = f.stats[0].summary();
    let power = f.stats[5].summary();
    let items = [
        (
            format!("{:.3} kWh", f.energy_j / 3.6e6),
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

fn legend(h: &mut String, gpus: &[&GpuDay]) {
    h.push_str("<div class=\"legend\">");
    for (i, g) in gpus.iter().enumerate() {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>{}</span>",
            PALETTE[i % PALETTE.len()],
            esc(&label(g))
        );
    }
    h.push_str("</div>");
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Daily curves: one chart per metric, one line per GPU, 1-minute means, the time
/// axis zoomed to the whole hours that hold data.
fn curves(h: &mut String, day: &DayResult) {
    let drawn: Vec<&GpuDay> = day.gpus.iter().take(MAX_DRAWN).collect();
    let used = |j: usize| {
        drawn
            .iter()
            .any(|g| g.curve[j].counts.iter().any(|c| *c > 0))
    };
    let first = (0..CURVE_BUCKETS).find(|j| used(*j)).unwrap_or(0);
    let last = (0..CURVE_BUCKETS)
        .rev()
        .find(|j| used(*j))
        .unwrap_or(CURVE_BUCKETS - 1);
    let (from, to) = (first / 60 * 60, ((last / 60) + 1) * 60);
    let span_h = (to - from) / 60;
    let _ = write!(
        h,
        "<section><h2>Daily curves</h2><p class=\"note\">1-minute means, UTC {:02}:00–{:02}:00 (the hours with data); breaks where a GPU logged nothing.</p>",
        from / 60,
        to / 60
    );
    legend(h, &drawn);
    h.push_str("<div class=\"grid\">");
    for (k, (title, unit)) in [("GPU temperature", "°C"), ("GPU load", "%"), ("Power", "W")]
        .iter()
        .enumerate()
    {
        let (w, ht, l, r, t, b) = (440.0, 210.0, 40.0, 22.0, 24.0, 24.0);
        let mut max: f64 = 0.0;
        let mut min: f64 = f64::INFINITY;
        for g in &drawn {
            for p in &g.curve {
                if p.counts[k] > 0 {
                    let v = p.sums[k] / f64::from(p.counts[k]);
                    max = max.max(v);
                    min = min.min(v);
                }
            }
        }
        let lo = if k == 1 || !min.is_finite() {
            0.0
        } else {
            (min / 10.0).floor() * 10.0
        };
        // Four grid steps of a round size.
        let hi = if k == 1 {
            100.0
        } else {
            lo + 4.0 * nice_max(((max - lo) / 4.0).max(0.25))
        };
        let x = |j: usize| l + (w - l - r) * (j as f64 - from as f64) / (to - from) as f64;
        let y = |v: f64| t + (ht - t - b) * (1.0 - (v - lo) / (hi - lo));
        let _ = write!(
            h,
            "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" role=\"img\" aria-label=\"{title}\">\
             <text x=\"{l}\" y=\"14\" style=\"font-weight:600;fill:#1d2330\">{title} ({unit})</text>"
        );
        for i in 0..=4 {
            let v = lo + (hi - lo) * f64::from(i) / 4.0;
            let _ = write!(
                h,
                "<line x1=\"{l}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#eaecf0\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                w - r,
                l - 4.0,
                y(v) + 4.0,
                num(Some(v), 0),
                y0 = y(v)
            );
        }
        // About six time labels: every 10 min for a short day, else whole hours.
        let step = if span_h <= 1 {
            10
        } else if span_h <= 3 {
            30
        } else {
            span_h.div_ceil(6) * 60
        };
        let mut m = from;
        while m <= to {
            let _ = write!(
                h,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{t}\" y2=\"{}\" stroke=\"#f2f4f7\"/>\
                 <text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{:02}:{:02}</text>",
                ht - b,
                ht - 6.0,
                (m / 60) % 24,
                m % 60,
                xx = x(m)
            );
            m += step;
        }
        for (i, g) in drawn.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let mut path = String::new();
            let mut pen = false;
            for (j, p) in g.curve.iter().enumerate() {
                if p.counts[k] == 0 {
                    pen = false;
                    continue;
                }
                let v = p.sums[k] / f64::from(p.counts[k]);
                let _ = write!(
                    path,
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(j),
                    y(v)
                );
                pen = true;
            }
            let _ = write!(
                h,
                "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-linejoin=\"round\"/>"
            );
            // Lone points (a minute between two empty ones) would be invisible as paths.
            for (j, p) in g.curve.iter().enumerate() {
                let alone = p.counts[k] > 0
                    && (j == 0 || g.curve[j - 1].counts[k] == 0)
                    && g.curve.get(j + 1).is_none_or(|n| n.counts[k] == 0);
                if alone {
                    let v = p.sums[k] / f64::from(p.counts[k]);
                    let _ = write!(
                        h,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\"/>",
                        x(j),
                        y(v)
                    );
                }
            }
        }
        h.push_str("</svg>");
    }
    h.push_str("</div></section>");
}

fn energy(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>Energy per GPU</h2><p class=\"note\">Trapezoids of power over time inside sessions, never across gaps; the energy counter's differences where the GPU reports one.</p>");
    let max = day
        .gpus
        .iter()
        .map(|g| (g.energy_j / 3.6e6).max(g.counter_energy_j.unwrap_or(0.0) / 3.6e6))
        .fold(0.0, f64::max);
    let max = nice_max(max);
    let (w, row, l) = (900.0, 26.0, 260.0);
    let ht = row * day.gpus.len() as f64 + 24.0;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" style=\"max-width:900px\">"
    );
    for (i, g) in day.gpus.iter().enumerate() {
        let kwh = g.energy_j / 3.6e6;
        let yy = row * i as f64 + 4.0;
        let bw = (w - l - 120.0) * kwh / max;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{l}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{kwh:.3} kWh{}</text>",
            l - 8.0,
            yy + 14.0,
            esc(&short(g)),
            row - 8.0,
            PALETTE[i % PALETTE.len()],
            l + bw + 6.0,
            yy + 14.0,
            match g.counter_energy_j {
                Some(c) => format!(" (counter {:.3})", c / 3.6e6),
                None => String::new(),
            }
        );
    }
    let _ = write!(
        h,
        "<text x=\"{l}\" y=\"{:.1}\">0</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} kWh</text></svg></section>",
        ht - 4.0,
        w - 120.0,
        ht - 4.0,
        num(Some(max), 3)
    );
}

/// Blue (low) → yellow → red (high).
fn heat(v: f64) -> String {
    let v = v.clamp(0.0, 1.0);
    let stops = [
        (0.0, (49, 54, 149)),
        (0.35, (116, 173, 209)),
        (0.6, (254, 224, 144)),
        (1.0, (215, 48, 39)),
    ];
    for w in stops.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if v <= b {
            let f = (v - a) / (b - a);
            let mix =
                |x: i32, y: i32| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as i32;
            return format!(
                "rgb({},{},{})",
                mix(ca.0, cb.0),
                mix(ca.1, cb.1),
                mix(ca.2, cb.2)
            );
        }
    }
    "rgb(215,48,39)".into()
}

fn heatmaps(h: &mut String, day: &DayResult) {
    let _ = write!(
        h,
        "<section><h2>Hourly pattern</h2><p class=\"note\">Mean per hour of day in {} (DST-aware: a skipped hour stays empty, a repeated hour holds both). Empty cells: no samples.</p><div>",
        esc(day.options.timezone.name())
    );
    let temps: Vec<f64> = day
        .gpus
        .iter()
        .flat_map(|g| {
            g.hours
                .iter()
                .filter(|x| x.temp_n > 0)
                .map(|x| x.temp_sum / x.temp_n as f64)
        })
        .collect();
    let (tmin, tmax) = (
        temps.iter().copied().fold(f64::INFINITY, f64::min),
        temps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    for (title, pick) in [("GPU load (%)", 0), ("GPU temperature (°C)", 1)] {
        let (cell, l, t) = (26.0, 150.0, 46.0);
        let w = l + cell * 24.0 + 4.0;
        let ht = t + cell * day.gpus.len() as f64 + 6.0;
        let _ = write!(
            h,
            "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" style=\"max-width:100%;display:block;margin-bottom:10px\"><text x=\"0\" y=\"14\" style=\"font-weight:600;fill:#1d2330\">{title}</text>"
        );
        // Colour scale: ten steps from the lowest to the highest value drawn.
        let (lo, hi) = if pick == 0 {
            (0.0, 100.0)
        } else {
            (tmin, tmax)
        };
        let x0 = w - 4.0 - 10.0 * 16.0;
        for step in 0..10 {
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"4\" width=\"16\" height=\"10\" fill=\"{}\"/>",
                x0 + 16.0 * f64::from(step),
                heat((f64::from(step) + 0.5) / 10.0)
            );
        }
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"13\" text-anchor=\"end\">{}</text><text x=\"{x0:.1}\" y=\"26\">hour of day →</text>",
            x0 - 4.0,
            if lo.is_finite() && hi.is_finite() {
                format!("{lo:.0} … {hi:.0}")
            } else {
                String::new()
            }
        );
        for hour in 0..24 {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{hour}</text>",
                l + cell * f64::from(hour) + cell / 2.0,
                t - 5.0
            );
        }
        for (i, g) in day.gpus.iter().enumerate() {
            let yy = t + cell * i as f64;
            let _ = write!(
                h,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                l - 6.0,
                yy + cell / 2.0 + 4.0,
                esc(&short(g))
            );
            for (hour, s) in g.hours.iter().enumerate() {
                let v = if pick == 0 {
                    (s.load_n > 0).then(|| s.load_sum / s.load_n as f64)
                } else {
                    (s.temp_n > 0).then(|| s.temp_sum / s.temp_n as f64)
                };
                let x = l + cell * hour as f64;
                match v {
                    Some(v) => {
                        let f = if pick == 0 {
                            v / 100.0
                        } else if tmax > tmin {
                            (v - tmin) / (tmax - tmin)
                        } else {
                            0.5
                        };
                        let _ = write!(
                            h,
                            "<rect x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {hour}:00 — {v:.1} ({} samples)</title></rect>",
                            cell - 1.0,
                            cell - 1.0,
                            heat(f),
                            esc(&short(g)),
                            s.samples
                        );
                    }
                    None => {
                        let _ = write!(
                            h,
                            "<rect x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f2f4f7\"/>",
                            cell - 1.0,
                            cell - 1.0
                        );
                    }
                }
            }
        }
        h.push_str("</svg>");
    }
    h.push_str("</div></section>");
}

fn comparison(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>GPU comparison</h2><p class=\"note\">Perf/W proxy: Σ(core clock × load) / Σ power — effectively used MHz per watt; “busy” columns use only samples at ≥ busy load, the closest to “same workload”.</p><div class=\"scroll\"><table><tr><th>GPU</th><th>samples</th><th>load mean</th><th>busy</th><th>idle</th><th>throttled</th><th>temp mean</th><th>temp p95</th><th>hot spot p95</th><th>power mean</th><th>energy</th><th>busy temp</th><th>busy power</th><th>busy clock</th><th>perf/W</th><th>busy perf/W</th></tr>");
    let mean = |s: (f64, u64)| (s.1 > 0).then(|| s.0 / s.1 as f64);
    for g in &day.gpus {
        let s = |k: usize| g.stats[k].summary();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} %</td><td>{}</td><td>{}</td><td>{}</td><td>{} °C</td><td>{} °C</td><td>{} °C</td><td>{} W</td><td>{} kWh</td><td>{} °C</td><td>{} W</td><td>{} MHz</td><td>{}</td><td>{}</td></tr>",
            esc(&label(g)),
            g.samples,
            num(s(4).map(|x| x.mean), 1),
            pct(g.load_share(g.busy)),
            pct(g.load_share(g.idle)),
            pct(g.throttle_share(g.throttled_any)),
            num(s(0).map(|x| x.mean), 1),
            num(s(0).map(|x| x.p95), 1),
            num(s(1).map(|x| x.p95), 1),
            num(s(5).map(|x| x.mean), 1),
            num(Some(g.energy_j / 3.6e6), 3),
            num(mean(g.busy_sums[0]), 1),
            num(mean(g.busy_sums[1]), 1),
            num(mean(g.busy_sums[2]), 0),
            num(perf_per_watt(g.perf_sums), 2),
            num(perf_per_watt(g.busy_perf_sums), 2),
        );
    }
    h.push_str("</table></div>");
    // Throttle reasons per GPU, where any GPU reports them.
    if day.gpus.iter().any(|g| g.throttle_n > 0) {
        h.push_str("<h2 style=\"margin-top:14px\">Throttle reasons (share of samples with a reason code)</h2><div class=\"scroll\"><table><tr><th>GPU</th>");
        for r in THROTTLE_REASONS {
            let _ = write!(h, "<th>{r}</th>");
        }
        h.push_str("</tr>");
        for g in day.gpus.iter().filter(|g| g.throttle_n > 0) {
            let _ = write!(h, "<tr><td>{}</td>", esc(&label(g)));
            for n in g.throttled {
                let _ = write!(h, "<td>{}</td>", pct(g.throttle_share(n)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></div>");
    }
    h.push_str("</section>");
}

fn spikes(h: &mut String, day: &DayResult) {
    let mut all: Vec<(&GpuDay, &crate::analyze::Spike)> = day
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

/// Red for +1, white for 0, blue for −1.
fn diverging(r: f64) -> String {
    let r = r.clamp(-1.0, 1.0);
    let (c, f) = if r >= 0.0 {
        ((178, 24, 43), r)
    } else {
        ((33, 102, 172), -r)
    };
    let mix = |x: i32| (255.0 + (f64::from(x) - 255.0) * f).round() as i32;
    format!("rgb({},{},{})", mix(c.0), mix(c.1), mix(c.2))
}

fn correlations(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>Correlation matrices (Pearson, all samples)</h2><p class=\"note\">Grey cells: not computed — hover for the reason (constant or missing metric). The <code>correlations</code> table also splits idle and busy samples.</p><div class=\"grid\">");
    let pairs = metric_pairs();
    let abbrev = [
        "temp", "hotspot", "mem temp", "cpu temp", "load", "power", "mem used", "core clk",
        "mem clk",
    ];
    #[allow(clippy::needless_range_loop)] // i and j index both the grid and the pairs
    for g in day.gpus.iter().take(MAX_DRAWN) {
        let (cell, l, t) = (34.0, 70.0, 70.0);
        // Room on the right for the last rotated column label.
        let w = l + cell * N_METRICS as f64 + 44.0;
        let ht = t + cell * N_METRICS as f64 + 4.0;
        let _ = write!(
            h,
            "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" style=\"max-width:420px\"><text x=\"0\" y=\"12\" style=\"font-weight:600;fill:#1d2330\">{}</text>",
            esc(&label(g))
        );
        for (i, a) in abbrev.iter().enumerate() {
            let c = l + cell * i as f64 + cell / 2.0;
            let _ = write!(
                h,
                "<text x=\"{c:.1}\" y=\"{}\" text-anchor=\"start\" transform=\"rotate(-45 {c:.1} {})\">{a}</text>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{a}</text>",
                t - 6.0,
                t - 6.0,
                l - 4.0,
                t + cell * i as f64 + cell / 2.0 + 4.0
            );
        }
        for i in 0..N_METRICS {
            for j in 0..N_METRICS {
                let (x, y) = (l + cell * j as f64, t + cell * i as f64);
                let (fill, text, tip) = if i == j {
                    (
                        "#f2f4f7".to_string(),
                        String::new(),
                        MAIN_METRICS[i].to_string(),
                    )
                } else {
                    let (a, b) = (i.min(j), i.max(j));
                    let k = pairs.iter().position(|p| *p == (a, b)).unwrap_or(0);
                    match g.correlations[0].pairs[k].correlation(MAIN_METRICS[a], MAIN_METRICS[b]) {
                        Correlation::R(r) => (
                            diverging(r),
                            format!("{r:.2}"),
                            format!("{} × {}: r = {r:.3}", MAIN_METRICS[a], MAIN_METRICS[b]),
                        ),
                        Correlation::Skipped(why) => ("#d0d5dd".to_string(), "·".into(), why),
                    }
                };
                // Dark cells (|r| > 0.6) get light text.
                let ink = match text.parse::<f64>() {
                    Ok(r) if r.abs() > 0.6 => "#ffffff",
                    _ => "#1d2330",
                };
                let _ = write!(
                    h,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"font-size:9px;fill:{ink}\">{text}</text>",
                    cell - 1.0,
                    cell - 1.0,
                    esc(&tip),
                    x + cell / 2.0,
                    y + cell / 2.0 + 3.0
                );
            }
        }
        h.push_str("</svg>");
    }
    h.push_str("</div></section>");
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
