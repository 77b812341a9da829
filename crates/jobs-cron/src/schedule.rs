//! A parsed cron schedule in a time zone, and its next fire times across DST changes.

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, Offset, SecondsFormat, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};
use croner::Cron;

use jobs_model::Timestamp;

use crate::error::{Error, Result};
use crate::expression;

/// At most this many fire times are listed by [`Schedule::preview`].
pub const MAX_PREVIEW: usize = 1000;

/// Wall-clock matches one search may pass over. Each step either returns or jumps past a gap or a repeated
/// range, so a search needs a handful; the bound only guards against a time zone table nobody foresaw.
const MAX_WALK_STEPS: usize = 10_000;

/// A schedule bound to an IANA time zone: the single source of fire times for the planner and the preview.
///
/// Three kinds of expression:
/// - a cron expression (five or six fields, or a macro such as `@daily`), matched against the time zone's wall clock;
/// - `@every <duration>` (`@every 90s`, `@every 1h30m`, at least 1 s): a fire every period after the start (the
///   task's creation or its last enable), each the previous one plus the period, so it never drifts with how long
///   executions take; the time zone plays no part;
/// - `@at <RFC 3339 instant>` (`@at 2026-12-24T18:00:00+01:00`): one fire at that instant, after which the
///   schedule has ended.
///
/// Fires are whole seconds. The expression is matched against the wall clock of the time zone, with these rules:
/// - the day-of-month and day-of-week fields combine as in Vixie cron: when both are restricted, either matches;
/// - an expression is *fixed-time* when its second, minute and hour fields hold no `*` and no step (`/`), as
///   `0 30 2 * * *` or `0 0 9,17 * * 1-5`, and an *interval* otherwise, as `*/5 * * * *` or `@hourly`;
/// - a fixed-time fire whose wall-clock time is skipped by a DST change runs once, at the first instant after the
///   jump (several skipped fires merge into that one); an interval fire in the skipped range does not run;
/// - a fixed-time fire whose wall-clock time happens twice runs once, on the first pass; an interval fire runs
///   on both passes, which are distinct instants.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    timezone: String,
    tz: Tz,
    rule: Rule,
}

/// When a schedule fires.
#[derive(Debug, Clone)]
enum Rule {
    Cron {
        // Boxed: a croner pattern is large beside the other rules.
        cron: Box<Cron>,
        interval: bool,
        /// The expression matches no date at all (`0 0 30 2 *`), found once at parse time.
        never: bool,
    },
    /// Milliseconds between fires, at least a second.
    Every {
        period: i64,
    },
    At {
        at: Timestamp,
    },
}

/// The shortest `@every` period.
const MIN_PERIOD_MS: i64 = 1000;

/// The text after `word` and some space when `expression` starts with it (`@every 90s` → `90s`, `@every` → ``).
fn keyword<'a>(expression: &'a str, word: &str) -> Option<&'a str> {
    let rest = expression.trim().strip_prefix(word)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

/// Checks that `timezone` is a known IANA time zone name (for a task without a cron expression).
pub fn validate_timezone(timezone: &str) -> Result<()> {
    parse_timezone(timezone).map(|_| ())
}

fn parse_timezone(timezone: &str) -> Result<Tz> {
    timezone.parse().map_err(|_| Error::UnknownTimeZone { timezone: timezone.to_owned() })
}

