//! The heap timeline as an SVG chart (plotters): live heap bytes, the most
//! live within each point's span, and the size of linear memory, against
//! heap events, with the summary's peak of live bytes marked at its exact
//! number of bytes. The report's timeline draws the same [`points`].

use crate::analysis::Analysis;
use crate::profile::Point;
use plotters::prelude::*;

/// The timeline's points with the peak of live bytes as a point of its
/// own: a point stands for a span of events and gives the live heap at its
/// end (and the most within it), so a short peak inside a span would draw
/// the live-heap line below the summary's peak.
pub fn points(a: &Analysis) -> Vec<Point> {
    let mut points = a.profile.timeline.points.clone();
    let s = &a.summary;
    if s.max_bytes == 0 || points.iter().any(|p| p.seq == a.peak_seq) {
        return points;
    }
    let at = points.partition_point(|p| p.seq < a.peak_seq);
    let pages = a
        .peak
        .as_ref()
        .map(|p| p.pages)
        .or_else(|| points.get(at).map(|p| p.pages))
        .unwrap_or(0);
    let time_us = points.get(at).map_or(0, |p| p.time_us);
    points.insert(
        at,
        Point {
            seq: a.peak_seq,
            time_us,
            live_bytes: s.max_bytes,
            max_live_bytes: s.max_bytes,
            live_blocks: s.max_blocks,
            pages,
        },
    );
    points
}

/// Render the timeline as SVG text, `width` × `height` pixels.
pub fn svg(a: &Analysis, width: u32, height: u32) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(a, &root).map_err(|e| format!("cannot draw the timeline: {e}"))?;
        root.present()
            .map_err(|e| format!("cannot draw the timeline: {e}"))?;
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    a: &Analysis,
    root: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let points = &points(a);
    let page = a.summary.memory.page_size.max(1);
    if points.is_empty() {
        let (_, h) = root.dim_in_pixel();
        root.draw(&Text::new(
            "heapscope: no heap events: the trace records no allocation, free or memory growth",
            (20, (h / 2) as i32),
            ("sans-serif", 18).into_font(),
        ))?;
        return Ok(());
    }
    let x_max = points.last().map_or(1, |p| p.seq).max(1);
    // The heap on the left axis, linear memory on the right: a small heap
    // stays readable next to a large memory. The top third of each range is
    // left free for the legend.
    let heap_max = points
        .iter()
        .map(|p| p.max_live_bytes)
        .max()
        .unwrap_or(1)
        .max(1);
    let mem_max = points
        .iter()
        .map(|p| p.pages * page)
        .max()
        .unwrap_or(1)
        .max(1);
    let (unit, div) = unit_for(heap_max);
    let (mem_unit, mem_div) = unit_for(mem_max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "heapscope: live heap and linear memory ({} heap events)",
                crate::text::thousands(a.summary.events)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0u64..x_max, 0f64..(heap_max as f64 / div) * 1.5)?
        .set_secondary_coord(0u64..x_max, 0f64..(mem_max as f64 / mem_div) * 1.5);
    chart
        .configure_mesh()
        .x_desc("heap events")
        .y_desc(format!("live heap ({unit})"))
        .x_label_formatter(&|x| crate::text::thousands(*x))
        .y_label_formatter(&|y| tick(*y))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc(format!("linear memory ({mem_unit})"))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    let memory = RGBColor(120, 120, 120);
    let peak = RGBColor(240, 160, 60);
    let live = RGBColor(200, 40, 40);
    chart
        .draw_secondary_series(LineSeries::new(
            points
                .iter()
                .map(|p| (p.seq, (p.pages * page) as f64 / mem_div)),
            memory.stroke_width(2),
        ))?
        .label("linear memory (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], memory.stroke_width(2)));
    chart
        .draw_series(AreaSeries::new(
            points
                .iter()
                .map(|p| (p.seq, p.max_live_bytes as f64 / div)),
            0.0,
            peak.mix(0.35),
        ))?
        .label("most live between two points (shaded)")
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 18, y + 5)], peak.mix(0.35).filled())
        });
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.seq, p.live_bytes as f64 / div)),
            live.stroke_width(2),
        ))?
        .label("live heap (left axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], live.stroke_width(2)));
    let s = &a.summary;
    if s.max_bytes > 0 {
        let (x, y) = (a.peak_seq, s.max_bytes as f64 / div);
        let label = format!(
            "peak {} ({} in {}) at event {}",
            crate::text::bytes_human(s.max_bytes),
            crate::text::plural(s.max_bytes, "byte", "bytes"),
            crate::text::plural(s.max_blocks, "block", "blocks"),
            crate::text::thousands(a.peak_seq)
        );
        let right = a.peak_seq > x_max / 2;
        chart
            .draw_series(std::iter::once(Circle::new((x, y), 4, live.filled())))?
            .label("peak of live heap")
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, live.filled()));
        let style = ("sans-serif", 14).into_font().color(&live).pos(
            plotters::style::text_anchor::Pos::new(
                if right {
                    plotters::style::text_anchor::HPos::Right
                } else {
                    plotters::style::text_anchor::HPos::Left
                },
                plotters::style::text_anchor::VPos::Bottom,
            ),
        );
        chart
            .plotting_area()
            .draw(&Text::new(label, (x, y * 1.04), style))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// A tick value: a whole number with separators, else one decimal.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        crate::text::thousands(v.round().max(0.0) as u64)
    } else {
        format!("{v:.1}")
    }
}

/// The unit to label `max` bytes with, and its divisor.
fn unit_for(max: u64) -> (&'static str, f64) {
    match max {
        m if m >= 1 << 30 => ("GiB", (1u64 << 30) as f64),
        m if m >= 1 << 20 => ("MiB", (1u64 << 20) as f64),
        m if m >= 1 << 10 => ("KiB", 1024.0),
        _ => ("bytes", 1.0),
    }
}
