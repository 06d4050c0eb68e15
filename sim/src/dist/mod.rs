//! The random distributions the simulator draws from.
//!
//! Every draw takes the caller's `&mut R: Rng` (a seeded ChaCha stream per entity, made
//! by the engine), so the same seed gives the same draws. The transcendental functions
//! come from the `libm` crate, a portable Rust port of musl's libm, rather than from the
//! platform's C library, whose last bits differ between systems: the same scenario and
//! seed give the same bits on every machine. The log-normal draw's `exp` is our own
//! (in `exp.rs`), as portable and without libm's division.
//!
//! Normal and exponential draws use the ziggurat method (in `ziggurat.rs`): one `u64` and a
//! multiply for nearly every draw.

mod exp;
mod ziggurat;

use breakwater_core::Rng;

/// A log-normal distribution given by its median and its shape `sigma`
/// (the standard deviation of the underlying normal). `sigma = 0` is the constant `median`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogNormal {
    /// The median (`e^μ`), in the caller's unit.
    pub median: f64,
    /// The shape: the standard deviation of `ln X`.
    pub sigma: f64,
}

impl LogNormal {
    /// A constant: every draw is `value`.
    #[must_use]
    pub const fn constant(value: f64) -> LogNormal {
        LogNormal {
            median: value,
            sigma: 0.0,
        }
    }

    /// One draw: `median · e^(sigma · Z)` with `Z` standard normal. Never negative or NaN
    /// for a validated distribution (`median ≥ 0`, `sigma ≥ 0`, both finite).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if self.sigma == 0.0 {
            return self.median;
        }
        let x = self.median * exp::exp(self.sigma * standard_normal(rng));
        if x.is_finite() { x } else { f64::MAX }
    }

    /// The mean: `median · e^(sigma²/2)`.
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.median * libm::exp(self.sigma * self.sigma / 2.0)
    }
}

/// A standard normal draw (mean 0, variance 1), by the ziggurat.
#[inline]
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ziggurat::normal(rng)
}

/// An exponential draw with the given mean (`mean ≤ 0` or NaN gives 0, an infinite mean
/// infinity, neither drawing; never negative or NaN).
#[inline]
pub fn exponential<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if mean <= 0.0 || mean.is_nan() {
        return 0.0;
    }
    if mean == f64::INFINITY {
        // Not ∞ · draw: a draw of exactly 0 would make it NaN.
        return f64::INFINITY;
    }
    mean * ziggurat::exponential(rng)
}

/// `true` with probability `p` (clamped to `[0, 1]`; `p ≤ 0` never draws).
pub fn bernoulli<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    if p <= 0.0 || p.is_nan() {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    rng.next_f64() < p
}

/// Milliseconds (any finite or infinite `f64`) as whole nanoseconds, saturating; NaN and
/// negatives give 0.
#[must_use]
pub fn ms_to_nanos(ms: f64) -> u64 {
    round_to_u64(ms * 1e6)
}

/// Seconds as whole nanoseconds (rounded), saturating; NaN and negatives give 0.
#[must_use]
pub fn secs_to_nanos(secs: f64) -> u64 {
    round_to_u64(secs * 1e9)
}

