//! The report as a browser paints it: headless Chromium renders the daily page and the
//! fleet page of a simulated fleet's report; the test counts the chart colours in the
//! screenshots' pixels and the charts and health cards in the DOM Chromium parsed.
//! String checks of the HTML cannot see a chart that no browser would draw (a colour
//! it cannot parse, a zero-size viewBox, an element swallowed by a broken tag).
//!
//! Needs Chromium (Debian package `chromium`, installed by `scripts/install-deps.sh`):
//! without it the test fails where `CI` is set and is skipped, saying so, elsewhere.
//! With `GPUSTREAM_REPORT_DIR` set, the report and its screenshots are saved there.

use std::fs::File;
use std::io::BufReader;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batch_analytics::model::{AnalysisOptions, CURVE_METRICS};
use batch_analytics::report::PALETTE;
use gpustream_sim::fleet::{Fleet, FleetConfig};

use crate::fixture::*;

/// A Chromium that has not finished by then is killed (with its renderer processes).
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);
/// Window width: the report's `main` is at most 1400 px wide.
const WIDTH: u32 = 1400;
const GPUS: usize = 8;
/// Window heights: each page must end inside its window (the test checks).
const DAILY_HEIGHT: u32 = 8000;
const FLEET_HEIGHT: u32 = 2600;
/// Colours of the report's CSS: the `body` background, a drained health card's
/// background and border, the risk badges (0, 1–39, drain).
const PAGE_BACKGROUND: &str = "#f6f7f9";
const DRAIN_CARD: &str = "#fef3f2";
const DRAIN_BORDER: &str = "#d92d20";
const BADGE_OK: &str = "#ecfdf3";
const BADGE_WARN: &str = "#fffaeb";
const BADGE_BAD: &str = "#fee4e2";

/// The Chromium binary, or `None` (with the reason printed) where the test is skipped.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| {
                ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
            })
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Chromium is not installed (scripts/install-deps.sh installs it)"
        );
        eprintln!(
            "SKIPPED report_renders_in_headless_chromium: no chromium on PATH \
             (apt-get install -y chromium)"
        );
    }
    found
}

/// Runs headless Chromium with `args` in a fresh profile, stdout to `stdout`; fails
/// on a non-zero exit and kills its process group after [`CHROMIUM_TIMEOUT`].
fn run_chromium(exe: &Path, args: &[String], stdout: &Path) {
    let profile = tempfile::tempdir().expect("profile dir");
    let log = profile.path().join("chromium.log");
    let mut child = Command::new(exe)
        .args([
            "--headless=new",
            // Chromium refuses to run as root (containers, CI) with its sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).expect("stdout file"))
        .stderr(File::create(&log).expect("log file"))
        // Its own process group, so a timeout kills the renderers too.
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "chromium {args:?} still running after {CHROMIUM_TIMEOUT:?}: killed\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium {args:?}: {status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// A screenshot's pixels, alpha dropped.
struct Image {
    width: usize,
    height: usize,
    pixels: Vec<[u8; 3]>,
    /// Pixels per colour, indexed by `0xRRGGBB`.
    counts: Vec<u32>,
}

impl Image {
    fn decode(path: &Path) -> Image {
        let file = BufReader::new(File::open(path).expect("screenshot"));
        let mut decoder = png::Decoder::new(file);
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        let step = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("screenshot colour type {other:?}"),
        };
        let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
            .chunks_exact(step)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        let mut counts = vec![0u32; 1 << 24];
        for p in &pixels {
            counts[index(*p)] += 1;
        }
        Image {
            width: info.width as usize,
            height: info.height as usize,
            pixels,
            counts,
        }
    }

    /// Pixels of any of `colours` (each counted once however often it is listed).
    fn count(&self, colours: &[[u8; 3]]) -> usize {
        let mut distinct = colours.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        distinct
            .iter()
            .map(|c| self.counts[index(*c)] as usize)
            .sum()
    }

    fn distinct_colours(&self) -> usize {
        self.counts.iter().filter(|n| **n > 0).count()
    }

    /// The rows below the last one that is not all page background: where the page
    /// ended inside the window (0: it may go on below).
    fn blank_bottom_rows(&self) -> usize {
        let bg = colour(PAGE_BACKGROUND);
        let last = self
            .pixels
            .chunks_exact(self.width)
            .rposition(|row| row.iter().any(|p| *p != bg));
        self.height - last.map_or(0, |r| r + 1)
    }

    /// For each of `colours`: the rows that hold it, and the rows that hold a solid run
    /// of at least `run` pixels of it (a bar, not a line).
    fn rows_of(&self, colours: &[[u8; 3]], run: usize) -> Vec<(usize, usize)> {
        let mut out = vec![(0, 0); colours.len()];
        for row in self.pixels.chunks_exact(self.width) {
            let (mut seen, mut solid) = (vec![false; colours.len()], vec![false; colours.len()]);
            let (mut prev, mut len, mut which) = ([0u8; 3], 0, None);
            for p in row {
                if *p == prev && len > 0 {
                    len += 1;
                } else {
                    (prev, len) = (*p, 1);
                    which = colours.iter().position(|c| c == p);
                }
                if let Some(i) = which {
                    seen[i] = true;
                    solid[i] |= len >= run;
                }
            }
            for (i, o) in out.iter_mut().enumerate() {
                o.0 += usize::from(seen[i]);
                o.1 += usize::from(solid[i]);
            }
        }
        out
    }
}

fn index([r, g, b]: [u8; 3]) -> usize {
    (usize::from(r) << 16) | (usize::from(g) << 8) | usize::from(b)
}

/// `#rrggbb` or `rgb(r,g,b)`.
fn colour(text: &str) -> [u8; 3] {
    let parts: Option<Vec<u8>> = match text.strip_prefix('#') {
        Some(hex) if hex.len() == 6 => (0..3)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect(),
        _ => text
            .strip_prefix("rgb(")
            .and_then(|t| t.strip_suffix(')'))
            .and_then(|t| t.split(',').map(|c| c.trim().parse().ok()).collect()),
    };
    match parts.as_deref() {
        Some(&[r, g, b]) => [r, g, b],
        _ => panic!("not a colour: {text}"),
    }
}

/// The part of the report from the heading `h2` to the end of its section.
fn section<'a>(html: &'a str, h2: &str) -> &'a str {
    let from = html.find(h2).unwrap_or_else(|| panic!("no section {h2}"));
    let len = html[from..].find("</section>").expect("section end");
    &html[from..from + len]
}

