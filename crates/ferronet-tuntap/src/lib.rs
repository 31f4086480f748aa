//! Linux TAP and TUN devices as [`embassy_net_driver::Driver`]s, to run
//! [ferronet](https://example.invalid/ferronet) (or embassy-net) on a PC against the host's
//! kernel, other programs, or a real network behind a bridge.
//!
//! - [`TapDevice`]: Ethernet frames; reports `HardwareAddress::Ethernet`.
//! - [`TunDevice`]: bare IPv4/IPv6 packets; reports `HardwareAddress::Ip`.
//!
//! Both are opened by interface name with `IFF_NO_PI` (no packet information header).
//! `open` attaches to an existing interface or, if there is none of that name, has the kernel
//! create one that lives as long as the device (this needs `CAP_NET_ADMIN`); `open_existing`
//! never creates one and fails with [`Error::NoSuchInterface`] instead. A persistent
//! interface made with `ip tuntap add dev NAME mode tap [user USER]` can be attached to by its
//! owner without further privileges. Failures are typed ([`Error`]): `/dev/net/tun` missing,
//! permission denied, invalid or too long name, interface busy or of the wrong kind.
//!
//! ```no_run
//! # fn main() -> Result<(), ferronet_tuntap::Error> {
//! let tap = ferronet_tuntap::TapDevice::open("tap0")?;
//! println!("{}: MTU {}, link up: {}", tap.name(), tap.mtu(), tap.is_link_up());
//! // let (stack, mut runner) = ferronet::new(tap, config, resources, seed);
//! # Ok(()) }
//! ```
//!
//! # Any executor: readiness from a helper thread
//!
//! The `Driver` trait only gets a `Context` and must register its waker when it has nothing
//! to give; it knows nothing of the executor. Each device therefore starts one small helper
//! thread that blocks in `poll(2)` on the (non-blocking) descriptor and an eventfd
//! "doorbell", and calls the registered wakers when the descriptor becomes readable or
//! writable. Wakers are `Send + Sync`, so this works with embassy-executor's std arch, tokio,
//! `futures::executor`, a hand-written `block_on`, and so on. It was chosen over the other
//! options because:
//!
//! - registering the descriptor with one runtime's reactor (such as tokio's `AsyncFd`) would
//!   tie the device to that runtime;
//! - busy polling (or a timer tick) wastes CPU or adds latency;
//! - reading in the thread and handing frames over through a queue would copy every frame
//!   and need buffers in flight; here the thread only *watches*, and all reads and writes
//!   happen on the stack's task, straight into and out of the device's two preallocated
//!   64 KiB buffers, so nothing is allocated per frame.
//!
//! The thread only polls for what some waker waits for (a waker is taken when woken), so a
//! frame that sits unread does not make it spin. The thread exits when the device is dropped.
//!
//! # Backpressure
//!
//! When the kernel refuses a frame for lack of room (`EAGAIN`, or `ENOBUFS`/`ENOMEM`), the
//! frame is kept in the transmit buffer, not dropped: `transmit` returns `None` (and
//! `receive` too, since a received frame may need a reply) until the frame has been written.
//! The waiting waker is woken on `POLLOUT`, or after [`NOBUFS_RETRY_DELAY`] for `ENOBUFS`
//! (which `poll` does not report). Frames the kernel rejects for good (`EIO` while the
//! interface is down, `EINVAL` for a malformed TUN packet) are dropped and counted in
//! [`Stats::tx_dropped`].
//!
//! # Link state
//!
//! The link is up while the interface is both up and running (`IFF_UP` and `IFF_RUNNING`,
//! what `ip link` shows as `UP,LOWER_UP`). The helper thread reads the flags with
//! `SIOCGIFFLAGS` every [`LINK_CHECK_INTERVAL`] (100 ms; polling was chosen over a netlink
//! subscription for its simplicity, at the cost of up to 100 ms of delay) and wakes the
//! link-state waker on a change. If the interface is deleted, the descriptor reports an error
//! and the link stays down for good.
//!
//! # MAC addresses of a TAP device
//!
//! A TAP device joins two Ethernet stations: the kernel's interface, which has its own MAC
//! address ([`TapDevice::interface_mac_address`], settable with
//! [`TapDevice::set_interface_mac_address`], i.e. `SIOCGIFHWADDR`/`SIOCSIFHWADDR`), and the
//! stack on this side, whose address the driver reports as its hardware address
//! ([`TapDevice::mac_address`], [`TapDevice::set_mac_address`]). The two must differ. By
//! default the stack's address is derived from the interface's: made locally administered and
//! unicast, with the last bit flipped.
//!
//! # Other operating systems
//!
//! Only Linux is supported. On other targets this crate compiles to nothing but this
//! documentation.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg(target_os = "linux")]
mod device;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod sys;

#[cfg(target_os = "linux")]
pub use device::{
    DeviceHandle, FRAME_BUFFER_LEN, LINK_CHECK_INTERVAL, NOBUFS_RETRY_DELAY, Stats, TunTapRxToken,
    TunTapTxToken,
};
#[cfg(target_os = "linux")]
pub use error::{Error, Kind};
#[cfg(target_os = "linux")]
pub use sys::MAX_NAME_LEN;

#[cfg(target_os = "linux")]
mod devices;
#[cfg(target_os = "linux")]
pub use devices::{TapDevice, TunDevice};

/// The stack-side MAC address a [`TapDevice`] uses by default for an interface whose own
/// address is `interface_mac`: locally administered, unicast, last bit flipped.
///
/// ```
/// assert_eq!(
///     ferronet_tuntap::stack_mac_for([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
///     [0x52 | 0x02, 0x54, 0, 0x12, 0x34, 0x57]
/// );
/// ```
pub const fn stack_mac_for(interface_mac: [u8; 6]) -> [u8; 6] {
    let mut mac = interface_mac;
    mac[0] = (mac[0] | 0x02) & !0x01;
    mac[5] ^= 0x01;
    mac
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses a MAC address written as six hexadecimal bytes separated by `:` or `-`.
///
/// ```
/// assert_eq!(ferronet_tuntap::parse_mac("02:00:5e:10:00:2a"), Some([2, 0, 0x5e, 0x10, 0, 0x2a]));
/// assert_eq!(ferronet_tuntap::parse_mac("02:00:5e"), None);
/// ```
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
