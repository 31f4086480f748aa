//! The [`Lan9118`] driver: initialisation and the `embassy-net-driver` implementation.

use core::task::Context;

use embassy_net_driver as drv;
use embassy_net_driver::{Capabilities, Checksum, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

use crate::regs::{self, Registers};
use crate::state::{self, State, on_interrupt, update_int_en};
use crate::{Config, InitError};

/// Largest frame the driver sends or receives, without FCS: 1500 bytes of payload and the
/// 14-byte Ethernet header (no VLAN tag).
pub const MTU: usize = 1514;
/// Length of the frame check sequence the chip stores after each received frame.
const FCS_LEN: usize = 4;
/// Receive buffer: MTU + FCS, rounded up to whole FIFO words.
const RX_BUF_LEN: usize = (MTU + FCS_LEN).div_ceil(4) * 4;
/// TX data FIFO bytes a largest frame takes: command words A and B, the frame in whole words.
const TX_NEED: u32 = 8 + (MTU.div_ceil(4) * 4) as u32;
/// TX data available level (FIFO_INT TDAL, 64-byte units): TDFA fires once a largest frame
/// fits.
const TDAL: u32 = TX_NEED.div_ceil(64);
/// TX FIFO size programmed in HW_CFG (KiB, including the 512-byte status FIFO): the reset
/// default, 4608 bytes of TX data FIFO.
const TX_FIF_SZ: u32 = 5;
/// Error bits of an RX status word that make the driver discard the frame: error summary,
/// CRC error, MII error, receive watchdog timeout, collision seen, frame too long, runt.
const RX_STS_ERRORS: u32 = regs::RX_STS_ES | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 11;
/// Most error frames `receive` skips in one call before yielding (it wakes itself then).
const MAX_SKIP: u32 = 32;

/// Driver of one LAN9118: implements [`embassy_net_driver::Driver`], so it goes straight to
/// `ferronet::new` or `embassy_net::new`.
///
/// Holds its receive and transmit buffers (about 3 KiB): the tokens hand these to the network
/// stack, and the frames move between them and the chip's FIFOs one 32-bit word at a time,
/// with no other copy.
pub struct Lan9118<'a, R: Registers> {
    regs: R,
    state: &'a State,
    mac: [u8; 6],
    link: LinkState,
    polled: bool,
    poll_limit: u32,
    /// What the driver last wrote to MAC_CR (FDPX follows the link).
    mac_cr: u32,
    id_rev: u32,
    tx_tag: u16,
    rx_buf: [u8; RX_BUF_LEN],
    tx_buf: [u8; MTU],
}

impl<R: Registers> core::fmt::Debug for Lan9118<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lan9118")
            .field("mac", &self.mac)
            .field("link_up", &(self.link == LinkState::Up))
            .field("polled", &self.polled)
            .field("id_rev", &self.id_rev)
            .finish_non_exhaustive()
    }
}

/// Polls `done` up to `limit` times.
fn wait<R: Registers>(regs: &R, limit: u32, mut done: impl FnMut(&R) -> bool) -> bool {
    (0..limit).any(|_| done(regs))
}

fn mac_wait<R: Registers>(regs: &R, limit: u32) -> Result<(), InitError> {
    if wait(regs, limit, |r| {
        r.read(regs::MAC_CSR_CMD) & regs::MAC_CSR_BUSY == 0
    }) {
        Ok(())
    } else {
        Err(InitError::MacCsrTimeout)
    }
}

/// Writes `cmd` to MAC_CSR_CMD and waits for the access to complete.
fn mac_command<R: Registers>(regs: &R, limit: u32, cmd: u32) -> Result<(), InitError> {
    regs.write(regs::MAC_CSR_CMD, regs::MAC_CSR_BUSY | cmd);
    // The datasheet's read-after-write rule: MAC_CSR_CMD may still read "not busy" right
    // after the write. A read of BYTE_TEST (no side effect) spaces the two.
    regs.read(regs::BYTE_TEST);
    mac_wait(regs, limit)
}

fn mac_read<R: Registers>(regs: &R, limit: u32, index: u32) -> Result<u32, InitError> {
    mac_wait(regs, limit)?;
    mac_command(regs, limit, regs::MAC_CSR_READ | index)?;
    Ok(regs.read(regs::MAC_CSR_DATA))
}

fn mac_write<R: Registers>(regs: &R, limit: u32, index: u32, value: u32) -> Result<(), InitError> {
    mac_wait(regs, limit)?;
    regs.write(regs::MAC_CSR_DATA, value);
    mac_command(regs, limit, index)
}

