//! A simulated LAN9118 register file for the unit tests, written from the datasheet: FIFOs,
//! indirect MAC CSR and MII access, reset bits, BYTE_TEST, interrupt status and enables.
//!
//! Interrupt status bits are level-evaluated after every access (RSFL while the RX status
//! FIFO is above its level, TDFA while the TX FIFO has more room than its level, PHY_INT
//! while the PHY has an enabled source), so a handler that fails to mask a level source
//! shows up as an IRQ line that stays asserted.

extern crate std;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::vec::Vec;

use crate::regs::{self, Registers};

/// FCS the fake appends to every received frame (not a real CRC: the driver never checks it).
pub const FAKE_FCS: [u8; 4] = [0xfc, 0x5c, 0xfc, 0x5c];

/// A frame the fake chip transmitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFrame {
    pub cmd_a: u32,
    pub cmd_b: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    CmdA,
    CmdB,
    Data { remaining_words: u32 },
}

pub struct Inner {
    // Knobs.
    pub byte_test: u32,
    /// HW_CFG reads during which SRST still reads as set after a reset; `None`: forever.
    pub srst_reads: Option<u32>,
    /// PMT_CTRL reads after a reset before READY; `None`: never ready.
    pub ready_reads: Option<u32>,
    pub e2p_stuck: bool,
    pub mac_csr_stuck: bool,
    pub mii_stuck: bool,
    pub phy_reset_stuck: bool,
    /// What the PHY identifier registers read (`[0xffff; 2]`: no PHY).
    pub phy_id: [u16; 2],
    pub eeprom_mac: Option<[u8; 6]>,
    pub partner: u16,
    /// TX data FIFO size in bytes.
    pub tx_capacity: u32,
    /// Keep transmitted frames in the TX FIFO (taking room) until `release_tx`.
    pub tx_hold: bool,
    /// Set the error bit in the status of the next frame sent.
    pub tx_fail_next: bool,
    /// RSFL and TDFA are set only when a frame arrives or TX room comes back (as QEMU does),
    /// not re-evaluated on every access: acknowledging them loses the event.
    pub edge_irqs: bool,

    // Chip state.
    srst_left: Option<u32>,
    ready_left: Option<u32>,
    pub hw_cfg: u32,
    pub irq_cfg: u32,
    pub int_sts: u32,
    pub int_en: u32,
    pub fifo_int: u32,
    pub rx_cfg: u32,
    pub tx_cfg: u32,
    mac_cmd: u32,
    mac_data: u32,
    pub mac_cr: u32,
    pub addrh: u32,
    pub addrl: u32,
    mii_acc: u32,
    mii_data: u32,
    pub phy_bcr: u16,
    pub phy_anar: u16,
    pub phy_int_src: u16,
    pub phy_int_mask: u16,
    pub link: bool,
    link_latched_down: bool,
    pub rx_status: VecDeque<u32>,
    pub rx_data: VecDeque<u32>,
    pub rx_drop: u32,
    pub rx_underruns: u32,
    tx_state: TxState,
    tx_cmd_a: u32,
    tx_cmd_b: u32,
    tx_bytes: Vec<u8>,
    /// Bytes of frames held in the TX FIFO (with `tx_hold`), and those frames' statuses.
    tx_held: VecDeque<(u32, u32)>,
    tx_used: u32,
    pub tx_status: VecDeque<u32>,
    pub sent: Vec<SentFrame>,
    /// Every register write, in order.
    pub writes: Vec<(u32, u32)>,
    /// Woken when a frame has been sent (whoever plays the cable waits on it).
    pub wire_waker: Option<std::task::Waker>,
}

pub struct FakeChip {
    pub inner: RefCell<Inner>,
}

