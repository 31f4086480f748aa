//! The deterministic data pattern every workload sends and checks.
//!
//! Byte `i` of a stream is `byte_at(i % PERIOD)`, a hash of the offset, with `PERIOD` = 65521
//! (the largest prime below 2^16). A table of `PERIOD + MAX_SLICE` bytes is built once, so that
//! any slice of up to [`MAX_SLICE`] bytes at any stream offset is one contiguous piece of it:
//! filling a send buffer is a `memcpy` and checking a received one a `memcmp`, which keeps
//! the pattern's own cost far below either stack's.
//!
//! A stream that lost, duplicated or reordered data goes unnoticed only if the shift is a
//! multiple of 65521 bytes; as TCP segments are 1460 bytes, that needs 65521 segments
//! (about 91 MiB) to be shifted together, and the byte count is checked as well.

use std::sync::LazyLock;

/// Length of the repeating pattern (prime, so it is out of step with every segment size).
pub const PERIOD: usize = 65521;
/// Longest slice [`slice()`] returns.
pub const MAX_SLICE: usize = 64 * 1024;

static TABLE: LazyLock<Box<[u8]>> = LazyLock::new(|| {
    (0..PERIOD + MAX_SLICE)
        .map(|i| byte_at(i % PERIOD))
        .collect()
});

fn byte_at(i: usize) -> u8 {
    let x = (i as u32).wrapping_mul(2_654_435_761);
    (x >> 24) as u8 ^ (x >> 11) as u8
}

/// The `len` pattern bytes at stream offset `offset` (`len` at most [`MAX_SLICE`]).
pub fn slice(offset: usize, len: usize) -> &'static [u8] {
    assert!(
        len <= MAX_SLICE,
        "pattern slice of {len} bytes > {MAX_SLICE}"
    );
    let start = offset % PERIOD;
    &TABLE[start..start + len]
}

/// Checks `data` against the pattern at stream offset `offset`.
///
/// # Panics
///
/// At the first wrong byte, naming its stream offset and the workload.
pub fn verify(what: &str, offset: usize, data: &[u8]) {
    for (k, chunk) in data.chunks(MAX_SLICE).enumerate() {
        let base = offset + k * MAX_SLICE;
        let expected = slice(base, chunk.len());
        if chunk != expected {
            let bad = chunk
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .expect("slices differ, so some byte differs");
            panic!(
                "{what}: data corrupted at stream offset {}: got {:#04x}, expected {:#04x}",
                base + bad,
                chunk[bad],
                expected[bad]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_wrap_around_the_period() {
        assert_eq!(
            slice(PERIOD - 1, 3),
            [byte_at(PERIOD - 1), byte_at(0), byte_at(1)]
        );
        assert_eq!(slice(3 * PERIOD + 7, 1), [byte_at(7)]);
        verify("test", 12345, slice(12345, 5000));
    }

    #[test]
    #[should_panic(expected = "stream offset 101")]
    fn verify_names_the_bad_offset() {
        let mut data = slice(100, 10).to_vec();
        data[1] ^= 1;
        verify("test", 100, &data);
    }
}
