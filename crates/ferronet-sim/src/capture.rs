//! A driver wrapper that records every frame to a pcap file.
//!
//! [`CaptureDriver`] wraps any [`embassy_net_driver::Driver`] (a [`SimDevice`], a TAP or TUN
//! device, a real MAC) and writes each frame the stack receives from it and each frame the
//! stack transmits through it to a [`PcapWriter`], then passes it on unchanged. The link type
//! follows the inner driver's hardware address when the wrapper is made: Ethernet for
//! `HardwareAddress::Ethernet`, `LINKTYPE_RAW` for `HardwareAddress::Ip`, 802.15.4 without FCS
//! for `HardwareAddress::Ieee802154`.
//!
//! Recording never disturbs the traffic: the first write error stops the recording (see
//! [`CaptureDriver::error`] and [`CaptureStats::failed`]) and frames go on flowing. Nothing is
//! allocated per frame; with [`flush_each_frame`](CaptureDriver::flush_each_frame) (on by
//! default) the file is complete after every frame, even if the program is killed.
//!
//! ```
//! use ferronet_sim::capture::CaptureDriver;
//! use ferronet_sim::link::{pair_ethernet, LinkConfig};
//!
//! let (a, _b, _link) = pair_ethernet(LinkConfig::default())?;
//! let captured = CaptureDriver::new(a, Vec::new())?;
//! let stats = captured.handle();
//! // let (stack, runner) = ferronet::new(captured, config, resources, seed); ...
//! assert_eq!(stats.stats().rx_frames, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SimDevice`]: crate::link::SimDevice

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Context;

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};

use crate::pcap::{LinkType, PcapWriter};

/// Where the timestamps of the records come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Clock {
    /// The wall clock (`std::time::SystemTime`, since the Unix epoch): what tcpdump writes,
    /// right for real devices.
    #[default]
    System,
    /// `embassy_time::Instant::now()`: the virtual time when recording under ferronet-sim's
    /// [`Executor`](crate::executor::Executor), time since start-up otherwise.
    Embassy,
}

impl Clock {
    fn now_micros(self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            Clock::Embassy => embassy_time::Instant::now().as_micros(),
        }
    }
}

/// The pcap link type for frames of a driver with this hardware address (`None` for a kind of
/// address unknown to this version).
pub fn link_type_for(address: HardwareAddress) -> Option<LinkType> {
    match address {
        HardwareAddress::Ethernet(_) => Some(LinkType::Ethernet),
        HardwareAddress::Ip => Some(LinkType::RawIp),
        HardwareAddress::Ieee802154(_) => Some(LinkType::Ieee802154NoFcs),
        _ => None,
    }
}

/// Counters of a [`CaptureDriver`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CaptureStats {
    /// Received frames recorded.
    pub rx_frames: u64,
    /// Transmitted frames recorded.
    pub tx_frames: u64,
    /// Bytes of the recorded frames (as received or transmitted, before any truncation to
    /// the snap length).
    pub bytes: u64,
    /// A write to the file failed and the recording stopped.
    pub failed: bool,
}

#[derive(Default)]
struct Counters {
    rx_frames: AtomicU64,
    tx_frames: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicBool,
}

/// A cloneable, thread-safe view of a [`CaptureDriver`]'s counters, usable after the driver
/// was handed to a stack.
#[derive(Clone, Default)]
pub struct CaptureHandle(Arc<Counters>);

impl fmt::Debug for CaptureHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CaptureHandle").field(&self.stats()).finish()
    }
}

