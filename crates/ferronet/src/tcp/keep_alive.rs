//! Keep-alive set on an idle connection: no probe before the interval has passed.
//!
//! smoltcp 0.14 arms the keep-alive timer at time zero when keep-alive is switched on while the
//! connection is idle (nothing in flight), so the first probe leaves at once. Servers that set
//! keep-alive right after `accept` (picoserve does) then send a probe before the client's
//! request has even arrived, and Linux answers that probe by delaying its ACK of the response
//! that follows by about 40 ms: most new connections stalled.
//!
//! So [`TcpSocket::set_keep_alive`](super::TcpSocket::set_keep_alive) on an idle connection
//! does not hand the interval to smoltcp at once: the socket's slot holds it
//! ([`KeepAliveHold`]) and the runner hands it over when it is due ([`release_due`]), one
//! interval after the call. smoltcp then probes at once (the interval has passed) and every
//! interval after the last segment. Where smoltcp would not probe at once (the connection is
//! not yet synchronized, data is in flight, or keep-alive was on already), the interval goes
//! to smoltcp straight away.

use embassy_time::Instant;
use smoltcp::iface::SocketSet;
use smoltcp::socket::{AnySocket, tcp};

use crate::stack::{SlotMeta, slot_of};
use crate::time::duration_to_smoltcp;

/// A keep-alive interval waiting to be handed to smoltcp: 8 bytes in each socket slot.
///
/// Times are embassy-time milliseconds truncated to 32 bits and compared with wrapping
/// arithmetic, which is exact for intervals up to [`KeepAliveHold::MAX_MS`] (24 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepAliveHold {
    /// When to hand the interval over (milliseconds, wrapping).
    due_ms: u32,
    /// The interval in milliseconds; 0: nothing held.
    interval_ms: u32,
}

impl KeepAliveHold {
    /// Nothing held.
    pub(crate) const NONE: Self = Self {
        due_ms: 0,
        interval_ms: 0,
    };
    /// The longest interval held (longer ones are held for this long, then handed over whole
    /// as smoltcp would have probed long before anyway).
    const MAX_MS: u64 = i32::MAX as u64;

    /// Hold `interval` from `now`.
    pub(crate) fn new(now: Instant, interval: embassy_time::Duration) -> Self {
        let interval_ms = interval.as_millis().clamp(1, Self::MAX_MS) as u32;
        Self {
            due_ms: (now.as_millis() as u32).wrapping_add(interval_ms),
            interval_ms,
        }
    }

    /// Whether an interval is held.
    pub(crate) fn is_held(&self) -> bool {
        self.interval_ms != 0
    }

    /// How long until it is due, from `now` (zero when due).
    fn remaining(&self, now: Instant) -> embassy_time::Duration {
        let left = self.due_ms.wrapping_sub(now.as_millis() as u32) as i32;
        embassy_time::Duration::from_millis(left.max(0) as u64)
    }
}

/// Whether smoltcp would send a keep-alive probe at once if keep-alive were switched on now:
/// its idle timer runs without a keep-alive time only on a synchronized connection with
/// nothing in flight and keep-alive off.
pub(crate) fn would_probe_at_once(s: &tcp::Socket<'_>) -> bool {
    use tcp::State::*;
    s.keep_alive().is_none()
        && s.send_queue() == 0
        && matches!(s.state(), Established | CloseWait | FinWait2)
}

/// Hand every due interval to smoltcp. Returns how many holds are left and when the next is
/// due.
pub(crate) fn release_due(
    sockets: &mut SocketSet<'static>,
    slots: &mut [SlotMeta],
    now: Instant,
) -> (u16, Option<Instant>) {
    let mut left = 0u16;
    let mut next: Option<Instant> = None;
    for (h, s) in sockets.iter_mut() {
        let (Some(meta), Some(s)) = (slots.get_mut(slot_of(h)), tcp::Socket::downcast_mut(s))
        else {
            continue;
        };
        let hold = meta.keep_alive;
        if !hold.is_held() {
            continue;
        }
        let remaining = hold.remaining(now);
        if remaining == embassy_time::Duration::from_ticks(0) {
            let interval = embassy_time::Duration::from_millis(u64::from(hold.interval_ms));
            s.set_keep_alive(Some(duration_to_smoltcp(interval)));
            meta.keep_alive = KeepAliveHold::NONE;
        } else {
            left += 1;
            let at = now + remaining;
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    (left, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_time::Duration;

    #[test]
    fn due_one_interval_after_the_call_across_the_wrap() {
        for start in [0u64, 1_000, u64::from(u32::MAX) - 500] {
            let now = Instant::from_millis(start);
            let hold = KeepAliveHold::new(now, Duration::from_secs(30));
            assert!(hold.is_held());
            assert_eq!(hold.remaining(now), Duration::from_secs(30));
            assert_eq!(
                hold.remaining(now + Duration::from_millis(29_999)),
                Duration::from_millis(1)
            );
            assert_eq!(
                hold.remaining(now + Duration::from_secs(30)),
                Duration::from_ticks(0)
            );
            assert_eq!(
                hold.remaining(now + Duration::from_secs(90)),
                Duration::from_ticks(0)
            );
        }
    }

    #[test]
    fn zero_and_huge_intervals_are_held_within_bounds() {
        let now = Instant::from_millis(5);
        let zero = KeepAliveHold::new(now, Duration::from_ticks(0));
        assert!(zero.is_held());
        assert_eq!(zero.remaining(now), Duration::from_millis(1));
        let huge = KeepAliveHold::new(now, Duration::from_secs(365 * 24 * 3600));
        assert_eq!(huge.remaining(now), Duration::from_millis(i32::MAX as u64));
        assert!(!KeepAliveHold::NONE.is_held());
    }
}
