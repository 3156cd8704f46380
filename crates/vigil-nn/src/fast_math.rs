//! Branch-free e^x, ln x and softplus for f32, written so that loops over slices vectorise.
//!
//! Why not libm: flex (and `f32::exp`/`ln`) call libm one element at a time; in training
//! profiles of USAD (sigmoid) and the VAEs (softplus, log) those calls were a quarter and a
//! sixth of the step. These versions use integer bit tricks and short polynomials only, which
//! LLVM turns into SIMD code, at an accuracy of a few ulp (tested below against libm).

/// e^x: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7 Taylor polynomial (truncation
/// < 1e-8 relative on that interval), 2^n assembled in the exponent bits. Inputs are clamped
/// to the finite range.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln 2 split so that n · LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    // After adding ROUND, the integer n sits in the low mantissa bits: read it from there
    // (integer ops only, no float-to-int conversion, so the loop stays vectorisable).
    let shifted = x * LOG2E + ROUND;
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Horner form of 1 + r + r²/2! + ... + r⁷/7!.
    const C: [f32; 8] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
    ];
    let p = C.iter().rev().fold(0.0f32, |acc, &c| acc * r + c);
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    p * scale
}

/// ln x for positive normal x (the VAEs' standard deviations, which are at least their ε):
/// x = 2^k · m with m in [√½, √2), ln m = 2·atanh(f) with f = (m − 1)/(m + 1), |f| ≤ 0.172,
/// by its series to f⁹ (truncation < 1e-9 relative).
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    const LN2: f32 = std::f32::consts::LN_2;
    const SQRT2: f32 = std::f32::consts::SQRT_2;
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // in [1, 2)
                                                                       // Fold [√2, 2) onto [√½, 1) so that |f| stays small; a select, not a branch.
    let high = mantissa > SQRT2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let k = (exponent + high as i32) as f32;
    let f = (m - 1.0) / (m + 1.0);
    let f2 = f * f;
    let series = 1.0 + f2 * (1.0 / 3.0 + f2 * (1.0 / 5.0 + f2 * (1.0 / 7.0 + f2 * (1.0 / 9.0))));
    k * LN2 + 2.0 * f * series
}

/// tanh x: the odd Taylor series to x¹¹ below |x| = 0.3 (truncation < 2e-8 relative there),
/// else 1 − 2/(1 + e^2|x|) with the sign restored (cancellation costs a few ulp just above 0.3).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const C: [f32; 6] = [
        1.0,
        -1.0 / 3.0,
        2.0 / 15.0,
        -17.0 / 315.0,
        62.0 / 2835.0,
        -1382.0 / 155_925.0,
    ];
    let a = x.abs();
    let x2 = x * x;
    let series = x * C.iter().rev().fold(0.0f32, |acc, &c| acc * x2 + c);
    let large = 1.0 - 2.0 / (1.0 + exp_f32(2.0 * a));
    if a < 0.3 {
        series
    } else {
        large.copysign(x)
    }
}

/// ln(1 + e^x) and its derivative 1 / (1 + e^−x), from one exponential:
/// softplus(x) = max(x, 0) + ln(1 + e^−|x|), where ln(1 + u) for u in (0, 1] is taken as
/// ln(1 + u) · u / ((1 + u) − 1), which stays accurate when 1 + u rounds (Goldberg's trick).
#[inline(always)]
pub fn softplus_and_sigmoid_f32(x: f32) -> (f32, f32) {
    let u = exp_f32(-x.abs());
    let one_plus = 1.0 + u;
    let rounded = one_plus - 1.0;
    let log1p = if rounded == 0.0 {
        u
    } else {
        ln_f32(one_plus) * (u / rounded)
    };
    let sigmoid_abs = 1.0 / one_plus; // sigmoid(|x|) would be this; sigmoid(−|x|) is u / (1 + u)
    let sigmoid = if x >= 0.0 {
        sigmoid_abs
    } else {
        u * sigmoid_abs
    };
    (x.max(0.0) + log1p, sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative(ours: f32, exact: f64) -> f64 {
        ((ours as f64 - exact) / exact).abs()
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, libm) = (exp_f32(x), x.exp());
            worst = worst.max(((ours - libm) / libm).abs());
            x += 0.001_3;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
    }

    #[test]
    fn tanh_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = 1e-6f32;
        while x < 12.0 {
            for v in [x, -x] {
                worst = worst.max(relative(tanh_f32(v), (v as f64).tanh()));
            }
            x *= 1.000_3;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }

    #[test]
    fn ln_is_within_a_few_ulp_over_the_normal_range() {
        let mut worst = 0.0f64;
        let mut x = f32::MIN_POSITIVE;
        while x < 1e30 {
            worst = worst.max(relative(ln_f32(x), (x as f64).ln()).min(
                // Near 1 ln x → 0: judge the absolute error there.
                (ln_f32(x) as f64 - (x as f64).ln()).abs() / 1e-7,
            ));
            x *= 1.000_7;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }

    #[test]
    fn softplus_and_its_derivative_match_the_formulas() {
        let mut worst = (0.0f64, 0.0f64);
        let mut x = -80.0f32;
        while x < 80.0 {
            let (sp, sg) = softplus_and_sigmoid_f32(x);
            let xd = x as f64;
            let exact_sp = if xd > 30.0 { xd } else { xd.exp().ln_1p() };
            let exact_sg = 1.0 / (1.0 + (-xd).exp());
            worst.0 = worst.0.max(relative(sp, exact_sp));
            worst.1 = worst.1.max(relative(sg, exact_sg));
            x += 0.003_1;
        }
        assert!(worst.0 < 5e-7, "softplus worst relative error {}", worst.0);
        assert!(worst.1 < 5e-7, "sigmoid worst relative error {}", worst.1);
    }
}
