//! The register protocol against the simulated chip of `fake.rs`.

extern crate std;

use std::boxed::Box;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::vec::Vec;

use embassy_net_driver::{
    Checksum, Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _,
};

use crate::fake::{FAKE_FCS, FakeChip};
use crate::regs::{self, Registers};
use crate::state::EVENTS;
use crate::{Config, InitError, IrqPin, Lan9118, MTU, Mmio, State, on_interrupt};

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct TestWaker {
    count: Arc<CountingWaker>,
    waker: Waker,
}

impl TestWaker {
    fn new() -> Self {
        let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        Self { count, waker }
    }
    fn cx(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }
    fn wakes(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }
}

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x31];

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    f[..6].copy_from_slice(&MAC);
    f
}

fn up<'a>(chip: &'a FakeChip, state: &'a State) -> Lan9118<'a, &'a FakeChip> {
    Lan9118::new(chip, state, Config::default()).unwrap()
}

/// Receives one frame and returns its bytes, or `None`.
fn recv(dev: &mut Lan9118<'_, &FakeChip>, w: &TestWaker) -> Option<Vec<u8>> {
    let (rx, _tx) = dev.receive(&mut w.cx())?;
    Some(rx.consume(|buf| buf.to_vec()))
}

/// Sends `data` through a transmit token; `false` if the driver gave none.
fn send(dev: &mut Lan9118<'_, &FakeChip>, w: &TestWaker, data: &[u8]) -> bool {
    let Some(tx) = dev.transmit(&mut w.cx()) else {
        return false;
    };
    tx.consume(data.len(), |buf| buf.copy_from_slice(data));
    true
}

// ---- initialisation ----

