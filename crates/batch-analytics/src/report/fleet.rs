//! The report's fleet page: waste, energy by owner, throttling, a health card per GPU
//! with the drain list, and cohorts. The same rows as the fleet tables
//! ([`crate::model::fleet`], [`crate::model::health`]).

use std::fmt::Write;

use crate::model::fleet::{Allocated, cohort_rows, energy_by_owner, throttling_rows, waste_rows};
use crate::model::health::{DRAIN_SCORE, health_rows};
use crate::model::{DayResult, HealthCounter, Owner, ThrottleReason};

use super::{esc, num, short};

/// Rows of the waste table shown (largest waste first).
const MAX_WASTE_ROWS: usize = 50;

/// Styles of the fleet page, added to the report's.
pub(super) const CSS: &str = r#"
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(250px,1fr)); gap:12px; }
.card { border:1px solid var(--line); border-radius:6px; padding:10px 12px; background:var(--bg); }
.card h3 { font-size:13px; margin:0 0 6px; display:flex; justify-content:space-between; gap:6px; }
.card dl { display:grid; grid-template-columns:auto 1fr; gap:2px 10px; margin:0; font-size:12px; }
.card dt { color:var(--muted); white-space:nowrap; }
.card dd { margin:0; text-align:right; overflow-wrap:anywhere; }
.card .why { grid-column:1 / -1; }
.card dd.why { text-align:left; overflow-wrap:normal; }
.card.drain { border-color:#d92d20; background:#fef3f2; }
.badge { border-radius:10px; padding:0 8px; font-size:12px; font-weight:600; background:#ecfdf3; color:#067647; }
.badge.warn { background:#fffaeb; color:#b54708; }
.badge.bad { background:#fee4e2; color:#b42318; }
td.hot { color:#b42318; font-weight:600; }
"#;

fn owner_label(allocated: Allocated, owner: Option<&Owner>) -> String {
    match (allocated, owner) {
        (_, Some(o)) => match &o.project {
            Some(p) => format!("{} / {} ({p})", o.user, o.job),
            None => format!("{} / {}", o.user, o.job),
        },
        (Some(false), None) => "unallocated".into(),
        _ => "(no labels)".into(),
    }
}

/// Renders the fleet page.
pub(super) fn fleet(h: &mut String, day: &DayResult) {
    h.push_str("<h2 id=\"fleet\" style=\"margin:26px 0 12px\">Fleet</h2>");
    waste(h, day);
    energy(h, day);
    throttling(h, day);
    health(h, day);
    cohorts(h, day);
}

fn waste(h: &mut String, day: &DayResult) {
    let o = &day.options;
    let mut rows = waste_rows(day);
    let (mut idle_alloc, mut unalloc, mut kwh) = (0.0, 0.0, 0.0);
    for r in &rows {
        match r.allocated {
            Some(false) => unalloc += r.waste_hours(),
            _ => idle_alloc += r.waste_hours(),
        }
        kwh += r.waste_energy_kwh();
    }
    let _ = write!(
        h,
        "<section><h2>Waste</h2><p class=\"note\">Idle: load &lt; {} % for at least {} min in one session without a gap. {}</p><div class=\"kpis\">\
         <div class=\"kpi\"><b>{:.2} h</b><span>{} idle GPU-hours</span></div>\
         <div class=\"kpi\"><b>{:.2} h</b><span>unallocated but powered</span></div>\
         <div class=\"kpi\"><b>{:.3} kWh</b><span>energy wasted</span></div></div>",
        o.waste_idle_below_pct,
        num(Some(o.waste_min_idle_s / 60.0), 0),
        if day.allocations_known {
            "Allocated time counts when idle, unallocated time always."
        } else {
            "No allocation labels were given: only idle time counts."
        },
        idle_alloc,
        if day.allocations_known {
            "allocated"
        } else {
            "all"
        },
        unalloc,
        kwh
    );
    rows.retain(|r| r.waste_hours() > 0.0);
    if rows.is_empty() {
        h.push_str("<p class=\"empty\">No waste.</p></section>");
        return;
    }
    rows.sort_by(|a, b| b.waste_hours().total_cmp(&a.waste_hours()));
    h.push_str("<div class=\"scroll\"><table><tr><th>GPU</th><th class=\"l\">owner</th><th>observed</th><th>idle</th><th>idle runs</th><th>waste</th><th>waste energy</th></tr>");
    for r in rows.iter().take(MAX_WASTE_ROWS) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{:.2} h</td><td>{:.2} h</td><td>{}</td><td>{:.2} h</td><td>{:.3} kWh</td></tr>",
            esc(&short(r.gpu)),
            esc(&owner_label(r.allocated, r.owner)),
            r.usage.observed_s / 3600.0,
            r.usage.idle_s / 3600.0,
            r.usage.idle_runs,
            r.waste_hours(),
            r.waste_energy_kwh(),
        );
    }
    h.push_str("</table></div></section>");
}

fn energy(h: &mut String, day: &DayResult) {
    let rows = energy_by_owner(day);
    let grid = day.options.grid_g_per_kwh;
    h.push_str("<section><h2>Energy by owner</h2><p class=\"note\">Energy counter differences where the GPU reports a counter (trapezoids across its resets), power trapezoids otherwise");
    match grid {
        Some(g) => {
            let _ = write!(h, "; CO2e at {g} g/kWh.</p>");
        }
        None => h.push_str("; no grid intensity configured, so no CO2e.</p>"),
    }
    if rows.is_empty() {
        h.push_str("<p class=\"empty\">No observed intervals.</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th class=\"l\">owner</th><th>GPUs</th><th>GPU-hours</th><th>idle GPU-hours</th><th>energy</th><th>from counters</th><th>from trapezoids</th><th>CO2e</th></tr>");
    for r in &rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3} kWh</td><td>{:.3} kWh</td><td>{:.3} kWh</td><td>{}</td></tr>",
            esc(&owner_label(r.allocated, r.owner)),
            r.gpus,
            r.observed_s / 3600.0,
            r.idle_s / 3600.0,
            r.energy_kwh(),
            r.counter_j / crate::model::JOULES_PER_KWH,
            r.trapezoid_j / crate::model::JOULES_PER_KWH,
            r.co2e_kg(grid)
                .map_or_else(|| "–".to_string(), |kg| format!("{kg:.3} kg")),
        );
    }
    h.push_str("</table></div></section>");
}

fn throttling(h: &mut String, day: &DayResult) {
    let rows = throttling_rows(day);
    h.push_str("<section><h2>Throttling and thermal headroom</h2><p class=\"note\">Minutes of observed intervals whose closing sample reports each reason (GPU-Z PerfCap and NVML throttle bits, one vocabulary). Headroom = temperature limit − p99 GPU temperature; the limit is configured per model or the default (the metric catalogue carries no slowdown threshold).</p><div class=\"scroll\"><table><tr><th>GPU</th><th>with codes</th><th>throttled</th>");
    for r in ThrottleReason::ALL {
        let _ = write!(h, "<th>{}</th>", r.name());
    }
    h.push_str("<th>temp p99</th><th>limit</th><th>headroom</th></tr>");
    for r in &rows {
        let t = &r.gpu.throttle_time;
        let min = |s: f64| {
            if r.coded() {
                format!("{:.1} min", s / 60.0)
            } else {
                "–".into()
            }
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&short(r.gpu)),
            min(t.coded_s),
            min(t.any_s)
        );
        for reason in ThrottleReason::ALL {
            let _ = write!(h, "<td>{}</td>", min(t.reasons[reason]));
        }
        let headroom = r.headroom_c();
        let _ = write!(
            h,
            "<td>{} °C</td><td>{} °C ({})</td><td{}>{} °C</td></tr>",
            num(r.temp_p99(), 1),
            num(Some(r.limit_c), 1),
            r.limit_source,
            if headroom.is_some_and(|x| x < 5.0) {
                " class=\"hot\""
            } else {
                ""
            },
            num(headroom, 1),
        );
    }
    h.push_str("</table></div></section>");
}

