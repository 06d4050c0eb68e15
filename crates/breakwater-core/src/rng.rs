//! Injected randomness.
//!
//! Every random draw the core makes comes from an [`Rng`] the caller passes in, so a
//! seeded generator replays the same decisions. Any `rand_core::RngCore` (for example
//! `rand_chacha::ChaCha8Rng`) is an [`Rng`].

/// The randomness the core needs: 64 random bits at a time, and helpers built on them.
pub trait Rng {
    /// The next 64 uniformly random bits.
    fn next_u64(&mut self) -> u64;

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, bound]`, inclusive (Lemire's multiply-shift, unbiased).
    fn up_to(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        let range = bound + 1;
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(range);
            let low = wide as u64;
            // A draw is rejected when `low` is below 2⁶⁴ mod range. That threshold is
            // below `range`, so only a `low` below `range` needs it: the division is
            // made once in 2⁶⁴ / range draws instead of on every call, and the draws
            // kept are the same.
            if low >= range || low >= range.wrapping_neg() % range {
                return (wide >> 64) as u64;
            }
        }
    }
}

impl<R: rand_core::RngCore + ?Sized> Rng for R {
    fn next_u64(&mut self) -> u64 {
        rand_core::RngCore::next_u64(self)
    }
}

/// A seeded ChaCha8 generator: the one the registry and the simulator use.
pub type SeededRng = rand_chacha::ChaCha8Rng;

/// A [`SeededRng`] from a 64-bit seed.
#[must_use]
pub fn seeded(seed: u64) -> SeededRng {
    rand_core::SeedableRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two generators of one seed draw alike, through [`Rng`] as through `RngCore`
    /// (the blanket impl forwards, it does not draw its own numbers).
    #[test]
    fn same_seed_same_draws() {
        let mut a = seeded(7);
        let mut b = seeded(7);
        for _ in 0..100 {
            assert_eq!(Rng::next_u64(&mut a), rand_core::RngCore::next_u64(&mut b));
        }
    }

    /// Words from a list, then `u64::MAX`, which no bound rejects (its low product,
    /// 2⁶⁴ − range, is at least 2⁶⁴ mod range), so a call always ends.
    struct Script(std::vec::IntoIter<u64>);

    impl Rng for Script {
        fn next_u64(&mut self) -> u64 {
            self.0.next().unwrap_or(u64::MAX)
        }
    }

    /// Lemire's method with its threshold computed on every call, as `up_to` had it.
    fn up_to_reference(rng: &mut impl Rng, bound: u64) -> u64 {
        if bound == u64::MAX {
            return rng.next_u64();
        }
        let range = bound + 1;
        let threshold = range.wrapping_neg() % range;
        loop {
            let wide = u128::from(rng.next_u64()) * u128::from(range);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
        }
    }

    proptest::proptest! {
        /// Computing the threshold only when it can matter keeps and rejects the same
        /// draws. Bounds just above 2⁶³ reject about half of all words, and small
        /// words make small bounds reach the threshold, so rejections are exercised.
        #[test]
        fn up_to_keeps_the_draws_of_the_plain_method(
            bound in proptest::prop_oneof![
                proptest::prelude::any::<u64>(),
                0u64..10,
                (1u64 << 63) - 4..(1u64 << 63) + 4,
            ],
            words in proptest::collection::vec(
                proptest::prop_oneof![proptest::prelude::any::<u64>(), 0u64..1 << 20],
                1..12,
            ),
        ) {
            let mut ours = Script(words.clone().into_iter());
            let mut theirs = Script(words.into_iter());
            for _ in 0..4 {
                proptest::prop_assert_eq!(ours.up_to(bound), up_to_reference(&mut theirs, bound));
            }
        }
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = seeded(1);
        for bound in [0, 1, 2, 7, 1000, u64::MAX - 1, u64::MAX] {
            for _ in 0..200 {
                assert!(r.up_to(bound) <= bound);
            }
        }
        for _ in 0..1000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    /// `next_f64` keeps the top 53 bits: all ones is the largest float below 1, and
    /// the lowest kept bit alone is 2⁻⁵³.
    #[test]
    fn a_float_is_the_top_53_bits() {
        struct Fixed(u64);
        impl Rng for Fixed {
            fn next_u64(&mut self) -> u64 {
                self.0
            }
        }
        assert_eq!(Fixed(u64::MAX).next_f64(), 1.0 - f64::EPSILON / 2.0);
        assert_eq!(Fixed(1 << 11).next_f64(), 2f64.powi(-53));
        assert_eq!(Fixed((1 << 11) - 1).next_f64(), 0.0);
    }
}
