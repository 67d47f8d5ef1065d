//! The report's SVG charts: daily curves, energy bars, hourly heatmaps and
//! correlation matrices.

use std::fmt::Write;

use super::{esc, label, num, short};
use crate::model::{
    AnalysisMetric, CURVE_BUCKETS, CURVE_METRICS, Correlation, DayResult, GpuDay, JOULES_PER_KWH,
    LoadState, PairCorrelation,
};

/// Series colours, one per GPU in the order drawn (the curves, the energy bars and the
/// legend share them); repeated after ten GPUs.
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];
/// GPUs drawn in the curves and correlation matrices (tables list all of them).
const MAX_DRAWN: usize = 10;

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
pub(super) fn curves(h: &mut String, day: &DayResult) {
    let drawn: Vec<&GpuDay> = day.gpus.iter().take(MAX_DRAWN).collect();
    let used = |j: usize| drawn.iter().any(|g| !g.curve[j].is_empty());
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
    for metric in CURVE_METRICS {
        let (title, unit) = (metric.name(), metric.unit());
        // Load is a percentage: always drawn on 0–100.
        let percent = metric == AnalysisMetric::GpuLoad;
        let (w, ht, l, r, t, b) = (440.0, 210.0, 40.0, 22.0, 24.0, 24.0);
        let mut max: f64 = 0.0;
        let mut min: f64 = f64::INFINITY;
        for g in &drawn {
            for v in g.curve.iter().filter_map(|p| p.mean(metric)) {
                max = max.max(v);
                min = min.min(v);
            }
        }
        let lo = if percent || !min.is_finite() {
            0.0
        } else {
            (min / 10.0).floor() * 10.0
        };
        // Four grid steps of a round size.
        let hi = if percent {
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
                let Some(v) = p.mean(metric) else {
                    pen = false;
                    continue;
                };
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
                let Some(v) = p.mean(metric) else { continue };
                let alone = (j == 0 || g.curve[j - 1].mean(metric).is_none())
                    && g.curve.get(j + 1).is_none_or(|n| n.mean(metric).is_none());
                if alone {
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

pub(super) fn energy(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>Energy per GPU</h2><p class=\"note\">Trapezoids of power over time inside sessions, never across gaps; the energy counter's differences where the GPU reports one.</p>");
    let max = day
        .gpus
        .iter()
        .map(|g| {
            (g.energy_j / JOULES_PER_KWH).max(g.counter_energy_j.unwrap_or(0.0) / JOULES_PER_KWH)
        })
        .fold(0.0, f64::max);
    let max = nice_max(max);
    let (w, row, l) = (900.0, 26.0, 260.0);
    let ht = row * day.gpus.len() as f64 + 24.0;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" style=\"max-width:900px\">"
    );
    for (i, g) in day.gpus.iter().enumerate() {
        let kwh = g.energy_j / JOULES_PER_KWH;
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
                Some(c) => format!(" (counter {:.3})", c / JOULES_PER_KWH),
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

pub(super) fn heatmaps(h: &mut String, day: &DayResult) {
    let _ = write!(
        h,
        "<section><h2>Hourly pattern</h2><p class=\"note\">Mean per hour of day in {} (DST-aware: a skipped hour stays empty, a repeated hour holds both). Empty cells: no samples.</p><div>",
        esc(day.options.timezone.name())
    );
    let temps: Vec<f64> = day
        .gpus
        .iter()
        .flat_map(|g| g.hours.iter().filter_map(|x| x.temp.value()))
        .collect();
    let (tmin, tmax) = (
        temps.iter().copied().fold(f64::INFINITY, f64::min),
        temps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    for metric in [AnalysisMetric::GpuLoad, AnalysisMetric::GpuTemp] {
        let title = format!("{} ({})", metric.name(), metric.unit());
        // Load is a percentage: always coloured on 0–100.
        let percent = metric == AnalysisMetric::GpuLoad;
        let (cell, l, t) = (26.0, 150.0, 46.0);
        let w = l + cell * 24.0 + 4.0;
        let ht = t + cell * day.gpus.len() as f64 + 6.0;
        let _ = write!(
            h,
            "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" style=\"max-width:100%;display:block;margin-bottom:10px\"><text x=\"0\" y=\"14\" style=\"font-weight:600;fill:#1d2330\">{title}</text>"
        );
        // Colour scale: ten steps from the lowest to the highest value drawn.
        let (lo, hi) = if percent { (0.0, 100.0) } else { (tmin, tmax) };
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
                let v = if percent {
                    s.load.value()
                } else {
                    s.temp.value()
                };
                let x = l + cell * hour as f64;
                match v {
                    Some(v) => {
                        let f = if percent {
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

pub(super) fn correlations(h: &mut String, day: &DayResult) {
    h.push_str("<section><h2>Correlation matrices (Pearson, all samples)</h2><p class=\"note\">Grey cells: not computed — hover for the reason (constant or missing metric). The <code>correlations</code> table also splits idle and busy samples.</p><div class=\"grid\">");
    const N: usize = AnalysisMetric::COUNT;
    for g in day.gpus.iter().take(MAX_DRAWN) {
        let (cell, l, t) = (34.0, 70.0, 70.0);
        // Room on the right for the last rotated column label.
        let w = l + cell * N as f64 + 44.0;
        let ht = t + cell * N as f64 + 4.0;
        let _ = write!(
            h,
            "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" style=\"max-width:420px\"><text x=\"0\" y=\"12\" style=\"font-weight:600;fill:#1d2330\">{}</text>",
            esc(&label(g))
        );
        for (i, m) in AnalysisMetric::ALL.iter().enumerate() {
            let a = m.short_name();
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
        for (i, row) in AnalysisMetric::ALL.iter().enumerate() {
            for (j, col) in AnalysisMetric::ALL.iter().enumerate() {
                let (x, y) = (l + cell * j as f64, t + cell * i as f64);
                let (fill, text, tip) = if row == col {
                    (
                        "#f2f4f7".to_string(),
                        String::new(),
                        row.column().to_string(),
                    )
                } else {
                    match g.correlation(LoadState::All, *row, *col) {
                        Some(PairCorrelation {
                            a,
                            b,
                            correlation: Correlation::R(r),
                            ..
                        }) => (
                            diverging(*r),
                            format!("{r:.2}"),
                            format!("{a} × {b}: r = {r:.3}"),
                        ),
                        Some(PairCorrelation {
                            correlation: Correlation::Skipped(why),
                            ..
                        }) => ("#d0d5dd".to_string(), "·".into(), why.clone()),
                        // Every pair is computed: not reached.
                        None => ("#d0d5dd".to_string(), "·".into(), String::new()),
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