#[test]
fn init_sets_up_the_chip_with_the_eeprom_address() {
    let chip = FakeChip::new();
    let state = State::new();
    let dev = up(&chip, &state);
    assert_eq!(dev.mac_address(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    assert_eq!(
        dev.hardware_address(),
        HardwareAddress::Ethernet(dev.mac_address())
    );
    assert_eq!(dev.id_rev(), 0x0118_0001);
    assert!(dev.link() == LinkState::Up);
    let s = chip.inner.borrow();
    assert_eq!(
        s.mac_cr,
        regs::MAC_CR_RXEN | regs::MAC_CR_TXEN | regs::MAC_CR_MCPAS | regs::MAC_CR_FDPX
    );
    assert_eq!(s.tx_cfg, regs::TX_CFG_TX_ON | regs::TX_CFG_TXSAO);
    assert_eq!(s.rx_cfg, 0);
    assert_eq!(s.fifo_int, 24 << 24);
    assert_eq!(s.hw_cfg, regs::HW_CFG_MBO | 5 << 16);
    assert_eq!(s.int_en, regs::INT_RSFL | regs::INT_PHY | EVENTS);
    assert_eq!(
        s.irq_cfg,
        regs::IRQ_CFG_IRQ_EN | regs::IRQ_CFG_IRQ_POL | regs::IRQ_CFG_IRQ_TYPE
    );
    assert_eq!(s.phy_anar, 0x01e1);
    assert_eq!(s.phy_bcr & regs::PHY_BCR_ANEG_EN, regs::PHY_BCR_ANEG_EN);
    assert_eq!(
        s.phy_int_mask,
        regs::PHY_INT_ANEG_COMPLETE | regs::PHY_INT_LINK_DOWN
    );
    // The soft reset was issued.
    assert!(s.writes.contains(&(regs::HW_CFG, regs::HW_CFG_SRST)));
}

#[test]
fn init_programs_the_configured_address() {
    let chip = FakeChip::new();
    let state = State::new();
    let config = Config {
        mac: Some(MAC),
        ..Config::default()
    };
    let dev = Lan9118::new(&chip, &state, config).unwrap();
    assert_eq!(dev.mac_address(), MAC);
    let s = chip.inner.borrow();
    assert_eq!(s.addrl, 0x105e_0002);
    assert_eq!(s.addrh, 0x3120);
}

#[test]
fn init_options_promiscuous_no_multicast_and_irq_pin() {
    let chip = FakeChip::new();
    let state = State::new();
    let config = Config {
        promiscuous: true,
        all_multicast: false,
        irq: Some(IrqPin {
            active_high: false,
            push_pull: false,
        }),
        ..Config::default()
    };
    Lan9118::new(&chip, &state, config).unwrap();
    let s = chip.inner.borrow();
    assert_eq!(
        s.mac_cr,
        regs::MAC_CR_RXEN | regs::MAC_CR_TXEN | regs::MAC_CR_PRMS | regs::MAC_CR_FDPX
    );
    assert_eq!(s.irq_cfg, regs::IRQ_CFG_IRQ_EN);
}

#[test]
fn polled_mode_leaves_the_irq_output_off() {
    let chip = FakeChip::new();
    let state = State::new();
    let config = Config {
        irq: None,
        ..Config::default()
    };
    Lan9118::new(&chip, &state, config).unwrap();
    assert_eq!(chip.inner.borrow().irq_cfg, 0);
}

fn init_error(setup: impl FnOnce(&mut crate::fake::Inner), config: Config) -> InitError {
    let chip = FakeChip::new();
    chip.with(setup);
    let state = State::new();
    Lan9118::new(&chip, &state, config).unwrap_err()
}

#[test]
fn init_errors_are_typed() {
    let short = Config {
        poll_limit: 50,
        ..Config::default()
    };
    assert_eq!(
        init_error(|s| s.byte_test = 0xffff_ffff, short.clone()),
        InitError::ChipNotFound {
            byte_test: 0xffff_ffff
        }
    );
    assert_eq!(
        init_error(|s| s.srst_reads = None, short.clone()),
        InitError::ResetTimeout
    );
    assert_eq!(
        init_error(|s| s.ready_reads = None, short.clone()),
        InitError::NotReady
    );
    assert_eq!(
        init_error(|s| s.e2p_stuck = true, short.clone()),
        InitError::EepromTimeout
    );
    assert_eq!(
        init_error(|s| s.mac_csr_stuck = true, short.clone()),
        InitError::MacCsrTimeout
    );
    assert_eq!(
        init_error(|s| s.mii_stuck = true, short.clone()),
        InitError::MiiTimeout
    );
    assert_eq!(
        init_error(|s| s.phy_id = [0xffff, 0xffff], short.clone()),
        InitError::PhyNotResponding {
            id: [0xffff, 0xffff]
        }
    );
    assert_eq!(
        init_error(|s| s.phy_id = [0, 0], short.clone()),
        InitError::PhyNotResponding { id: [0, 0] }
    );
    assert_eq!(
        init_error(|s| s.phy_reset_stuck = true, short.clone()),
        InitError::PhyResetTimeout
    );
    assert_eq!(
        init_error(|s| s.eeprom_mac = None, short.clone()),
        InitError::NoMacAddress { mac: [0xff; 6] }
    );
    let multicast = Config {
        mac: Some([0x01, 0, 0x5e, 0, 0, 1]),
        ..short
    };
    assert_eq!(
        init_error(|_| {}, multicast),
        InitError::NoMacAddress {
            mac: [0x01, 0, 0x5e, 0, 0, 1]
        }
    );
}

#[test]
fn absent_chip_is_left_alone() {
    let chip = FakeChip::new();
    chip.with(|s| s.byte_test = 0);
    let state = State::new();
    assert!(Lan9118::new(&chip, &state, Config::default()).is_err());
    assert!(chip.inner.borrow().writes.is_empty());
}

#[test]
fn slow_reset_within_the_limit_succeeds() {
    let chip = FakeChip::new();
    chip.with(|s| {
        s.srst_reads = Some(40);
        s.ready_reads = Some(40);
    });
    let state = State::new();
    let config = Config {
        poll_limit: 50,
        ..Config::default()
    };
    assert!(Lan9118::new(&chip, &state, config).is_ok());
    let chip = FakeChip::new();
    chip.with(|s| s.srst_reads = Some(60));
    let config = Config {
        poll_limit: 50,
        ..Config::default()
    };
    assert_eq!(
        Lan9118::new(&chip, &state, config).unwrap_err(),
        InitError::ResetTimeout
    );
}

#[test]
fn capabilities_are_exact() {
    let chip = FakeChip::new();
    let state = State::new();
    let dev = up(&chip, &state);
    let caps = dev.capabilities();
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.max_burst_size, None);
    let c = &caps.checksum;
    for sum in [c.ipv4, c.udp, c.tcp, c.icmpv4, c.icmpv6] {
        assert!(matches!(sum, Checksum::Both));
    }
}

// ---- transmit ----

#[test]
fn transmit_writes_command_words_and_frame_words() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    let lens = [60usize, 61, 62, 63, 42, MTU];
    let frames: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| frame(l, i as u8))
        .collect();
    for f in &frames {
        assert!(send(&mut dev, &w, f));
    }
    let s = chip.inner.borrow();
    assert_eq!(s.sent.len(), frames.len());
    for (i, (sent, f)) in s.sent.iter().zip(&frames).enumerate() {
        let len = f.len() as u32;
        assert_eq!(sent.cmd_a, 1 << 13 | 1 << 12 | len, "cmd A of frame {i}");
        assert_eq!(sent.cmd_b, (i as u32) << 16 | len, "cmd B of frame {i}");
        assert_eq!(&sent.data, f, "bytes of frame {i}");
    }
    // Exactly 2 command words and ceil(len / 4) data words per frame; the last word of an odd
    // frame is padded with zeros.
    let fifo = s
        .writes
        .iter()
        .filter(|(o, _)| *o == regs::TX_DATA_FIFO)
        .map(|(_, v)| *v)
        .collect::<Vec<_>>();
    let expected: usize = lens.iter().map(|l| 2 + l.div_ceil(4)).sum();
    assert_eq!(fifo.len(), expected);
    // Frame 1 (61 bytes): its last data word holds byte 60 only.
    let start = 2 + 15 + 2;
    assert_eq!(fifo[start + 15], u32::from(frames[1][60]));
    drop(s);
    // The next call drains the TX status FIFO and counts the frames.
    assert!(dev.transmit(&mut w.cx()).is_some());
    assert_eq!(state.counters().tx_frames, lens.len() as u32);
    assert_eq!(chip.inner.borrow().tx_status.len(), 0);
    assert_eq!(w.wakes(), 0);
}

