//! A branch-free `exp` for f32 that the compiler vectorises (libm's `expf` is a call per
//! element). Cephes' method: `exp(x) = 2ⁿ·exp(r)` with `n = round(x·log₂e)`,
//! `r = x − n·ln2` in two parts, and a degree-6 polynomial for `exp(r)` on `|r| ≤ ln2/2`.
//! Within 2 ulp of the exact value on the normal range; 0 below it, +∞ above it, NaN stays NaN.

/// Below this, `exp` is subnormal: the result is flushed to 0.
const MIN_ARG: f32 = -87.336_55;
/// Above this, `exp` overflows f32.
const MAX_ARG: f32 = 88.722_84;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n·LN2_HI` is exact for |n| < 2⁹.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding 1.5·2²³ rounds an f32 in ±2²² to the nearest integer, left in the mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// `eˣ` for f32.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Clamp so `n` stays in [-126, 128] and the bit tricks below stay valid; fixed up at the end.
    let xc = x.clamp(MIN_ARG, MAX_ARG);
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2ⁿ as 2^(n−h)·2ʰ, h = n/2, each a normal f32 with its exponent field set directly;
    // `shifted`'s low mantissa bits hold n in two's complement.
    let n = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let h = n >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let e = y * pow2(n - h) * pow2(h);
    if x < MIN_ARG {
        0.0
    } else if x > MAX_ARG {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between an f32 and the exact (f64) value.
    fn ulps(got: f32, want: f64) -> f64 {
        let want32 = want as f32;
        let ulp = (f64::from(f32::from_bits(want32.to_bits() + 1)) - f64::from(want32)).abs();
        (f64::from(got) - want).abs() / ulp
    }

    #[test]
    fn matches_f64_exp_within_two_ulp_on_the_normal_range() {
        let mut worst = 0.0f64;
        let mut x = MIN_ARG;
        while x <= MAX_ARG {
            worst = worst.max(ulps(exp_f32(x), f64::from(x).exp()));
            x += 1.3e-3;
        }
        for x in [
            0.0f32, -0.0, 1e-30, -1e-30, 1.0, -1.0, 88.5, MAX_ARG, MIN_ARG,
        ] {
            worst = worst.max(ulps(exp_f32(x), f64::from(x).exp()));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }

    #[test]
    fn limits() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert!(exp_f32(88.7).is_finite());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }
}