fn mii_wait<R: Registers>(regs: &R, limit: u32) -> Result<(), InitError> {
    for _ in 0..limit {
        if mac_read(regs, limit, regs::MAC_MII_ACC)? & regs::MII_ACC_BUSY == 0 {
            return Ok(());
        }
    }
    Err(InitError::MiiTimeout)
}

fn mii_acc(reg: u32) -> u32 {
    regs::PHY_ADDR << 11 | (reg & 0x1f) << 6 | regs::MII_ACC_BUSY
}

fn mii_read<R: Registers>(regs: &R, limit: u32, reg: u32) -> Result<u16, InitError> {
    mii_wait(regs, limit)?;
    mac_write(regs, limit, regs::MAC_MII_ACC, mii_acc(reg))?;
    mii_wait(regs, limit)?;
    Ok(mac_read(regs, limit, regs::MAC_MII_DATA)? as u16)
}

fn mii_write<R: Registers>(regs: &R, limit: u32, reg: u32, value: u16) -> Result<(), InitError> {
    mii_wait(regs, limit)?;
    mac_write(regs, limit, regs::MAC_MII_DATA, value.into())?;
    mac_write(
        regs,
        limit,
        regs::MAC_MII_ACC,
        mii_acc(reg) | regs::MII_ACC_WRITE,
    )?;
    mii_wait(regs, limit)
}

/// The link as the PHY reports it now, and whether it runs full duplex.
fn read_link<R: Registers>(regs: &R, limit: u32) -> Result<(bool, bool), InitError> {
    // The link bit latches low: the first read reports a drop since the last read, the
    // second the state now.
    mii_read(regs, limit, regs::PHY_BSR)?;
    let up = mii_read(regs, limit, regs::PHY_BSR)? & regs::PHY_BSR_LINK != 0;
    if !up {
        return Ok((false, false));
    }
    let common = mii_read(regs, limit, regs::PHY_ANAR)? & mii_read(regs, limit, regs::PHY_ANLPAR)?;
    // Highest common mode wins: 100 full, 100 half, 10 full, 10 half.
    let full = common & regs::PHY_AN_100FD != 0
        || (common & regs::PHY_AN_100HD == 0 && common & regs::PHY_AN_10FD != 0);
    Ok((true, full))
}

fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac.iter().any(|&b| b != 0)
}