#[test]
fn transmit_errors_are_counted() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    chip.with(|s| s.tx_fail_next = true);
    assert!(send(&mut dev, &w, &frame(100, 1)));
    assert!(send(&mut dev, &w, &frame(100, 2)));
    dev.transmit(&mut w.cx());
    let c = state.counters();
    assert_eq!((c.tx_frames, c.tx_errors), (1, 1));
    // A frame longer than the MTU is not sent.
    let tx = dev.transmit(&mut w.cx()).unwrap();
    let handed = tx.consume(MTU + 1, |buf| buf.len());
    assert_eq!(handed, MTU);
    assert_eq!(chip.inner.borrow().sent.len(), 2);
    assert_eq!(state.counters().tx_errors, 2);
}

#[test]
fn full_tx_fifo_is_backpressure_woken_by_tdfa() {
    let chip = FakeChip::new();
    chip.with(|s| {
        s.tx_hold = true;
        s.tx_capacity = 3200;
    });
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    let a = frame(MTU, 1);
    let b = frame(1000, 2);
    assert!(send(&mut dev, &w, &a));
    assert!(send(&mut dev, &w, &b));
    // 3200 - 1524 - 1008 = 668 bytes left: not enough for a largest frame.
    let c = frame(60, 3);
    assert!(!send(&mut dev, &w, &c));
    assert_eq!(state.counters().tx_fifo_full, 1);
    assert_eq!(w.wakes(), 0);
    assert!(chip.inner.borrow().int_en & regs::INT_TDFA != 0);
    assert!(!chip.irq_line());

    chip.release_tx();
    assert!(chip.irq_line());
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 1);
    assert!(!chip.irq_line(), "TDFA must be masked after the interrupt");
    assert_eq!(chip.inner.borrow().int_en & regs::INT_TDFA, 0);
    assert!(send(&mut dev, &w, &c));
    let s = chip.inner.borrow();
    assert_eq!(s.sent.len(), 3);
    assert_eq!(s.sent[0].data, a);
    assert_eq!(s.sent[1].data, b);
    assert_eq!(s.sent[2].data, c);
}

