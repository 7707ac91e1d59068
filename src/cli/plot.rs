//! `icm plot`: rate-quality curves of results files, drawn with plotters as SVG and, for
//! PNG, rasterised with resvg (pure Rust, using the system's fonts for the labels).

use super::args::PlotArgs;
use super::error::CliError;
use super::io::write_atomic;
use icm_eval::results::read_curve;
use plotters::prelude::*;
use std::path::Path;

/// Curve colours (the "tab10" palette: distinct, readable on white).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One curve: label and points sorted by rate.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

/// The file stem of `path` (the default label of a CSV's curve).
fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse_size(s: &str) -> Result<(u32, u32), CliError> {
    let bad = || CliError::Usage(format!("--size {s:?}: expected WxH, e.g. 900x600"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

fn parse_ceiling(s: &str) -> Result<(f64, String), CliError> {
    let (v, label) = match s.split_once(':') {
        Some((v, l)) => (v, l.to_string()),
        None => (s, "uncompressed".to_string()),
    };
    let v: f64 = v
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            CliError::Usage(format!("--ceiling {s:?}: expected VALUE or VALUE:LABEL"))
        })?;
    Ok((v, label))
}

/// Axis label of a metric key.
fn metric_label(metric: &str) -> String {
    match metric.to_ascii_lowercase().as_str() {
        "psnr" | "psnr-rgb" | "psnr_rgb" => "PSNR-RGB (dB)".into(),
        "ms-ssim" | "ms_ssim" => "MS-SSIM".into(),
        "map" => "mAP@[.5:.95]".into(),
        "map50" => "mAP@.5".into(),
        "top1" => "top-1 accuracy".into(),
        "top5" => "top-5 accuracy".into(),
        "miou" => "mIoU".into(),
        other => other.into(),
    }
}

/// Draws the curves as an SVG document.
fn draw_svg(
    series: &[Series],
    metric: &str,
    title: &str,
    ceiling: Option<&(f64, String)>,
    (w, h): (u32, u32),
) -> Result<String, String> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(ceiling.map(|c| c.0));
    // The rate axis starts at 0, so only its maximum is needed.
    let x_max = xs.fold(f64::NEG_INFINITY, f64::max);
    let (y_min, y_max) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !(x_max.is_finite() && y_min.is_finite() && y_max.is_finite()) {
        return Err("no points to plot".into());
    }
    let pad_y = ((y_max - y_min) * 0.05).max(1e-3);
    let x_range = 0.0..(x_max * 1.05).max(1e-3);
    let y_range = (y_min - pad_y)..(y_max + pad_y);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range.clone(), y_range)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("bits per pixel")
            .y_desc(metric_label(metric))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()].to_rgba();
            let style = ShapeStyle::from(&colour).stroke_width(2);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 4, ShapeStyle::from(&colour).filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        if let Some((v, label)) = ceiling {
            let grey = RGBColor(110, 110, 110);
            chart
                .draw_series(LineSeries::new(
                    [(x_range.start, *v), (x_range.end, *v)],
                    ShapeStyle::from(&grey).stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Rasterises an SVG document to PNG bytes with the system's fonts.
fn svg_to_png(svg: &str, (w, h): (u32, u32)) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // plotters asks for "sans-serif"; map it to a face that is usually installed.
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    if let Some(f) = [
        "DejaVu Sans",
        "Liberation Sans",
        "Noto Sans",
        "FreeSans",
        "Arial",
    ]
    .iter()
    .find(|want| families.iter().any(|f| f == *want))
    {
        db.set_sans_serif_family(*f);
    } else if let Some(first) = families.first() {
        db.set_sans_serif_family(first.clone());
    }
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| e.to_string())?;
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or("bad image size")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// Runs `icm plot`.
pub fn run(a: PlotArgs) -> Result<(), CliError> {
    let size = parse_size(&a.size)?;
    let ceiling = a.ceiling.as_deref().map(parse_ceiling).transpose()?;
    if !a.labels.is_empty() && a.labels.len() != a.inputs.len() {
        return Err(CliError::Usage(format!(
            "--labels: {} labels for {} inputs",
            a.labels.len(),
            a.inputs.len()
        )));
    }
    let mut series = Vec::new();
    for (i, path) in a.inputs.iter().enumerate() {
        let curve = read_curve(path, &a.metric)?;
        let mut points: Vec<(f64, f64)> = curve
            .bpp
            .into_iter()
            .zip(curve.quality)
            .filter(|(r, q)| r.is_finite() && q.is_finite())
            .collect();
        if points.is_empty() {
            return Err(CliError::Dataset {
                path: path.display().to_string(),
                why: format!("no finite ({}, bpp) points", a.metric),
            });
        }
        points.sort_by(|p, q| p.0.total_cmp(&q.0));
        let label = a
            .labels
            .get(i)
            .cloned()
            .or(curve.name.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| file_stem(path));
        series.push(Series { label, points });
    }
    let title = a
        .title
        .clone()
        .unwrap_or_else(|| format!("{} vs rate", metric_label(&a.metric)));
    let svg = draw_svg(&series, &a.metric, &title, ceiling.as_ref(), size).map_err(|e| {
        CliError::Plot {
            path: a.output.display().to_string(),
            why: e.to_string(),
        }
    })?;
    let ext = a
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => svg.into_bytes(),
        Some("png") => svg_to_png(&svg, size).map_err(|why| CliError::Plot {
            path: a.output.display().to_string(),
            why,
        })?,
        _ => {
            return Err(CliError::Usage(format!(
                "{}: the output must end in .png or .svg",
                a.output.display()
            )))
        }
    };
    write_atomic(&a.output, &bytes)?;
    println!(
        "icm: wrote {} ({} curves)",
        a.output.display(),
        series.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_size("900x600").ok(), Some((900, 600)));
        assert!(parse_size("10x10").is_err());
        assert!(parse_size("wide").is_err());
        assert_eq!(
            parse_ceiling("0.41:none").ok(),
            Some((0.41, "none".to_string()))
        );
        assert!(parse_ceiling("x").is_err());
    }

    #[test]
    fn draws_svg_and_png() {
        let series = vec![
            Series {
                label: "a".into(),
                points: vec![(0.1, 28.0), (0.3, 31.0), (0.8, 35.0)],
            },
            Series {
                label: "b".into(),
                points: vec![(0.2, 29.0), (0.5, 32.5)],
            },
        ];
        let svg = draw_svg(
            &series,
            "psnr-rgb",
            "t",
            Some(&(36.0, "top".into())),
            (640, 480),
        );
        let svg = svg.unwrap_or_default();
        assert!(svg.contains("<svg") && svg.contains("polyline"), "{svg}");
        let png = svg_to_png(&svg, (640, 480)).unwrap_or_default();
        assert_eq!(&png[..4], b"\x89PNG");
        assert!(draw_svg(&[], "psnr", "t", None, (640, 480)).is_err());
    }
}
