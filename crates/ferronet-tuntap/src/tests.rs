//! Unit tests that need no privileges: name checks, error mapping, and the readiness and
//! backpressure machinery on a `SOCK_SEQPACKET` socket pair standing in for a TUN descriptor.

use std::future::{Future, poll_fn};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use embassy_net_driver::{Driver, HardwareAddress, LinkState, RxToken, TxToken};

use crate::device::Core;
use crate::{Error, Kind, TapDevice, TunDevice, sys};

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `f` to completion on this thread, parking while it is pending; panics after `limit`.
fn block_on<F: Future>(limit: Duration, f: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        let now = Instant::now();
        assert!(now < deadline, "timed out after {limit:?}");
        std::thread::park_timeout(deadline - now);
    }
}

/// A connected SOCK_SEQPACKET pair (message boundaries kept, like a TUN descriptor); the
/// first end is non-blocking and has a small send buffer.
fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for socketpair(2) to fill.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let size: libc::c_int = 4096;
    // SAFETY: SO_SNDBUF takes a c_int, passed by pointer with its size.
    let rc = unsafe {
        libc::setsockopt(
            a.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    (a, b)
}

#[test]
fn invalid_names_are_rejected_before_any_system_call() {
    for name in [
        "",
        "0123456789abcdef",
        ".",
        "..",
        "a/b",
        "tap:0",
        "tap 0",
        "tap\t",
        "tap%d",
        "a\0b",
    ] {
        match TapDevice::open(name) {
            Err(Error::InvalidName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
    }
    assert!(
        sys::IfName::new("0123456789abcde").is_ok(),
        "15 bytes is the limit"
    );
    let e = TunDevice::open("this-name-is-too-long").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("longer than 15 bytes"), "{e}");
}

#[test]
fn missing_clone_device_is_reported_as_such() {
    let e = TapDevice::open_with_clone_device(c"/nonexistent/net/tun", "tap0").unwrap_err();
    assert!(matches!(e, Error::TunUnavailable { .. }), "{e:?}");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/net/tun") && msg.contains("tun"),
        "{msg}"
    );
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn open_existing_does_not_create() {
    let e = TapDevice::open_existing("ferronet-nx0").unwrap_err();
    assert!(matches!(e, Error::NoSuchInterface { .. }), "{e:?}");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(
        e.to_string()
            .contains("ip tuntap add dev ferronet-nx0 mode tap"),
        "{e}"
    );
    let e = TunDevice::open_existing("ferronet-nx0").unwrap_err();
    assert!(e.to_string().contains("mode tun"), "{e}");
}

#[test]
fn a_non_tun_character_device_is_an_io_error_with_context() {
    // /dev/null opens fine but does not know TUNSETIFF.
    let e = TunDevice::open_with_clone_device(c"/dev/null", "tun0").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("tun0") && msg.contains("TUNSETIFF"), "{msg}");
}

#[test]
fn mac_helpers() {
    assert_eq!(
        crate::format_mac([2, 0, 0x5e, 0, 0x53, 0xff]),
        "02:00:5e:00:53:ff"
    );
    assert_eq!(
        crate::parse_mac("02-00-5E-00-53-FF"),
        Some([2, 0, 0x5e, 0, 0x53, 0xff])
    );
    assert_eq!(crate::parse_mac("02:00:5e:00:53:ff:00"), None);
    assert_eq!(crate::parse_mac("02:00:5e:00:53:fff"), None);
    let m = crate::stack_mac_for([0x01, 0, 0, 0, 0, 0]);
    assert_eq!(m, [0x02, 0, 0, 0, 0, 1], "unicast and locally administered");
    for ifmac in [
        [2, 0, 0, 0, 0, 1],
        [0x52, 0x54, 0, 1, 2, 3],
        [0, 0, 0, 0, 0, 0],
    ] {
        assert_ne!(crate::stack_mac_for(ifmac), ifmac);
    }
}

#[test]
fn receive_wakes_from_the_helper_thread_and_transmit_writes() {
    let (ours, peer) = seqpacket_pair();
    let mut dev = TunDevice::from_core(Core::from_fd(ours, Kind::Tun, 1500));
    assert_eq!(dev.hardware_address(), HardwareAddress::Ip);
    assert_eq!(dev.capabilities().max_transmission_unit, 1500);

    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..3u8 {
            let frame = [0x45, i, i, i];
            sys::write(peer.as_raw_fd(), &frame).unwrap();
        }
        peer
    });
    // The frames arrive while the future is parked: only the helper thread can wake it.
    let got = block_on(Duration::from_secs(10), async {
        let mut got = Vec::new();
        while got.len() < 3 {
            let frame = poll_fn(|cx| match dev.receive(cx) {
                Some((rx, _tx)) => Poll::Ready(rx.consume(|f| f.to_vec())),
                None => Poll::Pending,
            })
            .await;
            got.push(frame);
        }
        got
    });
    assert_eq!(
        got,
        vec![
            vec![0x45, 0, 0, 0],
            vec![0x45, 1, 1, 1],
            vec![0x45, 2, 2, 2]
        ]
    );
    let peer = writer.join().unwrap();

    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(dev.link_state(&mut cx) == LinkState::Up);
    let tx = dev.transmit(&mut cx).expect("room to send");
    tx.consume(5, |b| b.copy_from_slice(b"hello"));
    let mut buf = [0u8; 64];
    let n = sys::read(peer.as_raw_fd(), &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let s = dev.stats();
    assert_eq!(
        (s.rx_frames, s.rx_bytes, s.tx_frames, s.tx_bytes),
        (3, 12, 1, 5)
    );
}