#[test]
fn received_frame_waits_for_room_for_its_reply() {
    let chip = FakeChip::new();
    chip.with(|s| {
        s.tx_hold = true;
        s.tx_capacity = 2000;
    });
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    assert!(send(&mut dev, &w, &frame(1000, 1)));
    chip.receive(&frame(80, 4), 0);
    assert!(recv(&mut dev, &w).is_none());
    assert_eq!(
        chip.inner.borrow().rx_status.len(),
        1,
        "the frame stays in the chip"
    );
    assert_eq!(state.counters().tx_fifo_full, 1);
    chip.release_tx();
    on_interrupt(&chip, &state);
    assert!(w.wakes() >= 1);
    let (rx, tx) = dev.receive(&mut w.cx()).unwrap();
    rx.consume(|f| {
        assert_eq!(f, &frame(80, 4)[..]);
        // The reply, from inside the received frame's closure, as smoltcp does.
        tx.consume(60, |buf| buf.copy_from_slice(&frame(60, 5)));
    });
    assert_eq!(chip.inner.borrow().sent[1].data, frame(60, 5));
}

// ---- receive ----

#[test]
fn receive_strips_the_fcs_for_even_and_odd_lengths() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    let lens = [60usize, 61, 62, 63, 64, 14, MTU];
    for (i, &l) in lens.iter().enumerate() {
        chip.receive(&frame(l, i as u8), 0);
    }
    for (i, &l) in lens.iter().enumerate() {
        assert_eq!(recv(&mut dev, &w).unwrap(), frame(l, i as u8), "frame {i}");
    }
    assert!(recv(&mut dev, &w).is_none());
    let s = chip.inner.borrow();
    assert!(s.rx_data.is_empty());
    assert_eq!(s.rx_underruns, 0);
    drop(s);
    assert_eq!(state.counters().rx_frames, lens.len() as u32);
    assert_eq!(state.counters().rx_errors, 0);
    assert_eq!(FAKE_FCS.len(), 4);
}

#[test]
fn error_frames_are_skipped_and_counted() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    chip.receive(&frame(70, 1), regs::RX_STS_ES | 1 << 1); // CRC error
    chip.receive(&frame(65, 2), 0);
    chip.receive(&frame(10, 3), 0); // runt: shorter than a header
    chip.receive(&frame(1600, 4), 0); // longer than the buffer
    chip.receive(&frame(MTU + 1, 7), 0); // longer than the MTU (fits the buffer)
    chip.receive(&frame(99, 5), regs::RX_STS_ES | 1 << 11);
    chip.receive(&frame(61, 6), 0);
    assert_eq!(recv(&mut dev, &w).unwrap(), frame(65, 2));
    assert_eq!(recv(&mut dev, &w).unwrap(), frame(61, 6));
    assert!(recv(&mut dev, &w).is_none());
    let s = chip.inner.borrow();
    assert!(s.rx_data.is_empty() && s.rx_status.is_empty());
    assert_eq!(s.rx_underruns, 0);
    drop(s);
    let c = state.counters();
    assert_eq!((c.rx_frames, c.rx_errors), (2, 5));
}

#[test]
fn receive_sleeps_until_the_rx_interrupt() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    // Nothing pending at first (the fake's PHY has no event after init).
    assert!(!chip.irq_line());
    assert!(recv(&mut dev, &w).is_none());
    assert!(chip.inner.borrow().int_en & regs::INT_RSFL != 0);
    assert_eq!(w.wakes(), 0);

    chip.receive(&frame(64, 9), 0);
    chip.receive(&frame(65, 10), 0);
    assert!(chip.irq_line());
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 1);
    assert!(!chip.irq_line());
    assert_eq!(chip.inner.borrow().int_en & regs::INT_RSFL, 0);
    assert_eq!(state.counters().interrupts, 1);

    assert_eq!(recv(&mut dev, &w).unwrap(), frame(64, 9));
    assert_eq!(recv(&mut dev, &w).unwrap(), frame(65, 10));
    assert!(recv(&mut dev, &w).is_none());
    // Re-armed, with no stale status.
    assert!(chip.inner.borrow().int_en & regs::INT_RSFL != 0);
    assert!(!chip.irq_line());
    assert_eq!(w.wakes(), 1);
    // An interrupt with nothing pending does nothing.
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 1);
    assert_eq!(state.counters().interrupts, 1);
}

