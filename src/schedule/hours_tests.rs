//! Unit tests of the working-hours rules.

use chrono::{NaiveDate, TimeZone, Weekday};
use chrono_tz::Tz;

use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous local time")
        .timestamp_millis()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    at(chrono_tz::UTC, y, mo, d, h, mi)
}

fn weekly(day: Weekday, start: &str, end: &str) -> WeeklyInterval {
    WeeklyInterval {
        weekday: day,
        start_minute: parse_hhmm(start, false).unwrap(),
        end_minute: parse_hhmm(end, true).unwrap(),
    }
}

/// Mon–Fri 09:00–12:00 and 13:00–17:00 in `tz`.
fn office(tz: Tz) -> WorkingHours {
    let mut w = Vec::new();
    for day in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ] {
        w.push(weekly(day, "09:00", "12:00"));
        w.push(weekly(day, "13:00", "17:00"));
    }
    WorkingHours {
        tz,
        weekly: w,
        extra: Vec::new(),
    }
}

#[test]
fn parses_and_formats_hhmm() {
    assert_eq!(parse_hhmm("09:30", false), Some(570));
    assert_eq!(parse_hhmm("00:00", false), Some(0));
    assert_eq!(parse_hhmm("23:59", false), Some(1439));
    assert_eq!(parse_hhmm("24:00", true), Some(1440));
    assert_eq!(parse_hhmm("24:00", false), None);
    for bad in [
        "9:30", "09:60", "25:00", "0930", "09-30", "+9:30", "09:3a", "",
    ] {
        assert_eq!(parse_hhmm(bad, true), None, "{bad}");
    }
    assert_eq!(format_hhmm(570), "09:30");
    assert_eq!(format_hhmm(1440), "24:00");
}

#[test]
fn validation_refuses_empty_and_overlapping() {
    let ok = [
        weekly(Weekday::Mon, "09:00", "12:00"),
        weekly(Weekday::Mon, "12:00", "13:00"),
        weekly(Weekday::Tue, "09:00", "12:00"),
    ];
    assert_eq!(validate(&ok, &[]), Ok(()));
    let empty = [weekly(Weekday::Mon, "12:00", "12:00")];
    assert_eq!(validate(&empty, &[]), Err(HoursError::EmptyInterval));
    let overlap = [
        weekly(Weekday::Mon, "09:00", "12:00"),
        weekly(Weekday::Mon, "11:00", "13:00"),
    ];
    assert_eq!(validate(&overlap, &[]), Err(HoursError::Overlap));
    let date = NaiveDate::from_ymd_opt(2030, 1, 5).unwrap();
    let extra = [
        DateInterval {
            date,
            start_minute: 600,
            end_minute: 700,
        },
        DateInterval {
            date,
            start_minute: 650,
            end_minute: 800,
        },
    ];
    assert_eq!(validate(&[], &extra), Err(HoursError::Overlap));
    let many = vec![weekly(Weekday::Mon, "09:00", "10:00"); MAX_INTERVALS + 1];
    assert_eq!(validate(&many, &[]), Err(HoursError::TooMany));
}

#[test]
fn merge_and_subtract() {
    assert_eq!(
        merge(vec![(5, 8), (0, 5), (10, 12)]),
        vec![(0, 8), (10, 12)]
    );
    assert_eq!(
        subtract(&[(0, 10)], &[(2, 3), (5, 7)]),
        vec![(0, 2), (3, 5), (7, 10)]
    );
    assert_eq!(subtract(&[(0, 10)], &[(0, 10)]), vec![]);
    assert_eq!(
        subtract(&[(0, 10), (20, 30)], &[(8, 22)]),
        vec![(0, 8), (22, 30)]
    );
}

#[test]
fn weekly_hours_in_the_time_zone() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let a = Availability {
        hours: Some(office(berlin)),
        time_off: Vec::new(),
    };
    // Monday 2030-01-07, Berlin is UTC+1.
    let nine = at(berlin, 2030, 1, 7, 9, 0);
    assert_eq!(nine, utc(2030, 1, 7, 8, 0));
    assert_eq!(a.verdict(nine, nine + 50 * MIN), Verdict::Bookable);
    assert_eq!(
        a.verdict(nine - 15 * MIN, nine + 35 * MIN),
        Verdict::OutsideHours
    );
    // Across the lunch break.
    let eleven_30 = at(berlin, 2030, 1, 7, 11, 30);
    assert_eq!(
        a.verdict(eleven_30, eleven_30 + HOUR),
        Verdict::OutsideHours
    );
    // Saturday.
    let sat = at(berlin, 2030, 1, 12, 10, 0);
    assert_eq!(a.verdict(sat, sat + HOUR), Verdict::OutsideHours);
    // The day's open intervals.
    let day = a.bookable_intervals(at(berlin, 2030, 1, 7, 0, 0), at(berlin, 2030, 1, 8, 0, 0));
    assert_eq!(
        day,
        vec![
            (nine, at(berlin, 2030, 1, 7, 12, 0)),
            (at(berlin, 2030, 1, 7, 13, 0), at(berlin, 2030, 1, 7, 17, 0))
        ]
    );
}