impl CaptureHandle {
    /// The counters now.
    pub fn stats(&self) -> CaptureStats {
        let c = &self.0;
        CaptureStats {
            rx_frames: c.rx_frames.load(Ordering::Relaxed),
            tx_frames: c.tx_frames.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }
}

struct Recorder<W: Write> {
    writer: PcapWriter<W>,
    clock: Clock,
    flush_each_frame: bool,
    error: Option<io::Error>,
    counters: Arc<Counters>,
}

#[derive(Clone, Copy)]
enum Dir {
    Rx,
    Tx,
}

impl<W: Write> Recorder<W> {
    fn record(&mut self, dir: Dir, frame: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let mut result = self
            .writer
            .write_frame_micros(self.clock.now_micros(), frame);
        if result.is_ok() && self.flush_each_frame {
            result = self.writer.flush();
        }
        let c = &self.counters;
        match result {
            Ok(()) => {
                let counter = match dir {
                    Dir::Rx => &c.rx_frames,
                    Dir::Tx => &c.tx_frames,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                c.failed.store(true, Ordering::Relaxed);
                self.error = Some(e);
            }
        }
    }
}

/// Wraps a driver and records every frame received and transmitted to a pcap stream; see the
/// [module documentation](self).
pub struct CaptureDriver<D: Driver, W: Write> {
    inner: D,
    recorder: RefCell<Recorder<W>>,
    counters: Arc<Counters>,
}

impl<D: Driver + fmt::Debug, W: Write> fmt::Debug for CaptureDriver<D, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureDriver")
            .field("inner", &self.inner)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<D: Driver, W: Write> CaptureDriver<D, W> {
    /// Wraps `inner`, writing the pcap header (with the link type for `inner`'s hardware
    /// address) to `out` at once. Timestamps come from the wall clock and the stream is
    /// flushed after every frame; see [`with_clock`](Self::with_clock) and
    /// [`flush_each_frame`](Self::flush_each_frame).
    ///
    /// Fails if writing the header fails, or with [`io::ErrorKind::Unsupported`] if the
    /// driver's kind of hardware address has no pcap link type here.
    pub fn new(inner: D, out: W) -> io::Result<Self> {
        let link_type = link_type_for(inner.hardware_address()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "no pcap link type for this driver's medium",
            )
        })?;
        let mut writer = PcapWriter::new(out, link_type)?;
        writer.flush()?;
        let counters = Arc::<Counters>::default();
        Ok(Self {
            inner,
            recorder: RefCell::new(Recorder {
                writer,
                clock: Clock::System,
                flush_each_frame: true,
                error: None,
                counters: counters.clone(),
            }),
            counters,
        })
    }

    /// Takes the record timestamps from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        self.recorder.borrow_mut().clock = clock;
        self
    }

    /// Whether to flush the stream after every frame (default: yes). Turn it off for a
    /// buffered writer when only the complete file matters, and call
    /// [`flush`](Self::flush) at the end.
    pub fn flush_each_frame(self, flush: bool) -> Self {
        self.recorder.borrow_mut().flush_each_frame = flush;
        self
    }

    /// A handle to the counters that stays usable after the driver was moved into a stack.
    pub fn handle(&self) -> CaptureHandle {
        CaptureHandle(self.counters.clone())
    }

    /// The counters now.
    pub fn stats(&self) -> CaptureStats {
        self.handle().stats()
    }

    /// The kind of the write error that stopped the recording, if any
    /// ([`into_parts`](Self::into_parts) returns the error itself).
    pub fn error(&mut self) -> Option<io::ErrorKind> {
        self.recorder.get_mut().error.as_ref().map(io::Error::kind)
    }

    /// Flushes the stream.
    pub fn flush(&mut self) -> io::Result<()> {
        self.recorder.get_mut().writer.flush()
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped driver, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The wrapped driver and the stream (not flushed), and the error that stopped the
    /// recording, if any.
    pub fn into_parts(self) -> (D, W, Option<io::Error>) {
        let recorder = self.recorder.into_inner();
        (self.inner, recorder.writer.into_inner(), recorder.error)
    }
}

/// The receive token of a [`CaptureDriver`]: records the frame, then hands it to the stack.
pub struct CaptureRxToken<'a, T: RxToken, W: Write> {
    inner: T,
    recorder: &'a RefCell<Recorder<W>>,
}

