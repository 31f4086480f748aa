//! Helpers shared by the tests: wakers, test data, ferronet stacks on channel devices, and
//! pretend-NIC driver tasks that move frames between two channels.
#![allow(dead_code)]

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Wake, Waker};

use embassy_time::Duration;
use ferronet::tcp::{TcpReader, TcpSocket, TcpWriter};
use ferronet::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use ferronet_driver_channel::{Device, Runner, RxRunner, StateRunner, TxRunner};
use ferronet_sim::executor::Executor;
use futures::future::join;

/// Ethernet frames of up to 1500 bytes of IP.
pub const MTU: usize = 1514;

/// Virtual time limit of every run: far beyond what any test needs, so that a hang fails.
pub const LIMIT: Duration = Duration::from_secs(3600);

/// A waker that counts its wakes.
pub struct CountingWaker(AtomicUsize);

impl CountingWaker {
    /// The counter and a waker that bumps it.
    pub fn new() -> (Arc<Self>, Waker) {
        let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    /// Wakes so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Leaks a value for the rest of the test process.
pub fn leak<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}

/// Leaks a zeroed byte buffer.
pub fn buf(len: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; len].into_boxed_slice())
}

/// Runs `f` on `ex`, failing the test if it does not complete within [`LIMIT`] of virtual
/// time.
#[track_caller]
pub fn run<F: Future>(ex: &Executor<'_>, f: F) -> F::Output {
    match ex.try_run_until(f, LIMIT) {
        Ok(out) => out,
        Err(e) => panic!("hang: {e}"),
    }
}

/// Byte `i` of test stream `seed`.
pub fn pattern(seed: u8, i: usize) -> u8 {
    (i as u32).wrapping_mul(2654435761).rotate_left(7) as u8 ^ seed
}

/// Fills `buf` with stream `seed` from offset `offset`.
pub fn fill_pattern(seed: u8, offset: usize, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, offset + k);
    }
}

/// Checks `buf` against stream `seed` from offset `offset`; the first wrong offset if any.
pub fn check_pattern(seed: u8, offset: usize, buf: &[u8]) -> Result<(), usize> {
    match buf
        .iter()
        .enumerate()
        .find(|(k, b)| **b != pattern(seed, offset + k))
    {
        Some((k, _)) => Err(offset + k),
        None => Ok(()),
    }
}

/// The MAC address of test host `host`: locally administered.
pub fn mac(host: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, host]
}

/// 192.0.2.`host`.
pub fn ip4(host: u8) -> Ipv4Address {
    Ipv4Address::new(192, 0, 2, host)
}

/// A ferronet stack on `device`: 192.0.2.`host`/24.
pub fn stack_on<const M: usize>(
    device: Device<'static, M>,
    host: u8,
    seed: u64,
) -> (
    Stack<'static>,
    ferronet::Runner<'static, Device<'static, M>>,
) {
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip4(host), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    ferronet::new(device, config, leak(StackResources::<4>::new()), seed)
}

/// Spawns the stack's runner on `ex`.
pub fn spawn_stack<'a, const M: usize>(
    ex: &Executor<'a>,
    mut runner: ferronet::Runner<'static, Device<'static, M>>,
) {
    ex.spawn(async move {
        runner.run().await;
    });
}

/// One direction of a pretend cable: takes each frame from `from` (one NIC's TX queue) and
/// puts it into `to` (the other NIC's RX queue), holding it while it waits for room there.
pub async fn wire<const M: usize>(mut from: TxRunner<'_, M>, mut to: RxRunner<'_, M>) {
    loop {
        let frame = from.tx_buf().await;
        let len = frame.len();
        let slot = to.rx_buf().await;
        slot[..len].copy_from_slice(frame);
        to.rx_done(len);
        from.tx_done();
    }
}

/// What [`naive_driver`] saw.
#[derive(Default)]
pub struct DriverLog {
    /// Frames moved A to B.
    pub a_to_b: Cell<usize>,
    /// Frames moved B to A.
    pub b_to_a: Cell<usize>,
    /// Times the driver, holding a frame for a NIC, found that NIC's RX and TX queues both
    /// full, and so had to wait for RX room: where embassy-net-driver-channel's design
    /// stops for good.
    pub both_full: Cell<usize>,
}

