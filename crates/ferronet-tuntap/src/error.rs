//! The error type of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which kind of device: Ethernet frames (TAP) or bare IP packets (TUN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A TAP device: Ethernet frames, `HardwareAddress::Ethernet`.
    Tap,
    /// A TUN device: IPv4/IPv6 packets, `HardwareAddress::Ip`.
    Tun,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Tap => "TAP",
            Kind::Tun => "TUN",
        })
    }
}

/// Why a device could not be opened or an interface setting not be read or changed.
///
/// Each variant says what went wrong in terms a user can act on; [`Error::kind`] maps it to
/// an [`io::ErrorKind`], and `From<Error> for io::Error` keeps the message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The interface name cannot be a Linux interface name.
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TUN/TAP clone device (`/dev/net/tun`) does not exist or has no driver behind it:
    /// the `tun` kernel module is not loaded, or a container does not expose the device.
    TunUnavailable {
        /// The path that was opened.
        path: PathBuf,
        /// The error from `open(2)`.
        source: io::Error,
    },
    /// Not allowed: opening `/dev/net/tun`, creating or attaching to the interface (needs
    /// `CAP_NET_ADMIN`, or a persistent device owned by this user), or changing a setting.
    PermissionDenied {
        /// The interface.
        name: String,
        /// What was refused.
        op: &'static str,
        /// The error from the system call.
        source: io::Error,
    },
    /// The interface is already attached to another open descriptor (another process or
    /// another device object uses it).
    Busy {
        /// The interface.
        name: String,
        /// The error from `TUNSETIFF` (`EBUSY`).
        source: io::Error,
    },
    /// No interface of that name exists (from the `open_existing` constructors, which do not
    /// create one).
    NoSuchInterface {
        /// The interface.
        name: String,
        /// What to do about it.
        hint: String,
    },
    /// An interface of that name exists but is not a device of the requested kind: a TUN
    /// opened as TAP or the other way round, a multi-queue device, or no TUN/TAP device at
    /// all (such as `lo` or `eth0`).
    WrongKind {
        /// The interface.
        name: String,
        /// The kind that was asked for.
        expected: Kind,
        /// The error from `TUNSETIFF` (`EINVAL`).
        source: io::Error,
    },
    /// A MAC address that cannot be a station's address (multicast or all zeros).
    InvalidMac([u8; 6]),
    /// Any other failure of a system call.
    Io {
        /// What was being done.
        op: &'static str,
        /// The interface.
        name: String,
        /// The error from the system call.
        source: io::Error,
    },
}

impl Error {
    /// The closest [`io::ErrorKind`].
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidName { .. } | Error::InvalidMac(_) => io::ErrorKind::InvalidInput,
            Error::TunUnavailable { .. } | Error::NoSuchInterface { .. } => io::ErrorKind::NotFound,
            Error::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            Error::Busy { .. } => io::ErrorKind::ResourceBusy,
            Error::WrongKind { .. } => io::ErrorKind::InvalidInput,
            Error::Io { source, .. } => source.kind(),
        }
    }

    pub(crate) fn io(op: &'static str, name: &str, source: io::Error) -> Self {
        if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
            Error::PermissionDenied {
                name: name.to_owned(),
                op,
                source,
            }
        } else {
            Error::Io {
                op,
                name: name.to_owned(),
                source,
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "invalid interface name {name:?}: {reason}")
            }
            Error::TunUnavailable { path, source } => write!(
                f,
                "cannot open {}: {source} (is the `tun` kernel module loaded, or the device \
                 passed into the container?)",
                path.display()
            ),
            Error::PermissionDenied { name, op, source } => write!(
                f,
                "interface {name}: permission denied to {op}: {source} (run as root, give the \
                 program CAP_NET_ADMIN, or create a persistent device owned by this user with \
                 `ip tuntap add dev {name} mode tap user $USER`)"
            ),
            Error::NoSuchInterface { name, hint } => {
                write!(f, "interface {name} does not exist ({hint})")
            }
            Error::Busy { name, source } => write!(
                f,
                "interface {name} is already in use by another process or device: {source}"
            ),
            Error::WrongKind {
                name,
                expected,
                source,
            } => write!(
                f,
                "interface {name} exists but is not a single-queue {expected} device: {source}"
            ),
            Error::InvalidMac(mac) => write!(
                f,
                "{} is not a unicast MAC address",
                crate::format_mac(*mac)
            ),
            Error::Io { op, name, source } => write!(f, "interface {name}: cannot {op}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::TunUnavailable { source, .. }
            | Error::PermissionDenied { source, .. }
            | Error::Busy { source, .. }
            | Error::WrongKind { source, .. }
            | Error::Io { source, .. } => Some(source),
            Error::InvalidName { .. } | Error::InvalidMac(_) | Error::NoSuchInterface { .. } => {
                None
            }
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.kind(), e)
    }
}
