//! The PNG report (feature `plot`, the CLI's only): waveform with the beat grid, short-term
//! loudness over time, and chroma over time, under a title line of the main figures.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`assets/DejaVuSans.ttf`, Bitstream
//! Vera licence in `assets/DejaVuSans.LICENSE`): plotters has no font without one.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::features::{Features, Timeline};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Why the PNG could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the report: {0}")]
pub struct PlotError(String);

fn draw_err<E: std::fmt::Display>(err: E) -> PlotError {
    PlotError(err.to_string())
}

/// Draws the report of `features` and `timeline` to the PNG file `path` (1200 x 900).
pub fn render(
    path: &Path,
    title: &str,
    features: &Features,
    timeline: &Timeline,
) -> Result<(), PlotError> {
    REGISTER.call_once(|| {
        // The font is a valid TrueType file compiled into the binary; a failure here would
        // surface as a drawing error below.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (header, body) = root.split_vertically(60);
    let duration = features.duration_seconds.max(1e-3);
    let tempo = features.tempo.as_ref().map_or("no tempo".to_owned(), |t| {
        format!("{:.1} BPM ({:.2})", t.bpm, t.confidence)
    });
    let key = features.key.as_ref().map_or("no key".to_owned(), |k| {
        format!(
            "{} {:?} {} ({:.2})",
            k.tonic, k.mode, k.camelot, k.confidence
        )
        .to_lowercase()
    });
    let lufs = features
        .loudness
        .integrated_lufs
        .map_or("silent".to_owned(), |l| format!("{l:.1} LUFS"));
    header
        .draw(&Text::new(
            title.to_owned(),
            (10, 8),
            ("sans-serif", 22).into_font(),
        ))
        .map_err(draw_err)?;
    header
        .draw(&Text::new(
            format!(
                "{:.1} s  |  {tempo}  |  key {key}  |  {lufs}  |  energy {:.2}  danceability {:.2}",
                features.duration_seconds, features.derived.energy, features.derived.danceability
            ),
            (10, 34),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(draw_err)?;
    let panels = body.split_evenly((3, 1));

    // Waveform and beat grid.
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("waveform and beats", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..duration, -1f64..1f64)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("s")
        .draw()
        .map_err(draw_err)?;
    let step = timeline.waveform_step_seconds;
    chart
        .draw_series(timeline.waveform.iter().enumerate().map(|(i, (lo, hi))| {
            let t = (i as f64 + 0.5) * step;
            PathElement::new(
                vec![(t, f64::from(*lo)), (t, f64::from(*hi))],
                BLUE.mix(0.6),
            )
        }))
        .map_err(draw_err)?;
    if let Some(tempo) = &features.tempo {
        chart
            .draw_series(
                tempo
                    .beats
                    .times
                    .iter()
                    .map(|t| PathElement::new(vec![(*t, 0.85), (*t, 1.0)], RED.stroke_width(1))),
            )
            .map_err(draw_err)?;
    }

    // Short-term loudness.
    let finite: Vec<f64> = timeline.loudness_lufs.iter().flatten().copied().collect();
    let lo = finite.iter().copied().fold(-40.0f64, f64::min).floor();
    let hi = finite.iter().copied().fold(-5.0f64, f64::max).ceil();
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("short-term loudness (LUFS)", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..duration, lo..hi)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("s")
        .draw()
        .map_err(draw_err)?;
    let lstep = timeline.loudness_step_seconds;
    let mut segment: Vec<(f64, f64)> = Vec::new();
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    for (i, v) in timeline.loudness_lufs.iter().enumerate() {
        match v {
            Some(v) => segment.push(((i as f64 + 1.0) * lstep, *v)),
            None if !segment.is_empty() => segments.push(std::mem::take(&mut segment)),
            None => {}
        }
    }
    if !segment.is_empty() {
        segments.push(segment);
    }
    for s in segments {
        chart
            .draw_series(LineSeries::new(s, GREEN.stroke_width(2)))
            .map_err(draw_err)?;
    }
    if let Some(i) = features.loudness.integrated_lufs {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, i), (duration, i)],
                BLACK.mix(0.5),
            ))
            .map_err(draw_err)?;
    }

    // Chroma.
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("chroma", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..duration, (0usize..12).into_segmented())
        .map_err(draw_err)?;
    let names = &features.chroma.pitch_classes;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("s")
        .y_labels(12)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(draw_err)?;
    let cstep = timeline.chroma_step_seconds;
    chart
        .draw_series(timeline.chroma.iter().enumerate().flat_map(|(i, c)| {
            let t0 = i as f64 * cstep;
            c.iter().enumerate().map(move |(pc, v)| {
                let shade = (255.0 * (1.0 - f64::from(*v).clamp(0.0, 1.0))) as u8;
                Rectangle::new(
                    [
                        (t0, SegmentValue::Exact(pc)),
                        ((t0 + cstep).min(duration), SegmentValue::Exact(pc + 1)),
                    ],
                    RGBColor(shade, shade, 255).filled(),
                )
            })
        }))
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}
