//! Initialisation errors.

use core::fmt;

/// Why [`Lan9118::new`](crate::Lan9118::new) failed. Each variant is one cause.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// BYTE_TEST did not read `0x8765_4321`: no LAN9118 at that address, or the bus is set up
    /// for another width or byte order.
    ChipNotFound {
        /// What BYTE_TEST read.
        byte_test: u32,
    },
    /// HW_CFG SRST did not clear after a soft reset.
    ResetTimeout,
    /// PMT_CTRL READY did not come up (after power-up or after the soft reset).
    NotReady,
    /// The EEPROM controller stayed busy (E2P_CMD EPC_BUSY) after reset.
    EepromTimeout,
    /// A MAC CSR access did not complete (MAC_CSR_CMD busy stayed set).
    MacCsrTimeout,
    /// An MII access to the PHY did not complete (MII_ACC busy stayed set).
    MiiTimeout,
    /// The PHY's identifier registers read all zeros or all ones: the internal PHY does not
    /// answer.
    PhyNotResponding {
        /// PHY identifier 1 and 2 as read.
        id: [u16; 2],
    },
    /// The PHY reset bit did not clear.
    PhyResetTimeout,
    /// [`Config::mac`](crate::Config::mac) was `None` and the chip holds no valid unicast
    /// address (no or blank EEPROM), or `Config::mac` itself is not a unicast address.
    NoMacAddress {
        /// The address that was found or given.
        mac: [u8; 6],
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChipNotFound { byte_test } => {
                write!(f, "no LAN9118 found: BYTE_TEST read {byte_test:#010x}")
            }
            Self::ResetTimeout => f.write_str("LAN9118 soft reset did not complete"),
            Self::NotReady => f.write_str("LAN9118 did not become ready (PMT_CTRL READY)"),
            Self::EepromTimeout => f.write_str("LAN9118 EEPROM controller stayed busy"),
            Self::MacCsrTimeout => f.write_str("LAN9118 MAC CSR access timed out"),
            Self::MiiTimeout => f.write_str("LAN9118 MII access to the PHY timed out"),
            Self::PhyNotResponding { id } => {
                write!(
                    f,
                    "LAN9118 PHY not responding (ID {:04x}:{:04x})",
                    id[0], id[1]
                )
            }
            Self::PhyResetTimeout => f.write_str("LAN9118 PHY reset did not complete"),
            Self::NoMacAddress { mac } => write!(
                f,
                "no valid unicast MAC address ({:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x})",
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
            ),
        }
    }
}

impl core::error::Error for InitError {}
