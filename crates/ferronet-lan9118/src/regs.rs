//! Register map of the LAN9118 and the access trait the driver goes through.
//!
//! Offsets and bits are those of the LAN9118 datasheet (SMSC/Microchip DS00002266), for the
//! 32-bit bus mode. Only what the driver uses is named here.

/// 32-bit access to the LAN9118's register block.
///
/// The driver never touches the chip in another way, so the register protocol can be tested
/// against a simulated chip on the host. [`Mmio`] is the implementation for real hardware.
///
/// `offset` is a byte offset from the start of the block (the constants of this module);
/// reads of the FIFO ports and of read-to-clear registers have side effects, so an
/// implementation must perform every call exactly once and in order.
pub trait Registers {
    /// Reads the 32-bit register at `offset`.
    fn read(&self, offset: u32) -> u32;
    /// Writes `value` to the 32-bit register at `offset`.
    fn write(&self, offset: u32, value: u32);
}

impl<T: Registers + ?Sized> Registers for &T {
    fn read(&self, offset: u32) -> u32 {
        T::read(self, offset)
    }
    fn write(&self, offset: u32, value: u32) {
        T::write(self, offset, value)
    }
}

/// The LAN9118 register block mapped in memory, accessed with volatile 32-bit loads and stores.
///
/// `Copy`, so that an interrupt handler can hold its own copy (or build one with
/// [`Mmio::new`]) to call [`on_interrupt`](crate::on_interrupt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// The register block at `base` (`0x4020_0000` on the MPS2 boards).
    ///
    /// # Safety
    ///
    /// `base` must be the address of a LAN9118's 256-byte register block, mapped as device
    /// memory and valid for volatile 32-bit reads and writes for as long as any copy of this
    /// `Mmio` is used, and nothing else in the program may access those registers except
    /// through this crate (one [`Lan9118`](crate::Lan9118) per chip, plus
    /// [`on_interrupt`](crate::on_interrupt)).
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    /// The base address given to [`Mmio::new`].
    pub const fn base(&self) -> usize {
        self.base
    }

    fn ptr(&self, offset: u32) -> *mut u32 {
        // Masking keeps every access inside the 256-byte block and 4-byte aligned, whatever
        // offset a caller passes.
        core::ptr::with_exposed_provenance_mut(self.base + (offset & 0xfc) as usize)
    }
}

impl Registers for Mmio {
    fn read(&self, offset: u32) -> u32 {
        // SAFETY: `Mmio::new`'s contract makes `base .. base + 0x100` a register block valid
        // for volatile 32-bit access, and `ptr` keeps the address inside it and aligned.
        unsafe { core::ptr::read_volatile(self.ptr(offset)) }
    }

    fn write(&self, offset: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(self.ptr(offset), value) }
    }
}

/// RX data FIFO port (reads pop one word; 0x00..0x1c are aliases).
pub const RX_DATA_FIFO: u32 = 0x00;
/// TX data FIFO port (writes push one word; 0x20..0x3c are aliases).
pub const TX_DATA_FIFO: u32 = 0x20;
/// RX status FIFO port (reads pop one status word).
pub const RX_STATUS_FIFO: u32 = 0x40;
/// RX status FIFO peek (reads without popping).
pub const RX_STATUS_FIFO_PEEK: u32 = 0x44;
/// TX status FIFO port (reads pop one status word).
pub const TX_STATUS_FIFO: u32 = 0x48;
/// TX status FIFO peek.
pub const TX_STATUS_FIFO_PEEK: u32 = 0x4c;
/// Chip ID (bits 31:16) and revision (bits 15:0).
pub const ID_REV: u32 = 0x50;
/// Interrupt pin configuration.
pub const IRQ_CFG: u32 = 0x54;
/// Interrupt status (write 1 to clear).
pub const INT_STS: u32 = 0x58;
/// Interrupt enable.
pub const INT_EN: u32 = 0x5c;
/// Byte order test: reads [`BYTE_TEST_VALUE`].
pub const BYTE_TEST: u32 = 0x64;
/// FIFO level interrupt thresholds.
pub const FIFO_INT: u32 = 0x68;
/// Receive configuration.
pub const RX_CFG: u32 = 0x6c;
/// Transmit configuration.
pub const TX_CFG: u32 = 0x70;
/// Hardware configuration (soft reset, FIFO sizes).
pub const HW_CFG: u32 = 0x74;
/// RX data path control (fast-forward).
pub const RX_DP_CTRL: u32 = 0x78;
/// RX FIFO information (used status words, used data bytes).
pub const RX_FIFO_INF: u32 = 0x7c;
/// TX FIFO information (used status words, free data bytes).
pub const TX_FIFO_INF: u32 = 0x80;
/// Power management control (READY bit).
pub const PMT_CTRL: u32 = 0x84;
/// GPIO and LED configuration.
pub const GPIO_CFG: u32 = 0x88;
/// Free-running 25 MHz counter.
pub const FREE_RUN: u32 = 0x9c;
/// Count of frames the receiver dropped (cleared on read).
pub const RX_DROP: u32 = 0xa0;
/// MAC CSR indirect access: command.
pub const MAC_CSR_CMD: u32 = 0xa4;
/// MAC CSR indirect access: data.
pub const MAC_CSR_DATA: u32 = 0xa8;
/// Automatic flow control configuration.
pub const AFC_CFG: u32 = 0xac;
/// EEPROM command.
pub const E2P_CMD: u32 = 0xb0;

