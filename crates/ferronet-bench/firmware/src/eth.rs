//! `MmioEth`: an `embassy_net_driver::Driver` over an SMSC LAN9118-style register file.
//!
//! Why this driver exists: a size measurement needs the stack's receive and transmit paths to
//! be *reachable*. With a dummy driver whose `receive` always returns `None`, LTO proves that
//! no frame ever arrives and throws away most of the stack (ARP, IP, TCP and UDP input, DHCP
//! and DNS parsing...). Here every frame byte comes from `core::ptr::read_volatile` on a
//! fixed MMIO address and every transmitted byte goes out through `write_volatile`, which the
//! compiler must assume has side effects and unknown contents, so nothing can be folded away.
//!
//! The register layout is the LAN9118 as emulated by QEMU's `mps2-an385`/`mps2-an386` boards
//! (base `0x4020_0000`), so the memory map of `memory.x` and the addresses agree. The driver is
//! polled (it re-wakes the runner instead of using the interrupt) and it was written for
//! measuring, not tested on hardware or QEMU; it does, however, do what a real polled driver
//! does: reset and enable the MAC, pop RX status words and data words, strip the FCS, and
//! push TX command words and data words.
//!
//! The frame buffers (2 x 1536 bytes) live inside the driver, so inside the `Runner`, so inside
//! the network task's future: the same RAM in both stacks' builds.

use core::ptr::{read_volatile, write_volatile};
use core::task::Context;

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};

/// Base address of the LAN9118 on the MPS2 boards.
const BASE: usize = 0x4020_0000;
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7C;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const TX_CFG: usize = 0x70;
const FREE_RUN: usize = 0x9C;
const MAC_CSR_CMD: usize = 0xA4;
const MAC_CSR_DATA: usize = 0xA8;
/// Index of MAC_CR among the indirect MAC registers.
const MAC_CR: u32 = 1;

/// Largest Ethernet frame without FCS.
pub const MTU: usize = 1514;
/// Buffer size: MTU plus FCS, rounded up to whole 32-bit words.
const BUF: usize = 1536;

#[inline(always)]
fn rd(off: usize) -> u32 {
    // SAFETY: MMIO register of the LAN9118 at a fixed, aligned address.
    unsafe { read_volatile((BASE + off) as *const u32) }
}

#[inline(always)]
fn wr(off: usize, v: u32) {
    // SAFETY: MMIO register of the LAN9118 at a fixed, aligned address.
    unsafe { write_volatile((BASE + off) as *mut u32, v) }
}

fn mac_write(index: u32, value: u32) {
    while rd(MAC_CSR_CMD) & (1 << 31) != 0 {}
    wr(MAC_CSR_DATA, value);
    wr(MAC_CSR_CMD, (1 << 31) | index);
    while rd(MAC_CSR_CMD) & (1 << 31) != 0 {}
}

/// A 32-bit free-running counter of the chip: the firmware's random seed source.
pub fn free_run() -> u32 {
    rd(FREE_RUN)
}

/// The network device.
pub struct MmioEth {
    rx: [u8; BUF],
    tx: [u8; BUF],
    tag: u16,
}

impl MmioEth {
    /// Reset the chip and enable the receiver and transmitter.
    pub fn new() -> Self {
        wr(HW_CFG, 1); // SRST
        while rd(HW_CFG) & 1 != 0 {}
        while rd(PMT_CTRL) & 1 == 0 {}
        // RXEN | TXEN | full duplex.
        mac_write(MAC_CR, (1 << 2) | (1 << 3) | (1 << 20));
        wr(TX_CFG, 1 << 1); // TX_ON
        Self {
            rx: [0; BUF],
            tx: [0; BUF],
            tag: 0,
        }
    }
}

impl Default for MmioEth {
    fn default() -> Self {
        Self::new()
    }
}

/// A received frame, already copied out of the RX data FIFO.
pub struct MmioRxToken<'a> {
    frame: &'a mut [u8],
}

/// Permission to send one frame.
pub struct MmioTxToken<'a> {
    buf: &'a mut [u8; BUF],
    tag: &'a mut u16,
}

impl RxToken for MmioRxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl TxToken for MmioTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        let r = f(&mut self.buf[..len]);
        *self.tag = self.tag.wrapping_add(1);
        let tag = *self.tag as u32;
        // Command A: first and last segment, buffer size; command B: tag, packet length.
        wr(TX_DATA_FIFO, (1 << 13) | (1 << 12) | len as u32);
        wr(TX_DATA_FIFO, (tag << 16) | len as u32);
        for word in self.buf[..len.div_ceil(4) * 4].chunks_exact(4) {
            wr(
                TX_DATA_FIFO,
                u32::from_le_bytes([word[0], word[1], word[2], word[3]]),
            );
        }
        // Drain the TX status FIFO so that it never fills.
        while (rd(TX_FIFO_INF) >> 16) & 0xFF != 0 {
            let _ = rd(TX_STATUS_FIFO);
        }
        r
    }
}

impl Driver for MmioEth {
    type RxToken<'a>
        = MmioRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = MmioTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if (rd(RX_FIFO_INF) >> 16) & 0xFF == 0 {
            // Polled driver: ask to be polled again (a real one would unmask the RX IRQ).
            cx.waker().wake_by_ref();
            return None;
        }
        let status = rd(RX_STATUS_FIFO);
        // Frame length including the 4-byte FCS.
        let len = ((status >> 16) & 0x3FFF) as usize;
        let words = len.div_ceil(4);
        for i in 0..words {
            let w = rd(RX_DATA_FIFO).to_le_bytes();
            if i * 4 + 4 <= BUF {
                self.rx[i * 4..i * 4 + 4].copy_from_slice(&w);
            }
        }
        // Error summary bit (15), runt or oversize: drop the frame.
        if status & (1 << 15) != 0 || !(18..=BUF).contains(&len) {
            cx.waker().wake_by_ref();
            return None;
        }
        Some((
            MmioRxToken {
                frame: &mut self.rx[..len - 4],
            },
            MmioTxToken {
                buf: &mut self.tx,
                tag: &mut self.tag,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        // TDFREE: free bytes in the TX data FIFO (room for the frame plus two command words).
        if (rd(TX_FIFO_INF) & 0xFFFF) as usize >= BUF + 8 {
            Some(MmioTxToken {
                buf: &mut self.tx,
                tag: &mut self.tag,
            })
        } else {
            cx.waker().wake_by_ref();
            None
        }
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        if rd(PMT_CTRL) & 1 != 0 {
            LinkState::Up
        } else {
            cx.waker().wake_by_ref();
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        // QEMU's default LAN9118 EEPROM address.
        HardwareAddress::Ethernet([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    }
}
