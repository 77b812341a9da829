//! How values read on a page: instants (UTC in the page, the browser's zone once the script runs), humanised
//! durations, status badges and pretty JSON.

use maud::{Markup, html};

use jobs_model::Timestamp;

/// An instant as `<time>`: `2026-11-28 15:22:14 UTC`; the console's script shows it in the browser's zone and keeps
/// the UTC text for hovering.
pub(crate) fn time(at: Timestamp) -> Markup {
    let rfc3339 = at.to_string();
    html! { time datetime=(rfc3339) { (utc_text(&rfc3339)) } }
}

/// Like [`time`], or a dash.
pub(crate) fn time_or_dash(at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// `2026-11-28T15:22:14.25Z` → `2026-11-28 15:22:14 UTC`.
fn utc_text(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(prefix) => format!("{} UTC", prefix.replacen('T', " ", 1)),
        None => rfc3339.to_owned(),
    }
}

/// The time of day of an instant in UTC: `15:22:14`.
pub(crate) fn clock_text(at: Timestamp) -> String {
    let rfc3339 = at.to_string();
    rfc3339.get(11..19).unwrap_or(&rfc3339).to_owned()
}

/// A span of milliseconds for people: `850 ms`, `12.3 s`, `4 min 3 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn duration(millis: i64) -> String {
    let millis = millis.max(0);
    if millis < 1000 {
        return format!("{millis} ms");
    }
    if millis < 60_000 {
        let tenths = millis / 100;
        return format!("{}.{} s", tenths / 10, tenths % 10);
    }
    let seconds = millis / 1000;
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if hours == 0 {
        return format!("{minutes} min {} s", seconds % 60);
    }
    if days == 0 {
        return format!("{hours} h {} min", minutes % 60);
    }
    format!("{days} d {} h", hours % 24)
}

/// How long from `from` to `to`, or to `now` while it lasts.
pub(crate) fn elapsed(from: Option<Timestamp>, to: Option<Timestamp>, now: Timestamp) -> Option<String> {
    let from = from?;
    Some(duration(to.unwrap_or(now).millis_since(from)))
}

/// A status word as a coloured badge; the word itself is always written, so colour is never the only cue.
pub(crate) fn badge(word: &str) -> Markup {
    html! { span class={ "badge s-" (word) } { (word) } }
}

/// JSON indented for reading.
pub(crate) fn pretty_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests;
