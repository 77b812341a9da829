//! Cron expression text: macros, the field count and the field checks croner leaves out.

use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

const FIELD_NAMES: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];

const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
];

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// An expression checked and parsed: croner's pattern plus what the planner needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) cron: Cron,
    /// Whether a time-of-day field (second, minute, hour) is a wildcard or a step (`*`, `*/5`, `0-30/10`).
    /// Such an expression is an interval; any other is fixed-time, which matters across a DST change.
    pub(crate) interval: bool,
}

/// Parses `expression`; the error is the reason, to be wrapped with the expression by the caller.
pub(crate) fn parse(expression: &str) -> Result<Parsed, String> {
    let fields = fields(expression)?;
    for (field, name) in fields.iter().zip(FIELD_NAMES) {
        check_field(name, field)?;
    }
    let parser = parser();
    let cron = parser.parse(&fields.join(" ")).map_err(|error| describe_failure(&parser, &fields, &error))?;
    let interval = fields[..3].iter().any(|field| field.contains(['*', '/']));
    Ok(Parsed { cron, interval })
}

/// Six fields, with seconds first: macros are expanded and a 5-field expression gets second `0`.
fn fields(expression: &str) -> Result<Vec<String>, String> {
    let text = expression.trim();
    if text.is_empty() {
        return Err("the expression is empty".to_owned());
    }
    if text.starts_with('@') {
        let lower = text.to_ascii_lowercase();
        let Some((_, expansion)) = MACROS.iter().find(|(name, _)| *name == lower) else {
            let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
            return Err(format!("unknown macro (expected one of {})", names.join(", ")));
        };
        return Ok(expansion.split(' ').map(str::to_owned).collect());
    }
    let mut fields: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_owned()),
        6 => {}
        count => return Err(format!("expected 5 or 6 fields (or a macro such as @daily), got {count}")),
    }
    Ok(fields)
}

/// What croner accepts but a Vixie-cron user would not mean: empty list items, names in the wrong field
/// (croner replaces `MON` anywhere in the text), and croner's `+` modifier, which turns the day fields' OR into AND.
fn check_field(name: &str, field: &str) -> Result<(), String> {
    if field.split(',').any(str::is_empty) {
        return Err(format!("{name} field `{field}` has an empty list item"));
    }
    if field.starts_with('+') {
        return Err(format!("{name} field `{field}`: the `+` modifier is not supported (day fields combine with OR)"));
    }
    let upper = field.to_ascii_uppercase();
    let words = upper.split(|c: char| !c.is_ascii_alphabetic()).filter(|word| !word.is_empty());
    for word in words {
        let allowed = match name {
            "day-of-month" => matches!(word, "L" | "W" | "LW"),
            "month" => MONTH_NAMES.contains(&word),
            "day-of-week" => word == "L" || DAY_NAMES.contains(&word),
            _ => false,
        };
        if !allowed {
            return Err(format!("{name} field `{field}` has an unexpected `{word}`"));
        }
    }
    Ok(())
}

/// The parser for six fields: seconds required, no year field, day fields combined with OR as in Vixie cron.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).dom_and_dow(false).build()
}

/// Names the field croner rejects: each field is parsed alone, the others set to `*`.
fn describe_failure(parser: &CronParser, fields: &[String], error: &CronError) -> String {
    for (index, name) in FIELD_NAMES.iter().enumerate() {
        let mut probe = vec!["*"; FIELD_NAMES.len()];
        probe[index] = &fields[index];
        if let Err(error) = parser.parse(&probe.join(" ")) {
            return format!("{name} field `{}`: {}", fields[index], describe(&error));
        }
    }
    describe(error)
}

/// Croner's message, lowercased and without its prefix and trailing period.
fn describe(error: &CronError) -> String {
    let message = match error {
        CronError::InvalidPattern(message) | CronError::ComponentError(message) => message.clone(),
        CronError::IllegalCharacters(message) => message.trim_start_matches("CronPattern contains ").to_owned(),
        other => other.to_string(),
    };
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "not a cron expression".to_owned(),
    }
}