impl FakeChip {
    /// A chip that resets at once, with an EEPROM holding `52:54:00:12:34:56`, its link up and
    /// a partner that can do every 10/100 mode.
    pub fn new() -> Self {
        let mut inner = Inner {
            byte_test: regs::BYTE_TEST_VALUE,
            srst_reads: Some(2),
            ready_reads: Some(3),
            e2p_stuck: false,
            mac_csr_stuck: false,
            mii_stuck: false,
            phy_reset_stuck: false,
            phy_id: [0x0007, 0xc0d1],
            eeprom_mac: Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            partner: 0x41e1,
            tx_capacity: 4608,
            tx_hold: false,
            tx_fail_next: false,
            edge_irqs: false,
            srst_left: Some(0),
            ready_left: Some(0),
            hw_cfg: 0,
            irq_cfg: 0,
            int_sts: 0,
            int_en: 0,
            fifo_int: 0,
            rx_cfg: 0,
            tx_cfg: 0,
            mac_cmd: 0,
            mac_data: 0,
            mac_cr: 0,
            addrh: 0,
            addrl: 0,
            mii_acc: 0,
            mii_data: 0,
            phy_bcr: 0,
            phy_anar: 0,
            phy_int_src: 0,
            phy_int_mask: 0,
            link: true,
            link_latched_down: false,
            rx_status: VecDeque::new(),
            rx_data: VecDeque::new(),
            rx_drop: 0,
            rx_underruns: 0,
            tx_state: TxState::CmdA,
            tx_cmd_a: 0,
            tx_cmd_b: 0,
            tx_bytes: Vec::new(),
            tx_held: VecDeque::new(),
            tx_used: 0,
            tx_status: VecDeque::new(),
            sent: Vec::new(),
            writes: Vec::new(),
            wire_waker: None,
        };
        inner.power_on();
        Self {
            inner: RefCell::new(inner),
        }
    }

    pub fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.borrow_mut())
    }

    /// A frame arrives from the wire (the FCS is appended), with extra RX status bits.
    pub fn receive(&self, frame: &[u8], status_bits: u32) {
        let mut s = self.inner.borrow_mut();
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&FAKE_FCS);
        s.rx_status
            .push_back(((bytes.len() as u32) << 16) | status_bits);
        for word in bytes.chunks(4) {
            let mut w = [0u8; 4];
            w[..word.len()].copy_from_slice(word);
            s.rx_data.push_back(u32::from_le_bytes(w));
        }
        s.fifo_levels();
        s.update();
    }

    /// The chip drops `n` frames (RX FIFO full).
    pub fn drop_frames(&self, n: u32) {
        let mut s = self.inner.borrow_mut();
        s.rx_drop += n;
        s.int_sts |= regs::INT_RXDF;
        s.update();
    }

    /// The cable is plugged in or pulled out.
    pub fn set_link(&self, up: bool) {
        let mut s = self.inner.borrow_mut();
        if s.link != up {
            s.link = up;
            if up {
                s.phy_int_src |= regs::PHY_INT_ANEG_COMPLETE;
            } else {
                s.link_latched_down = true;
                s.phy_int_src |= regs::PHY_INT_LINK_DOWN;
            }
        }
        s.update();
    }

    /// Frames held in the TX FIFO go out: room comes back, statuses come in.
    pub fn release_tx(&self) {
        let mut s = self.inner.borrow_mut();
        while let Some((bytes, status)) = s.tx_held.pop_front() {
            s.tx_used -= bytes;
            s.tx_status.push_back(status);
        }
        s.fifo_levels();
        s.update();
    }

    /// Whether the IRQ output is asserted.
    pub fn irq_line(&self) -> bool {
        let s = self.inner.borrow();
        s.irq_cfg & regs::IRQ_CFG_IRQ_EN != 0 && s.int_sts & s.int_en != 0
    }
}

impl Inner {
    fn power_on(&mut self) {
        self.hw_cfg = 0x0005_0000;
        self.irq_cfg = 0;
        self.int_sts = 0;
        self.int_en = 0;
        self.fifo_int = 0x4800_0000;
        self.rx_cfg = 0;
        self.tx_cfg = 0;
        self.mac_cr = regs::MAC_CR_PRMS;
        self.rx_status.clear();
        self.rx_data.clear();
        self.rx_drop = 0;
        self.tx_state = TxState::CmdA;
        self.tx_held.clear();
        self.tx_used = 0;
        self.tx_status.clear();
        self.phy_reset();
        match self.eeprom_mac {
            Some(m) => {
                self.addrl = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
                self.addrh = u32::from(u16::from_le_bytes([m[4], m[5]]));
            }
            None => {
                self.addrl = 0xffff_ffff;
                self.addrh = 0x0000_ffff;
            }
        }
    }

    fn phy_reset(&mut self) {
        self.phy_bcr = 0x3000;
        self.phy_anar = 0x01e1;
        self.phy_int_mask = 0;
        self.phy_int_src = 0;
    }

    fn update(&mut self) {
        if !self.edge_irqs {
            self.fifo_levels();
        }
        if self.phy_int_src & self.phy_int_mask != 0 {
            self.int_sts |= regs::INT_PHY;
        } else {
            self.int_sts &= !regs::INT_PHY;
        }
    }

