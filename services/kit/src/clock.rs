//! The county's calendar: days begin and end in China Standard Time
//! (UTC+8), whatever the server's clock zone.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// UTC+8.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// Today's date in China.
pub fn china_today() -> NaiveDate {
    Utc::now().with_timezone(&china()).date_naive()
}

/// Midnight (China time) at the start of `day`, as a UTC instant.
pub fn china_midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(china()).single())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_midnight_is_four_pm_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid date");
        assert_eq!(
            china_midnight(day).to_rfc3339(),
            "2026-11-27T16:00:00+00:00"
        );
    }
}
