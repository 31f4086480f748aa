//! The tail-loss probe of [`Recovery`](super::Recovery).
//!
//! **A tail loss.** When the last segments of a flight are lost, or the ACK of them is, and
//! nothing more is sent (the data is all sent, or the window is full), no duplicate ACK comes
//! at all, and smoltcp 0.14 waits for its 1 s timeout (Linux: a tail-loss probe after about
//! two round trips, RFC 8985). With 4 KiB socket buffers at 1 % loss that was most of the
//! time spent. [`TailProbe`] follows the last connection to send new data (the *tail*): each
//! new data segment sent and each ACK of new data below the end of what was sent arm a
//! *tail probe* after the probe timeout (see [`super`]), [`DELAYED_ACK_MS`] longer when at
//! most one segment is outstanding (the peer may hold its ACK of a lone segment), and
//! `Recovery` keeps the last ACK without payload of that connection. When nothing
//! acknowledges the end of the data sent by then, the kept ACK is handed to smoltcp as a
//! rescue, and smoltcp sends the first unacknowledged segment again: the peer answers a lost
//! segment with an ACK of it, a duplicate with an ACK of everything it holds. One probe per
//! flight; the retransmission it causes is then followed like any other; data sent with our
//! FIN too (a FIN alone is left to smoltcp and `lone_fin`: the runner never replays while
//! only our FIN is outstanding). Our RST, or the peer's SYN or RST, end the tail. Only
//! flights of up to [`TAIL_FLIGHT`] bytes (a 4 KiB window) are probed, with the longer of the
//! connection's round trip and one sampled from the tail's own segments (which counts the
//! time its ACKs wait in queues): in larger flights an ACK behind the peer's own data came
//! later than any timeout measured before the queues filled, and probes there were needless.
//!
//! The kept frame and the entries of connections in recovery are `Recovery`'s: it keeps the
//! tail's ACKs (`Recovery::keep_for_tail`) and, when [`TailProbe::due`] holds, marks the kept
//! one for a rescue (`Recovery::tail_due`). The clock and the connection's round trip are
//! passed in.
//!
//! What is not covered: a tail loss in a flight of more than [`TAIL_FLIGHT`] bytes, on a
//! connection other than the last to send new data, or in a connection's first flight (no ACK
//! of it kept yet).

use core::cell::Cell;

use super::{PROBE_DEFAULT_MS, before, probe_timeout};

/// Added to a tail probe's timeout when at most [`LONE_SEGMENT`] bytes are outstanding: a
/// peer may delay its ACK of a lone segment (Linux by 40 ms and up to 200 ms; RFC 8985's
/// WCDelAckT is 200 ms).
pub(super) const DELAYED_ACK_MS: u32 = 200;
/// Outstanding bytes up to which a flight counts as one segment (a full Ethernet segment):
/// receivers acknowledge every second full segment at once, a lone one maybe late.
const LONE_SEGMENT: u32 = 1460;
/// The largest flight (bytes outstanding) a tail probe is armed for: three full segments, a
/// window of 4 KiB. In larger flights the ACKs may wait behind the peer's own data in its
/// transmit queue for longer than any probe timeout measured before the queue filled
/// (`both`, 16 KiB, 10 Mbit/s, N = 32 without loss: 440 needless retransmissions and 60 %
/// of the link instead of 92 %), and losses there mostly bring duplicate ACKs.
pub(super) const TAIL_FLIGHT: u32 = 3 * 1460;
/// The shortest segment whose round trip the tail probe samples (the minimum MSS).
const TIMED_SEGMENT: u32 = 536;

/// The connection a tail probe follows (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Tail {
    /// As in [`Entry`](super::Entry) (0: none).
    key: u64,
    /// Its ports as a received segment's first four bytes carry them (theirs, ours).
    ports: u32,
    /// The end of the new data sent (SND.NXT after it).
    end: u32,
    /// The last acknowledgment number received.
    ack: u32,
    /// A probe is due at `due_ms` unless an ACK of `end` comes first.
    armed: bool,
    due_ms: u32,
    /// A segment timed for a round-trip sample: its end and when it was sent (ms).
    timing: bool,
    timed_end: u32,
    timed_ms: u32,
}

/// No connection followed.
const NO_TAIL: Tail = Tail {
    key: 0,
    ports: 0,
    end: 0,
    ack: 0,
    armed: false,
    due_ms: 0,
    timing: false,
    timed_end: 0,
    timed_ms: 0,
};

/// The tail-loss probe (see the module docs): the last connection to send new data, and the
/// timeout of its probe. One field of [`Recovery`](super::Recovery).
pub(super) struct TailProbe {
    /// The last connection to send new data.
    tail: Cell<Tail>,
    /// The tail's round trip (ms), as a decaying maximum of its samples: its queueing
    /// (an ACK waiting behind the peer's data in the peer's transmit queue) counts, so that
    /// a probe does not fire while the ACK is only late.
    rtt_ms: Cell<u16>,
    /// The probe's timeout (ms; [`probe_timeout`] of the longer of `rtt_ms` and the
    /// connection's round trip), kept up to date with each sample so that arming it on every
    /// segment costs an addition.
    timeout_ms: Cell<u16>,
}

impl TailProbe {
    /// No tail followed, no round trip sampled.
    pub(super) const fn new() -> Self {
        Self {
            tail: Cell::new(NO_TAIL),
            rtt_ms: Cell::new(0),
            timeout_ms: Cell::new(PROBE_DEFAULT_MS as u16),
        }
    }

    /// Recompute `timeout_ms` after a round-trip sample (`conn_rtt_ms`: the connection's
    /// round trip as `Recovery` measured it).
    pub(super) fn update_timeout(&self, conn_rtt_ms: u16) {
        let rtt = conn_rtt_ms.max(self.rtt_ms.get());
        // At most PROBE_MAX_MS: fits.
        self.timeout_ms.set(probe_timeout(rtt, 0) as u16);
    }