/// `x` rounded half away from zero (as [`f64::round`]) to a `u64`, saturating: NaN and
/// everything below one half give 0, everything at or above 2⁶⁴ gives `u64::MAX`.
///
/// The same result as `x.round() as u64` bit for bit, without the call into the
/// runtime's `round` that `f64::round` is on a baseline x86-64 (no SSE4.1 `roundsd`);
/// the simulator rounds several draws per request.
#[must_use]
#[inline]
pub fn round_to_u64(x: f64) -> u64 {
    /// 2⁵²: from here up every f64 is a whole number.
    const WHOLE: f64 = 4_503_599_627_370_496.0;
    // NaN too: it is not greater.
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= WHOLE {
        // Already whole; `as` saturates at u64::MAX for x ≥ 2⁶⁴ (and for +∞).
        return x as u64;
    }
    // Below 2⁵², through `i64`: one instruction each way on x86-64, where `u64` takes
    // a dozen (there is no unsigned conversion before AVX-512). `whole` is exact as an
    // f64, `x - whole` is exactly x's fraction, and `whole + 1` cannot overflow. The
    // one is added as a number, not chosen by a branch: the fraction of a draw is as
    // likely above one half as below, so a branch here was mispredicted half the time.
    let whole = x as i64;
    (whole + i64::from(x - whole as f64 >= 0.5)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakwater_core::rng::seeded;

    #[test]
    fn lognormal_median_is_the_median() {
        let d = LogNormal {
            median: 100.0,
            sigma: 0.8,
        };
        let mut rng = seeded(3);
        let mut xs: Vec<f64> = (0..20_001).map(|_| d.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[10_000];
        assert!((median - 100.0).abs() < 5.0, "median {median}");
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - d.mean()).abs() / d.mean() < 0.05, "mean {mean}");
    }

    #[test]
    fn constant_and_edge_draws() {
        let mut rng = seeded(1);
        assert_eq!(LogNormal::constant(7.0).sample(&mut rng), 7.0);
        assert_eq!(exponential(&mut rng, 0.0), 0.0);
        assert!(!bernoulli(&mut rng, 0.0));
        assert!(bernoulli(&mut rng, 1.0));
        assert!(!bernoulli(&mut rng, f64::NAN));
        let mean = (0..20_000).map(|_| exponential(&mut rng, 5.0)).sum::<f64>() / 20_000.0;
        assert!((mean - 5.0).abs() < 0.2, "{mean}");
    }

    #[test]
    fn round_to_u64_matches_round_at_the_edges() {
        let half_below = 0.5 - f64::EPSILON / 4.0; // 0.49999999999999994
        for x in [
            0.0,
            -0.0,
            -0.5,
            -3.7,
            half_below,
            0.5,
            1.5,
            2.5,
            2.0 - f64::EPSILON,
            4_503_599_627_370_495.5,      // 2^52 - 0.5
            4_503_599_627_370_496.0,      // 2^52
            9_007_199_254_740_993.0,      // 2^53 + 1 (rounds to 2^53 as an f64)
            18_446_744_073_709_549_568.0, // the largest f64 below 2^64
            18_446_744_073_709_551_616.0, // 2^64
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(round_to_u64(x), reference_round(x), "{x}");
        }
    }

    /// What the simulator computed before [`round_to_u64`]: `f64::round`, then `as`.
    fn reference_round(x: f64) -> u64 {
        let n = x.round();
        if n.is_nan() || n <= 0.0 { 0 } else { n as u64 }
    }

    proptest::proptest! {
        #[test]
        fn round_to_u64_is_round(bits in proptest::prelude::any::<u64>(), small in 0.0f64..1e7) {
            let x = f64::from_bits(bits);
            proptest::prop_assert_eq!(round_to_u64(x), reference_round(x));
            proptest::prop_assert_eq!(round_to_u64(small), reference_round(small));
            let half = small.trunc() + 0.5;
            proptest::prop_assert_eq!(round_to_u64(half), reference_round(half));
        }
    }

    proptest::proptest! {
        /// One multiplication by 10⁶ instead of a division by 10³ and a multiplication
        /// by 10⁹: at most one nanosecond apart (the two products can straddle a half
        /// nanosecond), and equal to it, and exact, on tenths of a millisecond.
        #[test]
        fn ms_to_nanos_is_the_two_step_conversion(ms in 0.0f64..1e9, whole in 0u32..1_000_000_000) {
            let two_step = secs_to_nanos(ms / 1e3);
            proptest::prop_assert!(ms_to_nanos(ms).abs_diff(two_step) <= 1, "{ms}");
            let tenths = f64::from(whole) / 10.0;
            proptest::prop_assert_eq!(ms_to_nanos(tenths), secs_to_nanos(tenths / 1e3));
            proptest::prop_assert_eq!(ms_to_nanos(tenths), u64::from(whole) * 100_000);
        }
    }

    #[test]
    fn conversions_saturate() {
        assert_eq!(ms_to_nanos(1.5), 1_500_000);
        assert_eq!(ms_to_nanos(-1.0), 0);
        assert_eq!(ms_to_nanos(f64::NAN), 0);
        assert_eq!(ms_to_nanos(f64::INFINITY), u64::MAX);
        assert_eq!(ms_to_nanos(1e300), u64::MAX);
        assert_eq!(secs_to_nanos(-1.0), 0);
        assert_eq!(secs_to_nanos(f64::NAN), 0);
        assert_eq!(secs_to_nanos(f64::INFINITY), u64::MAX);
    }
}