/// The transmit token of a [`CaptureDriver`]: lets the stack fill the frame, records it, then
/// hands it to the inner driver.
pub struct CaptureTxToken<'a, T: TxToken, W: Write> {
    inner: T,
    recorder: &'a RefCell<Recorder<W>>,
}

impl<T: RxToken, W: Write> fmt::Debug for CaptureRxToken<'_, T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureRxToken").finish_non_exhaustive()
    }
}

impl<T: TxToken, W: Write> fmt::Debug for CaptureTxToken<'_, T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureTxToken").finish_non_exhaustive()
    }
}

impl<T: RxToken, W: Write> RxToken for CaptureRxToken<'_, T, W> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let recorder = self.recorder;
        self.inner.consume(|frame| {
            recorder.borrow_mut().record(Dir::Rx, frame);
            f(frame)
        })
    }
}

impl<T: TxToken, W: Write> TxToken for CaptureTxToken<'_, T, W> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let recorder = self.recorder;
        self.inner.consume(len, |frame| {
            let result = f(frame);
            recorder.borrow_mut().record(Dir::Tx, frame);
            result
        })
    }
}

impl<D: Driver, W: Write> Driver for CaptureDriver<D, W> {
    type RxToken<'a>
        = CaptureRxToken<'a, D::RxToken<'a>, W>
    where
        Self: 'a;
    type TxToken<'a>
        = CaptureTxToken<'a, D::TxToken<'a>, W>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.inner.receive(cx)?;
        Some((
            CaptureRxToken {
                inner: rx,
                recorder: &self.recorder,
            },
            CaptureTxToken {
                inner: tx,
                recorder: &self.recorder,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let tx = self.inner.transmit(cx)?;
        Some(CaptureTxToken {
            inner: tx,
            recorder: &self.recorder,
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.inner.hardware_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{Endpoint, LinkConfig, pair, pair_ethernet};
    use std::task::Waker;

    #[test]
    fn records_both_directions_with_the_right_link_type() {
        let (a, mut b, _link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap();
        let mut cap = CaptureDriver::new(a, Vec::new())
            .unwrap()
            .with_clock(Clock::Embassy);
        let mut cx = Context::from_waker(Waker::noop());
        let tx = cap.transmit(&mut cx).unwrap();
        tx.consume(4, |f| f.copy_from_slice(&[0x45, 1, 2, 3]));
        assert_eq!(b.try_recv_frame().unwrap(), [0x45, 1, 2, 3]);
        b.send_frame(&[0x60, 9]).unwrap();
        let (rx, _) = cap.receive(&mut cx).unwrap();
        assert_eq!(rx.consume(|f| f.to_vec()), [0x60, 9]);
        assert_eq!(
            cap.stats(),
            CaptureStats {
                rx_frames: 1,
                tx_frames: 1,
                bytes: 6,
                failed: false
            }
        );
        let (_, bytes, err) = cap.into_parts();
        assert!(err.is_none());
        assert_eq!(&bytes[20..24], &101u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 4 + 16 + 2);
        assert_eq!(&bytes[24 + 16..24 + 20], &[0x45, 1, 2, 3]);
        assert_eq!(&bytes[24 + 16 + 4 + 16..], &[0x60, 9]);
    }

    struct FailAfter(usize);

    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_stops_the_recording_but_not_the_traffic() {
        let (a, mut b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
        // Room for the header and one 60-byte record.
        let mut cap = CaptureDriver::new(a, FailAfter(24 + 16 + 60)).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        for i in 0..3u8 {
            let tx = cap.transmit(&mut cx).unwrap();
            tx.consume(60, |f| f.fill(i));
        }
        for i in 0..3u8 {
            assert_eq!(b.try_recv_frame().unwrap(), [i; 60]);
        }
        let s = cap.stats();
        assert_eq!((s.tx_frames, s.failed), (1, true));
        assert_eq!(cap.error(), Some(io::ErrorKind::Other));
    }
}
