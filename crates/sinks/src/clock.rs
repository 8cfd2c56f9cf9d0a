//! UTC calendar formatting of Unix nanosecond timestamps.
//!
//! Hand-written on purpose (Howard Hinnant's `civil_from_days`): the sinks
//! only ever format UTC times from a `u64` of nanoseconds, which is a dozen
//! lines of integer arithmetic and does not justify a date/time dependency.

const NS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// A UTC civil time split into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    nanos: u64,
}

/// Converts days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn civil(ts_unix_ns: u64) -> Civil {
    let secs = ts_unix_ns / NS_PER_SEC;
    let (year, month, day) = civil_from_days(secs / SECS_PER_DAY);
    let sod = secs % SECS_PER_DAY;
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        nanos: ts_unix_ns % NS_PER_SEC,
    }
}

/// Formats a Unix timestamp in ns as RFC 3339 in UTC with nanoseconds,
/// e.g. `2026-11-25T16:12:51.123456789Z`.
pub fn rfc3339_nanos(ts_unix_ns: u64) -> String {
    let c = civil(ts_unix_ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
    )
}

/// Formats the UTC time of day with nanoseconds, e.g. `16:12:51.123456789`.
pub(crate) fn time_of_day_nanos(ts_unix_ns: u64) -> String {
    let c = civil(ts_unix_ns);
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        c.hour, c.minute, c.second, c.nanos
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: u64 = NS_PER_SEC;

    #[test]
    fn epoch() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn leap_days() {
        assert_eq!(
            rfc3339_nanos(1_709_251_199 * NS + 123_456_789),
            "2024-02-29T23:59:59.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(1_709_251_200 * NS),
            "2024-03-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(951_825_600 * NS + 1),
            "2000-02-29T12:00:00.000000001Z"
        );
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(
            rfc3339_nanos(4_107_542_400 * NS - 1),
            "2100-02-28T23:59:59.999999999Z"
        );
    }

    #[test]
    fn example_and_extremes() {
        assert_eq!(
            rfc3339_nanos(1_795_623_171 * NS + 123_456_789),
            "2026-11-25T16:12:51.123456789Z"
        );
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        assert_eq!(
            time_of_day_nanos(1_795_623_171 * NS + 5),
            "16:12:51.000000005"
        );
    }

    #[test]
    fn every_day_boundary_of_four_centuries_is_consistent() {
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for d in 1..146_097 {
            let cur = civil_from_days(d);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} -> {cur:?}"
            );
            prev = cur;
        }
        assert_eq!(prev, (2369, 12, 31));
    }
}
