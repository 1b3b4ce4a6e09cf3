//! Event-time parsing for the timestamp formats profiles may name. No regex: chrono's parsers
//! and plain number checks, so a timestamp costs a few hundred nanoseconds.

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use crate::config::profile::path::json_type;
use crate::config::profile::TimeFormat;
use crate::model::EventTime;

/// Largest |epoch milliseconds| accepted (~ year 2286); beyond that a value is not a clock.
const MAX_ABS_MS: f64 = 1.0e13;

/// Parses `v` as a timestamp in `format`; the error says what was wrong (without the field name).
pub(super) fn parse(
    v: &Value,
    format: TimeFormat,
    utc_offset_secs: Option<i32>,
) -> Result<EventTime, String> {
    match format {
        TimeFormat::Rfc3339 => {
            let s = as_str(v, "an RFC 3339 string")?;
            EventTime::parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not RFC 3339"))
        }
        TimeFormat::EpochS => {
            let secs = as_f64(v, "epoch seconds")?;
            EventTime::from_secs_f64(secs)
                .filter(|t| (t.0 as f64).abs() <= MAX_ABS_MS)
                .ok_or_else(|| format!("{secs} is not a plausible epoch time in seconds"))
        }
        TimeFormat::EpochMs => {
            let ms = as_f64(v, "epoch milliseconds")?;
            if ms.abs() <= MAX_ABS_MS {
                Ok(EventTime(ms.round() as i64))
            } else {
                Err(format!(
                    "{ms} is not a plausible epoch time in milliseconds"
                ))
            }
        }
        TimeFormat::Datetime => {
            let s = as_str(v, "a date-time string")?;
            datetime(s.trim(), utc_offset_secs)
                .ok_or_else(|| format!("{s:?} is not a date-time like 2026-11-22 16:15:00+08:00"))
        }
    }
}

/// `2026-11-22 16:15:00+08:00` / `...T...Z`; without an offset, `utc_offset_secs` applies.
fn datetime(s: &str, utc_offset_secs: Option<i32>) -> Option<EventTime> {
    // chrono's RFC 3339 parser accepts a space between date and time.
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(EventTime(d.timestamp_millis()));
    }
    let offset = utc_offset_secs?;
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    let utc_ms = naive
        .and_utc()
        .timestamp_millis()
        .checked_sub(i64::from(offset) * 1000)?;
    Some(EventTime(utc_ms))
}

fn as_str<'v>(v: &'v Value, what: &str) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected {what}, got {}", json_type(v)))
}

fn as_f64(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("expected {what}, got {}", json_type(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_formats() {
        let rfc = parse(
            &json!("2026-11-22T08:15:30.250Z"),
            TimeFormat::Rfc3339,
            None,
        );
        assert_eq!(rfc, Ok(EventTime(1_795_335_330_250)));
        assert_eq!(
            parse(&json!(1_795_335_330), TimeFormat::EpochS, None),
            Ok(EventTime(1_795_335_330_000))
        );
        assert_eq!(
            parse(&json!(1_795_335_330.5), TimeFormat::EpochS, None),
            Ok(EventTime(1_795_335_330_500))
        );
        assert_eq!(
            parse(&json!(1_795_335_330_250_i64), TimeFormat::EpochMs, None),
            Ok(EventTime(1_795_335_330_250))
        );
        let b = parse(
            &json!("2026-11-22 16:15:00+08:00"),
            TimeFormat::Datetime,
            None,
        );
        assert_eq!(b, Ok(EventTime(1_795_335_300_000)));
    }

    #[test]
    fn datetime_without_offset_uses_the_configured_one() {
        let t = parse(
            &json!("2026-11-22 16:15:00"),
            TimeFormat::Datetime,
            Some(8 * 3600),
        );
        assert_eq!(t, Ok(EventTime(1_795_335_300_000)));
        assert!(parse(&json!("2026-11-22 16:15:00"), TimeFormat::Datetime, None).is_err());
        // An offset in the value wins over the configured one.
        let t = parse(
            &json!("2026-11-22 08:15:00Z"),
            TimeFormat::Datetime,
            Some(8 * 3600),
        );
        assert_eq!(t, Ok(EventTime(1_795_335_300_000)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases = [
            (json!("yesterday"), TimeFormat::Rfc3339),
            (json!(12), TimeFormat::Rfc3339),
            (json!("12"), TimeFormat::EpochS),
            (json!(1e300), TimeFormat::EpochS),
            (json!(-1e300), TimeFormat::EpochMs),
            (json!(null), TimeFormat::EpochMs),
            (json!("2026-13-45 99:00:00+08:00"), TimeFormat::Datetime),
            (json!([1]), TimeFormat::Datetime),
        ];
        for (v, f) in cases {
            assert!(parse(&v, f, Some(0)).is_err(), "{v} as {f:?}");
        }
    }
}
