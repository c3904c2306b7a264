//! Time: UTC timestamps in milliseconds and delivery intervals `[start, end)`.
//!
//! Intervals are aligned to multiples of their length since the Unix epoch,
//! in UTC, so daylight-saving changes never make an interval longer or shorter
//! and every UTC day has exactly `24 h / length` of them. Gate closure is a
//! fixed offset before the interval starts.

use core::fmt;
use core::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;

impl Timestamp {
    /// The raw milliseconds.
    #[inline]
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 timestamp (any offset; stored as UTC).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self(t.timestamp_millis()))
            .map_err(|e| TimeError::BadTimestamp {
                input: s.to_owned(),
                reason: e.to_string(),
            })
    }

    /// As a chrono UTC time (`None` only far outside any realistic range).
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    /// RFC 3339 text in UTC, e.g. `2026-11-25T10:15:00Z`.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => format!("@{}ms", self.0),
        }
    }

    /// `self + minutes`, saturating.
    pub const fn plus_minutes(self, minutes: i64) -> Self {
        Self(self.0.saturating_add(minutes.saturating_mul(MINUTE_MS)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A time value or interval that did not parse or is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not an RFC 3339 timestamp.
    #[error("invalid timestamp {input:?}: {reason}")]
    BadTimestamp {
        /// The text given.
        input: String,
        /// The parser's reason.
        reason: String,
    },
    /// An interval length other than 5, 15 or 60 minutes.
    #[error("interval length must be 5, 15 or 60 minutes, got {0}")]
    BadLength(i64),
    /// An interval whose start is not aligned to its length.
    #[error("interval start {start} is not aligned to {minutes} minutes")]
    NotAligned {
        /// The start given.
        start: Timestamp,
        /// The length in minutes.
        minutes: i64,
    },
    /// Text that is not `<start>/PT<n>M`.
    #[error("invalid interval {0:?}: expected <RFC 3339 start>/PT<5|15|60>M")]
    BadInterval(String),
    /// A gate-closure offset outside `0..=24 h`.
    #[error("gate closure must be 0 to 1440 minutes before the interval, got {0}")]
    BadGateClosure(i64),
}

/// The length of a delivery interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum IntervalLength {
    /// 5 minutes.
    Min5,
    /// 15 minutes (the default market time unit).
    #[default]
    Min15,
    /// 60 minutes.
    Min60,
}

impl IntervalLength {
    /// Length in minutes.
    pub const fn minutes(self) -> i64 {
        match self {
            Self::Min5 => 5,
            Self::Min15 => 15,
            Self::Min60 => 60,
        }
    }

    /// Length in milliseconds.
    pub const fn millis(self) -> i64 {
        self.minutes() * MINUTE_MS
    }

    /// From minutes; only 5, 15 and 60 are allowed.
    pub fn from_minutes(m: i64) -> Result<Self, TimeError> {
        match m {
            5 => Ok(Self::Min5),
            15 => Ok(Self::Min15),
            60 => Ok(Self::Min60),
            other => Err(TimeError::BadLength(other)),
        }
    }
}

impl Serialize for IntervalLength {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.minutes())
    }
}

