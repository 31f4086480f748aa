//! The engine shared by [`TapDevice`](crate::TapDevice) and [`TunDevice`](crate::TunDevice):
//! a non-blocking descriptor, preallocated frame buffers, one pending-frame slot for
//! backpressure, and the helper thread that turns `poll(2)` readiness and interface flag
//! changes into waker calls.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embassy_net_driver::{Capabilities, LinkState, RxToken, TxToken};

use crate::error::{Error, Kind};
use crate::sys::{self, IfName};

/// How often the helper thread reads the interface flags (`SIOCGIFFLAGS`) to follow the link
/// state.
pub const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// After a write failed with `ENOBUFS` (the kernel had no memory for the frame, which
/// `poll(2)` does not report), how long the helper thread waits before it wakes the writer to
/// try again.
pub const NOBUFS_RETRY_DELAY: Duration = Duration::from_millis(1);

/// Size of the receive and transmit buffers: the largest IP packet (65 535 bytes) plus an
/// Ethernet header with one VLAN tag, so no frame the kernel hands over is ever truncated.
pub const FRAME_BUFFER_LEN: usize = 65_535 + 18;

/// Length of an Ethernet header (destination, source, EtherType).
pub(crate) const ETHERNET_HEADER_LEN: usize = 14;

/// Index of the writable-waiter slot used by `transmit` (and a deferred `TxToken`).
const SLOT_TX: usize = 0;
/// Index of the writable-waiter slot used by `receive` while a frame is pending.
const SLOT_RX: usize = 1;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frame counters of a device, since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Frames read from the kernel.
    pub rx_frames: u64,
    /// Bytes of `rx_frames`.
    pub rx_bytes: u64,
    /// Frames written to the kernel (including those written after a deferral).
    pub tx_frames: u64,
    /// Bytes of `tx_frames`.
    pub tx_bytes: u64,
    /// Writes refused with `EAGAIN`/`ENOBUFS` (the kernel queue was full); the frame was kept
    /// and written later.
    pub tx_deferred: u64,
    /// Frames the kernel refused for good (for example `EIO` while the interface is down, or
    /// `EINVAL` for a TUN frame that is no IP packet); they are dropped.
    pub tx_dropped: u64,
    /// Reads that failed with an unexpected error.
    pub rx_errors: u64,
}

#[derive(Default)]
struct Counters {
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    tx_deferred: AtomicU64,
    tx_dropped: AtomicU64,
    rx_errors: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// What the helper thread waits for, and whom it wakes.
#[derive(Default)]
struct Wakers {
    /// Woken when the descriptor is readable.
    readable: Option<Waker>,
    /// Woken when the descriptor is writable (a frame is pending): [`SLOT_TX`], [`SLOT_RX`].
    writable: [Option<Waker>; 2],
    /// Woken when the link state changes.
    link: Option<Waker>,
    /// The pending frame failed with `ENOBUFS`: wake the writers after
    /// [`NOBUFS_RETRY_DELAY`] instead of on `POLLOUT`.
    retry_later: bool,
    /// The device is being dropped: the thread exits.
    stop: bool,
}

/// Registers `waker` in `slot`; true if the slot was empty (the thread's interest changed).
fn register(slot: &mut Option<Waker>, waker: &Waker) -> bool {
    match slot {
        Some(w) if w.will_wake(waker) => false,
        Some(w) => {
            w.clone_from(waker);
            false
        }
        None => {
            *slot = Some(waker.clone());
            true
        }
    }
}

/// State shared by a device, its handles and its helper thread.
pub(crate) struct Shared {
    fd: OwnedFd,
    /// An eventfd the device writes to when the thread must re-read its interest.
    doorbell: OwnedFd,
    /// The interface (`None` for descriptors that are no interface, in tests).
    ifname: Option<IfName>,
    name: String,
    kind: Kind,
    wakers: Mutex<Wakers>,
    link_up: AtomicBool,
    /// The descriptor reported an error or hang-up (the interface was deleted).
    gone: AtomicBool,
    mtu: AtomicUsize,
    /// The stack-side MAC address (TAP), as the low 48 bits.
    mac: AtomicU64,
    counters: Counters,
}

enum WriteOutcome {
    Sent,
    /// The kernel queue is full; `nobufs` if it said `ENOBUFS` (not reported by `poll`).
    Full {
        nobufs: bool,
    },
    Dropped,
}

impl Shared {
    fn ring(&self) {
        sys::eventfd_signal(self.doorbell.as_raw_fd());
    }

