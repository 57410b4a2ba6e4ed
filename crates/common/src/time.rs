//! Timestamps as OpenStack writes them. Keystone and Tempest insist on a `Z` suffix with
//! exactly six fractional digits for tokens, so every service formats through here.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch: how timestamps are stored.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// `2026-11-21T10:00:00.000000Z`
pub fn iso_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `2026-11-21T10:00:00Z`
pub fn iso_seconds(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-11-21T10:00:00.000000` (no zone), as Keystone echoes application credential expiry.
pub fn iso_naive_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Parses the ISO 8601 forms clients send (with or without zone and fraction) into micros.
pub fn parse_iso(text: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    let trimmed = text.trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = parse_iso("2026-11-21T10:00:00.123456Z").unwrap();
        assert_eq!(iso_micros(t), "2026-11-21T10:00:00.123456Z");
        assert_eq!(iso_seconds(t), "2026-11-21T10:00:00Z");
        assert_eq!(iso_naive_micros(t), "2026-11-21T10:00:00.123456");
        assert_eq!(parse_iso("2026-11-21T10:00:00.123456"), Some(t));
        assert_eq!(parse_iso("2026-11-21T12:00:00.123456+02:00"), Some(t));
        assert!(parse_iso("yesterday").is_none());
    }
}
