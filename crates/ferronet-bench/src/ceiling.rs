//! The no-stack ceiling: the same payload bytes through the same link rings, driver API and
//! executor, with no network stack in between.
//!
//! - bulk: A sends full-size frames (a fixed 54-byte Ethernet/IPv4/TCP-sized header and 1460
//!   pattern bytes, like a TCP segment at MSS 1460) as fast as the ring takes them; B checks
//!   every payload byte. One copy in (pattern into the frame), one compare out, per byte.
//! - rr: A sends a 106-byte frame (42-byte Ethernet/IPv4/UDP-sized header and a
//!   [`RR_MESSAGE`]-byte payload); B checks it and sends it back; A checks the answer.
//!
//! What the ceiling leaves out is exactly what a stack adds: header building and parsing,
//! checksums, socket buffers, the extra copies into and out of them, ARP, the TCP state
//! machine, timers, and the runner's polls.

use core::cell::Cell;
use core::pin::pin;
use core::task::Poll;
use std::future::poll_fn;
use std::time::Instant;

use embassy_net_driver::{Driver, RxToken, TxToken};

use crate::exec::{self, Task};
use crate::link::{self, BenchDevice, LinkHandle, MAC_A, MAC_B};
use crate::params::RR_MESSAGE;
use crate::{Measurement, pattern};

/// Ethernet + IPv4 + TCP header bytes of a full segment.
const TCP_HEADER: usize = 54;
/// Ethernet + IPv4 + UDP header bytes.
const UDP_HEADER: usize = 42;
/// Payload of a full frame (MSS at MTU 1514).
const BULK_PAYLOAD: usize = 1460;

fn header<const N: usize>(dst: [u8; 6], src: [u8; 6]) -> [u8; N] {
    let mut h = [0u8; N];
    h[..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..14].copy_from_slice(&[0x08, 0x00]);
    h
}

async fn send(dev: &mut BenchDevice, header: &[u8], payload: &[u8]) {
    poll_fn(|cx| match dev.transmit(cx) {
        Some(token) => {
            token.consume(header.len() + payload.len(), |frame| {
                frame[..header.len()].copy_from_slice(header);
                frame[header.len()..].copy_from_slice(payload);
            });
            Poll::Ready(())
        }
        None => Poll::Pending,
    })
    .await
}

/// Receives one frame and gives its payload (after `header_len` bytes) to `f`.
async fn recv<R>(dev: &mut BenchDevice, header_len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut f = Some(f);
    poll_fn(|cx| match dev.receive(cx) {
        Some((rx, _tx)) => Poll::Ready(rx.consume(|frame| {
            let f = f.take().expect("a frame is consumed once");
            f(&frame[header_len..])
        })),
        None => Poll::Pending,
    })
    .await
}

fn finish(
    link: &LinkHandle,
    exec: exec::ExecStats,
    units: u64,
    started: Instant,
    finished: &Cell<Option<Instant>>,
) -> Measurement {
    let stats = link.stats();
    assert_eq!(stats.dropped, 0, "ceiling: the link dropped frames");
    Measurement {
        elapsed: finished.get().expect("ceiling records its end") - started,
        units,
        link: stats,
        exec,
    }
}

/// `total` payload bytes from A to B in full-size frames.
pub fn bulk(total: usize) -> Measurement {
    let (mut a, mut b, link) = link::pair();
    let hdr: [u8; TCP_HEADER] = header(MAC_B, MAC_A);
    let finished = Cell::new(None);
    let sender = async {
        let mut sent = 0usize;
        while sent < total {
            let n = (total - sent).min(BULK_PAYLOAD);
            send(&mut a, &hdr, pattern::slice(sent, n)).await;
            sent += n;
        }
    };
    let receiver = async {
        let mut got = 0usize;
        while got < total {
            let n = recv(&mut b, TCP_HEADER, |p| {
                pattern::verify("ceiling bulk", got, p);
                p.len()
            })
            .await;
            got += n;
        }
        assert_eq!(got, total, "ceiling bulk: byte count");
        finished.set(Some(Instant::now()));
    };
    let started = Instant::now();
    let exec = exec::run(&mut [Task::required(pin!(receiver)), Task::required(pin!(sender))]);
    finish(&link, exec, total as u64, started, &finished)
}

/// `n` round trips of an [`RR_MESSAGE`]-byte payload.
pub fn rr(n: usize) -> Measurement {
    let (mut a, mut b, link) = link::pair();
    let hdr_ab: [u8; UDP_HEADER] = header(MAC_B, MAC_A);
    let hdr_ba: [u8; UDP_HEADER] = header(MAC_A, MAC_B);
    let finished = Cell::new(None);
    let server = async {
        let mut msg = [0u8; RR_MESSAGE];
        for i in 0..n {
            recv(&mut b, UDP_HEADER, |p| {
                assert_eq!(p.len(), RR_MESSAGE, "ceiling rr: request length");
                pattern::verify("ceiling rr request", i * RR_MESSAGE, p);
                msg.copy_from_slice(p);
            })
            .await;
            send(&mut b, &hdr_ba, &msg).await;
        }
    };
    let client = async {
        for i in 0..n {
            send(&mut a, &hdr_ab, pattern::slice(i * RR_MESSAGE, RR_MESSAGE)).await;
            recv(&mut a, UDP_HEADER, |p| {
                assert_eq!(p.len(), RR_MESSAGE, "ceiling rr: response length");
                pattern::verify("ceiling rr response", i * RR_MESSAGE, p);
            })
            .await;
        }
        finished.set(Some(Instant::now()));
    };
    let started = Instant::now();
    let exec = exec::run(&mut [Task::required(pin!(server)), Task::required(pin!(client))]);
    finish(&link, exec, n as u64, started, &finished)
}