#[test]
fn a_full_kernel_queue_defers_frames_instead_of_dropping_them() {
    let (ours, peer) = seqpacket_pair();
    let mut dev = TapDevice::from_core(Core::from_fd(ours, Kind::Tap, 1500));
    const FRAME: usize = 1000;
    const TOTAL: u32 = 200;

    // Send frames numbered 0.. until the socket buffer is full and one frame is pending.
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut sent = 0u32;
    while sent < TOTAL {
        match dev.transmit(&mut cx) {
            Some(tx) => {
                tx.consume(FRAME, |b| {
                    b.fill(0);
                    b[..4].copy_from_slice(&sent.to_be_bytes());
                });
                sent += 1;
            }
            None => break,
        }
    }
    assert!(sent < TOTAL, "the socket buffer never filled");
    assert!(dev.core().has_pending());
    assert!(
        dev.transmit(&mut cx).is_none(),
        "no token while a frame is pending"
    );
    assert!(
        dev.receive(&mut cx).is_none(),
        "no receive while a frame is pending"
    );
    assert!(dev.stats().tx_deferred >= 1);

    // A reader on another thread drains the peer slowly; the sender parks and must be woken
    // by the helper thread on POLLOUT each time the queue has room again.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < TOTAL as usize && Instant::now() < deadline {
            match sys::read(peer.as_raw_fd(), &mut buf) {
                Ok(n) => {
                    assert_eq!(n, FRAME);
                    got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        got
    });
    block_on(Duration::from_secs(20), async {
        while sent < TOTAL {
            poll_fn(|cx| match dev.transmit(cx) {
                Some(tx) => {
                    tx.consume(FRAME, |b| {
                        b.fill(0);
                        b[..4].copy_from_slice(&sent.to_be_bytes());
                    });
                    sent += 1;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            })
            .await;
        }
        // And the last one out.
        poll_fn(|cx| match dev.transmit(cx) {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        })
        .await;
    });
    let got = reader.join().unwrap();
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>(), "every frame, in order");
    let s = dev.stats();
    assert_eq!(s.tx_frames, u64::from(TOTAL));
    assert_eq!(s.tx_dropped, 0);
    assert!(s.tx_deferred >= 1);
}

#[test]
fn a_hung_up_descriptor_takes_the_link_down() {
    let (ours, peer) = seqpacket_pair();
    let mut dev = TapDevice::from_core(Core::from_fd(ours, Kind::Tap, 1500));
    assert_eq!(dev.capabilities().max_transmission_unit, 1514);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(dev.link_state(&mut cx) == LinkState::Up);
    assert!(dev.receive(&mut cx).is_none());
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dev.link_state(&mut cx) == LinkState::Up {
        assert!(
            Instant::now() < deadline,
            "link still up after the peer hung up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!dev.is_link_up());
}

#[test]
fn set_mac_address_checks_and_reports() {
    let (ours, _peer) = seqpacket_pair();
    let mut dev = TapDevice::from_core(Core::from_fd(ours, Kind::Tap, 1500));
    assert!(matches!(
        dev.set_mac_address([1, 0, 0x5e, 0, 0, 1]),
        Err(Error::InvalidMac(_))
    ));
    assert!(matches!(
        dev.set_mac_address([0; 6]),
        Err(Error::InvalidMac(_))
    ));
    dev.set_mac_address([2, 0, 0x5e, 0, 0x53, 7]).unwrap();
    assert_eq!(dev.mac_address(), [2, 0, 0x5e, 0, 0x53, 7]);
    assert_eq!(
        dev.hardware_address(),
        HardwareAddress::Ethernet([2, 0, 0x5e, 0, 0x53, 7])
    );
    // No interface behind a socket pair: interface settings fail cleanly.
    let e = dev.set_mtu(1400).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
}