    fn fifo_levels(&mut self) {
        let rsl = (self.fifo_int & 0xff) as usize;
        if self.rx_status.len() > rsl {
            self.int_sts |= regs::INT_RSFL;
        }
        let tdal = (self.fifo_int >> 24) * 64;
        if self.tx_capacity - self.tx_used > tdal {
            self.int_sts |= regs::INT_TDFA;
        }
    }

    fn phy_read(&mut self, reg: u32) -> u16 {
        match reg {
            0 => self.phy_bcr,
            1 => {
                let link = self.link && !self.link_latched_down;
                self.link_latched_down = false;
                0x7809 | if link { 0x0024 } else { 0 }
            }
            2 => self.phy_id[0],
            3 => self.phy_id[1],
            4 => self.phy_anar,
            5 => {
                if self.link {
                    self.partner
                } else {
                    0
                }
            }
            29 => core::mem::take(&mut self.phy_int_src),
            30 => self.phy_int_mask,
            _ => panic!("driver read unimplemented PHY register {reg}"),
        }
    }

    fn phy_write(&mut self, reg: u32, value: u16) {
        match reg {
            0 => {
                if value & regs::PHY_BCR_RESET != 0 {
                    self.phy_reset();
                    if self.phy_reset_stuck {
                        self.phy_bcr |= regs::PHY_BCR_RESET;
                    }
                } else {
                    self.phy_bcr = value & !regs::PHY_BCR_ANEG_RESTART;
                }
            }
            4 => self.phy_anar = value,
            30 => self.phy_int_mask = value,
            _ => panic!("driver wrote unimplemented PHY register {reg}"),
        }
    }

    fn mac_access(&mut self, cmd: u32) {
        self.mac_cmd = cmd;
        if cmd & regs::MAC_CSR_BUSY == 0 || self.mac_csr_stuck {
            return;
        }
        self.mac_cmd &= !regs::MAC_CSR_BUSY;
        let index = cmd & 0xff;
        if cmd & regs::MAC_CSR_READ != 0 {
            self.mac_data = match index {
                1 => self.mac_cr,
                2 => self.addrh,
                3 => self.addrl,
                6 => self.mii_acc,
                7 => self.mii_data,
                _ => panic!("driver read unimplemented MAC CSR {index}"),
            };
        } else {
            let v = self.mac_data;
            match index {
                1 => self.mac_cr = v,
                2 => self.addrh = v & 0xffff,
                3 => self.addrl = v,
                6 => {
                    self.mii_acc = v;
                    if v & regs::MII_ACC_BUSY != 0 && !self.mii_stuck {
                        self.mii_acc &= !regs::MII_ACC_BUSY;
                        assert_eq!((v >> 11) & 0x1f, regs::PHY_ADDR, "wrong PHY address");
                        let reg = (v >> 6) & 0x1f;
                        if v & regs::MII_ACC_WRITE != 0 {
                            self.phy_write(reg, self.mii_data as u16);
                        } else {
                            self.mii_data = self.phy_read(reg).into();
                        }
                    }
                }
                7 => self.mii_data = v & 0xffff,
                _ => panic!("driver wrote unimplemented MAC CSR {index}"),
            }
        }
    }