#[test]
fn dropped_frames_and_overruns_are_counted() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    assert!(recv(&mut dev, &w).is_none());
    chip.drop_frames(3);
    assert!(chip.irq_line());
    on_interrupt(&chip, &state);
    assert!(!chip.irq_line());
    let c = state.counters();
    assert_eq!((c.rx_dropped, c.rx_overruns), (3, 1));
    assert_eq!(chip.inner.borrow().rx_drop, 0);
    assert_eq!(w.wakes(), 1);
    // RXDF stays enabled for the next event.
    assert!(chip.inner.borrow().int_en & regs::INT_RXDF != 0);
    chip.drop_frames(2);
    on_interrupt(&chip, &state);
    let c = state.counters();
    assert_eq!((c.rx_dropped, c.rx_overruns), (5, 2));
}

#[test]
fn polled_mode_wakes_itself() {
    let chip = FakeChip::new();
    let state = State::new();
    let config = Config {
        irq: None,
        ..Config::default()
    };
    let mut dev = Lan9118::new(&chip, &state, config).unwrap();
    let w = TestWaker::new();
    assert!(recv(&mut dev, &w).is_none());
    assert_eq!(w.wakes(), 1);
    chip.receive(&frame(64, 1), 0);
    assert_eq!(recv(&mut dev, &w).unwrap(), frame(64, 1));
    assert!(!chip.irq_line());
    // Link changes are seen without the interrupt handler.
    chip.set_link(false);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Down);
}

/// Something that happens on the simulated wire.
type WireEvent<'a> = Box<dyn FnOnce(&FakeChip) + 'a>;

/// The simulated chip, with something happening on the wire just before a chosen register
/// write reaches it.
struct Hooked<'a> {
    chip: &'a FakeChip,
    offset: u32,
    value: u32,
    event: RefCell<Option<WireEvent<'a>>>,
}

impl Registers for Hooked<'_> {
    fn read(&self, offset: u32) -> u32 {
        self.chip.read(offset)
    }
    fn write(&self, offset: u32, value: u32) {
        if (offset, value) == (self.offset, self.value)
            && let Some(event) = self.event.borrow_mut().take()
        {
            event(self.chip);
        }
        self.chip.write(offset, value)
    }
}

#[test]
fn frame_arriving_while_the_rx_interrupt_is_armed_is_not_lost() {
    let chip = FakeChip::new();
    chip.with(|s| s.edge_irqs = true);
    let state = State::new();
    let hooked = Hooked {
        chip: &chip,
        offset: regs::INT_STS,
        value: regs::INT_RSFL,
        event: RefCell::new(None),
    };
    let mut dev = Lan9118::new(&hooked, &state, Config::default()).unwrap();
    let w = TestWaker::new();
    // The frame comes in after the driver found the FIFO empty, just before it acknowledges
    // RSFL: the acknowledgement swallows the frame's interrupt.
    *hooked.event.borrow_mut() = Some(Box::new(|c: &FakeChip| c.receive(&frame(64, 1), 0)));
    let got = dev
        .receive(&mut w.cx())
        .map(|(rx, _)| rx.consume(|b| b.to_vec()));
    assert!(
        hooked.event.borrow().is_none(),
        "the event must have happened"
    );
    assert_eq!(got.unwrap(), frame(64, 1));
}

#[test]
fn tx_room_coming_back_while_the_tx_interrupt_is_armed_is_not_lost() {
    let chip = FakeChip::new();
    chip.with(|s| {
        s.edge_irqs = true;
        s.tx_hold = true;
        s.tx_capacity = 2000;
    });
    let state = State::new();
    let hooked = Hooked {
        chip: &chip,
        offset: regs::INT_STS,
        value: regs::INT_TDFA,
        event: RefCell::new(Some(Box::new(|c: &FakeChip| c.release_tx()))),
    };
    let mut dev = Lan9118::new(&hooked, &state, Config::default()).unwrap();
    let w = TestWaker::new();
    let tx = dev.transmit(&mut w.cx()).unwrap();
    tx.consume(1000, |b| b.fill(0xab));
    // No room for a largest frame; the room comes back just before the driver acknowledges
    // TDFA, so no interrupt will tell.
    assert!(dev.transmit(&mut w.cx()).is_some());
    assert!(
        hooked.event.borrow().is_none(),
        "the event must have happened"
    );
    // The source is disarmed again: no spurious interrupt later.
    assert_eq!(chip.inner.borrow().int_en & regs::INT_TDFA, 0);
}

