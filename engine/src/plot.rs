//! The PNG loss curve of a run (`<run>/loss.png`): train loss (blue) and validation loss
//! (orange) against the step, on a light grid, with the axis ranges written in a built-in
//! 3×5 pixel digit font. Drawn straight into an RGB buffer and encoded with `png`, so it works
//! on a bare machine with no system fonts (plotters' text needs fontconfig).

use std::path::Path;

use crate::error::{EngineError, Result};
use crate::metrics::MetricLog;

const W: usize = 640;
const H: usize = 400;
const MARGIN: usize = 40;

/// 3×5 glyphs, one row per u8 (3 low bits, MSB left), for the characters axis labels need.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        _ => return None,
    })
}

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), rgb: [u8; 3]) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            let x = x0 + (x1 - x0) * s / steps;
            let y = y0 + (y1 - y0) * s / steps;
            self.set(x, y, rgb);
            self.set(x, y + 1, rgb);
        }
    }

    /// Writes `text` at 2× scale with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, text: &str) {
        for (k, c) in text.chars().enumerate() {
            let Some(g) = glyph(c) else { continue };
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                            self.set(
                                x + k as i64 * 8 + col * 2 + dx,
                                y + row as i64 * 2 + dy,
                                [40, 40, 40],
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Draws train and val loss from `log` into `path`.
pub fn loss_curve(log: &MetricLog, path: &Path) -> Result<()> {
    let train = log.series("train", "loss");
    let val = log.series("val", "loss");
    let all: Vec<&(u64, f64)> = train.iter().chain(&val).collect();
    let mut c = Canvas {
        px: vec![255; W * H * 3],
    };
    let max_step = all.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let (x0, x1, y0, y1) = (MARGIN as i64, (W - 10) as i64, (H - MARGIN) as i64, 10i64);
    let to_px = |s: u64, v: f64| {
        (
            x0 + ((s as f64 / max_step) * (x1 - x0) as f64) as i64,
            y0 - (((v - lo) / (hi - lo)) * (y0 - y1) as f64) as i64,
        )
    };
    for k in 0..=4 {
        let y = y0 - (y0 - y1) * k / 4;
        c.line((x0, y), (x1, y), [225, 225, 225]);
        let x = x0 + (x1 - x0) * k / 4;
        c.line((x, y0), (x, y1), [225, 225, 225]);
    }
    c.line((x0, y0), (x1, y0), [0, 0, 0]);
    c.line((x0, y0), (x0, y1), [0, 0, 0]);
    for (series, rgb) in [(&train, [31, 119, 180]), (&val, [255, 127, 14])] {
        for w in series.windows(2) {
            c.line(to_px(w[0].0, w[0].1), to_px(w[1].0, w[1].1), rgb);
        }
    }
    c.text(2, y1, &format!("{hi:.2}"));
    c.text(2, y0 - 10, &format!("{lo:.2}"));
    c.text(x1 - 48, y0 + 8, &format!("{}", max_step as u64));
    c.text(x0, y0 + 8, "0");
    let file = std::fs::File::create(path).map_err(|e| EngineError::io(path, e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let io = |e: png::EncodingError| EngineError::io(path, std::io::Error::other(e.to_string()));
    enc.write_header()
        .map_err(io)?
        .write_image_data(&c.px)
        .map_err(io)
}