    fn want_readable(&self, waker: &Waker) {
        let newly = register(&mut lock(&self.wakers).readable, waker);
        if newly {
            self.ring();
        }
    }

    fn want_writable(&self, slot: usize, waker: &Waker, nobufs: bool) {
        let newly = {
            let mut w = lock(&self.wakers);
            let mut newly = register(&mut w.writable[slot], waker);
            if nobufs && !w.retry_later {
                w.retry_later = true;
                newly = true;
            }
            newly
        };
        if newly {
            self.ring();
        }
    }

    fn write_frame(&self, frame: &[u8]) -> WriteOutcome {
        loop {
            match sys::write(self.fd.as_raw_fd(), frame) {
                Ok(_) => {
                    bump(&self.counters.tx_frames, 1);
                    bump(&self.counters.tx_bytes, frame.len() as u64);
                    return WriteOutcome::Sent;
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS | libc::ENOMEM) => {
                        bump(&self.counters.tx_deferred, 1);
                        return WriteOutcome::Full { nobufs: true };
                    }
                    _ if e.kind() == io::ErrorKind::WouldBlock => {
                        bump(&self.counters.tx_deferred, 1);
                        return WriteOutcome::Full { nobufs: false };
                    }
                    _ => {
                        bump(&self.counters.tx_dropped, 1);
                        return WriteOutcome::Dropped;
                    }
                },
            }
        }
    }