// ---- link ----

#[test]
fn link_changes_come_through_the_phy_interrupt() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);

    chip.set_link(false);
    assert!(chip.irq_line());
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 1);
    assert!(!chip.irq_line());
    assert_eq!(chip.inner.borrow().int_en & regs::INT_PHY, 0);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Down);
    assert!(chip.inner.borrow().int_en & regs::INT_PHY != 0);
    assert!(!chip.irq_line());
    assert_eq!(state.counters().link_changes, 1);

    // Back up with a partner that only does 100 half duplex: FDPX goes.
    chip.with(|s| s.partner = 0x0081);
    chip.set_link(true);
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 2);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    assert_eq!(chip.inner.borrow().mac_cr & regs::MAC_CR_FDPX, 0);
    assert_eq!(state.counters().link_changes, 2);
    // No event, no MII traffic: the cached state.
    let writes = chip.inner.borrow().writes.len();
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    assert_eq!(chip.inner.borrow().writes.len(), writes);
}

#[test]
fn a_link_flap_between_two_reads_reports_the_link_as_it_is_now() {
    let chip = FakeChip::new();
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    // Down and up again before the driver looks: BSR's link bit latched low.
    chip.set_link(false);
    chip.set_link(true);
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 0, "no waker registered yet");
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    assert_eq!(state.counters().link_changes, 0);
}

#[test]
fn a_phy_that_stops_answering_leaves_the_link_as_it_was_and_quiet() {
    let chip = FakeChip::new();
    let state = State::new();
    let config = Config {
        poll_limit: 100,
        ..Config::default()
    };
    let mut dev = Lan9118::new(&chip, &state, config).unwrap();
    let w = TestWaker::new();
    chip.with(|s| s.mii_stuck = true);
    chip.set_link(false);
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 0);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    // The PHY's interrupt source could not be cleared: it stays masked, the line stays quiet.
    assert_eq!(chip.inner.borrow().int_en & regs::INT_PHY, 0);
    assert!(!chip.irq_line());
    on_interrupt(&chip, &state);
    assert_eq!(w.wakes(), 0);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    assert_eq!(state.counters().link_changes, 0);
}

#[test]
fn init_with_link_down() {
    let chip = FakeChip::new();
    chip.with(|s| s.link = false);
    let state = State::new();
    let mut dev = up(&chip, &state);
    let w = TestWaker::new();
    assert!(dev.link_state(&mut w.cx()) == LinkState::Down);
    assert_eq!(chip.inner.borrow().mac_cr & regs::MAC_CR_FDPX, 0);
    chip.set_link(true);
    on_interrupt(&chip, &state);
    assert!(dev.link_state(&mut w.cx()) == LinkState::Up);
    assert!(chip.inner.borrow().mac_cr & regs::MAC_CR_FDPX != 0);
}

// ---- Mmio ----

#[test]
fn mmio_accesses_stay_inside_the_block() {
    let mut block = [0u32; 64];
    for (i, w) in block.iter_mut().enumerate() {
        *w = i as u32;
    }
    let base = block.as_mut_ptr().expose_provenance();
    // SAFETY: `block` is a live, aligned 256-byte array used only through `regs` below.
    let regs = unsafe { Mmio::new(base) };
    assert_eq!(regs.read(regs::BYTE_TEST), 0x64 / 4);
    regs.write(regs::INT_EN, 0xdead_beef);
    // Offsets past the block wrap inside it; unaligned ones round down.
    assert_eq!(regs.read(0x100 + regs::INT_EN), 0xdead_beef);
    assert_eq!(regs.read(regs::INT_EN + 3), 0xdead_beef);
    let copy = regs;
    assert_eq!(copy.base(), base);
    assert_eq!(block[0x5c / 4], 0xdead_beef);
}

#[test]
fn the_driver_can_move_to_another_task_and_the_state_can_be_a_static() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Lan9118<'static, Mmio>>();
    send::<Mmio>();
    sync::<State>();
    static _STATE: State = State::new();
}
