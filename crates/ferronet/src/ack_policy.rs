//! When an ACK must not wait for the runner's deferred egress pass: small receive windows.
//!
//! After a poll that received frames the runner usually defers its egress pass by an executor
//! turn or two (`Defer` in the runner), so that the ACK leaves with the application's answer
//! and with the window the application's read has just opened. That pays where the window
//! holds several segments. Where it holds fewer than three, the sender has sent all it may and
//! waits for that very ACK: deferring it leaves the link idle. The goodput benchmark
//! (`crates/ferronet-bench/GOODPUT.md`) measured it with 4 KiB socket buffers (2.8 segments of
//! 1460 bytes): 61 % of a 100 Mbit/s link against embassy-net's 76 %, which does not defer.
//!
//! [`SmallWindow`] says when not to defer: a TCP socket whose receive buffer holds fewer than
//! three full-size Ethernet segments has more than a minimum-size segment (536 bytes) of
//! unread data, i.e. it has just received a bulk-sized segment and its peer probably waits for
//! the ACK, and still more than 536 bytes free. Small requests (the peer waits for the answer,
//! not for the ACK) and sockets with larger buffers keep the deferral, and so does a window
//! that the data has (nearly) filled: an ACK sent before the application reads would advertise
//! a window of (nearly) nothing, and the window update after the read would be a second frame.
//!
//! Measured: the goodput benchmark (`scripts/goodput.sh`) reaches embassy-net's figures in
//! every 4 KiB cell (100 Mbit/s, 0.2 ms: 76.0 % instead of 61.3 %), no other cell changes, and
//! request/response over 4 KiB sockets with 64-byte messages keeps its instruction count
//! (`callgrind.sh tcp_rr`; without the 536-byte condition on unread data it cost 10 % more
//! instructions per round trip: an ACK frame of its own instead of one riding on the answer).
//! Against Linux on a TAP (`scripts/ack-gaps.sh`, 4 MB into a 4 KiB buffer, Linux sending
//! whole windows at once) the stack sends about as many ACKs as with the deferral alone
//! (1062-1174 against 1003-1119); without the free-window condition it sent 1955, half of
//! them advertising a zero window, as embassy-net does.

use smoltcp::socket::tcp;

/// See the module docs.
pub(crate) struct SmallWindow;

impl SmallWindow {
    /// Receive buffers below this many bytes (three TCP segments of 1460 bytes, an Ethernet
    /// MSS) count as small.
    pub(crate) const BELOW: usize = 3 * 1460;
    /// Unread data up to this many bytes (RFC 9293's default MSS) may be a request that the
    /// application answers at once: its ACK can wait for the answer.
    pub(crate) const SMALL_MESSAGE: usize = 536;

    /// Whether a socket with a receive buffer of `capacity` bytes, `queued` of them unread,
    /// wants its ACK sent in this poll rather than deferred (see the module docs).
    #[inline]
    pub(crate) const fn acks_now(capacity: usize, queued: usize) -> bool {
        capacity < Self::BELOW
            && queued > Self::SMALL_MESSAGE
            && capacity.saturating_sub(queued) > Self::SMALL_MESSAGE
    }

    /// [`SmallWindow::acks_now`] for a smoltcp TCP socket.
    #[inline]
    pub(crate) fn socket_acks_now(socket: &tcp::Socket<'_>) -> bool {
        Self::acks_now(socket.recv_capacity(), socket.recv_queue())
    }
}

#[cfg(test)]
mod tests {
    use super::SmallWindow;

    #[test]
    fn only_small_buffers_with_a_bulk_sized_segment_unread_ack_now() {
        // 4 KiB: 2.8 segments; the first, shorter segment of a window and a full one.
        assert!(SmallWindow::acks_now(4096, 1176));
        assert!(SmallWindow::acks_now(4096, 1460));
        assert!(SmallWindow::acks_now(2048, 1000));
        // Nothing unread, or a small request the application is about to answer.
        assert!(!SmallWindow::acks_now(4096, 0));
        assert!(!SmallWindow::acks_now(4096, 64));
        assert!(!SmallWindow::acks_now(4096, 536));
        // A (nearly) full window: the ACK would advertise nothing; it waits for the read.
        assert!(!SmallWindow::acks_now(4096, 4096));
        assert!(!SmallWindow::acks_now(4096, 4096 - 536));
        assert!(SmallWindow::acks_now(4096, 4096 - 537));
        // A buffer smaller than two minimum-size segments never has both.
        assert!(!SmallWindow::acks_now(1024, 537));
        // Three segments and more: the deferral pays.
        assert!(!SmallWindow::acks_now(3 * 1460, 1460));
        assert!(!SmallWindow::acks_now(8192, 4096));
    }
}