    fn set_link(&self, up: bool) {
        let up = up && !self.gone.load(Ordering::Acquire);
        if self.link_up.swap(up, Ordering::AcqRel) != up {
            let waker = lock(&self.wakers).link.take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    fn mark_gone(&self) {
        self.gone.store(true, Ordering::Release);
        self.set_link(false);
        let wakers = {
            let mut w = lock(&self.wakers);
            [
                w.readable.take(),
                w.writable[0].take(),
                w.writable[1].take(),
                w.link.take(),
            ]
        };
        wakers.into_iter().flatten().for_each(Waker::wake);
    }

    fn ifname(&self) -> Result<&IfName, Error> {
        self.ifname.as_ref().ok_or_else(|| Error::Io {
            op: "use an interface ioctl",
            name: self.name.clone(),
            source: io::Error::new(io::ErrorKind::Unsupported, "the device has no interface"),
        })
    }

    fn control(&self, op: &'static str) -> Result<(OwnedFd, &IfName), Error> {
        let ifname = self.ifname()?;
        let sock = sys::control_socket().map_err(|e| Error::io(op, &self.name, e))?;
        Ok((sock, ifname))
    }
}

/// Reads whether the interface is up and running.
fn interface_up(sock: &OwnedFd, ifname: &IfName) -> bool {
    match sys::get_flags(sock.as_raw_fd(), ifname) {
        Ok(flags) => flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0,
        Err(_) => false,
    }
}

/// The helper thread: waits in `poll(2)` for what the device is interested in, wakes the
/// matching wakers, and re-reads the interface flags every [`LINK_CHECK_INTERVAL`].
fn watch(shared: Arc<Shared>) {
    let control = shared
        .ifname
        .as_ref()
        .and_then(|_| sys::control_socket().ok());
    let mut next_check = Instant::now() + LINK_CHECK_INTERVAL;
    // When the writers are to be woken after an ENOBUFS.
    let mut retry_at: Option<Instant> = None;
    loop {
        let (want_in, want_out, retry_later) = {
            let w = lock(&shared.wakers);
            if w.stop {
                return;
            }
            (
                w.readable.is_some(),
                w.writable.iter().any(Option::is_some),
                w.retry_later,
            )
        };
        let now = Instant::now();
        let mut timeout = None;
        if let (Some(ifname), Some(sock)) = (&shared.ifname, &control) {
            if now >= next_check {
                shared.set_link(interface_up(sock, ifname));
                next_check = now + LINK_CHECK_INTERVAL;
            }
            timeout = Some(next_check.saturating_duration_since(now));
        }
        if want_out && retry_later {
            let at = *retry_at.get_or_insert(now + NOBUFS_RETRY_DELAY);
            let until = at.saturating_duration_since(now);
            timeout = Some(timeout.map_or(until, |t: Duration| t.min(until)));
        }

        let mut events: libc::c_short = 0;
        if want_in {
            events |= libc::POLLIN;
        }
        if want_out && !retry_later {
            events |= libc::POLLOUT;
        }
        // A negative descriptor is ignored by poll(2): no interest, or nothing more to expect.
        let fd = if events == 0 || shared.gone.load(Ordering::Acquire) {
            -1
        } else {
            shared.fd.as_raw_fd()
        };
        let mut fds = [
            libc::pollfd {
                fd,
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: shared.doorbell.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if sys::poll(&mut fds, timeout).is_err() {
            // Only EINVAL/ENOMEM are possible; don't spin on them.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        if fds[1].revents != 0 {
            sys::eventfd_drain(shared.doorbell.as_raw_fd());
        }
        let revents = fds[0].revents;
        if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            shared.mark_gone();
            continue;
        }
        let to_wake = {
            let mut w = lock(&shared.wakers);
            let mut to_wake: [Option<Waker>; 3] = Default::default();
            if revents & libc::POLLIN != 0 {
                to_wake[0] = w.readable.take();
            }
            let retry_due = w.retry_later && retry_at.is_some_and(|at| Instant::now() >= at);
            if revents & libc::POLLOUT != 0 || retry_due {
                w.retry_later = false;
                retry_at = None;
                to_wake[1] = w.writable[0].take();
                to_wake[2] = w.writable[1].take();
            }
            to_wake
        };
        to_wake.into_iter().flatten().for_each(Waker::wake);
    }
}

/// A frame that the kernel refused for now, kept in the transmit buffer.
#[derive(Clone, Copy, Debug)]
struct Pending {
    len: usize,
    nobufs: bool,
}

/// The common device implementation.
pub(crate) struct Core {
    shared: Arc<Shared>,
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    pending: Option<Pending>,
    /// The waker of the last `receive`/`transmit` call, registered for writability when a
    /// `TxToken` (which has no context) has to defer its frame.
    waker: Option<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .field("mtu", &self.shared.mtu.load(Ordering::Relaxed))
            .field("link_up", &self.shared.link_up.load(Ordering::Relaxed))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

pub(crate) fn mac_to_u64(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b)
}

pub(crate) fn u64_to_mac(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&b[2..]);
    mac
}

impl Core {
    /// Opens interface `name` as `kind` through the clone device at `path`; unless `create`,
    /// only if it exists already.
    pub(crate) fn open(
        path: &std::ffi::CStr,
        name: &str,
        kind: Kind,
        create: bool,
    ) -> Result<Self, Error> {
        let ifname = IfName::new(name)?;
        if !create && !sys::interface_exists(&ifname) {
            let mode = match kind {
                Kind::Tap => "tap",
                Kind::Tun => "tun",
            };
            return Err(Error::NoSuchInterface {
                name: name.to_owned(),
                hint: format!("create it with `ip tuntap add dev {name} mode {mode}`"),
            });
        }
        let (fd, actual) = sys::open_tun(path, &ifname, kind)?;
        let ifname = IfName::new(&actual)?;
        let sock =
            sys::control_socket().map_err(|e| Error::io("open a control socket", &actual, e))?;
        let mtu = sys::get_mtu(sock.as_raw_fd(), &ifname)
            .map_err(|e| Error::io("read the MTU (SIOCGIFMTU)", &actual, e))?;
        let mac = match kind {
            Kind::Tap => {
                let ifmac = sys::get_hwaddr(sock.as_raw_fd(), &ifname)
                    .map_err(|e| Error::io("read the MAC address (SIOCGIFHWADDR)", &actual, e))?;
                crate::stack_mac_for(ifmac)
            }
            Kind::Tun => [0; 6],
        };
        let up = interface_up(&sock, &ifname);
        Self::start(fd, Some(ifname), actual, kind, mtu, mac, up)
    }

    /// Wraps a descriptor that is no interface (tests: one end of a socket pair).
    #[cfg(test)]
    pub(crate) fn from_fd(fd: OwnedFd, kind: Kind, mtu: usize) -> Self {
        match Self::start(fd, None, "test".into(), kind, mtu, [2, 0, 0, 0, 0, 1], true) {
            Ok(core) => core,
            Err(e) => panic!("{e}"),
        }
    }

    fn start(
        fd: OwnedFd,
        ifname: Option<IfName>,
        name: String,
        kind: Kind,
        mtu: usize,
        mac: [u8; 6],
        up: bool,
    ) -> Result<Self, Error> {
        let doorbell =
            sys::eventfd().map_err(|e| Error::io("create the helper's eventfd", &name, e))?;
        let shared = Arc::new(Shared {
            fd,
            doorbell,
            ifname,
            name,
            kind,
            wakers: Mutex::new(Wakers::default()),
            link_up: AtomicBool::new(up),
            gone: AtomicBool::new(false),
            mtu: AtomicUsize::new(mtu),
            mac: AtomicU64::new(mac_to_u64(mac)),
            counters: Counters::default(),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tuntap-{}", shared.name))
            .spawn(move || watch(for_thread))
            .map_err(|e| Error::io("start the readiness thread", &shared.name, e))?;
        Ok(Self {
            shared,
            rx: vec![0u8; FRAME_BUFFER_LEN].into_boxed_slice(),
            tx: vec![0u8; FRAME_BUFFER_LEN].into_boxed_slice(),
            pending: None,
            waker: None,
            thread: Some(thread),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn handle(&self) -> DeviceHandle {
        DeviceHandle {
            shared: self.shared.clone(),
        }
    }

    fn remember(&mut self, waker: &Waker) {
        match &mut self.waker {
            Some(w) => w.clone_from(waker),
            None => self.waker = Some(waker.clone()),
        }
    }

    /// Tries to write the pending frame; true if no frame is pending any more.
    fn flush(&mut self) -> bool {
        let Some(p) = self.pending else {
            return true;
        };
        match self.shared.write_frame(&self.tx[..p.len]) {
            WriteOutcome::Sent | WriteOutcome::Dropped => {
                self.pending = None;
                true
            }
            WriteOutcome::Full { nobufs } => {
                self.pending = Some(Pending { len: p.len, nobufs });
                false
            }
        }
    }

    fn tx_token(&mut self) -> TunTapTxToken<'_> {
        TunTapTxToken {
            shared: &self.shared,
            buf: &mut self.tx,
            pending: &mut self.pending,
            waker: self.waker.as_ref(),
        }
    }

    pub(crate) fn receive(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Option<(TunTapRxToken<'_>, TunTapTxToken<'_>)> {
        self.remember(cx.waker());
        if !self.flush() {
            // Not before the pending frame is out: the reply that the frame may need could
            // not be sent. The kernel keeps the incoming frames meanwhile.
            let nobufs = self.pending.is_some_and(|p| p.nobufs);
            self.shared.want_writable(SLOT_RX, cx.waker(), nobufs);
            return None;
        }
        let n = loop {
            match sys::read(self.shared.fd.as_raw_fd(), &mut self.rx) {
                Ok(0) => {
                    self.shared.want_readable(cx.waker());
                    return None;
                }
                Ok(n) => break n,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EBADFD | libc::EBADF | libc::ENODEV | libc::ENXIO) => {
                        self.shared.mark_gone();
                        return None;
                    }
                    _ => {
                        if e.kind() != io::ErrorKind::WouldBlock {
                            bump(&self.shared.counters.rx_errors, 1);
                        }
                        self.shared.want_readable(cx.waker());
                        return None;
                    }
                },
            }
        };
        bump(&self.shared.counters.rx_frames, 1);
        bump(&self.shared.counters.rx_bytes, n as u64);
        let Core {
            shared,
            rx,
            tx,
            pending,
            waker,
            ..
        } = self;
        Some((
            TunTapRxToken {
                frame: &mut rx[..n],
            },
            TunTapTxToken {
                shared,
                buf: tx,
                pending,
                waker: waker.as_ref(),
            },
        ))
    }

    pub(crate) fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TunTapTxToken<'_>> {
        self.remember(cx.waker());
        if self.flush() {
            Some(self.tx_token())
        } else {
            let nobufs = self.pending.is_some_and(|p| p.nobufs);
            self.shared.want_writable(SLOT_TX, cx.waker(), nobufs);
            None
        }
    }

    pub(crate) fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        register(&mut lock(&self.shared.wakers).link, cx.waker());
        if self.shared.link_up.load(Ordering::Acquire) {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }

    pub(crate) fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        let mtu = self.shared.mtu.load(Ordering::Relaxed);
        caps.max_transmission_unit = match self.shared.kind {
            Kind::Tap => mtu + ETHERNET_HEADER_LEN,
            Kind::Tun => mtu,
        };
        caps
    }

    pub(crate) fn mac(&self) -> [u8; 6] {
        u64_to_mac(self.shared.mac.load(Ordering::Relaxed))
    }

    pub(crate) fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), Error> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(Error::InvalidMac(mac));
        }
        self.shared.mac.store(mac_to_u64(mac), Ordering::Relaxed);
        // The runner re-reads the hardware address on every poll; make it poll.
        let waker = lock(&self.shared.wakers).link.take();
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether a frame is waiting for room in the kernel queue.
    #[cfg(test)]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        lock(&self.shared.wakers).stop = true;
        self.shared.ring();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A received frame, in the device's receive buffer.
#[derive(Debug)]
pub struct TunTapRxToken<'a> {
    frame: &'a mut [u8],
}

impl RxToken for TunTapRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame in the device's transmit buffer.
///
/// When consumed, the frame is written to the kernel at once. If the kernel queue is full
/// (`EAGAIN`/`ENOBUFS`), the frame stays in the buffer and the device hands out no further
/// token until it has been written (backpressure: nothing is dropped for lack of room).
pub struct TunTapTxToken<'a> {
    shared: &'a Shared,
    buf: &'a mut Box<[u8]>,
    pending: &'a mut Option<Pending>,
    waker: Option<&'a Waker>,
}

