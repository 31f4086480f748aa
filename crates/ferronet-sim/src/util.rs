//! Small internal helpers: poison-tolerant locking and a seeded PRNG.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering the data if another thread panicked while holding it.
///
/// The simulator's shared state stays consistent across a panic in a test (every critical
/// section only moves frames and counters), so a poisoned lock is not an error here.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SplitMix64: a tiny, fast, seedable PRNG (Steele, Lea & Flood 2014). Not cryptographic.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Derives an independent stream for `index` (a port or direction) from one seed.
    pub(crate) fn for_stream(seed: u64, index: usize) -> Self {
        let mut base = Self::new(seed ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(base.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, so `next_f64() < p` happens with probability `p` (never for 0,
    /// always for 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_uniform_enough() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = SplitMix64::for_stream(7, 0);
        let n = 100_000;
        let below_quarter = (0..n).filter(|_| r.next_f64() < 0.25).count();
        assert!((23_000..27_000).contains(&below_quarter), "{below_quarter}");
        let mut r = SplitMix64::new(1);
        assert!((0..1000).all(|_| {
            let x = r.next_f64();
            (0.0..1.0).contains(&x)
        }));
    }

    #[test]
    fn streams_differ() {
        let mut a = SplitMix64::for_stream(1, 0);
        let mut b = SplitMix64::for_stream(1, 1);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