impl<'a, R: Registers> Lan9118<'a, R> {
    /// Resets and sets up the chip, and returns its driver.
    ///
    /// Steps, each wait bounded by [`Config::poll_limit`] register reads: checks BYTE_TEST;
    /// waits for PMT_CTRL READY; soft reset (HW_CFG SRST) and waits for it to clear and for
    /// READY again; waits for the EEPROM load; checks the PHY identifier, resets the PHY and
    /// starts auto-negotiation of all 10/100 modes; programs the MAC address (or reads the one
    /// loaded from the EEPROM); enables the receiver and transmitter (full duplex when the
    /// link negotiated it); reads the link; and, with [`Config::irq`] set, enables the
    /// interrupt sources and the IRQ output. The application then unmasks the chip's line in
    /// its interrupt controller.
    pub fn new(regs: R, state: &'a State, config: Config) -> Result<Self, InitError> {
        let limit = config.poll_limit.max(1);
        let byte_test = regs.read(regs::BYTE_TEST);
        if byte_test != regs::BYTE_TEST_VALUE {
            return Err(InitError::ChipNotFound { byte_test });
        }
        let ready = |r: &R| r.read(regs::PMT_CTRL) & regs::PMT_CTRL_READY != 0;
        if !wait(&regs, limit, ready) {
            return Err(InitError::NotReady);
        }
        regs.write(regs::HW_CFG, regs::HW_CFG_SRST);
        // Read-after-write spacing (see `mac_command`); BYTE_TEST is readable during reset.
        regs.read(regs::BYTE_TEST);
        if !wait(&regs, limit, |r| {
            r.read(regs::HW_CFG) & regs::HW_CFG_SRST == 0
        }) {
            return Err(InitError::ResetTimeout);
        }
        if !wait(&regs, limit, ready) {
            return Err(InitError::NotReady);
        }
        if !wait(&regs, limit, |r| {
            r.read(regs::E2P_CMD) & regs::E2P_CMD_BUSY == 0
        }) {
            return Err(InitError::EepromTimeout);
        }
        let id_rev = regs.read(regs::ID_REV);
        regs.write(
            regs::HW_CFG,
            regs::HW_CFG_MBO | TX_FIF_SZ << regs::HW_CFG_TX_FIF_SZ_SHIFT,
        );
        // Quiet until everything is set up; nothing pending from before the reset.
        regs.write(regs::IRQ_CFG, 0);
        regs.write(regs::INT_EN, 0);
        regs.write(regs::INT_STS, u32::MAX);

        let id = [
            mii_read(&regs, limit, regs::PHY_ID1)?,
            mii_read(&regs, limit, regs::PHY_ID2)?,
        ];
        if id.iter().all(|&v| v == 0 || v == 0xffff) {
            return Err(InitError::PhyNotResponding { id });
        }
        mii_write(&regs, limit, regs::PHY_BCR, regs::PHY_BCR_RESET)?;
        let mut phy_reset_done = false;
        for _ in 0..limit {
            if mii_read(&regs, limit, regs::PHY_BCR)? & regs::PHY_BCR_RESET == 0 {
                phy_reset_done = true;
                break;
            }
        }
        if !phy_reset_done {
            return Err(InitError::PhyResetTimeout);
        }
        let advertise = regs::PHY_AN_100FD
            | regs::PHY_AN_100HD
            | regs::PHY_AN_10FD
            | regs::PHY_AN_10HD
            | regs::PHY_AN_CSMA;
        mii_write(&regs, limit, regs::PHY_ANAR, advertise)?;
        mii_write(
            &regs,
            limit,
            regs::PHY_BCR,
            regs::PHY_BCR_ANEG_EN | regs::PHY_BCR_ANEG_RESTART,
        )?;
        // Clear what the PHY latched so far, then report link changes from here on.
        mii_read(&regs, limit, regs::PHY_INT_SRC)?;
        mii_write(
            &regs,
            limit,
            regs::PHY_INT_MASK,
            regs::PHY_INT_ANEG_COMPLETE | regs::PHY_INT_LINK_DOWN,
        )?;

        let mac = match config.mac {
            Some(mac) => {
                if !is_unicast(&mac) {
                    return Err(InitError::NoMacAddress { mac });
                }
                let low = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
                let high = u32::from(u16::from_le_bytes([mac[4], mac[5]]));
                mac_write(&regs, limit, regs::MAC_ADDRL, low)?;
                mac_write(&regs, limit, regs::MAC_ADDRH, high)?;
                mac
            }
            None => {
                let low = mac_read(&regs, limit, regs::MAC_ADDRL)?.to_le_bytes();
                let high = mac_read(&regs, limit, regs::MAC_ADDRH)?.to_le_bytes();
                let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
                if !is_unicast(&mac) {
                    return Err(InitError::NoMacAddress { mac });
                }
                mac
            }
        };

        let (up, full_duplex) = read_link(&regs, limit)?;
        let mut mac_cr = regs::MAC_CR_RXEN | regs::MAC_CR_TXEN;
        if config.promiscuous {
            mac_cr |= regs::MAC_CR_PRMS;
        }
        if config.all_multicast {
            mac_cr |= regs::MAC_CR_MCPAS;
        }
        if full_duplex {
            mac_cr |= regs::MAC_CR_FDPX;
        }
        // RX: no offset, 4-byte end alignment. RX status level 0 (RSFL as soon as one frame
        // is in), TX status level 0, TX data available level: room for a largest frame.
        regs.write(regs::RX_CFG, 0);
        regs.write(regs::FIFO_INT, TDAL << regs::FIFO_INT_TDAL_SHIFT);
        regs.write(regs::TX_CFG, regs::TX_CFG_TX_ON | regs::TX_CFG_TXSAO);
        mac_write(&regs, limit, regs::MAC_CR, mac_cr)?;

        regs.write(regs::INT_EN, regs::INT_RSFL | regs::INT_PHY | state::EVENTS);
        if let Some(pin) = config.irq {
            let mut irq_cfg = regs::IRQ_CFG_IRQ_EN;
            if pin.active_high {
                irq_cfg |= regs::IRQ_CFG_IRQ_POL;
            }
            if pin.push_pull {
                irq_cfg |= regs::IRQ_CFG_IRQ_TYPE;
            }
            regs.write(regs::IRQ_CFG, irq_cfg);
        }

        Ok(Self {
            regs,
            state,
            mac,
            link: if up { LinkState::Up } else { LinkState::Down },
            polled: config.irq.is_none(),
            poll_limit: limit,
            mac_cr,
            id_rev,
            tx_tag: 0,
            rx_buf: [0; RX_BUF_LEN],
            tx_buf: [0; MTU],
        })
    }

    /// The MAC address in use.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// ID_REV as read at initialisation: chip ID in bits 31:16 (`0x0118`), revision below.
    pub fn id_rev(&self) -> u32 {
        self.id_rev
    }