impl fmt::Debug for TunTapTxToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunTapTxToken").finish_non_exhaustive()
    }
}

impl TxToken for TunTapTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if self.buf.len() < len {
            // Only for a frame over 64 KiB, which no IP stack sends: grow once.
            *self.buf = vec![0u8; len].into_boxed_slice();
        }
        let frame = &mut self.buf[..len];
        let result = f(frame);
        if let WriteOutcome::Full { nobufs } = self.shared.write_frame(frame) {
            *self.pending = Some(Pending { len, nobufs });
            if let Some(waker) = self.waker {
                self.shared.want_writable(SLOT_TX, waker, nobufs);
            }
        }
        result
    }
}

/// A cloneable, thread-safe handle to a device for reading its state and changing interface
/// settings after the device itself was handed to a stack.
#[derive(Clone)]
pub struct DeviceHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .finish_non_exhaustive()
    }
}

impl DeviceHandle {
    /// The interface name (as the kernel reports it).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// TAP or TUN.
    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// The link state the device reports: the interface is up and running (`IFF_UP` and
    /// `IFF_RUNNING`), as last read by the helper thread (at most
    /// [`LINK_CHECK_INTERVAL`] ago), and the interface was not deleted.
    pub fn is_link_up(&self) -> bool {
        self.shared.link_up.load(Ordering::Acquire)
    }

