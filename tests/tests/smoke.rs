//! A first end-to-end check: TCP connect, echo and close over a simulated link.

use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet::tcp::TcpSocket;
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::LinkConfig;

#[test]
fn tcp_echo_small() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.spawn(async move {
        let mut s = TcpSocket::new(b, buf(4096), buf(4096));
        s.accept(7).await.unwrap();
        let mut tmp = [0u8; 256];
        loop {
            let n = s.read(&mut tmp).await.unwrap();
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                off += s.write(&tmp[off..n]).await.unwrap();
            }
        }
        s.close();
        s.flush().await.unwrap();
    });
    let got = ex
        .try_run_until(
            async move {
                let mut s = TcpSocket::new(a, buf(4096), buf(4096));
                s.connect(IpEndpoint::new(ip4(3).into(), 7)).await.unwrap();
                s.write(b"hello ferronet").await.unwrap();
                s.close();
                let mut out = Vec::new();
                let mut tmp = [0u8; 64];
                loop {
                    let n = s.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&tmp[..n]);
                }
                out
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(got, b"hello ferronet");
}