fn health(h: &mut String, day: &DayResult) {
    let rows = health_rows(day);
    let drain: Vec<String> = rows
        .iter()
        .filter(|r| r.risk.drain())
        .map(|r| short(r.gpu))
        .collect();
    let _ = write!(
        h,
        "<section><h2>Health</h2><p class=\"note\">Risk score: points per sign of a failing card (uncorrected ECC, row remaps, XID codes by class, a corrected-ECC rise, recent uncorrected errors), capped at 100; from {DRAIN_SCORE} a card is on the drain list. See docs/batch-analytics.md for the weights and their sources.</p><p><b>Drain list ({}):</b> {}</p><div class=\"cards\">",
        drain.len(),
        if drain.is_empty() {
            "none".to_string()
        } else {
            esc(&drain.join(", "))
        }
    );
    for r in &rows {
        let hd = &r.gpu.health;
        let counter = |c: HealthCounter| match hd.counters[c] {
            Some(d) => format!("+{} ({} total)", d.new, d.last),
            None => "–".into(),
        };
        let badge = if r.risk.drain() {
            "badge bad"
        } else if r.risk.score > 0 {
            "badge warn"
        } else {
            "badge"
        };
        let _ = write!(
            h,
            "<div class=\"card{}\"><h3><span>{}</span><span class=\"{badge}\">{}</span></h3><dl>\
             <dt>ECC corrected</dt><dd>{}</dd><dt>ECC uncorrected</dt><dd>{}</dd>\
             <dt>remapped rows</dt><dd>{}</dd><dt>retired pages</dt><dd>{}</dd>\
             <dt>XID</dt><dd>{}</dd><dt class=\"why\">why</dt><dd class=\"why\">{}</dd></dl></div>",
            if r.risk.drain() { " drain" } else { "" },
            esc(&short(r.gpu)),
            r.risk.score,
            counter(HealthCounter::EccCorrected),
            counter(HealthCounter::EccUncorrected),
            counter(HealthCounter::RemappedRows),
            counter(HealthCounter::RetiredPages),
            // `13:2;48:1` as the table has it, with room to wrap in a narrow card.
            esc(&hd
                .xid_codes()
                .map_or_else(|| "–".into(), |c| c.replace(';', "; "))),
            esc(&if r.risk.reasons.is_empty() {
                "–".to_string()
            } else {
                r.risk.reasons.join(", ")
            }),
        );
    }
    h.push_str("</div></section>");
}