    /// Frame counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            rx_frames: get(&c.rx_frames),
            rx_bytes: get(&c.rx_bytes),
            tx_frames: get(&c.tx_frames),
            tx_bytes: get(&c.tx_bytes),
            tx_deferred: get(&c.tx_deferred),
            tx_dropped: get(&c.tx_dropped),
            rx_errors: get(&c.rx_errors),
        }
    }

    /// The IP MTU the device reports to the stack (read from the interface when opened, or
    /// last set with [`set_mtu`](Self::set_mtu)). For a TAP device the stack is told 14 bytes
    /// more, for the Ethernet header.
    pub fn mtu(&self) -> usize {
        self.shared.mtu.load(Ordering::Relaxed)
    }

    /// The interface's current MTU, read from the kernel (`SIOCGIFMTU`).
    pub fn interface_mtu(&self) -> Result<usize, Error> {
        const OP: &str = "read the MTU (SIOCGIFMTU)";
        let (sock, ifname) = self.shared.control(OP)?;
        sys::get_mtu(sock.as_raw_fd(), ifname).map_err(|e| Error::io(OP, &self.shared.name, e))
    }

    /// Sets the interface's MTU (`SIOCSIFMTU`) and the MTU the device reports.
    ///
    /// A stack reads the device's capabilities when it is created: set the MTU before that.
    pub fn set_mtu(&self, mtu: usize) -> Result<(), Error> {
        const OP: &str = "set the MTU (SIOCSIFMTU)";
        let (sock, ifname) = self.shared.control(OP)?;
        sys::set_mtu(sock.as_raw_fd(), ifname, mtu)
            .map_err(|e| Error::io(OP, &self.shared.name, e))?;
        self.shared.mtu.store(mtu, Ordering::Relaxed);
        Ok(())
    }

    /// Brings the interface administratively up or down (`SIOCSIFFLAGS`, like
    /// `ip link set NAME up`). The link state follows within [`LINK_CHECK_INTERVAL`].
    pub fn set_interface_up(&self, up: bool) -> Result<(), Error> {
        const OP: &str = "change the interface flags (SIOCSIFFLAGS)";
        let (sock, ifname) = self.shared.control(OP)?;
        let flags = sys::get_flags(sock.as_raw_fd(), ifname)
            .map_err(|e| Error::io(OP, &self.shared.name, e))?;
        let flags = if up {
            flags | libc::IFF_UP
        } else {
            flags & !libc::IFF_UP
        };
        sys::set_flags(sock.as_raw_fd(), ifname, flags)
            .map_err(|e| Error::io(OP, &self.shared.name, e))
    }

    /// The interface's own (kernel side) MAC address, by `SIOCGIFHWADDR`.
    pub fn interface_mac_address(&self) -> Result<[u8; 6], Error> {
        const OP: &str = "read the MAC address (SIOCGIFHWADDR)";
        let (sock, ifname) = self.shared.control(OP)?;
        sys::get_hwaddr(sock.as_raw_fd(), ifname).map_err(|e| Error::io(OP, &self.shared.name, e))
    }

    /// Sets the interface's own (kernel side) MAC address, by `SIOCSIFHWADDR` (TAP only).
    pub fn set_interface_mac_address(&self, mac: [u8; 6]) -> Result<(), Error> {
        const OP: &str = "set the MAC address (SIOCSIFHWADDR)";
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(Error::InvalidMac(mac));
        }
        let (sock, ifname) = self.shared.control(OP)?;
        sys::set_hwaddr(sock.as_raw_fd(), ifname, mac)
            .map_err(|e| Error::io(OP, &self.shared.name, e))
    }
}