    /// The register access the driver uses.
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// The shared state given to [`Lan9118::new`].
    pub fn state(&self) -> &'a State {
        self.state
    }

    /// The link state as last read from the PHY.
    pub fn link(&self) -> LinkState {
        self.link
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_pending(&self) -> u32 {
        (self.regs.read(regs::RX_FIFO_INF) >> 16) & 0xff
    }

    /// Pops every TX status word (so the TX status FIFO never fills), counts the frames sent
    /// and failed, and returns the free space in the TX data FIFO, in bytes.
    fn tx_service(&self) -> u32 {
        let inf = self.regs.read(regs::TX_FIFO_INF);
        let statuses = (inf >> 16) & 0xff;
        if statuses != 0 {
            let (mut ok, mut failed) = (0u32, 0u32);
            for _ in 0..statuses {
                if self.regs.read(regs::TX_STATUS_FIFO) & regs::TX_STS_ES == 0 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            self.state.count(|c| {
                c.tx_frames = c.tx_frames.wrapping_add(ok);
                c.tx_errors = c.tx_errors.wrapping_add(failed);
            });
        }
        inf & 0xffff
    }

    /// Has `cx` woken through `waker` when interrupt source `bit` fires: acknowledges the
    /// source's stale status and enables it. The caller then looks at the chip once more,
    /// since what happened before the arming raised no interrupt. In polled mode there is no
    /// interrupt: wakes `cx` at once and returns `false`.
    fn arm(&self, waker: &AtomicWaker, bit: u32, cx: &mut Context<'_>) -> bool {
        waker.register(cx.waker());
        if self.polled {
            cx.waker().wake_by_ref();
            return false;
        }
        self.regs.write(regs::INT_STS, bit);
        update_int_en(&self.regs, bit, true);
        true
    }

    /// Whether a largest frame fits in the TX data FIFO now; if not, arranges for `cx` to be
    /// woken when it does.
    fn tx_ready(&self, cx: &mut Context<'_>) -> bool {
        if self.tx_service() >= TX_NEED {
            return true;
        }
        // Space freed between the check and the arming raised no interrupt: look again.
        let ready = self.arm(&self.state.tx_waker, regs::INT_TDFA, cx)
            && (self.regs.read(regs::TX_FIFO_INF) & 0xffff) >= TX_NEED;
        if ready {
            // Not needed after all: no interrupt (and no spurious wake-up) for it.
            update_int_en(&self.regs, regs::INT_TDFA, false);
        } else {
            self.state
                .count(|c| c.tx_fifo_full = c.tx_fifo_full.wrapping_add(1));
        }
        ready
    }

    /// Reads the data words of a frame of `len` bytes (FCS included) out of the RX data
    /// FIFO and throws them away.
    fn discard(&self, len: usize) {
        for _ in 0..len.div_ceil(4) {
            self.regs.read(regs::RX_DATA_FIFO);
        }
    }

    /// Checks the PHY after a PHY interrupt: clears its interrupt source, reads the link and
    /// the negotiated duplex, and re-arms the interrupt.
    fn refresh_link(&mut self) {
        let limit = self.poll_limit;
        self.regs.write(regs::INT_STS, regs::INT_PHY);
        let link = mii_read(&self.regs, limit, regs::PHY_INT_SRC)
            .and_then(|_| read_link(&self.regs, limit));
        // On an MII failure the link keeps its last known state and the PHY interrupt stays
        // masked: its source could not be cleared, so re-arming it would only fire again.
        let Ok((up, full_duplex)) = link else {
            return;
        };
        let new = if up { LinkState::Up } else { LinkState::Down };
        if new != self.link {
            self.link = new;
            self.state
                .count(|c| c.link_changes = c.link_changes.wrapping_add(1));
        }
        if up {
            let mac_cr = if full_duplex {
                self.mac_cr | regs::MAC_CR_FDPX
            } else {
                self.mac_cr & !regs::MAC_CR_FDPX
            };
            if mac_cr != self.mac_cr && mac_write(&self.regs, limit, regs::MAC_CR, mac_cr).is_ok() {
                self.mac_cr = mac_cr;
            }
        }
        update_int_en(&self.regs, regs::INT_PHY, true);
    }
}

impl<R: Registers> drv::Driver for Lan9118<'_, R> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.polled {
            on_interrupt(&self.regs, self.state);
        }
        let mut skipped = 0;
        let len = loop {
            if self.rx_pending() == 0 {
                if !self.arm(&self.state.rx_waker, regs::INT_RSFL, cx) {
                    return None;
                }
                // A frame that came in between the check and the arming raised no
                // interrupt: look again.
                if self.rx_pending() == 0 {
                    return None;
                }
            }
            // The stack may answer the frame at once: only hand it out with room to do so.
            if !self.tx_ready(cx) {
                return None;
            }
            let status = self.regs.read(regs::RX_STATUS_FIFO);
            let len = ((status >> regs::RX_STS_LEN_SHIFT) & regs::RX_STS_LEN_MASK) as usize;
            // Within the MTU (so that the words fit the buffer), and at least a header.
            let size_ok = (FCS_LEN + 14..=MTU + FCS_LEN).contains(&len);
            if status & RX_STS_ERRORS == 0 && size_ok {
                if status & regs::RX_STS_FILTER_FAIL == 0 {
                    break len;
                }
                // Only stored when MAC_CR RXALL is set, which this driver never sets.
                self.discard(len);
            } else {
                self.discard(len);
                self.state
                    .count(|c| c.rx_errors = c.rx_errors.wrapping_add(1));
            }
            skipped += 1;
            if skipped >= MAX_SKIP {
                cx.waker().wake_by_ref();
                return None;
            }
        };
        let words = len.div_ceil(4);
        for chunk in self.rx_buf[..words * 4].chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.regs.read(regs::RX_DATA_FIFO).to_le_bytes());
        }
        let rx = RxToken {
            buf: &mut self.rx_buf[..len - FCS_LEN],
            state: self.state,
        };
        let tx = TxToken::new(&self.regs, self.state, &mut self.tx_buf, &mut self.tx_tag);
        Some((rx, tx))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        if !self.tx_ready(cx) {
            return None;
        }
        Some(TxToken::new(
            &self.regs,
            self.state,
            &mut self.tx_buf,
            &mut self.tx_tag,
        ))
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        if self.polled {
            on_interrupt(&self.regs, self.state);
        }
        self.state.link_waker.register(cx.waker());
        if self.state.take_phy_event() {
            self.refresh_link();
        }
        self.link
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = None;
        // The LAN9118 has no checksum offload: software computes and verifies every checksum.
        caps.checksum.ipv4 = Checksum::Both;
        caps.checksum.udp = Checksum::Both;
        caps.checksum.tcp = Checksum::Both;
        caps.checksum.icmpv4 = Checksum::Both;
        caps.checksum.icmpv6 = Checksum::Both;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

