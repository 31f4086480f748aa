//! The non-blocking `try_*` calls of TCP and UDP sockets (embassy-net main's names and
//! `TryError`): `WouldBlock` when the call would wait, success with the bytes checked, and the
//! errors of the blocking calls in `TryError::Other`. Runs on ferronet-sim's virtual clock.

use ferronet::TryError;
use ferronet::tcp::{Error, State, TcpSocket};
use ferronet::udp::{PacketMetadata, RecvError, SendError, UdpSocket};
use ferronet_integration::sim::{ep4, run, settle};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::LinkConfig;
use futures::future::join;

const PORT: u16 = 7;

#[test]
fn tcp_try_calls_before_and_after_connect() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let mut server = TcpSocket::new(b, buf(1024), buf(1024));
    let mut client = TcpSocket::new(a, buf(1024), buf(256));

    // Never connected: the errors of the blocking calls.
    let mut tmp = [0u8; 64];
    assert_eq!(
        client.try_read(&mut tmp),
        Err(TryError::Other(Error::InvalidState))
    );
    assert_eq!(
        client.try_write(b"x"),
        Err(TryError::Other(Error::InvalidState))
    );
    assert_eq!(client.try_flush(), Ok(()));

    let (acc, con) = run(&ex, join(server.accept(PORT), client.connect(ep4(3, PORT))));
    assert_eq!((acc, con), (Ok(()), Ok(())));

    // Connected, nothing received: WouldBlock, and `f` is not called.
    assert_eq!(server.try_read(&mut tmp), Err(TryError::WouldBlock));
    assert_eq!(server.try_peek(&mut tmp), Err(TryError::WouldBlock));
    assert_eq!(
        server.try_read_with(|_| -> (usize, ()) { panic!("f called with no data") }),
        Err(TryError::WouldBlock)
    );
    // Empty buffers never block.
    assert_eq!(server.try_read(&mut []), Ok(0));
    assert_eq!(client.try_write(&[]), Ok(0));

    // Write 100 bytes without waiting; flush would block until they are acknowledged.
    let data: Vec<u8> = (0..100u8).collect();
    assert_eq!(client.try_write(&data), Ok(100));
    assert_eq!(client.try_flush(), Err(TryError::WouldBlock));
    settle(&ex);
    assert_eq!(client.try_flush(), Ok(()));

    // Peek leaves the bytes; read takes them.
    let n = server.try_peek(&mut tmp).unwrap();
    assert_eq!(&tmp[..n], &data[..64]);
    assert_eq!(server.recv_queue(), 100);
    let n = server.try_read(&mut tmp).unwrap();
    assert_eq!(&tmp[..n], &data[..64]);
    let got = server
        .try_read_with(|b| (b.len(), b.to_vec()))
        .expect("rest");
    assert_eq!(got, &data[64..]);
    assert_eq!(server.try_read(&mut tmp), Err(TryError::WouldBlock));

    // try_write_with queues what `f` says, and fills the 256-byte buffer to WouldBlock.
    let r = client.try_write_with(|b| {
        b[..3].copy_from_slice(b"abc");
        (3, 7)
    });
    assert_eq!(r, Ok(7));
    let mut queued = 3;
    loop {
        match client.try_write(&[0x55; 64]) {
            Ok(n) => queued += n,
            Err(TryError::WouldBlock) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(queued <= 256, "queued {queued} in a 256-byte buffer");
    }
    assert_eq!(queued, 256);
    assert_eq!(
        client.try_write_with(|_| -> (usize, ()) { panic!("f called with a full buffer") }),
        Err(TryError::WouldBlock)
    );
    settle(&ex);
    let mut all = Vec::new();
    while let Ok(n) = server.try_read(&mut tmp) {
        all.extend_from_slice(&tmp[..n]);
    }
    assert_eq!(all.len(), 256);
    assert_eq!(&all[..3], b"abc");
    assert!(all[3..].iter().all(|&b| b == 0x55));

    // End of stream: Ok(0), and `f` gets an empty slice.
    client.close();
    assert_eq!(
        client.try_write(b"x"),
        Err(TryError::Other(Error::InvalidState))
    );
    settle(&ex);
    assert_eq!(client.try_flush(), Ok(()));
    assert_eq!(server.try_read(&mut tmp), Ok(0));
    assert_eq!(server.try_read_with(|b| (0, b.len())), Ok(0));
    assert_eq!(server.state(), State::CloseWait);
}