    /// Whether a received TCP segment whose first four bytes are `ports` may be of the tail's
    /// connection: then [`TailProbe::acked`] is to see it.
    #[inline]
    pub(super) fn follows(&self, ports: u32) -> bool {
        let tail = self.tail.get();
        tail.key != 0 && ports == tail.ports
    }

    /// Whether `key` is the tail's connection.
    #[inline]
    pub(super) fn is(&self, key: u64) -> bool {
        self.tail.get().key == key
    }

    /// A received segment with the ports of the tail's connection and acknowledgment number
    /// `ack` (`short`: short enough to be an ACK without payload), at `now_ms`: an ACK of all
    /// the data sent disarms the tail probe, an ACK of new data below that arms it again.
    /// Whether the segment may be an ACK to keep for the probe.
    #[cold]
    pub(super) fn acked(&self, ack: u32, short: bool, now_ms: u32, conn_rtt_ms: u16) -> bool {
        let mut tail = self.tail.get();
        if tail.timing && !before(ack, tail.timed_end) {
            // A round trip: kept as a maximum that decays by 1/8 per sample.
            let sample = u16::try_from(now_ms.wrapping_sub(tail.timed_ms))
                .unwrap_or(u16::MAX)
                .max(1);
            let old = self.rtt_ms.get();
            self.rtt_ms.set(sample.max(old - old / 8));
            self.update_timeout(conn_rtt_ms);
            tail.timing = false;
        }
        if !before(ack, tail.end) {
            // All acknowledged; an ACK without payload is still kept, as the one to replay
            // should the next flight be lost.
            self.tail.set(Tail {
                ack,
                armed: false,
                ..tail
            });
        } else if before(tail.ack, ack) {
            let outstanding = tail.end.wrapping_sub(ack);
            self.tail.set(Tail {
                ack,
                armed: outstanding <= TAIL_FLIGHT,
                due_ms: self.timer(outstanding, now_ms),
                ..tail
            });
        }
        short
    }

    /// A retransmission is being sent on connection `key`: if the timed segment is the
    /// tail's, it may be the one sent again, and its ACK gives no sample (Karn).
    #[inline]
    pub(super) fn on_retransmit(&self, key: u64) {
        let tail = self.tail.get();
        if tail.key == key && tail.timing {
            self.tail.set(Tail {
                timing: false,
                ..tail
            });
        }
    }

    /// New data from `seq` to `end` is being sent on connection `key` (`ports`: the
    /// segment's first four bytes) at `now_ms`: it becomes the tail, and its probe is armed.
    pub(super) fn on_data_sent(&self, key: u64, ports: u32, seq: u32, end: u32, now_ms: u32) {
        let tail = self.tail.get();
        let same = tail.key == key;
        // Of another connection, nothing acknowledged is known: at most this segment.
        let ack = if same { tail.ack } else { seq };
        // Round trips are timed on bulk-sized segments only: their ACKs are the ones that
        // wait in queues, and a request/response exchange then costs no sample.
        let (timing, timed_end, timed_ms) = if same && tail.timing {
            (true, tail.timed_end, tail.timed_ms)
        } else {
            (end.wrapping_sub(seq) >= TIMED_SEGMENT, end, now_ms)
        };
        let outstanding = end.wrapping_sub(ack);
        self.tail.set(Tail {
            key,
            // A received segment carries the ports the other way round.
            ports: ports.rotate_left(16),
            end,
            ack,
            armed: outstanding <= TAIL_FLIGHT,
            due_ms: self.timer(outstanding, now_ms),
            timing,
            timed_end,
            timed_ms,
        });
    }

    /// Our RST, or the peer's SYN or RST, on connection `key`: no tail probe for it (a
    /// replayed ACK of a closed connection would make smoltcp send a reset).
    pub(super) fn end(&self, key: u64) {
        if self.tail.get().key == key {
            self.tail.set(NO_TAIL);
        }
    }

    /// When a tail probe armed at `now_ms` is due, with `outstanding` bytes unacknowledged:
    /// after the probe timeout of the longer of the two round trips known (see `rtt_ms`).
    fn timer(&self, outstanding: u32, now_ms: u32) -> u32 {
        let delayed_ack = if outstanding <= LONE_SEGMENT {
            DELAYED_ACK_MS
        } else {
            0
        };
        now_ms
            .wrapping_add(u32::from(self.timeout_ms.get()))
            .wrapping_add(delayed_ack)
    }

    /// When the probe is due (ms, the runner's clock), if it is armed.
    #[inline]
    pub(super) fn due_at(&self) -> Option<u32> {
        let tail = self.tail.get();
        tail.armed.then_some(tail.due_ms)
    }

    /// Whether the probe is armed and due at `now_ms`: then `Recovery` fires it with
    /// [`TailProbe::disarm`].
    #[inline]
    pub(super) fn due(&self, now_ms: u32) -> bool {
        let tail = self.tail.get();
        tail.armed && !before(now_ms, tail.due_ms)
    }

    /// The probe goes out (or is dropped): one per flight. The tail's connection and the last
    /// acknowledgment number received on it: the ACK the probe hands over again.
    #[inline]
    pub(super) fn disarm(&self) -> (u64, u32) {
        let tail = self.tail.get();
        self.tail.set(Tail {
            armed: false,
            ..tail
        });
        (tail.key, tail.ack)
    }

    /// The tail's round trip (ms; 0: none sampled).
    #[cfg(test)]
    pub(super) fn rtt_ms(&self) -> u16 {
        self.rtt_ms.get()
    }
}