/// A received frame, already moved from the RX data FIFO into the driver's receive buffer
/// (FCS stripped).
pub struct RxToken<'a> {
    buf: &'a mut [u8],
    state: &'a State,
}

impl drv::RxToken for RxToken<'_> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        self.state
            .count(|c| c.rx_frames = c.rx_frames.wrapping_add(1));
        f(self.buf)
    }
}

/// Room for one frame in the TX data FIFO. Consuming it lets the stack write the frame into
/// the driver's transmit buffer, then pushes it into the FIFO.
pub struct TxToken<'a, R: Registers> {
    regs: &'a R,
    state: &'a State,
    buf: &'a mut [u8; MTU],
    tag: &'a mut u16,
}

impl<'a, R: Registers> TxToken<'a, R> {
    fn new(regs: &'a R, state: &'a State, buf: &'a mut [u8; MTU], tag: &'a mut u16) -> Self {
        Self {
            regs,
            state,
            buf,
            tag,
        }
    }
}

impl<R: Registers> drv::TxToken for TxToken<'_, R> {
    fn consume<T, F>(self, len: usize, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        let frame = &mut self.buf[..len.min(MTU)];
        let result = f(frame);
        if len > MTU || len == 0 {
            // smoltcp never asks for more than the MTU; a frame that does not fit is not sent.
            self.state
                .count(|c| c.tx_errors = c.tx_errors.wrapping_add(1));
            return result;
        }
        let tag = *self.tag;
        *self.tag = tag.wrapping_add(1);
        let len32 = len as u32;
        self.regs.write(
            regs::TX_DATA_FIFO,
            regs::TX_CMD_A_FIRST | regs::TX_CMD_A_LAST | len32,
        );
        self.regs.write(
            regs::TX_DATA_FIFO,
            u32::from(tag) << regs::TX_CMD_B_TAG_SHIFT | len32,
        );
        let mut words = frame.chunks_exact(4);
        for word in &mut words {
            self.regs.write(
                regs::TX_DATA_FIFO,
                u32::from_le_bytes([word[0], word[1], word[2], word[3]]),
            );
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            self.regs
                .write(regs::TX_DATA_FIFO, u32::from_le_bytes(last));
        }
        result
    }
}