#[test]
fn tcp_try_calls_report_reset_and_work_on_halves() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let mut server = TcpSocket::new(b, buf(1024), buf(1024));
    let mut client = TcpSocket::new(a, buf(1024), buf(1024));
    let (acc, con) = run(&ex, join(server.accept(PORT), client.connect(ep4(3, PORT))));
    assert_eq!((acc, con), (Ok(()), Ok(())));

    {
        let (mut r, mut w) = client.split();
        assert_eq!(w.try_write(b"hello"), Ok(5));
        assert_eq!(w.try_flush(), Err(TryError::WouldBlock));
        assert_eq!(r.try_read(&mut [0u8; 8]), Err(TryError::WouldBlock));
        settle(&ex);
        assert_eq!(w.try_flush(), Ok(()));
        assert_eq!(server.try_write(b"world"), Ok(5));
        settle(&ex);
        let mut tmp = [0u8; 8];
        assert_eq!(r.try_peek(&mut tmp), Ok(5));
        assert_eq!(
            r.try_read_with(|b| (b.len(), b.to_vec())),
            Ok(b"world".to_vec())
        );
        assert_eq!(
            w.try_write_with(|b| {
                b[0] = b'!';
                (1, b.len())
            }),
            Ok(1024)
        );
    }
    settle(&ex);
    let mut tmp = [0u8; 16];
    assert_eq!(server.try_read(&mut tmp), Ok(6));
    assert_eq!(&tmp[..6], b"hello!");

    // The server aborts: the client's try calls report the reset.
    server.abort();
    settle(&ex);
    assert_eq!(
        client.try_read(&mut tmp),
        Err(TryError::Other(Error::ConnectionReset))
    );
    assert_eq!(
        client.try_write(b"x"),
        Err(TryError::Other(Error::ConnectionReset))
    );
    assert_eq!(
        client.try_write_with(|b| (b.len(), ())),
        Err(TryError::Other(Error::ConnectionReset))
    );
    assert_eq!(
        client.try_read_with(|b| (b.len(), ())),
        Err(TryError::Other(Error::ConnectionReset))
    );

    // Zero-capacity buffers are errors, not WouldBlock.
    let mut empty = TcpSocket::new(a, buf(0), buf(0));
    assert_eq!(
        empty.try_read(&mut tmp),
        Err(TryError::Other(Error::InvalidState))
    );
    assert_eq!(
        empty.try_write(b"x"),
        Err(TryError::Other(Error::InvalidState))
    );
}

#[test]
fn udp_try_calls() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let mut tx = UdpSocket::new(
        a,
        leak([PacketMetadata::EMPTY; 2]),
        buf(512),
        leak([PacketMetadata::EMPTY; 2]),
        buf(512),
    );
    let mut rx = UdpSocket::new(
        b,
        leak([PacketMetadata::EMPTY; 4]),
        buf(2048),
        leak([PacketMetadata::EMPTY; 2]),
        buf(512),
    );
    let dst = ep4(3, 9000);

    // Not bound yet.
    assert_eq!(
        tx.try_send_to(b"x", dst),
        Err(TryError::Other(SendError::SocketNotBound))
    );
    tx.bind(0).unwrap();
    rx.bind(9000).unwrap();
    let mut tmp = [0u8; 64];
    assert_eq!(rx.try_recv_from(&mut tmp), Err(TryError::WouldBlock));

    // Success, then a full transmit queue (2 datagrams) is WouldBlock until the runner sends.
    assert_eq!(tx.try_send_to(b"one", dst), Ok(()));
    assert_eq!(
        tx.try_send_to_with(3, dst, |b| {
            b.copy_from_slice(b"two");
            42
        }),
        Ok(42)
    );
    assert_eq!(tx.try_send_to(b"three", dst), Err(TryError::WouldBlock));
    assert_eq!(
        tx.try_send_to_with(1, dst, |_| panic!("f called with a full queue")),
        Err::<(), _>(TryError::WouldBlock)
    );
    settle(&ex);
    assert_eq!(tx.try_send_to(b"three", dst), Ok(()));
    settle(&ex);

    let from = tx.endpoint().port;
    for want in [&b"one"[..], b"two", b"three"] {
        let (n, meta) = rx.try_recv_from(&mut tmp).expect("datagram");
        assert_eq!(&tmp[..n], want);
        assert_eq!(meta.endpoint, ep4(2, from));
    }
    assert_eq!(rx.try_recv_from(&mut tmp), Err(TryError::WouldBlock));

    // Errors of the blocking calls.
    assert_eq!(
        tx.try_send_to(&[0u8; 600], dst),
        Err(TryError::Other(SendError::PacketTooLarge))
    );
    assert_eq!(
        tx.try_send_to_with(600, dst, |_| ()),
        Err(TryError::Other(SendError::PacketTooLarge))
    );
    assert_eq!(
        tx.try_send_to(b"x", ep4(3, 0)),
        Err(TryError::Other(SendError::NoRoute))
    );
    // A datagram larger than the receive buffer given is dropped with Truncated.
    assert_eq!(tx.try_send_to(&[7u8; 100], dst), Ok(()));
    settle(&ex);
    assert_eq!(
        rx.try_recv_from(&mut tmp),
        Err(TryError::Other(RecvError::Truncated))
    );
    assert_eq!(rx.try_recv_from(&mut tmp), Err(TryError::WouldBlock));
}
