//! Thin, checked wrappers around the Linux system calls this crate needs: opening
//! `/dev/net/tun`, the interface `ioctl`s, `poll(2)`, `read(2)`/`write(2)` and `eventfd(2)`.
//!
//! Every `unsafe` block of the crate that talks to the kernel lives here.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::{c_char, c_int, c_short};

use crate::error::{Error, Kind};

/// Longest interface name, in bytes, that Linux accepts (`IFNAMSIZ` - 1 for the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// The path of the TUN/TAP clone device.
pub(crate) const TUN_PATH: &CStr = c"/dev/net/tun";

/// A valid, NUL-terminated interface name.
#[derive(Clone, Copy)]
pub(crate) struct IfName([c_char; libc::IFNAMSIZ]);

impl IfName {
    /// Checks `name` like the kernel's `dev_valid_name` does (non-empty, at most 15 bytes, not
    /// `.` or `..`, no `/`, `:`, whitespace or NUL), and also refuses `%` (kernel name
    /// templates such as `tap%d`, which would open some other interface than the one named).
    pub(crate) fn new(name: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(invalid("the name is longer than 15 bytes (IFNAMSIZ - 1)"));
        }
        if name == "." || name == ".." {
            return Err(invalid("`.` and `..` are not interface names"));
        }
        if let Some(c) = name
            .bytes()
            .find(|&b| matches!(b, b'/' | b':' | b'%' | 0) || b.is_ascii_whitespace())
        {
            return Err(match c {
                b'%' => invalid("`%` (a kernel name template) is not allowed; give the exact name"),
                0 => invalid("the name contains a NUL byte"),
                _ => invalid("the name contains `/`, `:` or whitespace"),
            });
        }
        let mut buf = [0 as c_char; libc::IFNAMSIZ];
        for (dst, src) in buf.iter_mut().zip(name.bytes()) {
            *dst = src as c_char;
        }
        Ok(Self(buf))
    }

    /// Reads the (NUL-terminated) name the kernel wrote back into an `ifreq`.
    fn from_raw(raw: [c_char; libc::IFNAMSIZ]) -> Self {
        let mut buf = raw;
        buf[libc::IFNAMSIZ - 1] = 0;
        Self(buf)
    }

    pub(crate) fn as_string(&self) -> String {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// `struct ifreq` as the kernel reads it: the name, then a 24-byte union of which we use the
/// flags, MTU and hardware address members. (The kernel's union is 24 bytes on 64-bit
/// targets and 16 on 32-bit ones; a larger buffer is harmless, the kernel copies its size.)
#[repr(C)]
struct IfReq {
    name: [c_char; libc::IFNAMSIZ],
    data: IfReqData,
}

#[repr(C)]
#[derive(Clone, Copy)]
union IfReqData {
    flags: c_short,
    mtu: c_int,
    hwaddr: libc::sockaddr,
    _size: [u8; 24],
}

impl IfReq {
    fn new(name: &IfName) -> Self {
        Self {
            name: name.0,
            data: IfReqData { _size: [0; 24] },
        }
    }
}

/// Calls `ioctl(fd, request, &mut ifr)`.
fn ioctl_ifreq(fd: RawFd, request: libc::Ioctl, ifr: &mut IfReq) -> io::Result<()> {
    // SAFETY: every request this module passes (TUNSETIFF and the SIOC[GS]IF* interface
    // requests) takes a pointer to a `struct ifreq`; `ifr` is a valid, exclusively borrowed
    // `IfReq` at least as large as the kernel's `struct ifreq`, and the kernel does not keep
    // the pointer after the call returns.
    let rc = unsafe { libc::ioctl(fd, request, ifr as *mut IfReq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// Opens `path` (normally `/dev/net/tun`) non-blocking and attaches it to interface `name`
/// (created if it does not exist) as a TAP or TUN device without packet information headers.
/// Returns the descriptor and the interface's name.
pub(crate) fn open_tun(path: &CStr, name: &IfName, kind: Kind) -> Result<(OwnedFd, String), Error> {
    let requested = name.as_string();
    // SAFETY: `path` is a valid NUL-terminated string; `open` has no other preconditions.
    let raw = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        let source = io::Error::last_os_error();
        let path = std::path::PathBuf::from(path.to_string_lossy().into_owned());
        return Err(match source.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => {
                Error::TunUnavailable { path, source }
            }
            _ if is_permission(&source) => Error::PermissionDenied {
                name: requested,
                op: "open /dev/net/tun",
                source,
            },
            _ => Error::Io {
                op: "open /dev/net/tun",
                name: requested,
                source,
            },
        });
    }
    // SAFETY: `raw` is a descriptor that `open` just returned and that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };

    let mut ifr = IfReq::new(name);
    let mode = match kind {
        Kind::Tap => libc::IFF_TAP,
        Kind::Tun => libc::IFF_TUN,
    };
    ifr.data.flags = (mode | libc::IFF_NO_PI) as c_short;
    if let Err(source) = ioctl_ifreq(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) {
        return Err(match source.raw_os_error() {
            _ if is_permission(&source) => Error::PermissionDenied {
                name: requested,
                op: "attach to the interface (TUNSETIFF; needs CAP_NET_ADMIN or ownership)",
                source,
            },
            Some(libc::EBUSY) => Error::Busy {
                name: requested,
                source,
            },
            Some(libc::EINVAL) => Error::WrongKind {
                name: requested,
                expected: kind,
                source,
            },
            _ => Error::Io {
                op: "attach to the interface (TUNSETIFF)",
                name: requested,
                source,
            },
        });
    }
    let actual = IfName::from_raw(ifr.name).as_string();
    Ok((fd, actual))
}

/// Whether an interface of this name exists in the current network namespace.
pub(crate) fn interface_exists(name: &IfName) -> bool {
    // SAFETY: `name.0` is a NUL-terminated string (IfName guarantees a NUL within IFNAMSIZ).
    unsafe { libc::if_nametoindex(name.0.as_ptr()) != 0 }
}

/// A datagram socket, the handle for the interface `ioctl`s.
pub(crate) fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Interface flags (`IFF_*`) by `SIOCGIFFLAGS`.
pub(crate) fn get_flags(sock: RawFd, name: &IfName) -> io::Result<c_int> {
    let mut ifr = IfReq::new(name);
    ioctl_ifreq(sock, libc::SIOCGIFFLAGS as libc::Ioctl, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled in the `flags` member; any bit pattern is a valid c_short.
    Ok(c_int::from(unsafe { ifr.data.flags }) & 0xffff)
}

/// Sets interface flags by `SIOCSIFFLAGS`.
pub(crate) fn set_flags(sock: RawFd, name: &IfName, flags: c_int) -> io::Result<()> {
    let mut ifr = IfReq::new(name);
    ifr.data.flags = flags as c_short;
    ioctl_ifreq(sock, libc::SIOCSIFFLAGS as libc::Ioctl, &mut ifr)
}

/// The interface's MTU by `SIOCGIFMTU`.
pub(crate) fn get_mtu(sock: RawFd, name: &IfName) -> io::Result<usize> {
    let mut ifr = IfReq::new(name);
    ioctl_ifreq(sock, libc::SIOCGIFMTU as libc::Ioctl, &mut ifr)?;
    // SAFETY: SIOCGIFMTU filled in the `mtu` member; any bit pattern is a valid c_int.
    let mtu = unsafe { ifr.data.mtu };
    usize::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// Sets the interface's MTU by `SIOCSIFMTU`.
pub(crate) fn set_mtu(sock: RawFd, name: &IfName, mtu: usize) -> io::Result<()> {
    let mut ifr = IfReq::new(name);
    ifr.data.mtu = c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU too large"))?;
    ioctl_ifreq(sock, libc::SIOCSIFMTU as libc::Ioctl, &mut ifr)
}

/// The interface's hardware address by `SIOCGIFHWADDR` (first 6 bytes).
pub(crate) fn get_hwaddr(sock: RawFd, name: &IfName) -> io::Result<[u8; 6]> {
    let mut ifr = IfReq::new(name);
    ioctl_ifreq(sock, libc::SIOCGIFHWADDR as libc::Ioctl, &mut ifr)?;
    // SAFETY: SIOCGIFHWADDR filled in the `hwaddr` member (a plain-old-data sockaddr).
    let sa = unsafe { ifr.data.hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// Sets the interface's Ethernet address by `SIOCSIFHWADDR`.
pub(crate) fn set_hwaddr(sock: RawFd, name: &IfName, mac: [u8; 6]) -> io::Result<()> {
    let mut ifr = IfReq::new(name);
    // SAFETY: an all-zero sockaddr is a valid value of this plain-old-data struct.
    let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    sa.sa_family = libc::ARPHRD_ETHER as libc::sa_family_t;
    for (dst, src) in sa.sa_data.iter_mut().zip(mac) {
        *dst = src as c_char;
    }
    ifr.data.hwaddr = sa;
    ioctl_ifreq(sock, libc::SIOCSIFHWADDR as libc::Ioctl, &mut ifr)
}

/// A non-blocking, close-on-exec eventfd: the helper thread's doorbell.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd(2) call with constant arguments.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by eventfd(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Adds 1 to an eventfd's counter, making it readable.
pub(crate) fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local u64, as eventfd(2) requires. A failure can only
    // be EAGAIN (the counter is saturated, so it is readable already): nothing to do.
    let _ = unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

/// Resets an eventfd's counter to zero.
pub(crate) fn eventfd_drain(fd: RawFd) {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live local u64, as eventfd(2) requires. EAGAIN (already
    // zero) is fine.
    let _ = unsafe { libc::read(fd, (&raw mut value).cast(), 8) };
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `write(2)` from `buf`.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `poll(2)` on `fds`, waiting at most `timeout` (forever for `None`). Returns the number of
/// descriptors with events; EINTR counts as 0.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up, so a 0.5 ms deadline does not become a busy loop of 0 ms polls.
        Some(t) => c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX),
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}
