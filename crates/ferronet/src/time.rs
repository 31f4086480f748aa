//! Conversions between `embassy-time` and smoltcp's time types, and the earlier of two
//! optional deadlines.

use embassy_time::{Duration, Instant};
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};

pub(crate) fn instant_to_smoltcp(instant: Instant) -> SmolInstant {
    SmolInstant::from_micros(instant.as_micros() as i64)
}

pub(crate) fn instant_from_smoltcp(instant: SmolInstant) -> Instant {
    // smoltcp instants before the epoch ("poll now") map to the epoch.
    Instant::from_micros(instant.total_micros().max(0) as u64)
}

#[allow(dead_code)]
pub(crate) fn duration_to_smoltcp(duration: Duration) -> SmolDuration {
    SmolDuration::from_micros(duration.as_micros())
}

#[allow(dead_code)]
pub(crate) fn duration_from_smoltcp(duration: SmolDuration) -> Duration {
    Duration::from_micros(duration.total_micros())
}

/// The earlier of two optional deadlines (instants, or delays from the same now).
#[inline]
pub(crate) fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