/// The `fill="rgb(..)"` colours of a section's cells, one entry per cell.
fn cell_fills(section: &str) -> Vec<[u8; 3]> {
    section
        .split("fill=\"rgb(")
        .skip(1)
        .map(|rest| {
            colour(&format!(
                "rgb({}",
                &rest[..rest.find('"').expect("fill end")]
            ))
        })
        .collect()
}

#[tokio::test]
async fn report_renders_in_headless_chromium() {
    let Some(exe) = chromium() else {
        return;
    };
    // Known content: 2 hosts × 4 GPUs, 6 hours of 5-second samples, seed 7's faults
    // (ECC bursts put GPUs on the drain list), each host allocated to one user all day.
    let (_lake_dir, lake) = new_lake();
    let mut fleet = Fleet::new(FleetConfig {
        hosts: 2,
        gpus_per_host: GPUS / 2,
        seed: 7,
        interval: Duration::from_secs(5),
        start: at("2025-03-14T00:00:00Z"),
        faults: true,
    });
    let mut samples = Vec::new();
    for _ in 0..6 * 720 {
        samples.extend(fleet.next_tick());
    }
    append_samples(&lake, &samples).await;
    let alloc = "host,gpu,start,end,user,job\n\
                 sim-host-00,*,2025-03-14T00:00:00Z,2025-03-15T00:00:00Z,alice,sim\n\
                 sim-host-01,*,2025-03-14T00:00:00Z,2025-03-15T00:00:00Z,bob,sim\n";
    let out = run_with(&lake, "2025-03-14", AnalysisOptions::default(), Some(alloc)).await;
    let drain = bools(&table(&out, "health"), "drain")
        .iter()
        .filter(|d| **d == Some(true))
        .count();
    // Both kinds of card: seed 7's bursts drain seven of the eight GPUs.
    assert!((1..GPUS).contains(&drain), "{drain} GPUs drained");
    let html = out.report_html.expect("report");

    // The two pages are one document: each is rendered with the other one hidden, so
    // a screenshot holds one page from its top (headless Chromium's screenshot of a
    // `#fleet` URL comes out blank).
    let dir = tempfile::tempdir().expect("render dir");
    let page = |name: &str, hide: &str| {
        let path = dir.path().join(name);
        let css = format!("<style>{hide} {{ display:none }}</style></head>");
        std::fs::write(&path, html.replacen("</head>", &css, 1)).expect("write page");
        format!("file://{}", path.display())
    };
    let daily_url = page("daily.html", "#fleet, #fleet ~ *");
    let fleet_url = page("fleet.html", "main > :not(#fleet):not(#fleet ~ *)");
    let shot = |name: &str, url: &str, height: u32| {
        let png = dir.path().join(name);
        run_chromium(
            &exe,
            &[
                format!("--window-size={WIDTH},{height}"),
                format!("--screenshot={}", png.display()),
                url.to_string(),
            ],
            &dir.path().join(format!("{name}.out")),
        );
        png
    };
    let dom_path = dir.path().join("dom.html");
    let report = dir.path().join("report.html");
    std::fs::write(&report, &html).expect("write report");
    let dom_url = format!("file://{}", report.display());
    // The three browsers side by side: each spends most of its time starting up.
    let started = Instant::now();
    let (daily, fleet_png) = std::thread::scope(|s| {
        let daily = s.spawn(|| shot("daily.png", &daily_url, DAILY_HEIGHT));
        let fleet = s.spawn(|| shot("fleet.png", &fleet_url, FLEET_HEIGHT));
        run_chromium(&exe, &["--dump-dom".into(), dom_url], &dom_path);
        let join = |h: std::thread::ScopedJoinHandle<'_, PathBuf>| {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        (join(daily), join(fleet))
    });
    eprintln!("chromium: {:?} for three pages", started.elapsed());
    if let Ok(save) = std::env::var("GPUSTREAM_REPORT_DIR") {
        std::fs::create_dir_all(&save).expect("report dir");
        for f in ["report.html", "daily.png", "fleet.png", "dom.html"] {
            std::fs::copy(dir.path().join(f), Path::new(&save).join(f)).expect("save");
        }
        eprintln!("report and screenshots saved in {save}");
    }

    // The daily page: whole, not blank, every GPU's colour in the curves (lines over
    // many rows) and in the energy bars (solid runs), the heatmap and correlation cells
    // painted in the colours the report gave them.
    let img = Image::decode(&daily);
    assert!(
        img.blank_bottom_rows() >= 20,
        "the daily page is longer than the {DAILY_HEIGHT} px window"
    );
    assert!(
        img.distinct_colours() > 1000,
        "daily page: {} colours, blank?",
        img.distinct_colours()
    );
    let palette: Vec<[u8; 3]> = PALETTE.iter().take(GPUS).map(|c| colour(c)).collect();
    for (i, (rows, solid)) in img.rows_of(&palette, 100).into_iter().enumerate() {
        // A 210 px curve chart spans ~150 rows; the legend mark 3, an energy bar 18.
        assert!(
            rows >= 60,
            "GPU {i}'s colour {} on {rows} rows: its curves are not drawn",
            PALETTE[i]
        );
        assert!(
            solid >= 10,
            "GPU {i}'s colour {} in {solid} solid rows: its energy bar is not drawn",
            PALETTE[i]
        );
    }
    let heat = cell_fills(section(&html, "<h2>Hourly pattern</h2>"));
    // Two heatmaps with a 25 × 25 px cell per GPU and hour with data (UTC 00–06), each
    // with a ten-step colour scale.
    let cells = heat.len() - 20;
    assert!(cells >= 2 * GPUS * 6, "{cells} heatmap cells for 6 hours");
    assert!(
        img.count(&heat) >= cells * 500,
        "heatmap: {} px in the cells' colours for {cells} cells",
        img.count(&heat)
    );
    let corr = cell_fills(section(&html, "<h2>Correlation matrices"));
    assert!(corr.len() >= GPUS * 10, "{} correlation cells", corr.len());
    assert!(
        img.count(&corr) >= corr.len() * 500,
        "correlation matrices: {} px in the cells' colours for {} cells",
        img.count(&corr),
        corr.len()
    );

    // The fleet page: whole, one health card per GPU, the drained ones red.
    let img = Image::decode(&fleet_png);
    assert!(
        img.blank_bottom_rows() >= 20,
        "the fleet page is longer than the {FLEET_HEIGHT} px window"
    );
    let px = |c: &str| img.count(&[colour(c)]);
    // A card is about 250 × 230 px; its badge about 35 × 17.
    assert!(
        px(DRAIN_CARD) >= drain * 20_000,
        "{} px of drained-card background for {drain} cards",
        px(DRAIN_CARD)
    );
    assert!(
        px(DRAIN_BORDER) >= drain * 500,
        "{} px of drained-card border for {drain} cards",
        px(DRAIN_BORDER)
    );
    assert!(
        px(BADGE_BAD) >= drain * 250,
        "{} px of drain badges for {drain} cards",
        px(BADGE_BAD)
    );
    assert!(
        px(BADGE_OK) + px(BADGE_WARN) >= (GPUS - drain) * 150,
        "{} px of the other cards' badges",
        px(BADGE_OK) + px(BADGE_WARN)
    );

    // What Chromium parsed: every chart an <svg> element, every GPU a card.
    let dom = std::fs::read_to_string(&dom_path).expect("dom");
    let curves_energy_heatmaps = CURVE_METRICS.len() + 1 + 2;
    assert_eq!(
        dom.matches("<svg").count(),
        curves_energy_heatmaps + GPUS,
        "charts in the DOM: curves, energy, 2 heatmaps, a correlation matrix per GPU"
    );
    assert_eq!(
        dom.matches("<div class=\"card drain\">").count(),
        drain,
        "drained cards in the DOM"
    );
    assert_eq!(
        dom.matches("<div class=\"card\">").count(),
        GPUS - drain,
        "other cards in the DOM"
    );
}
