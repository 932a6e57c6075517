//! How console pages write times: UTC, to the second, and the `datetime-local` form inputs.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A time as pages show it: `2026-03-01 10:42:13 UTC`.
pub fn when(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default()
}

/// Reads a `datetime-local` value (UTC, to the minute or second) as an RFC 3339 time; `None`
/// when it is not one.
pub fn from_local_input(text: &str) -> Option<String> {
    let text = text.trim();
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let parsed = PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| PrimitiveDateTime::parse(text, seconds))
        .ok()?;
    parsed
        .assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_round_trip_through_the_inputs() {
        let at = datetime!(2026-03-01 10:42:13 UTC);
        assert_eq!(when(at), "2026-03-01 10:42:13 UTC");
        assert_eq!(
            from_local_input("2026-03-01T10:42").as_deref(),
            Some("2026-03-01T10:42:00Z")
        );
        assert_eq!(
            from_local_input("2026-03-01T10:42:13").as_deref(),
            Some("2026-03-01T10:42:13Z")
        );
        assert_eq!(from_local_input("yesterday"), None);
    }
}
