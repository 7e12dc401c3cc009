//! Times as people and X-Road's documents read them.

/// Unix seconds as RFC 3339 UTC (`2026-12-07T04:35:20Z`); the number itself when out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Unix seconds as `yyyyMMddHHmmss` UTC (GeneralizedTime without its `Z`, archive names).
pub fn compact(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(1_354_194_604), "2012-11-29T13:10:04Z");
        assert_eq!(super::rfc3339(i64::MAX), i64::MAX.to_string());
        assert_eq!(super::compact(1_354_194_604), "20121129131004");
    }
}
