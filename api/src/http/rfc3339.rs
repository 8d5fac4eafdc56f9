//! RFC 3339 timestamps in answers, written into a buffer on the stack.
//! `time`'s serde helper formats each one into a new `String` through
//! `core::fmt`: with four per agent, that was about 5 % of the API's
//! instructions on a discovery page. The bytes are `time`'s own (a test
//! compares them); a year outside 0–9999 or an offset with seconds, which
//! `time` refuses, goes through `time` to be refused the same way. Answers
//! read at volume (agents) use this; the rest keep `time`'s helper.

use serde::Serializer;
use time::OffsetDateTime;

/// `9999-12-31T23:59:59.999999999+23:59`.
const LONGEST: usize = 35;

/// For `#[serde(serialize_with = "rfc3339::serialize")]`.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = Text { bytes: [0; LONGEST], length: 0 };
    match text.write(*at) {
        Some(written) => serializer.serialize_str(written),
        None => time::serde::rfc3339::serialize(at, serializer),
    }
}

/// For an `Option<OffsetDateTime>`: `null`, or the timestamp.
pub mod option {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }
}

struct Text {
    bytes: [u8; LONGEST],
    length: usize,
}

impl Text {
    /// `at` as `time`'s `Rfc3339` writes it, or `None` where `time` would refuse it.
    fn write(&mut self, at: OffsetDateTime) -> Option<&str> {
        let offset = at.offset();
        if !(0..10_000).contains(&at.year())
            || offset.whole_hours().unsigned_abs() > 23
            || offset.seconds_past_minute() != 0
        {
            return None;
        }
        self.digits(at.year().unsigned_abs(), 4);
        self.byte(b'-');
        self.digits(u32::from(u8::from(at.month())), 2);
        self.byte(b'-');
        self.digits(u32::from(at.day()), 2);
        self.byte(b'T');
        self.digits(u32::from(at.hour()), 2);
        self.byte(b':');
        self.digits(u32::from(at.minute()), 2);
        self.byte(b':');
        self.digits(u32::from(at.second()), 2);
        let nanosecond = at.nanosecond();
        if nanosecond != 0 {
            // As many digits as it takes, trailing zeros dropped.
            let (mut fraction, mut width) = (nanosecond, 9);
            while fraction % 10 == 0 {
                fraction /= 10;
                width -= 1;
            }
            self.byte(b'.');
            self.digits(fraction, width);
        }
        if offset.is_utc() {
            self.byte(b'Z');
        } else {
            self.byte(if offset.is_negative() { b'-' } else { b'+' });
            self.digits(u32::from(offset.whole_hours().unsigned_abs()), 2);
            self.byte(b':');
            self.digits(u32::from(offset.minutes_past_hour().unsigned_abs()), 2);
        }
        std::str::from_utf8(&self.bytes[..self.length]).ok()
    }

    fn byte(&mut self, byte: u8) {
        self.bytes[self.length] = byte;
        self.length += 1;
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        for slot in self.bytes[self.length..self.length + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.length += width;
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use time::{Duration, OffsetDateTime, UtcOffset};

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "super::serialize")]
        at: OffsetDateTime,
        #[serde(serialize_with = "super::option::serialize")]
        maybe: Option<OffsetDateTime>,
    }

    #[derive(Serialize)]
    struct Times {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option")]
        maybe: Option<OffsetDateTime>,
    }

    fn same_as_time(at: OffsetDateTime) {
        for maybe in [None, Some(at)] {
            let ours = serde_json::to_string(&Ours { at, maybe }).map_err(|error| error.to_string());
            let times = serde_json::to_string(&Times { at, maybe }).map_err(|error| error.to_string());
            assert_eq!(ours, times, "{at:?}");
        }
    }

    #[test]
    fn writes_what_time_writes() {
        let offsets =
            [(0, 0, 0), (5, 45, 0), (0, -30, 0), (-12, 0, 0), (23, 59, 0), (-23, -59, 0), (24, 0, 0), (1, 2, 3)];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let earliest = OffsetDateTime::from_unix_timestamp(-62_167_219_200).unwrap(); // 0000-01-01
        for round in 0..20_000_u64 {
            let seconds = (next() % (9_999 * 365 * 86_400)) as i64;
            // Every count of trailing zeros in the fraction, and none at all.
            let nanos = match round % 11 {
                10 => 0,
                zeros => (next() % 1_000_000_000) / 10_u64.pow(zeros as u32) * 10_u64.pow(zeros as u32),
            };
            let (hours, minutes, seconds_of_offset) = offsets[(round % offsets.len() as u64) as usize];
            let offset = UtcOffset::from_hms(hours, minutes, seconds_of_offset).unwrap();
            let at = earliest + Duration::seconds(seconds) + Duration::nanoseconds(nanos as i64);
            same_as_time(at.to_offset(offset));
        }
        // Refused by both: a year before 0.
        same_as_time(earliest - Duration::days(1));
    }
}
