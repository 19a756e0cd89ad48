//! A hand-written SVG line plot of devices a second against worker threads, with the ceiling as
//! a dashed horizontal line. No plotting library: the plot is a few dozen elements.

use std::fmt::Write;

/// Plot size in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
/// Margins: left (y labels), right, top (title), bottom (x labels).
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// What to plot.
#[derive(Clone, Debug)]
pub struct Plot<'a> {
    /// Title line.
    pub title: &'a str,
    /// (threads, devices a second) in the order measured.
    pub points: &'a [(usize, f64)],
    /// The ceiling in devices a second, if known.
    pub ceiling: Option<f64>,
}

/// Where a point lands on the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// Horizontal, from the left edge.
    pub x: f64,
    /// Vertical, from the top edge.
    pub y: f64,
}

struct Scale {
    x_min: f64,
    x_max: f64,
    y_max: f64,
}

impl Scale {
    fn of(plot: &Plot<'_>) -> Scale {
        // Thread counts start at 1: so does the axis.
        let x_min = 1.0;
        let x_max = plot
            .points
            .iter()
            .map(|(t, _)| *t as f64)
            .fold(1.0, f64::max);
        let highest = plot
            .points
            .iter()
            .map(|(_, v)| *v)
            .chain(plot.ceiling)
            .fold(0.0, f64::max);
        Scale {
            x_min,
            // One thread only: spread the axis so the point is not on the edge.
            x_max: if x_max > x_min { x_max } else { x_min + 1.0 },
            y_max: nice_ceiling(highest * 1.1),
        }
    }

    fn position(&self, threads: f64, value: f64) -> Position {
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        Position {
            x: LEFT + (threads - self.x_min) / (self.x_max - self.x_min) * plot_width,
            y: TOP + plot_height - value / self.y_max * plot_height,
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (at least 1).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 1.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

/// Where each point of `plot` is drawn (the centres of its circles), in order.
pub fn positions(plot: &Plot<'_>) -> Vec<Position> {
    let scale = Scale::of(plot);
    plot.points
        .iter()
        .map(|(t, v)| scale.position(*t as f64, *v))
        .collect()
}

/// Escapes text for XML character data and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the plot as a standalone SVG document.
pub fn render(plot: &Plot<'_>) -> String {
    let scale = Scale::of(plot);
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored with `let _`.
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(plot.title)
    );
    let origin = scale.position(scale.x_min, 0.0);
    let x_end = scale.position(scale.x_max, 0.0);
    let y_end = scale.position(scale.x_min, scale.y_max);
    let _ = writeln!(
        s,
        r#"<path d="M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}" stroke="black" fill="none"/>"#,
        origin.x, origin.y, x_end.x, x_end.y, origin.x, origin.y, y_end.x, y_end.y
    );
    // y ticks: five steps from 0 to the top.
    for step in 0..=5 {
        let value = scale.y_max * f64::from(step) / 5.0;
        let at = scale.position(scale.x_min, value);
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{value:.0}</text>"##,
            at.x,
            at.y,
            x_end.x,
            at.y,
            at.x - 6.0,
            at.y + 4.0
        );
    }
    // x ticks: every measured thread count.
    let mut ticks: Vec<usize> = plot.points.iter().map(|(t, _)| *t).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for threads in ticks {
        let at = scale.position(threads as f64, 0.0);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{threads}</text>"#,
            at.x,
            at.y + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">worker threads</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">devices/s</text>"#,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0
    );
    if let Some(ceiling) = plot.ceiling {
        let from = scale.position(scale.x_min, ceiling);
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#c00">ceiling {ceiling:.0}/s</text>"##,
            from.x,
            from.y,
            x_end.x,
            from.y,
            x_end.x,
            from.y - 6.0
        );
    }
    let points = positions(plot);
    if points.len() > 1 {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", p.x, p.y))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#036" stroke-width="2"/>"##,
            path.join(" ")
        );
    }
    for (p, (threads, value)) in points.iter().zip(plot.points) {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#036"><title>{threads} threads: {value:.0} devices/s</title></circle>"##,
            p.x, p.y
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small well-formedness check: every tag closes in order, attributes are quoted, and
    /// there is exactly one root element. Enough for the handful of elements written above.
    fn check_well_formed(xml: &str) -> Result<(), String> {
        let body = xml
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .ok_or("no XML declaration")?;
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if text.contains('>') || (text.contains('&') && !text.contains(';')) {
                return Err(format!("bad character data {text:?}"));
            }
            let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
            let tag = &rest[open + 1..close];
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .ok_or("empty tag")?
                    .trim_end_matches('/')
                    .to_owned();
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if roots != 1 || !rest.trim().is_empty() {
            return Err(format!("{roots} root elements, trailing {rest:?}"));
        }
        Ok(())
    }

    #[test]
    fn the_checker_refuses_broken_xml() {
        assert!(check_well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><a><b></a>"#).is_err());
        assert!(check_well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><a/><a/>"#).is_err());
        assert!(check_well_formed(r#"<?xml version="1.0" encoding="UTF-8"?><a x="1/>"#).is_err());
    }

    #[test]
    fn sweep_plot_is_well_formed_with_its_points_and_ceiling() {
        let points = [(1, 2000.0), (2, 3900.0)];
        let plot = Plot {
            title: "ecc-device <csv> & co",
            points: &points,
            ceiling: Some(4100.0),
        };
        let svg = render(&plot);
        check_well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(svg.contains("ecc-device &lt;csv&gt; &amp; co"));
        assert!(svg.contains("ceiling 4100/s"));
        // y axis to 5,000 (the next of 1/2/2.5/5 × 10^k above 4,100 × 1.1); x from 1 to 2.
        let at = positions(&plot);
        assert_eq!(
            at[0],
            Position {
                x: LEFT,
                y: TOP + 310.0 * (1.0 - 0.4)
            }
        );
        assert_eq!(
            at[1],
            Position {
                x: WIDTH - RIGHT,
                y: TOP + 310.0 * (1.0 - 0.78)
            }
        );
        for p in &at {
            assert!(svg.contains(&format!(r#"<circle cx="{:.1}" cy="{:.1}""#, p.x, p.y)));
        }
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(&format!(
            r#"<polyline points="{:.1},{:.1} {:.1},{:.1}""#,
            at[0].x, at[0].y, at[1].x, at[1].y
        )));
    }

    #[test]
    fn one_point_without_ceiling_is_well_formed() {
        let points = [(2, 150.0)];
        let svg = render(&Plot {
            title: "rsa-device",
            points: &points,
            ceiling: None,
        });
        check_well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("ceiling"));
        assert!(!svg.contains("<polyline"));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(4510.0), 5000.0);
        assert_eq!(nice_ceiling(2100.0), 2500.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }
}
