//! Stack depth measurement: paint the stack at boot, find the deepest overwritten word at exit.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// Bytes below the top of the stack that are painted (and so measurable).
pub const PAINTED: usize = 64 * 1024;
const PAINT: u32 = 0xDEAD_C0DE;

unsafe extern "C" {
    /// Top of the stack (cortex-m-rt's link.x).
    static _stack_start: u32;
    /// Lowest address the stack may use (cortex-m-rt's link.x).
    static _stack_end: u32;
}

fn bounds() -> (usize, usize) {
    let top = addr_of!(_stack_start) as usize;
    let end = addr_of!(_stack_end) as usize;
    (top.saturating_sub(PAINTED).max(end), top)
}

/// Fill the unused part of the painted window with the paint word. Call first thing in `main`.
pub fn paint() {
    let (low, _) = bounds();
    // Leave what the current frame and its callees may use right now.
    let sp = cortex_m::register::msp::read() as usize - 256;
    let mut p = low;
    while p < sp {
        // SAFETY: [low, sp) lies between the end of the statics and the stack pointer minus a
        // margin: memory nobody uses yet, word-aligned (both ends are multiples of 4).
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The deepest stack use seen so far, in bytes.
pub fn peak() -> usize {
    let (low, top) = bounds();
    let mut p = low;
    // SAFETY: reads of word-aligned RAM inside the stack region.
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}