    fn tx_push(&mut self, word: u32) {
        let free = self.tx_capacity - self.tx_used;
        assert!(
            free >= 4,
            "TX data FIFO overrun: the driver wrote without room"
        );
        self.tx_used += 4;
        match self.tx_state {
            TxState::CmdA => {
                self.tx_cmd_a = word;
                self.tx_state = TxState::CmdB;
            }
            TxState::CmdB => {
                self.tx_cmd_b = word;
                let size = self.tx_cmd_a & 0x7ff;
                let offset = (self.tx_cmd_a >> 16) & 0x1f;
                self.tx_bytes.clear();
                self.tx_state = TxState::Data {
                    remaining_words: (size + offset).div_ceil(4),
                };
            }
            TxState::Data { remaining_words } => {
                let size = (self.tx_cmd_a & 0x7ff) as usize;
                for b in word.to_le_bytes() {
                    if self.tx_bytes.len() < size {
                        self.tx_bytes.push(b);
                    }
                }
                self.tx_state = TxState::Data {
                    remaining_words: remaining_words - 1,
                };
            }
        }
        if self.tx_state == (TxState::Data { remaining_words: 0 }) {
            self.tx_state = TxState::CmdA;
            assert!(
                self.tx_cmd_a & regs::TX_CMD_A_FIRST != 0
                    && self.tx_cmd_a & regs::TX_CMD_A_LAST != 0,
                "the fake only takes single-segment frames"
            );
            assert_eq!(
                self.tx_cmd_a & 0x7ff,
                self.tx_cmd_b & 0x7ff,
                "cmd A and B lengths differ"
            );
            let frame_bytes = 8 + (self.tx_cmd_a & 0x7ff).div_ceil(4) * 4;
            let mut status = self.tx_cmd_b & 0xffff_0000;
            if core::mem::take(&mut self.tx_fail_next) {
                status |= regs::TX_STS_ES;
            }
            if let Some(w) = &self.wire_waker {
                w.wake_by_ref();
            }
            self.sent.push(SentFrame {
                cmd_a: self.tx_cmd_a,
                cmd_b: self.tx_cmd_b,
                data: core::mem::take(&mut self.tx_bytes),
            });
            if self.tx_hold {
                self.tx_held.push_back((frame_bytes, status));
            } else {
                self.tx_used -= frame_bytes;
                self.tx_status.push_back(status);
            }
        }
    }
}

impl Registers for FakeChip {
    fn read(&self, offset: u32) -> u32 {
        let mut s = self.inner.borrow_mut();
        let value = match offset {
            0x00..=0x1c => match s.rx_data.pop_front() {
                Some(w) => w,
                None => {
                    s.rx_underruns += 1;
                    s.int_sts |= regs::INT_RXE;
                    0
                }
            },
            regs::RX_STATUS_FIFO => s.rx_status.pop_front().unwrap_or(0),
            regs::TX_STATUS_FIFO => s.tx_status.pop_front().unwrap_or(0),
            regs::ID_REV => 0x0118_0001,
            regs::IRQ_CFG => s.irq_cfg,
            regs::INT_STS => s.int_sts,
            regs::INT_EN => s.int_en,
            regs::BYTE_TEST => s.byte_test,
            regs::FIFO_INT => s.fifo_int,
            regs::RX_CFG => s.rx_cfg,
            regs::TX_CFG => s.tx_cfg,
            regs::HW_CFG => {
                let srst = match s.srst_left {
                    Some(0) => false,
                    Some(n) => {
                        s.srst_left = Some(n - 1);
                        true
                    }
                    None => true,
                };
                s.hw_cfg | u32::from(srst)
            }
            regs::RX_FIFO_INF => ((s.rx_status.len() as u32) << 16) | (s.rx_data.len() as u32 * 4),
            regs::TX_FIFO_INF => ((s.tx_status.len() as u32) << 16) | (s.tx_capacity - s.tx_used),
            regs::PMT_CTRL => match s.ready_left {
                Some(0) => 1,
                Some(n) => {
                    s.ready_left = Some(n - 1);
                    0
                }
                None => 0,
            },
            regs::RX_DROP => core::mem::take(&mut s.rx_drop),
            regs::MAC_CSR_CMD => s.mac_cmd,
            regs::MAC_CSR_DATA => s.mac_data,
            regs::E2P_CMD => {
                if s.e2p_stuck {
                    regs::E2P_CMD_BUSY
                } else {
                    0
                }
            }
            _ => panic!("driver read unexpected register {offset:#x}"),
        };
        s.update();
        value
    }

    fn write(&self, offset: u32, value: u32) {
        let mut s = self.inner.borrow_mut();
        s.writes.push((offset, value));
        match offset {
            0x20..=0x3c => s.tx_push(value),
            regs::IRQ_CFG => s.irq_cfg = value,
            regs::INT_STS => s.int_sts &= !value,
            regs::INT_EN => s.int_en = value,
            regs::FIFO_INT => s.fifo_int = value,
            regs::RX_CFG => s.rx_cfg = value,
            regs::TX_CFG => s.tx_cfg = value,
            regs::HW_CFG => {
                if value & regs::HW_CFG_SRST != 0 {
                    s.power_on();
                    s.srst_left = s.srst_reads;
                    s.ready_left = s.ready_reads;
                } else {
                    s.hw_cfg = value;
                }
            }
            regs::MAC_CSR_CMD => s.mac_access(value),
            regs::MAC_CSR_DATA => s.mac_data = value,
            _ => panic!("driver wrote unexpected register {offset:#x} = {value:#x}"),
        }
        s.update();
    }
}