impl<'de> Deserialize<'de> for IntervalLength {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_minutes(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One delivery interval `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryInterval {
    start: Timestamp,
    length: IntervalLength,
}

impl DeliveryInterval {
    /// The interval that starts at `start`, which must be aligned to `length`.
    pub fn new(start: Timestamp, length: IntervalLength) -> Result<Self, TimeError> {
        if start.0.rem_euclid(length.millis()) != 0 {
            return Err(TimeError::NotAligned {
                start,
                minutes: length.minutes(),
            });
        }
        Ok(Self { start, length })
    }

    /// The interval of `length` that contains `t`.
    pub const fn containing(t: Timestamp, length: IntervalLength) -> Self {
        let ms = length.millis();
        Self {
            start: Timestamp(t.0.div_euclid(ms) * ms),
            length,
        }
    }

    /// First instant inside the interval.
    pub const fn start(&self) -> Timestamp {
        self.start
    }

    /// First instant after the interval.
    pub const fn end(&self) -> Timestamp {
        Timestamp(self.start.0 + self.length.millis())
    }

    /// The interval's length.
    pub const fn length(&self) -> IntervalLength {
        self.length
    }

    /// True when `t` lies in `[start, end)`.
    pub const fn contains(&self, t: Timestamp) -> bool {
        t.0 >= self.start.0 && t.0 < self.end().0
    }

    /// The interval right after this one.
    pub const fn next(&self) -> Self {
        Self {
            start: self.end(),
            length: self.length,
        }
    }

    /// The interval right before this one.
    pub const fn prev(&self) -> Self {
        Self {
            start: Timestamp(self.start.0 - self.length.millis()),
            length: self.length,
        }
    }

    /// The `count` intervals starting with this one.
    pub fn iter_from(self, count: usize) -> impl Iterator<Item = Self> {
        (0..count as i64).map(move |i| Self {
            start: Timestamp(self.start.0 + i * self.length.millis()),
            length: self.length,
        })
    }

    /// The instant the book of this interval closes, given the market's rules.
    pub const fn gate_closure(&self, rules: &IntervalRules) -> Timestamp {
        Timestamp(self.start.0 - rules.gate_closure_minutes * MINUTE_MS)
    }

    /// The instant after which readings for this interval are late.
    pub const fn metering_deadline(&self, rules: &IntervalRules) -> Timestamp {
        Timestamp(self.end().0 + rules.metering_window_minutes * MINUTE_MS)
    }
}

impl fmt::Display for DeliveryInterval {
    /// ISO 8601 `start/duration`, e.g. `2026-11-25T10:15:00Z/PT15M`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/PT{}M", self.start, self.length.minutes())
    }
}

impl FromStr for DeliveryInterval {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        let bad = || TimeError::BadInterval(s.to_owned());
        let (start, dur) = s.split_once('/').ok_or_else(bad)?;
        let minutes: i64 = dur
            .strip_prefix("PT")
            .and_then(|d| d.strip_suffix('M'))
            .and_then(|m| m.parse().ok())
            .ok_or_else(bad)?;
        Self::new(Timestamp::parse_rfc3339(start)?, IntervalLength::from_minutes(minutes)?)
    }
}

impl Serialize for DeliveryInterval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A market's interval rules: length, gate closure and metering window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalRules {
    /// Interval length in minutes: 5, 15 (default) or 60.
    #[serde(default)]
    pub length: IntervalLength,
    /// Minutes before the interval starts at which its book closes (default 5).
    #[serde(default = "default_gate_closure")]
    pub gate_closure_minutes: i64,
    /// Minutes after the interval ends during which readings still count (default 15).
    #[serde(default = "default_metering_window")]
    pub metering_window_minutes: i64,
}

const fn default_gate_closure() -> i64 {
    5
}
const fn default_metering_window() -> i64 {
    15
}

impl Default for IntervalRules {
    fn default() -> Self {
        Self {
            length: IntervalLength::default(),
            gate_closure_minutes: default_gate_closure(),
            metering_window_minutes: default_metering_window(),
        }
    }
}

impl IntervalRules {
    /// Check the offsets are sensible (0 to 24 h).
    pub fn validate(&self) -> Result<(), TimeError> {
        if !(0..=1440).contains(&self.gate_closure_minutes) {
            return Err(TimeError::BadGateClosure(self.gate_closure_minutes));
        }
        if !(0..=1440).contains(&self.metering_window_minutes) {
            return Err(TimeError::BadGateClosure(self.metering_window_minutes));
        }
        Ok(())
    }

    /// The first interval whose gate is still open at `now`.
    pub fn first_open(&self, now: Timestamp) -> DeliveryInterval {
        let mut iv = DeliveryInterval::containing(now, self.length);
        while iv.gate_closure(self) <= now {
            iv = iv.next();
        }
        iv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn containing_aligns_down() {
        let iv = DeliveryInterval::containing(ts("2026-11-25T10:22:13.5Z"), IntervalLength::Min15);
        assert_eq!(iv.to_string(), "2026-11-25T10:15:00Z/PT15M");
        assert_eq!(iv.end(), ts("2026-11-25T10:30:00Z"));
        assert!(iv.contains(ts("2026-11-25T10:15:00Z")));
        assert!(!iv.contains(ts("2026-11-25T10:30:00Z")));
    }

    #[test]
    fn before_epoch_aligns_down_too() {
        let iv = DeliveryInterval::containing(Timestamp(-1), IntervalLength::Min5);
        assert_eq!(iv.start(), Timestamp(-5 * MINUTE_MS));
    }

    #[test]
    fn dst_days_still_have_96_intervals_in_utc() {
        // Europe: summer time starts 2026-03-29 01:00 UTC and ends 2026-10-25 01:00 UTC.
        // US: 2026-03-08 and 2026-11-01 (07:00/06:00 UTC). In UTC nothing changes.
        for day in ["2026-03-29", "2026-10-25", "2026-03-08", "2026-11-01"] {
            let start = DeliveryInterval::new(ts(&format!("{day}T00:00:00Z")), IntervalLength::Min15).unwrap();
            let all: Vec<_> = start.iter_from(96).collect();
            assert_eq!(all[95].end(), start.start().plus_minutes(24 * 60), "{day}");
            assert!(all.windows(2).all(|w| w[0].end() == w[1].start()));
            // the local-time jump (01:00 UTC in Europe) is just another boundary
            let jump = ts(&format!("{day}T01:00:00Z"));
            assert_eq!(DeliveryInterval::containing(jump, IntervalLength::Min15).start(), jump);
        }
        // a timestamp given with a local offset across the change lands in the right UTC interval
        let cest = ts("2026-03-29T03:07:00+02:00");
        assert_eq!(
            DeliveryInterval::containing(cest, IntervalLength::Min15).start(),
            ts("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn leap_day() {
        let last = DeliveryInterval::new(ts("2028-02-29T23:00:00Z"), IntervalLength::Min60).unwrap();
        assert_eq!(last.next().start(), ts("2028-03-01T00:00:00Z"));
        let feb29 = DeliveryInterval::new(ts("2028-02-29T00:00:00Z"), IntervalLength::Min5).unwrap();
        assert_eq!(
            feb29.iter_from(288).last().map(|i| i.end()),
            Some(ts("2028-03-01T00:00:00Z"))
        );
        // 2100 is not a leap year
        assert!(Timestamp::parse_rfc3339("2100-02-29T00:00:00Z").is_err());
    }

    #[test]
    fn parse_round_trip_and_errors() {
        let iv: DeliveryInterval = "2026-11-25T10:00:00Z/PT60M".parse().unwrap();
        assert_eq!(iv.length(), IntervalLength::Min60);
        assert_eq!(serde_json::to_string(&iv).unwrap(), "\"2026-11-25T10:00:00Z/PT60M\"");
        assert!(matches!(
            "2026-11-25T10:05:00Z/PT15M".parse::<DeliveryInterval>(),
            Err(TimeError::NotAligned { .. })
        ));
        assert_eq!(
            "2026-11-25T10:00:00Z/PT30M".parse::<DeliveryInterval>(),
            Err(TimeError::BadLength(30))
        );
        assert!(matches!(
            "2026-11-25T10:00:00Z".parse::<DeliveryInterval>(),
            Err(TimeError::BadInterval(_))
        ));
    }

    #[test]
    fn gate_closure_and_first_open() {
        let rules = IntervalRules {
            gate_closure_minutes: 5,
            ..IntervalRules::default()
        };
        let iv: DeliveryInterval = "2026-11-25T10:15:00Z/PT15M".parse().unwrap();
        assert_eq!(iv.gate_closure(&rules), ts("2026-11-25T10:10:00Z"));
        assert_eq!(iv.metering_deadline(&rules), ts("2026-11-25T10:45:00Z"));
        assert_eq!(rules.first_open(ts("2026-11-25T10:09:59Z")), iv);
        assert_eq!(rules.first_open(ts("2026-11-25T10:10:00Z")), iv.next());
        let bad: Result<IntervalRules, _> = serde_json::from_str(r#"{"length": 10}"#);
        assert!(bad.is_err());
        let unknown: Result<IntervalRules, _> = serde_json::from_str(r#"{"lenght": 15}"#);
        assert!(unknown.is_err());
        assert!(
            IntervalRules {
                gate_closure_minutes: -1,
                ..rules
            }
            .validate()
            .is_err()
        );
    }
}
