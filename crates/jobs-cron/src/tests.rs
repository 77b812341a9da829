//! Fire-time tables (seconds, macros, time zones, DST, day fields), errors, and misfire planning.

use jobs_model::{ErrorKind, MisfirePolicy, Timestamp};

use crate::{Error, Plan, Schedule, plan};

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|| panic!("bad test time {text}"))
}

/// The fires of `expression` in `timezone` after `from`, as the preview shows them.
#[track_caller]
fn check(expression: &str, timezone: &str, from: &str, expected: &[&str]) {
    let schedule = Schedule::parse(expression, timezone).unwrap();
    let fires = schedule.preview(at(from), expected.len());
    assert_eq!(fires, expected, "`{expression}` in {timezone} after {from}");
    // The preview prints what next_after returns, and each fire parses back to that instant.
    let mut after = at(from);
    for text in expected {
        let next = schedule.next_after(after).unwrap();
        assert_eq!(next, at(text), "`{expression}` in {timezone} after {after}");
        after = next;
    }
}

#[test]
fn seconds_field() {
    check(
        "*/15 * * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:00:15+00:00",
            "2026-01-01T00:00:30+00:00",
            "2026-01-01T00:00:45+00:00",
            "2026-01-01T00:01:00+00:00",
        ],
    );
    check("30 0 2 * * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T02:00:30+00:00", "2026-01-02T02:00:30+00:00"]);
    // The seed's example.
    check("0 0 2 * * *", "UTC", "2026-01-01T02:00:00Z", &["2026-01-02T02:00:00+00:00"]);
    check(
        "* * * * * *",
        "UTC",
        "2026-01-01T00:00:00.500Z",
        &["2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"],
    );
}