#[test]
fn daylight_saving_keeps_local_hours() {
    let ny: Tz = "America/New_York".parse().unwrap();
    let a = Availability {
        hours: Some(office(ny)),
        time_off: Vec::new(),
    };
    // Clocks go forward on Sunday 2030-03-10: 09:00 is 14:00 UTC before, 13:00 after.
    let before = at(ny, 2030, 3, 8, 9, 0);
    let after = at(ny, 2030, 3, 11, 9, 0);
    assert_eq!(before, utc(2030, 3, 8, 14, 0));
    assert_eq!(after, utc(2030, 3, 11, 13, 0));
    assert_eq!(a.verdict(before, before + HOUR), Verdict::Bookable);
    assert_eq!(a.verdict(after, after + HOUR), Verdict::Bookable);
    // 14:00 UTC on the Monday after is 10:00 local: inside; 13:00 UTC the Friday
    // before is 08:00 local: outside.
    assert_eq!(
        a.verdict(utc(2030, 3, 11, 14, 0), utc(2030, 3, 11, 15, 0)),
        Verdict::Bookable
    );
    assert_eq!(
        a.verdict(utc(2030, 3, 8, 13, 0), utc(2030, 3, 8, 14, 0)),
        Verdict::OutsideHours
    );
}

#[test]
fn autumn_change_keeps_local_hours() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let a = Availability {
        hours: Some(office(berlin)),
        time_off: Vec::new(),
    };
    // Clocks go back on Sunday 2030-10-27: 09:00 is 07:00 UTC before, 08:00 after.
    assert_eq!(
        a.verdict(utc(2030, 10, 25, 7, 0), utc(2030, 10, 25, 8, 0)),
        Verdict::Bookable
    );
    assert_eq!(
        a.verdict(utc(2030, 10, 28, 7, 0), utc(2030, 10, 28, 8, 0)),
        Verdict::OutsideHours
    );
    assert_eq!(
        a.verdict(utc(2030, 10, 28, 8, 0), utc(2030, 10, 28, 9, 0)),
        Verdict::Bookable
    );
}

#[test]
fn extra_hours_and_midnight() {
    let tz = chrono_tz::UTC;
    let mut hours = office(tz);
    hours.extra.push(DateInterval {
        date: NaiveDate::from_ymd_opt(2030, 1, 12).unwrap(),
        start_minute: 600,
        end_minute: 720,
    });
    // Late shift Monday 20:00–24:00 joins Tuesday 00:00–02:00.
    hours.weekly.push(weekly(Weekday::Mon, "20:00", "24:00"));
    hours.weekly.push(weekly(Weekday::Tue, "00:00", "02:00"));
    let a = Availability {
        hours: Some(hours),
        time_off: Vec::new(),
    };
    assert_eq!(
        a.verdict(utc(2030, 1, 12, 10, 0), utc(2030, 1, 12, 11, 0)),
        Verdict::Bookable
    );
    assert_eq!(
        a.verdict(utc(2030, 1, 19, 10, 0), utc(2030, 1, 19, 11, 0)),
        Verdict::OutsideHours
    );
    assert_eq!(
        a.verdict(utc(2030, 1, 7, 23, 30), utc(2030, 1, 8, 0, 30)),
        Verdict::Bookable
    );
}

#[test]
fn time_off_wins_and_applies_without_hours() {
    let off = (utc(2030, 1, 7, 13, 0), utc(2030, 1, 8, 0, 0));
    let a = Availability {
        hours: Some(office(chrono_tz::UTC)),
        time_off: vec![off],
    };
    assert_eq!(
        a.verdict(utc(2030, 1, 7, 14, 0), utc(2030, 1, 7, 15, 0)),
        Verdict::TimeOff(off.0, off.1)
    );
    assert_eq!(
        a.verdict(utc(2030, 1, 7, 9, 0), utc(2030, 1, 7, 10, 0)),
        Verdict::Bookable
    );
    let none = Availability {
        hours: None,
        time_off: vec![off],
    };
    assert_eq!(
        none.verdict(utc(2030, 1, 7, 3, 0), utc(2030, 1, 7, 4, 0)),
        Verdict::Bookable
    );
    assert_eq!(
        none.verdict(utc(2030, 1, 7, 23, 0), utc(2030, 1, 8, 1, 0)),
        Verdict::TimeOff(off.0, off.1)
    );
    assert_eq!(
        none.bookable_intervals(utc(2030, 1, 7, 0, 0), utc(2030, 1, 9, 0, 0)),
        vec![
            (utc(2030, 1, 7, 0, 0), off.0),
            (off.1, utc(2030, 1, 9, 0, 0))
        ]
    );
}

#[test]
fn free_slots_on_the_grid_around_busy_time() {
    let open = [(utc(2030, 1, 7, 9, 0), utc(2030, 1, 7, 12, 0))];
    let busy = [(utc(2030, 1, 7, 10, 0), utc(2030, 1, 7, 10, 50))];
    let (slots, more) = free_slots(&open, &busy, 50 * MIN, 15 * MIN, 0, 100);
    assert!(!more);
    let starts: Vec<i64> = slots.iter().map(|s| s.start_ms).collect();
    assert_eq!(
        starts,
        vec![
            utc(2030, 1, 7, 9, 0),
            utc(2030, 1, 7, 11, 0),
            // 11:15 would end 12:05, past the interval.
        ]
    );
    let (slots, more) = free_slots(&open, &[], 60 * MIN, 30 * MIN, 0, 2);
    assert!(more);
    assert_eq!(slots.len(), 2);
    // Not before: 09:05 rounds up to 09:15 on a 15-minute grid.
    let (slots, _) = free_slots(&open, &[], 60 * MIN, 15 * MIN, utc(2030, 1, 7, 9, 5), 1);
    assert_eq!(slots[0].start_ms, utc(2030, 1, 7, 9, 15));
}