fn cohorts(h: &mut String, day: &DayResult) {
    let rows = cohort_rows(day);
    let _ = write!(
        h,
        "<section><h2>Cohorts</h2><p class=\"note\">GPUs of one model compared in {} W power buckets: a GPU whose sample-weighted temperature excess over its peers' median is at least {} °C is an outlier.</p>",
        day.options.cohort_power_bucket_w, day.options.cohort_outlier_c
    );
    if rows.is_empty() {
        h.push_str("<p class=\"empty\">No power bucket with enough samples.</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th class=\"l\">model</th><th>GPU</th><th>buckets</th><th>excess</th><th>outlier</th><th>perf/W</th><th>model perf/W</th></tr>");
    let mut i = 0;
    while i < rows.len() {
        let g = rows[i].gpu;
        let n = rows[i..]
            .iter()
            .take_while(|r| std::ptr::eq(r.gpu, g))
            .count();
        let r = &rows[i];
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{n}</td><td{}>{} °C</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(g.gpu_name.as_deref().unwrap_or("(unnamed)")),
            esc(&short(g)),
            if r.outlier { " class=\"hot\"" } else { "" },
            num(r.gpu_excess_c, 1),
            if r.outlier { "yes" } else { "" },
            num(r.perf_per_watt, 2),
            num(r.cohort_perf_per_watt, 2),
        );
        i += n;
    }
    h.push_str("</table></div></section>");
}