/// A pretend driver for two NICs cabled to each other, written the naive way in one task:
/// it waits for any frame to send (always looking at NIC A first, as a driver that puts
/// one direction first would), then waits for room in the other NIC's RX queue while it holds
/// that frame, serving nothing else meanwhile. `caps` is the (RX, TX) capacity of the queues
/// of both channels.
pub async fn naive_driver<const M: usize>(
    a: Runner<'_, M>,
    b: Runner<'_, M>,
    caps: (usize, usize),
    log: &DriverLog,
) {
    let (state_a, mut rx_a, mut tx_a) = a.split();
    let (state_b, mut rx_b, mut tx_b) = b.split();
    loop {
        let from_a = poll_fn(|cx| {
            if tx_a.poll_tx_buf(cx).is_ready() {
                Poll::Ready(true)
            } else if tx_b.poll_tx_buf(cx).is_ready() {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await;
        if from_a {
            shuttle(&mut tx_a, &mut rx_b, state_b, caps, log).await;
            log.a_to_b.set(log.a_to_b.get() + 1);
        } else {
            shuttle(&mut tx_b, &mut rx_a, state_a, caps, log).await;
            log.b_to_a.set(log.b_to_a.get() + 1);
        }
    }
}

/// Moves the oldest frame of `from` into `to`, waiting for room in `to` while holding it.
async fn shuttle<const M: usize>(
    from: &mut TxRunner<'_, M>,
    to: &mut RxRunner<'_, M>,
    to_state: StateRunner<'_>,
    caps: (usize, usize),
    log: &DriverLog,
) {
    if to_state.rx_queue_len() == caps.0 && to_state.tx_queue_len() == caps.1 {
        log.both_full.set(log.both_full.get() + 1);
    }
    let frame = from.tx_buf().await;
    let len = frame.len();
    let slot = to.rx_buf().await;
    slot[..len].copy_from_slice(frame);
    to.rx_done(len);
    from.tx_done();
}

/// TCP port of the exchanges.
pub const PORT: u16 = 7;

/// Writes `len` bytes of stream `seed` in chunks of varied sizes, then flushes.
pub async fn send_stream(w: &mut TcpWriter<'_>, seed: u8, len: usize) {
    const CHUNKS: [usize; 5] = [1, 1460, 700, 4096, 13];
    let mut chunk = [0u8; 4096];
    let (mut sent, mut k) = (0, 0);
    while sent < len {
        let n = CHUNKS[k % CHUNKS.len()].min(len - sent);
        k += 1;
        fill_pattern(seed, sent, &mut chunk[..n]);
        let mut off = 0;
        while off < n {
            let m = w.write(&chunk[off..n]).await.expect("write");
            assert!(m > 0 && m <= n - off, "write returned {m}");
            off += m;
        }
        sent += n;
    }
    w.flush().await.expect("flush");
}

/// Reads `len` bytes and checks every one against stream `seed`; returns how many came.
pub async fn recv_stream(r: &mut TcpReader<'_>, seed: u8, len: usize) -> usize {
    let mut tmp = [0u8; 3000];
    let mut got = 0;
    while got < len {
        let want = tmp.len().min(len - got);
        let n = r.read(&mut tmp[..want]).await.expect("read");
        assert!(n > 0, "end of stream after {got} bytes");
        if let Err(at) = check_pattern(seed, got, &tmp[..n]) {
            panic!("stream {seed:#x}: byte {at} is wrong");
        }
        got += n;
    }
    got
}

/// Connects `a` (192.0.2.1) to `b` (192.0.2.2), sends `len` bytes each way at once (every
/// byte checked), then closes both ends and waits until both FINs are acknowledged.
pub fn exchange(ex: &Executor<'_>, a: Stack<'static>, b: Stack<'static>, len: usize) {
    let mut client = TcpSocket::new(a, buf(8 * 1024), buf(8 * 1024));
    let mut server = TcpSocket::new(b, buf(8 * 1024), buf(8 * 1024));
    let (acc, con) = run(
        ex,
        join(
            server.accept(PORT),
            client.connect(IpEndpoint::new(ip4(2).into(), PORT)),
        ),
    );
    assert_eq!(acc, Ok(()));
    assert_eq!(con, Ok(()));
    {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let ((_, _), (c_got, s_got)) = run(
            ex,
            join(
                join(
                    send_stream(&mut cw, 0xa1, len),
                    send_stream(&mut sw, 0xb2, len),
                ),
                join(
                    recv_stream(&mut cr, 0xb2, len),
                    recv_stream(&mut sr, 0xa1, len),
                ),
            ),
        );
        assert_eq!((c_got, s_got), (len, len));
    }
    client.close();
    server.close();
    let (c, s) = run(ex, join(client.flush(), server.flush()));
    assert_eq!((c, s), (Ok(()), Ok(())));
}