/// What [`BYTE_TEST`] reads on a present chip with the right byte order.
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;

/// IRQ_CFG: interrupt output enable.
pub const IRQ_CFG_IRQ_EN: u32 = 1 << 8;
/// IRQ_CFG: interrupt output active high (else active low).
pub const IRQ_CFG_IRQ_POL: u32 = 1 << 4;
/// IRQ_CFG: interrupt output push-pull (else open drain).
pub const IRQ_CFG_IRQ_TYPE: u32 = 1 << 0;

/// INT_STS / INT_EN: transmitter error.
pub const INT_TXE: u32 = 1 << 13;
/// INT_STS / INT_EN: receiver error (RX data FIFO read underrun and the like).
pub const INT_RXE: u32 = 1 << 14;
/// INT_STS / INT_EN: PHY interrupt (the PHY's interrupt source register has an enabled bit).
pub const INT_PHY: u32 = 1 << 18;
/// INT_STS / INT_EN: RX dropped-frame counter is halfway to saturation.
pub const INT_RXDFH: u32 = 1 << 23;
/// INT_STS / INT_EN: TX data FIFO overrun.
pub const INT_TDFO: u32 = 1 << 10;
/// INT_STS / INT_EN: TX data FIFO has more free space than the FIFO_INT level.
pub const INT_TDFA: u32 = 1 << 9;
/// INT_STS / INT_EN: TX status FIFO full.
pub const INT_TSFF: u32 = 1 << 8;
/// INT_STS / INT_EN: TX status FIFO above the FIFO_INT level.
pub const INT_TSFL: u32 = 1 << 7;
/// INT_STS / INT_EN: the receiver dropped a frame.
pub const INT_RXDF: u32 = 1 << 6;
/// INT_STS / INT_EN: RX status FIFO full.
pub const INT_RSFF: u32 = 1 << 4;
/// INT_STS / INT_EN: RX status FIFO above the FIFO_INT level.
pub const INT_RSFL: u32 = 1 << 3;

/// FIFO_INT: TX data available level, in 64-byte units (bits 31:24).
pub const FIFO_INT_TDAL_SHIFT: u32 = 24;

/// TX_CFG: transmitter on.
pub const TX_CFG_TX_ON: u32 = 1 << 1;
/// TX_CFG: let the TX status FIFO overrun instead of stopping the transmitter.
pub const TX_CFG_TXSAO: u32 = 1 << 2;

/// HW_CFG: soft reset (self-clearing).
pub const HW_CFG_SRST: u32 = 1 << 0;
/// HW_CFG: the "must be one" bit 20.
pub const HW_CFG_MBO: u32 = 1 << 20;
/// HW_CFG: TX FIFO size field (bits 19:16), in KiB including the 512-byte status FIFO.
pub const HW_CFG_TX_FIF_SZ_SHIFT: u32 = 16;

/// PMT_CTRL: the chip is ready after power-up or reset.
pub const PMT_CTRL_READY: u32 = 1 << 0;

/// E2P_CMD: EEPROM controller busy (loading the MAC address after reset).
pub const E2P_CMD_BUSY: u32 = 1 << 31;

/// MAC_CSR_CMD: busy (set to start an access; the chip clears it when done).
pub const MAC_CSR_BUSY: u32 = 1 << 31;
/// MAC_CSR_CMD: read (else write).
pub const MAC_CSR_READ: u32 = 1 << 30;

