//! Charts drawn on the server as SVG: bars of stacked segments, each with a tooltip, and a summary for screen
//! readers. Colours come from the stylesheet's classes (`s-success`, `s-failed`, …).

use maud::{Markup, html};

/// One bar: its label (tooltip and axis), its segments bottom-up as `(value, status word)`, and where it links.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) segments: Vec<(u64, &'static str)>,
    pub(crate) href: Option<String>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// Stacked bars over `bars`; `axis` labels every n-th bar below the chart, `unit` formats the scale's top value.
pub(crate) fn bars(summary: &str, bars: &[Bar], axis_every: usize, unit: impl Fn(u64) -> String) -> Markup {
    let max = bars.iter().map(|bar| bar.segments.iter().map(|(value, _)| value).sum::<u64>()).max().unwrap_or(0).max(1);
    let plot = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    // A few bars stay slim rather than filling the width.
    let width = (slot * 0.72).clamp(1.0, 36.0);
    let scale = |value: u64| value as f64 / max as f64 * plot;
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="group" aria-label=(summary) {
            line x1=(LEFT) y1=(TOP) x2=(WIDTH) y2=(TOP) stroke="#e3e6eb" {}
            line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#9aa4b2" {}
            text x=(LEFT - 6.0) y=(TOP + 10.0) text-anchor="end" { (unit(max)) }
            text x=(LEFT - 6.0) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
            @for (index, bar) in bars.iter().enumerate() {
                @let x = LEFT + slot * index as f64 + (slot - width) / 2.0;
                @let total: u64 = bar.segments.iter().map(|(value, _)| value).sum();
                @let tooltip = tooltip(bar, total, &unit);
                g {
                    title { (tooltip) }
                    @if let Some(href) = &bar.href {
                        a href=(href) { (segments(bar, x, width, &scale)) }
                    } @else {
                        (segments(bar, x, width, &scale))
                    }
                    // A transparent column so that the tooltip shows over short bars too.
                    rect x=(x) y=(TOP) width=(width) height=(plot) fill="transparent" {}
                }
                @if axis_every > 0 && index % axis_every == 0 {
                    text x=(x + width / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { (bar.label) }
                }
            }
        }
    }
}

fn segments(bar: &Bar, x: f64, width: f64, scale: &impl Fn(u64) -> f64) -> Markup {
    let mut top = HEIGHT - BOTTOM;
    let mut rects = Vec::with_capacity(bar.segments.len());
    for (value, word) in bar.segments.iter().filter(|(value, _)| *value > 0) {
        let height = scale(*value).max(1.5);
        top -= height;
        rects.push((top, height, *word));
    }
    html! {
        @for (y, height, word) in rects {
            rect class={ "bar s-" (word) } x=(x) y=(y) width=(width) height=(height) {}
        }
    }
}

fn tooltip(bar: &Bar, total: u64, unit: &impl Fn(u64) -> String) -> String {
    let parts: Vec<String> = bar
        .segments
        .iter()
        .filter(|(value, _)| *value > 0)
        .map(|(value, word)| format!("{word} {}", unit(*value)))
        .collect();
    if parts.len() <= 1 {
        return format!("{}: {}", bar.label, parts.first().cloned().unwrap_or_else(|| unit(total)));
    }
    format!("{}: {}", bar.label, parts.join(", "))
}
