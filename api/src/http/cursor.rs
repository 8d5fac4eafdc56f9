//! Opaque keyset cursors: `kind:key:id`, base64url. The kind binds a cursor
//! to the listing (and sort) that issued it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn encode(kind: &str, key: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}:{}", id.simple()))
}

/// The key and id of a cursor issued for `kind`; the error is a sentence
/// for the client.
pub fn decode(text: &str, kind: &str) -> Result<(String, Uuid), String> {
    let invalid = || "is not a cursor this API issued".to_owned();
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = decoded.splitn(3, ':');
    let (Some(cursor_kind), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if cursor_kind != kind {
        return Err(format!("was issued for {cursor_kind}; repeat the query it came from"));
    }
    Ok((key.to_owned(), Uuid::try_parse(id).map_err(|_| invalid())?))
}

/// A timestamp as a cursor key: microseconds, Postgres's precision.
pub fn time_key(at: OffsetDateTime) -> String {
    (at.unix_timestamp_nanos() / 1_000).to_string()
}

pub fn parse_time_key(key: &str) -> Option<OffsetDateTime> {
    let micros: i128 = key.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()
}

/// Where a newest-first listing (keyed by time) starts: after the position
/// of a cursor issued for `kind`, or at the start without one.
pub fn newest_first_after(text: Option<&str>, kind: &str) -> Result<(OffsetDateTime, Uuid), String> {
    let Some(text) = text else { return Ok(NEWEST_FIRST_START) };
    let (key, id) = decode(text, kind)?;
    let at = parse_time_key(&key).ok_or_else(|| "is not a cursor this API issued".to_owned())?;
    Ok((at, id))
}

/// The page of a newest-first listing from rows fetched with `limit + 1`: the
/// first `limit` rows, and the cursor after the last of them when the extra
/// row shows that more remain. `position` is a row's `(time, id)` key.
pub fn newest_first_page<T>(
    mut rows: Vec<T>,
    limit: u16,
    kind: &str,
    position: impl Fn(&T) -> (OffsetDateTime, Uuid),
) -> (Vec<T>, Option<String>) {
    let has_more = rows.len() > usize::from(limit);
    rows.truncate(usize::from(limit));
    let next_cursor = match rows.last() {
        Some(last) if has_more => {
            let (at, id) = position(last);
            Some(encode(kind, &time_key(at), id))
        }
        _ => None,
    };
    (rows, next_cursor)
}

/// A position after every row of a newest-first listing.
pub const NEWEST_FIRST_START: (OffsetDateTime, Uuid) = (time::macros::datetime!(9999-12-31 0:00 UTC), Uuid::max());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_bound_to_its_kind() {
        let id = Uuid::new_v4();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
        let cursor = encode("sort=newest", &time_key(at), id);
        let (key, decoded) = decode(&cursor, "sort=newest").unwrap();
        assert_eq!((parse_time_key(&key), decoded), (Some(at), id));
        assert!(decode(&cursor, "sort=price").unwrap_err().contains("sort=newest"));
        assert!(decode("garbage!", "jobs").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("jobs:x:y"), "jobs").is_err());
    }

    #[test]
    fn a_newest_first_listing_starts_at_the_top_or_after_its_cursor() {
        assert_eq!(newest_first_after(None, "ratings"), Ok(NEWEST_FIRST_START));
        let id = Uuid::new_v4();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
        let cursor = encode("ratings", &time_key(at), id);
        assert_eq!(newest_first_after(Some(&cursor), "ratings"), Ok((at, id)));
        assert!(newest_first_after(Some(&cursor), "jobs").unwrap_err().contains("ratings"));
        let not_a_time = encode("ratings", "soon", id);
        assert!(newest_first_after(Some(&not_a_time), "ratings").is_err());
    }
}