impl Schedule {
    /// Parses a 6-field (seconds first), 5-field (second 0) or macro (`@daily`, …) expression, `@every <duration>`
    /// or `@at <instant>`, in an IANA time zone.
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule> {
        let tz = parse_timezone(timezone)?;
        let invalid = |reason: String| Error::InvalidExpression { expression: expression.to_owned(), reason };
        let rule = if let Some(period) = keyword(expression, "@every") {
            let period = jobs_model::parse_duration(period).map_err(invalid)?;
            let period = jobs_model::millis_i64(period);
            if period < MIN_PERIOD_MS {
                return Err(invalid("`@every` needs a period of at least 1s".to_owned()));
            }
            Rule::Every { period }
        } else if let Some(instant) = keyword(expression, "@at") {
            let at = Timestamp::parse_rfc3339(instant).ok_or_else(|| {
                invalid(format!(
                    "`{instant}` is not an RFC 3339 instant with an offset, such as `2026-12-24T18:00:00+01:00`"
                ))
            })?;
            Rule::At { at }
        } else {
            let parsed = expression::parse(expression).map_err(invalid)?;
            // Without a year field the calendar repeats every 400 years, so an expression that matches nothing
            // from 1970 up to croner's search limit (year 5000) never matches at all.
            let never = parsed.cron.find_next_occurrence(&DateTime::UNIX_EPOCH.naive_utc(), true).is_err();
            Rule::Cron { cron: Box::new(parsed.cron), interval: parsed.interval, never }
        };
        Ok(Schedule { expression: expression.to_owned(), timezone: timezone.to_owned(), tz, rule })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// Whether the expression is an interval rather than fixed-time (see the type's documentation); `@every` is one.
    pub fn is_interval(&self) -> bool {
        match self.rule {
            Rule::Cron { interval, .. } => interval,
            Rule::Every { .. } => true,
            Rule::At { .. } => false,
        }
    }

    /// Whether the schedule fires once (`@at`).
    pub fn is_one_shot(&self) -> bool {
        matches!(self.rule, Rule::At { .. })
    }

    /// The first fire of a schedule that starts at `now` (a task created or enabled): the first one after `now`,
    /// or, for an `@at` instant already past, that instant when `catch_up` (the task's misfire policy fires missed
    /// slots) and none otherwise.
    pub fn first_fire(&self, now: Timestamp, catch_up: bool) -> Option<Timestamp> {
        match self.rule {
            Rule::At { at } if at <= now => catch_up.then_some(at),
            _ => self.next_after(now),
        }
    }

    /// The first fire strictly after `after`; `None` if the expression never fires again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.rule {
            Rule::Cron { never: true, .. } => None,
            Rule::Cron { interval, .. } => self.next_cron_after(after, *interval),
            Rule::Every { period } => after.as_millis().checked_add(*period).map(Timestamp::from_millis),
            Rule::At { at } => (*at > after).then_some(*at),
        }
    }

    fn next_cron_after(&self, after: Timestamp, interval: bool) -> Option<Timestamp> {
        // Fires are whole seconds, so the first one after `after` is the first one after its second.
        let after = after.as_millis().div_euclid(1000);
        let wall = DateTime::<Utc>::from_timestamp(after, 0)?.with_timezone(&self.tz).naive_local();
        let mut next = self.walk(wall, false, after);
        if interval
            && let LocalResult::Ambiguous(earlier, later) = self.tz.from_local_datetime(&wall)
            && earlier.timestamp() == after
        {
            // `after` is on the first pass of a repeated range. The walk above passes the range once, so the
            // second pass, still ahead, gets a walk of its own from its start; the earlier answer wins.
            if let Some((start, _)) = self.repeated_range(earlier, later)
                && let Some(second_pass) = self.walk(start, true, after)
            {
                next = Some(next.map_or(second_pass, |next| next.min(second_pass)));
            }
        }
        next.and_then(|seconds| seconds.checked_mul(1000)).map(Timestamp::from_millis)
    }

    /// The next `count` fires (at most [`MAX_PREVIEW`]) strictly after `from`, as RFC 3339 in the schedule's offset
    /// (`2026-03-08T03:00:00-04:00`, `+00:00` for UTC): the planner's fires, through [`Schedule::next_after`].
    pub fn preview(&self, from: Timestamp, count: usize) -> Vec<String> {
        let count = count.min(MAX_PREVIEW);
        let mut fires = Vec::with_capacity(count);
        let mut at = from;
        while fires.len() < count {
            let Some(next) = self.next_after(at) else { break };
            fires.push(self.format(next));
            at = next;
        }
        fires
    }

    /// `at` as RFC 3339 in the schedule's time zone.
    fn format(&self, at: Timestamp) -> String {
        match DateTime::<Utc>::from_timestamp_millis(at.as_millis()) {
            Some(utc) => utc.with_timezone(&self.tz).to_rfc3339_opts(SecondsFormat::AutoSi, false),
            None => at.to_string(),
        }
    }

    /// Walks the wall clock from `from` to the first match that resolves to an instant after `after` (in seconds),
    /// applying the DST rules of the type's documentation.
    fn walk(&self, from: NaiveDateTime, inclusive: bool, after: i64) -> Option<i64> {
        let Rule::Cron { cron, interval, .. } = &self.rule else { return None };
        let interval = *interval;
        let mut cursor = from;
        let mut inclusive = inclusive;
        for _ in 0..MAX_WALK_STEPS {
            // Croner fails past its search limit (year 5000): the expression does not fire again.
            let wall = cron.find_next_occurrence(&cursor, inclusive).ok()?;
            cursor = wall;
            inclusive = false;
            match self.tz.from_local_datetime(&wall) {
                LocalResult::Single(at) => {
                    if at.timestamp() > after {
                        return Some(at.timestamp());
                    }
                }
                LocalResult::Ambiguous(earlier, later) => {
                    if earlier.timestamp() > after {
                        return Some(earlier.timestamp());
                    }
                    if interval {
                        if later.timestamp() > after {
                            return Some(later.timestamp());
                        }
                    } else if let Some((_, end)) = self.repeated_range(earlier, later) {
                        // A fixed-time fire runs on the first pass only: skip the rest of the second one.
                        cursor = end;
                        inclusive = true;
                    }
                }
                LocalResult::None => {
                    // A wall-clock time skipped by the clock jumping forward.
                    let Some(end) = GapInfo::new(&wall, &self.tz).and_then(|gap| gap.end) else { continue };
                    if !interval && end.timestamp() > after {
                        return Some(end.timestamp());
                    }
                    cursor = end.naive_local();
                    inclusive = true;
                }
            }
        }
        None
    }

    /// The wall-clock range `[start, end)` that happens twice, given the two instants of one time in it.
    fn repeated_range(&self, earlier: DateTime<Tz>, later: DateTime<Tz>) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let before = earlier.offset().fix().local_minus_utc();
        let after = later.offset().fix().local_minus_utc();
        // The clock goes back at the first second in (earlier, later] whose offset is no longer `before`.
        let (mut low, mut high) = (earlier.timestamp(), later.timestamp());
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.offset_at(middle)? == before {
                low = middle;
            } else {
                high = middle;
            }
        }
        let wall = |offset: i32| DateTime::<Utc>::from_timestamp(high + i64::from(offset), 0).map(|at| at.naive_utc());
        Some((wall(after)?, wall(before)?))
    }

    /// The UTC offset in seconds of the time zone at `seconds` after the epoch.
    fn offset_at(&self, seconds: i64) -> Option<i32> {
        let utc = DateTime::<Utc>::from_timestamp(seconds, 0)?;
        Some(self.tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc())
    }
}
