//! Charts as plain SVG geometry, computed on the server so they show before any script runs.

/// A line chart of `(x, y)` points scaled into a `width` × `height` box (y up), with the zero line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// SVG path data for the series.
    pub path: String,
    /// The y pixel of the value 0 (inside the box when the data crosses zero).
    pub zero_y: f64,
    /// Smallest and largest y in the data.
    pub y_range: (i64, i64),
}

/// Scales `points` (x ascending) into the box; `None` without at least two points.
pub fn line(points: &[(i64, i64)], width: f64, height: f64) -> Option<Line> {
    if points.len() < 2 {
        return None;
    }
    let (x0, x1) = (points.first()?.0, points.last()?.0);
    let lo = points.iter().map(|p| p.1).min()?.min(0);
    let hi = points.iter().map(|p| p.1).max()?.max(0);
    let span_x = (x1 - x0).max(1) as f64;
    let span_y = (hi - lo).max(1) as f64;
    let sx = |x: i64| (x - x0) as f64 / span_x * width;
    let sy = |y: i64| height - (y - lo) as f64 / span_y * height;
    let mut path = String::with_capacity(points.len() * 16);
    for (i, (x, y)) in points.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        path.push_str(&format!("{cmd}{:.1} {:.1} ", sx(*x), sy(*y)));
    }
    Some(Line {
        path: path.trim_end().to_owned(),
        zero_y: sy(0),
        y_range: (lo, hi),
    })
}

/// Bars of `values` side by side in the box (negative values hang below the zero line):
/// `(x, y, width, height)` per bar.
pub fn bars(values: &[i64], width: f64, height: f64) -> Vec<(f64, f64, f64, f64)> {
    if values.is_empty() {
        return Vec::new();
    }
    let lo = values.iter().copied().min().unwrap_or(0).min(0);
    let hi = values.iter().copied().max().unwrap_or(0).max(0);
    let span = (hi - lo).max(1) as f64;
    let zero = height - (0 - lo) as f64 / span * height;
    let step = width / values.len() as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let h = (*v as f64).abs() / span * height;
            let y = if *v >= 0 { zero - h } else { zero };
            (i as f64 * step + step * 0.1, y, step * 0.8, h)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_fills_its_box_and_keeps_zero_in_view() {
        let l = line(&[(0, 1_000), (10, -1_000), (20, 3_000)], 200.0, 100.0).unwrap();
        assert_eq!(l.path, "M0.0 50.0 L100.0 100.0 L200.0 0.0");
        assert_eq!(l.y_range, (-1_000, 3_000));
        assert!((l.zero_y - 75.0).abs() < 1e-9);
        // all positive: zero is the bottom edge
        let l = line(&[(0, 10), (1, 20)], 10.0, 10.0).unwrap();
        assert!((l.zero_y - 10.0).abs() < 1e-9);
        assert_eq!(line(&[(0, 1)], 10.0, 10.0), None);
    }

    #[test]
    fn bars_hang_from_the_zero_line() {
        let b = bars(&[100, -100], 100.0, 100.0);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (5.0, 0.0, 40.0, 50.0));
        assert_eq!(b[1], (55.0, 50.0, 40.0, 50.0));
        assert!(bars(&[], 1.0, 1.0).is_empty());
    }
}