#[test]
fn five_fields_fire_at_second_zero() {
    check(
        "*/5 * * * *",
        "UTC",
        "2026-01-01T00:01:00Z",
        &["2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00", "2026-01-01T00:15:00+00:00"],
    );
    check("30 9 * * 1-5", "UTC", "2026-01-02T10:00:00Z", &["2026-01-05T09:30:00+00:00", "2026-01-06T09:30:00+00:00"]);
    check("0 12 * jan,Feb mon", "UTC", "2026-01-01T00:00:00Z", &["2026-01-05T12:00:00+00:00"]);
    check("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", &["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]);
    check("0 0 L * *", "UTC", "2026-02-01T00:00:00Z", &["2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00"]);
}

#[test]
fn strictly_after() {
    let schedule = Schedule::parse("0 * * * * *", "UTC").unwrap();
    assert_eq!(schedule.next_after(at("2026-01-01T10:00:00Z")), Some(at("2026-01-01T10:01:00Z")));
    assert_eq!(schedule.next_after(at("2026-01-01T09:59:59.999Z")), Some(at("2026-01-01T10:00:00Z")));
    assert_eq!(schedule.next_after(at("1969-12-31T23:59:30Z")), Some(at("1970-01-01T00:00:00Z")));
}

#[test]
fn macros() {
    let from = "2026-01-01T00:00:00Z";
    check("@yearly", "UTC", from, &["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"]);
    check("@annually", "UTC", from, &["2027-01-01T00:00:00+00:00"]);
    check("@monthly", "UTC", from, &["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"]);
    check("@weekly", "UTC", from, &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]);
    check("@daily", "UTC", from, &["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]);
    check("@midnight", "UTC", from, &["2026-01-02T00:00:00+00:00"]);
    check("@hourly", "UTC", from, &["2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]);
    check(" @DAILY ", "Asia/Shanghai", from, &["2026-01-02T00:00:00+08:00"]);
}

#[test]
fn time_zones() {
    check("0 0 9 * * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-01T09:00:00+00:00"]);
    check("0 0 9 * * *", "Asia/Shanghai", "2026-01-01T00:00:00Z", &["2026-01-01T09:00:00+08:00"]);
    check("0 0 9 * * *", "Asia/Shanghai", "2026-01-01T02:00:00Z", &["2026-01-02T09:00:00+08:00"]);
    check("0 0 9 * * *", "America/New_York", "2026-07-01T00:00:00Z", &["2026-07-01T09:00:00-04:00"]);
    check("0 0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00+05:30"]);
    // The day of the week is the zone's: Monday 00:30 in Shanghai is Sunday in UTC.
    check("0 30 0 * * 1", "Asia/Shanghai", "2026-01-01T00:00:00Z", &["2026-01-05T00:30:00+08:00"]);
    let shanghai = Schedule::parse("@daily", "Asia/Shanghai").unwrap();
    let utc = Schedule::parse("@daily", "UTC").unwrap();
    let from = at("2026-01-01T12:00:00Z");
    assert_eq!(shanghai.next_after(from), Some(at("2026-01-01T16:00:00Z")));
    assert_eq!(utc.next_after(from), Some(at("2026-01-02T00:00:00Z")));
    assert_eq!((shanghai.expression(), shanghai.timezone()), ("@daily", "Asia/Shanghai"));
}

/// 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT.
#[test]
fn spring_forward_new_york() {
    let ny = "America/New_York";
    // A fixed time in the skipped hour runs once, just after the jump.
    check(
        "0 30 2 * * *",
        ny,
        "2026-03-07T12:00:00Z",
        &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"],
    );
    // A list of hours is fixed-time too (croner would skip 02:30 on that day).
    check(
        "0 30 2,14 * * *",
        ny,
        "2026-03-07T12:00:00Z",
        &[
            "2026-03-07T14:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T14:30:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ],
    );
    // Several skipped fires, and a fire at the jump itself, run once.
    check("0 15,45 2 * * *", ny, "2026-03-08T05:00:00Z", &["2026-03-08T03:00:00-04:00", "2026-03-09T02:15:00-04:00"]);
    check(
        "0 0,30 2,3 * * *",
        ny,
        "2026-03-08T05:00:00Z",
        &["2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:00:00-04:00"],
    );
    // Intervals keep their rhythm: the skipped slots do not exist.
    check(
        "0 */30 * * * *",
        ny,
        "2026-03-08T06:00:00Z",
        &["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"],
    );
    check(
        "* * * * * *",
        ny,
        "2026-03-08T06:59:58Z",
        &["2026-03-08T01:59:59-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:01-04:00"],
    );
    check("@hourly", ny, "2026-03-08T06:30:00Z", &["2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]);
    check("@daily", ny, "2026-03-07T12:00:00Z", &["2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"]);
}

/// 2026-11-01 in New York: 02:00 EDT goes back to 01:00 EST, so 01:00-01:59 happens twice.
#[test]
fn fall_back_new_york() {
    let ny = "America/New_York";
    // A fixed time in the repeated hour runs once, on the first pass.
    check("0 30 1 * * *", ny, "2026-10-31T12:00:00Z", &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]);
    check(
        "0 30 1,13 * * *",
        ny,
        "2026-10-31T12:00:00Z",
        &["2026-10-31T13:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T13:30:00-05:00"],
    );
    // Asked from the second pass, it does not run again that day.
    check("0 30 1 * * *", ny, "2026-11-01T06:00:00Z", &["2026-11-02T01:30:00-05:00"]);
    check("0 0-59 1 * * *", ny, "2026-11-01T06:00:00Z", &["2026-11-02T01:00:00-05:00"]);
    // Intervals run on both passes: distinct instants, in order.
    check(
        "0 */30 * * * *",
        ny,
        "2026-11-01T04:00:00Z",
        &[
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    );
    check(
        "* * * * * *",
        ny,
        "2026-11-01T05:59:58Z",
        &["2026-11-01T01:59:59-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:00:01-05:00"],
    );
    check("0 * * * * *", ny, "2026-11-01T06:10:30Z", &["2026-11-01T01:11:00-05:00"]);
    check(
        "@hourly",
        ny,
        "2026-11-01T04:30:00Z",
        &["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"],
    );
}

/// 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST; 2026-10-25: 03:00 CEST goes back to 02:00 CET.
#[test]
fn dst_berlin() {
    let berlin = "Europe/Berlin";
    check("0 30 2 * * *", berlin, "2026-03-28T12:00:00Z", &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]);
    check("0 30 2 * * *", berlin, "2026-10-24T12:00:00Z", &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]);
    check(
        "0 */20 2 * * *",
        berlin,
        "2026-10-25T00:00:00Z",
        &[
            "2026-10-25T02:20:00+02:00",
            "2026-10-25T02:40:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:20:00+01:00",
            "2026-10-25T02:40:00+01:00",
            "2026-10-26T02:00:00+01:00",
        ],
    );
    check(
        "0 */20 2 * * *",
        berlin,
        "2026-03-29T00:00:00Z",
        &["2026-03-30T02:00:00+02:00", "2026-03-30T02:20:00+02:00"],
    );
}

/// Asked from any instant, `next_after` agrees with the sequence walked fire by fire: no fire is missed or
/// repeated around a DST change.
#[test]
fn next_after_is_consistent_across_dst() {
    let cases = [
        ("America/New_York", "2026-03-08T05:00:00Z"),
        ("America/New_York", "2026-11-01T03:00:00Z"),
        ("Europe/Berlin", "2026-03-29T00:00:00Z"),
        ("Europe/Berlin", "2026-10-24T23:00:00Z"),
        ("Australia/Lord_Howe", "2026-04-04T14:00:00Z"),
    ];
    let expressions = ["*/7 * * * * *", "0 */10 * * * *", "0 30 1,2 * * *", "0 0-59/20 1,2 * * *", "13 * 2 * * *"];
    for (timezone, start) in cases {
        for expression in expressions {
            let schedule = Schedule::parse(expression, timezone).unwrap();
            let start = at(start);
            let end = start.add_millis(5 * 3_600_000);
            let mut fires = vec![];
            let mut cursor = schedule.next_after(start.add_millis(-1)).unwrap();
            while cursor <= end {
                fires.push(cursor);
                cursor = schedule.next_after(cursor).unwrap();
            }
            fires.push(cursor);
            assert!(fires.windows(2).all(|pair| pair[0] < pair[1]), "`{expression}` in {timezone}");
            let mut probe = start;
            while probe <= end {
                let expected = fires.iter().copied().find(|fire| *fire > probe);
                assert_eq!(schedule.next_after(probe), expected, "`{expression}` in {timezone} after {probe}");
                probe = probe.add_millis(6_999);
            }
        }
    }
}

#[test]
fn day_fields_combine_with_or() {
    // The 13th, or any Friday.
    check(
        "0 0 13 * 5",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-02T00:00:00+00:00",
            "2026-01-09T00:00:00+00:00",
            "2026-01-13T00:00:00+00:00",
            "2026-01-16T00:00:00+00:00",
        ],
    );
    // Either field alone restricts alone.
    check("0 0 13 * *", "UTC", "2026-01-01T00:00:00Z", &["2026-01-13T00:00:00+00:00", "2026-02-13T00:00:00+00:00"]);
    check("0 0 * * FRI", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00"]);
    check("0 0 ? * 5", "UTC", "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00+00:00"]);
    // Sunday is 0 or 7.
    check("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00+00:00"]);
}

#[test]
fn never_fires() {
    for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 0 30 2 *"] {
        let schedule = Schedule::parse(expression, "UTC").unwrap();
        assert_eq!(schedule.next_after(at("2026-01-01T00:00:00Z")), None, "{expression}");
        assert_eq!(schedule.preview(at("2026-01-01T00:00:00Z"), 5), Vec::<String>::new());
    }
}

#[test]
fn extreme_instants() {
    let schedule = Schedule::parse("* * * * * *", "America/New_York").unwrap();
    assert_eq!(schedule.next_after(Timestamp::from_millis(i64::MAX)), None);
    assert_eq!(schedule.next_after(Timestamp::from_millis(i64::MIN)), None);
    // Years 97,000 and -93,000 are valid for chrono; croner searches the years 1 to 5000.
    assert_eq!(schedule.next_after(Timestamp::from_millis(3_000_000_000_000_000)), None);
    let year_one = at("0001-01-01T00:00:00Z");
    assert!(schedule.next_after(Timestamp::from_millis(-3_000_000_000_000_000)).is_some_and(|next| next > year_one));
    // Croner searches up to the year 5000.
    let yearly = Schedule::parse("@yearly", "UTC").unwrap();
    assert_eq!(yearly.next_after(at("4999-06-01T00:00:00Z")), Some(at("5000-01-01T00:00:00Z")));
    assert_eq!(yearly.next_after(at("5000-01-01T00:00:00Z")), None);
    assert_eq!(schedule.preview(at("2026-01-01T00:00:00Z"), usize::MAX).len(), crate::MAX_PREVIEW);
}

#[track_caller]
fn check_error(expression: &str, timezone: &str, expected: &str) {
    let error = Schedule::parse(expression, timezone).unwrap_err();
    assert_eq!(error.to_string(), expected);
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn invalid_input() {
    check_error(
        "x y",
        "UTC",
        "invalid cron expression `x y`: expected 5 or 6 fields (or a macro such as @daily), got 2",
    );
    check_error("", "UTC", "invalid cron expression ``: the expression is empty");
    check_error(
        "* * * * * * *",
        "UTC",
        "invalid cron expression `* * * * * * *`: expected 5 or 6 fields (or a macro such as @daily), got 7",
    );
    check_error(
        "@every_minute",
        "UTC",
        "invalid cron expression `@every_minute`: unknown macro (expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)",
    );
    check_error("61 * * * *", "UTC", "invalid cron expression `61 * * * *`: minute field `61`: number out of bounds");
    check_error(
        "0 0 32 * *",
        "UTC",
        "invalid cron expression `0 0 32 * *`: day-of-month field `32`: number out of bounds",
    );
    check_error("0 0 * 13 *", "UTC", "invalid cron expression `0 0 * 13 *`: month field `13`: number out of bounds");
    check_error("0 0 * * 8", "UTC", "invalid cron expression `0 0 * * 8`: day-of-week field `8`: number out of bounds");
    check_error("*/0 * * * *", "UTC", "invalid cron expression `*/0 * * * *`: minute field `*/0`: step cannot be zero");
    check_error("5-2 * * * *", "UTC", "invalid cron expression `5-2 * * * *`: minute field `5-2`: range out of bounds");
    check_error(
        "1,,2 * * * *",
        "UTC",
        "invalid cron expression `1,,2 * * * *`: minute field `1,,2` has an empty list item",
    );
    check_error(
        "0 MON * * *",
        "UTC",
        "invalid cron expression `0 MON * * *`: hour field `MON` has an unexpected `MON`",
    );
    check_error(
        "0 0 * MON *",
        "UTC",
        "invalid cron expression `0 0 * MON *`: month field `MON` has an unexpected `MON`",
    );
    check_error(
        "0 0 0 13 * +5",
        "UTC",
        "invalid cron expression `0 0 0 13 * +5`: day-of-week field `+5`: the `+` modifier is not supported (day fields combine with OR)",
    );
    check_error("0 0 * * *", "Mars/Base", "unknown time zone `Mars/Base`");
    check_error("0 0 * * *", "", "unknown time zone ``");
    assert!(matches!(Schedule::parse("0 0 * * *", "utc"), Err(Error::UnknownTimeZone { .. })));
    assert_eq!(crate::validate_timezone("Asia/Shanghai"), Ok(()));
    assert_eq!(crate::validate_timezone("Mars/Base").unwrap_err().to_string(), "unknown time zone `Mars/Base`");
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        "*/61 * * * *",
        "0-59/60 * * * *",
        "0 0 LW * *",
        "0 0 15W * *",
        "0 0 * * 5#5",
        "0 0 * * 5L",
        "0 0 * 2 5#5",
        "59 59 23 31 12 *",
        "0 0 0 29 2 1",
        "- * * * *",
        "*/ * * * *",
        "1-/2 * * * *",
        "0 0 0 L 2 *",
        "0 0 #1 * *",
        "@",
        "0 0 * * SUN-SAT",
        "0 0 * * MON-SUN",
        "\u{0}",
        "١ * * * *",
    ];
    for expression in odd {
        for timezone in ["UTC", "America/New_York", "Pacific/Apia"] {
            if let Ok(schedule) = Schedule::parse(expression, timezone) {
                let fires = schedule.preview(at("2011-12-28T00:00:00Z"), 3);
                assert!(fires.len() <= 3, "{expression}");
            }
        }
    }
}

// Planning: every minute, in UTC, on 2026-01-01.

fn t(time: &str) -> Timestamp {
    at(&format!("2026-01-01T{time}Z"))
}

fn ts(times: &[&str]) -> Vec<Timestamp> {
    times.iter().map(|time| t(time)).collect()
}

/// `plan` with a 60 s grace and a horizon 500 ms after `now`.
#[track_caller]
#[expect(clippy::too_many_arguments, reason = "one row of a table: the inputs, then the expected plan")]
fn check_plan(
    policy: MisfirePolicy,
    next_fire: &str,
    now: &str,
    max_slots: usize,
    fires: &[&str],
    missed: &[&str],
    next: &str,
    folded: u64,
) {
    let schedule = Schedule::parse("0 * * * * *", "UTC").unwrap();
    let now = t(now);
    let planned = plan(&schedule, t(next_fire), now, now.add_millis(500), 60_000, policy, max_slots);
    let expected = Plan { fires: ts(fires), missed: ts(missed), folded, next: Some(t(next)) };
    assert_eq!(planned, expected, "{policy} from {next_fire} at {now}");
}

#[test]
fn plan_on_time() {
    for policy in [MisfirePolicy::FireOnce, MisfirePolicy::FireAll, MisfirePolicy::Skip] {
        // Not due yet.
        check_plan(policy, "10:00:00", "09:59:00", 100, &[], &[], "10:00:00", 0);
        // Within the look-ahead.
        check_plan(policy, "10:00:00", "09:59:59.600", 100, &["10:00:00"], &[], "10:01:00", 0);
        // Late, but under the grace period: fired whatever the policy.
        check_plan(policy, "10:00:00", "10:00:59.999", 100, &["10:00:00", "10:01:00"], &[], "10:02:00", 0);
    }
}

#[test]
fn plan_grace_boundary() {
    // Exactly the grace period late is a misfire.
    check_plan(MisfirePolicy::Skip, "10:00:00", "10:01:00", 100, &["10:01:00"], &["10:00:00"], "10:02:00", 0);
    check_plan(MisfirePolicy::FireOnce, "10:00:00", "10:01:00", 100, &["10:00:00", "10:01:00"], &[], "10:02:00", 0);
    check_plan(MisfirePolicy::FireAll, "10:00:00", "10:01:00", 100, &["10:00:00", "10:01:00"], &[], "10:02:00", 0);
}

#[test]
fn plan_misfire_policies() {
    // Down from 10:00 to 10:05:30: 10:00 to 10:04 are misfires, 10:05 is 30 s late.
    check_plan(MisfirePolicy::FireOnce, "10:00:00", "10:05:30", 100, &["10:04:00", "10:05:00"], &[], "10:06:00", 4);
    check_plan(
        MisfirePolicy::FireAll,
        "10:00:00",
        "10:05:30",
        100,
        &["10:00:00", "10:01:00", "10:02:00", "10:03:00", "10:04:00", "10:05:00"],
        &[],
        "10:06:00",
        0,
    );
    check_plan(
        MisfirePolicy::Skip,
        "10:00:00",
        "10:05:30",
        100,
        &["10:05:00"],
        &["10:00:00", "10:01:00", "10:02:00", "10:03:00", "10:04:00"],
        "10:06:00",
        0,
    );
}

#[test]
fn plan_caps_slots() {
    // Five misfires and one on-time slot, at most three slots planned.
    check_plan(
        MisfirePolicy::FireAll,
        "10:00:00",
        "10:05:30",
        3,
        &["10:02:00", "10:03:00", "10:04:00"],
        &[],
        "10:05:00",
        2,
    );
    check_plan(
        MisfirePolicy::Skip,
        "10:00:00",
        "10:05:30",
        3,
        &[],
        &["10:02:00", "10:03:00", "10:04:00"],
        "10:05:00",
        2,
    );
    check_plan(MisfirePolicy::FireOnce, "10:00:00", "10:05:30", 3, &["10:04:00", "10:05:00"], &[], "10:06:00", 4);
    check_plan(MisfirePolicy::FireOnce, "10:00:00", "10:05:30", 1, &["10:04:00"], &[], "10:05:00", 4);
    // Zero is taken as one, so planning always moves on.
    check_plan(MisfirePolicy::FireAll, "10:00:00", "10:00:00", 0, &["10:00:00"], &[], "10:01:00", 0);
    // On-time slots beyond the cap are left for the next plan.
    let schedule = Schedule::parse("* * * * * *", "UTC").unwrap();
    let planned = plan(&schedule, t("10:00:00"), t("10:00:00"), t("10:00:10"), 60_000, MisfirePolicy::FireAll, 4);
    assert_eq!(planned.fires, ts(&["10:00:00", "10:00:01", "10:00:02", "10:00:03"]));
    assert_eq!(planned.next, Some(t("10:00:04")));
}

#[test]
fn plan_after_a_day_down() {
    // Every second, down for a day: 86,341 misfires; the newest are found stepping back, the older only counted.
    let schedule = Schedule::parse("* * * * * *", "UTC").unwrap();
    let next_fire = at("2026-01-01T00:00:00Z");
    let now = at("2026-01-02T00:00:00Z");
    let horizon = now.add_millis(1000);
    let run = |policy| plan(&schedule, next_fire, now, horizon, 60_000, policy, 100);

    let all = run(MisfirePolicy::FireAll);
    assert_eq!(all.fires.len(), 100);
    assert_eq!(all.fires.first(), Some(&at("2026-01-01T23:57:21Z")));
    assert_eq!(all.fires.last(), Some(&at("2026-01-01T23:59:00Z")));
    assert!(all.fires.windows(2).all(|pair| pair[1].millis_since(pair[0]) == 1000));
    assert_eq!(all.next, Some(at("2026-01-01T23:59:01Z")));

    assert_eq!(all.folded, 86_241, "the misfires older than the newest 100 are counted");

    let once = run(MisfirePolicy::FireOnce);
    // The catch-up fire, then the 61 on-time slots from 23:59:01 to 00:00:01.
    assert_eq!(once.fires.len(), 62);
    assert_eq!(once.folded, 86_340, "every misfire but the one fired is counted");
    assert_eq!(once.fires[..2], [at("2026-01-01T23:59:00Z"), at("2026-01-01T23:59:01Z")]);
    assert_eq!(once.fires.last(), Some(&at("2026-01-02T00:00:01Z")));
    assert_eq!(once.next, Some(at("2026-01-02T00:00:02Z")));

    let skip = run(MisfirePolicy::Skip);
    assert_eq!(skip.missed.len(), 100);
    assert_eq!(skip.folded, 86_241);
    assert_eq!(skip.missed.last(), Some(&at("2026-01-01T23:59:00Z")));
    assert!(skip.fires.is_empty());
    assert_eq!(skip.next, Some(at("2026-01-01T23:59:01Z")));
}

/// The newest misfires found by stepping back match the ones walked forward, for sparse and irregular schedules
/// and across DST changes.
#[test]
fn plan_steps_back_like_it_walks_forward() {
    let cases = [
        ("* * 1 * * *", "UTC", "2026-01-01T01:00:00Z", "2026-01-04T12:00:00Z"),
        ("0 0 9 * * 1-5", "UTC", "2026-01-01T09:00:00Z", "2026-03-01T00:00:00Z"),
        ("*/7 * * * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T06:30:00Z"),
        ("0 */10 * * * *", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"),
        ("0 30 2 * * *", "America/New_York", "2026-03-01T07:30:00Z", "2026-03-12T00:00:00Z"),
        ("0 0 0 29 2 *", "UTC", "2000-02-29T00:00:00Z", "2026-01-01T00:00:00Z"),
    ];
    for (expression, timezone, first, now) in cases {
        let schedule = Schedule::parse(expression, timezone).unwrap();
        let (first, now) = (at(first), at(now));
        let cutoff = now.add_millis(-60_000);
        let mut all = vec![];
        let mut cursor = Some(first);
        while let Some(slot) = cursor
            && slot <= cutoff
        {
            all.push(slot);
            cursor = schedule.next_after(slot);
        }
        for max in [1, 2, 5, all.len() - 1] {
            let planned = plan(&schedule, first, now, now, 60_000, MisfirePolicy::FireAll, max);
            assert_eq!(planned.fires, all[all.len() - max..], "`{expression}` max {max}");
            assert_eq!(planned.next, schedule.next_after(cutoff), "`{expression}` max {max}");
        }
        let once = plan(&schedule, first, now, now, 60_000, MisfirePolicy::FireOnce, 1);
        assert_eq!(once.fires, all[all.len() - 1..], "`{expression}`");
    }
}

#[test]
fn plan_when_the_schedule_ends() {
    let schedule = Schedule::parse("0 0 30 2 *", "UTC").unwrap();
    let planned = plan(&schedule, t("10:00:00"), t("10:00:00"), t("10:00:01"), 60_000, MisfirePolicy::FireOnce, 10);
    assert_eq!(planned, Plan { fires: ts(&["10:00:00"]), missed: vec![], folded: 0, next: None });
}

/// Other shapes of gap: Santiago springs forward at midnight, and Samoa skipped 2011-12-30 entirely.
#[test]
fn gaps_at_midnight_and_of_a_whole_day() {
    check(
        "@daily",
        "America/Santiago",
        "2026-09-04T12:00:00Z",
        &["2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"],
    );
    check(
        "0 0 12 * * *",
        "Pacific/Apia",
        "2011-12-28T00:00:00Z",
        &[
            "2011-12-28T12:00:00-10:00",
            "2011-12-29T12:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T12:00:00+14:00",
        ],
    );
    check(
        "@hourly",
        "Pacific/Apia",
        "2011-12-30T09:30:00Z",
        &["2011-12-31T00:00:00+14:00", "2011-12-31T01:00:00+14:00"],
    );
}

#[test]
fn every_fires_a_fixed_period_after_the_previous_fire() {
    // From a start (creation or enable), each fire is the previous one plus the period, in any time zone.
    check(
        "@every 90s",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-01T00:01:30+00:00", "2026-01-01T00:03:00+00:00", "2026-01-01T00:04:30+00:00"],
    );
    check(
        "@every 1h30m",
        "America/New_York",
        "2026-03-08T05:00:00Z",
        &["2026-03-08T01:30:00-05:00", "2026-03-08T04:00:00-04:00", "2026-03-08T05:30:00-04:00"],
    );
    // A start between seconds keeps its milliseconds: the period is exact.
    let schedule = Schedule::parse("@every 2s", "UTC").unwrap();
    assert_eq!(schedule.next_after(at("2026-01-01T00:00:00.250Z")), Some(at("2026-01-01T00:00:02.250Z")));
    assert!(schedule.is_interval() && !schedule.is_one_shot());
    check_error(
        "@every 500ms",
        "UTC",
        "invalid cron expression `@every 500ms`: `@every` needs a period of at least 1s",
    );
    check_error(
        "@every soon",
        "UTC",
        "invalid cron expression `@every soon`: `soon` is not a duration (expected e.g. `30s`, `5m`, `500ms`)",
    );
}

#[test]
fn at_fires_once() {
    check("@at 2026-12-24T18:00:00+01:00", "Europe/Berlin", "2026-12-01T00:00:00Z", &["2026-12-24T18:00:00+01:00"]);
    let schedule = Schedule::parse("@at 2026-12-24T18:00:00+01:00", "UTC").unwrap();
    assert!(schedule.is_one_shot());
    assert_eq!(schedule.next_after(at("2026-12-24T17:00:00Z")), None, "nothing after its instant");
    // Started after its instant: fired at once only when missed slots are caught up.
    let later = at("2026-12-25T00:00:00Z");
    assert_eq!(schedule.first_fire(later, true), Some(at("2026-12-24T17:00:00Z")));
    assert_eq!(schedule.first_fire(later, false), None);
    assert_eq!(schedule.first_fire(at("2026-12-01T00:00:00Z"), false), Some(at("2026-12-24T17:00:00Z")));
    check_error(
        "@at tomorrow",
        "UTC",
        "invalid cron expression `@at tomorrow`: `tomorrow` is not an RFC 3339 instant with an offset, such as \
         `2026-12-24T18:00:00+01:00`",
    );
    // Missed while the scheduler was down: fired once (or recorded missed) and the schedule ends.
    let instant = at("2026-12-24T17:00:00Z");
    let now = instant.add_millis(3_600_000);
    let planned = plan(&schedule, instant, now, now.add_millis(500), 60_000, MisfirePolicy::FireOnce, 100);
    assert_eq!(planned, Plan { fires: vec![instant], missed: vec![], folded: 0, next: None });
    let planned = plan(&schedule, instant, now, now.add_millis(500), 60_000, MisfirePolicy::Skip, 100);
    assert_eq!(planned, Plan { fires: vec![], missed: vec![instant], folded: 0, next: None });
}

/// The examples of the README's daylight-saving rules, as the planner fires them.
#[test]
fn the_readmes_dst_examples() {
    let ny = "America/New_York";
    check("0 30 2 * * *", ny, "2026-03-08T00:00:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]);
    check("0 30 1 * * *", ny, "2026-11-01T00:00:00-04:00", &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]);
    check(
        "0 */30 * * * *",
        ny,
        "2026-03-08T01:00:00-05:00",
        &["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"],
    );
    check(
        "0 */30 * * * *",
        ny,
        "2026-11-01T00:45:00-04:00",
        &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    );
}

#[test]
fn cap_late_keeps_the_newest_late_fires_and_never_one_not_yet_due() {
    let schedule = Schedule::parse("0 * * * * *", "UTC").unwrap();
    // Down from 10:00 to 10:05:30 with a grace of 10 minutes: six late slots, and 10:06 within the look-ahead.
    let now = t("10:05:59.800");
    let mut planned = plan(&schedule, t("10:00:00"), now, now.add_millis(500), 600_000, MisfirePolicy::FireAll, 100);
    assert_eq!(planned.fires.len(), 7);
    let capped = planned.cap_late(now, 2);
    assert_eq!(capped, ts(&["10:00:00", "10:01:00", "10:02:00", "10:03:00"]));
    assert_eq!(planned.fires, ts(&["10:04:00", "10:05:00", "10:06:00"]));
    // No cap left to apply, and zero keeps only what is not yet due.
    assert!(planned.cap_late(now, 2).is_empty());
    assert_eq!(planned.cap_late(now, 0), ts(&["10:04:00", "10:05:00"]));
    assert_eq!(planned.fires, ts(&["10:06:00"]));
}