/// MAC CSR index: MAC control.
pub const MAC_CR: u32 = 1;
/// MAC CSR index: MAC address high (bytes 4 and 5).
pub const MAC_ADDRH: u32 = 2;
/// MAC CSR index: MAC address low (bytes 0 to 3).
pub const MAC_ADDRL: u32 = 3;
/// MAC CSR index: MII access.
pub const MAC_MII_ACC: u32 = 6;
/// MAC CSR index: MII data.
pub const MAC_MII_DATA: u32 = 7;

/// MAC_CR: receiver enable.
pub const MAC_CR_RXEN: u32 = 1 << 2;
/// MAC_CR: transmitter enable.
pub const MAC_CR_TXEN: u32 = 1 << 3;
/// MAC_CR: pass all multicast frames.
pub const MAC_CR_MCPAS: u32 = 1 << 19;
/// MAC_CR: promiscuous.
pub const MAC_CR_PRMS: u32 = 1 << 18;
/// MAC_CR: full duplex.
pub const MAC_CR_FDPX: u32 = 1 << 20;

/// MII_ACC: busy.
pub const MII_ACC_BUSY: u32 = 1 << 0;
/// MII_ACC: write (else read).
pub const MII_ACC_WRITE: u32 = 1 << 1;

/// MII address of the LAN9118's internal PHY.
pub const PHY_ADDR: u32 = 1;
/// PHY register: basic control.
pub const PHY_BCR: u32 = 0;
/// PHY register: basic status.
pub const PHY_BSR: u32 = 1;
/// PHY register: identifier 1.
pub const PHY_ID1: u32 = 2;
/// PHY register: identifier 2.
pub const PHY_ID2: u32 = 3;
/// PHY register: auto-negotiation advertisement.
pub const PHY_ANAR: u32 = 4;
/// PHY register: auto-negotiation link partner ability.
pub const PHY_ANLPAR: u32 = 5;
/// PHY register: interrupt source (cleared on read).
pub const PHY_INT_SRC: u32 = 29;
/// PHY register: interrupt mask.
pub const PHY_INT_MASK: u32 = 30;

/// PHY BCR: reset (self-clearing).
pub const PHY_BCR_RESET: u16 = 1 << 15;
/// PHY BCR: auto-negotiation enable.
pub const PHY_BCR_ANEG_EN: u16 = 1 << 12;
/// PHY BCR: restart auto-negotiation.
pub const PHY_BCR_ANEG_RESTART: u16 = 1 << 9;
/// PHY BSR: link up (latched low: read twice for the current state).
pub const PHY_BSR_LINK: u16 = 1 << 2;
/// PHY ANAR / ANLPAR: 100BASE-TX full duplex.
pub const PHY_AN_100FD: u16 = 1 << 8;
/// PHY ANAR / ANLPAR: 100BASE-TX half duplex.
pub const PHY_AN_100HD: u16 = 1 << 7;
/// PHY ANAR / ANLPAR: 10BASE-T full duplex.
pub const PHY_AN_10FD: u16 = 1 << 6;
/// PHY ANAR / ANLPAR: 10BASE-T half duplex.
pub const PHY_AN_10HD: u16 = 1 << 5;
/// PHY ANAR: IEEE 802.3 selector.
pub const PHY_AN_CSMA: u16 = 0x0001;
/// PHY interrupt source / mask: auto-negotiation complete.
pub const PHY_INT_ANEG_COMPLETE: u16 = 1 << 6;
/// PHY interrupt source / mask: link down.
pub const PHY_INT_LINK_DOWN: u16 = 1 << 4;

/// RX status: error summary.
pub const RX_STS_ES: u32 = 1 << 15;
/// RX status: the frame failed the address filter (only stored with MAC_CR RXALL).
pub const RX_STS_FILTER_FAIL: u32 = 1 << 30;
/// RX status: frame length in bytes, FCS included (bits 29:16).
pub const RX_STS_LEN_SHIFT: u32 = 16;
/// RX status: mask of the length field after shifting.
pub const RX_STS_LEN_MASK: u32 = 0x3fff;

/// TX command A: first segment.
pub const TX_CMD_A_FIRST: u32 = 1 << 13;
/// TX command A: last segment.
pub const TX_CMD_A_LAST: u32 = 1 << 12;
/// TX command B: packet tag (bits 31:16), returned in the TX status.
pub const TX_CMD_B_TAG_SHIFT: u32 = 16;
/// TX status: error summary.
pub const TX_STS_ES: u32 = 1 << 15;
