//! Generalised Pareto fit by Grimshaw's maximum-likelihood trick (Siffer et al., KDD 2017, §3.2).
//!
//! Written by hand: no maintained Rust crate fits a GPD (the C library's Rust port, libspot-rs,
//! is LGPL-3.0). All arithmetic is f64. The reference Python code has bugs we avoid on purpose:
//! the exponential (γ = 0) log-likelihood is `-n(1 + ln ȳ)` (it returns the opposite sign), the
//! upper root bound `2(ȳ - y_min)/y_min²` is capped when the smallest peak is near zero, and the
//! trivial root x = 0 is excluded from the search instead of nudged by epsilon twice.

/// A fitted generalised Pareto distribution of the excesses over a threshold.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gpd {
    /// Shape γ (ξ).
    pub shape: f64,
    /// Scale σ > 0.
    pub scale: f64,
}

/// Log-likelihood of excesses `y` under a GPD.
pub fn log_likelihood(y: &[f64], gpd: Gpd) -> f64 {
    let n = y.len() as f64;
    if gpd.shape.abs() < 1e-12 {
        let mean = y.iter().sum::<f64>() / n;
        return -n * gpd.scale.ln() - n * mean / gpd.scale;
    }
    let ratio = gpd.shape / gpd.scale;
    let mut sum = 0.0;
    for &v in y {
        let a = 1.0 + ratio * v;
        if a <= 0.0 {
            return f64::NEG_INFINITY;
        }
        sum += a.ln();
    }
    -n * gpd.scale.ln() - (1.0 + 1.0 / gpd.shape) * sum
}

/// Grimshaw's function w(x) = u(x)·v(x) − 1, whose non-zero roots give the MLE candidates.
fn grimshaw_w(y: &[f64], x: f64) -> f64 {
    let n = y.len() as f64;
    let (mut u, mut v) = (0.0, 0.0);
    for &yi in y {
        let s = 1.0 + x * yi;
        u += 1.0 / s;
        v += s.ln();
    }
    (u / n) * (1.0 + v / n) - 1.0
}

fn bisect(y: &[f64], mut lo: f64, mut hi: f64) -> f64 {
    let mut f_lo = grimshaw_w(y, lo);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let f_mid = grimshaw_w(y, mid);
        if (f_mid < 0.0) == (f_lo < 0.0) {
            lo = mid;
            f_lo = f_mid;
        } else {
            hi = mid;
        }
        if (hi - lo).abs() <= 1e-14 * hi.abs().max(lo.abs()) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Roots of w on a geometric grid of |x| between `from` and `to` (same sign), refined by bisection.
fn roots_between(y: &[f64], sign: f64, from: f64, to: f64, out: &mut Vec<f64>) {
    const STEPS: usize = 100;
    if !(to > from && from > 0.0) {
        return;
    }
    let ratio = (to / from).powf(1.0 / STEPS as f64);
    let mut prev_x = sign * from;
    let mut prev_w = grimshaw_w(y, prev_x);
    let mut a = from;
    for _ in 0..STEPS {
        a *= ratio;
        let x = sign * a.min(to);
        let w = grimshaw_w(y, x);
        if w.is_finite() && prev_w.is_finite() && (w < 0.0) != (prev_w < 0.0) {
            out.push(bisect(y, prev_x, x));
        }
        prev_x = x;
        prev_w = w;
    }
}

/// Fits a GPD to positive excesses. Returns `None` when there are fewer than 2 excesses or they
/// are all equal (no tail to fit).
pub fn fit_gpd(excesses: &[f64]) -> Option<Gpd> {
    let y: Vec<f64> = excesses
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if y.len() < 2 {
        return None;
    }
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let y_min = y.iter().copied().fold(f64::INFINITY, f64::min);
    let y_max = y.iter().copied().fold(0.0, f64::max);
    if y_max - y_min <= 1e-12 * y_max {
        return Some(Gpd {
            shape: 0.0,
            scale: mean,
        });
    }
    // Candidate: the exponential distribution (γ = 0), σ = ȳ.
    let mut best = Gpd {
        shape: 0.0,
        scale: mean,
    };
    let mut best_ll = log_likelihood(&y, best);
    let tiny = 1e-9 / y_max;
    let mut roots = Vec::new();
    // Negative side: x in (-1/y_max, 0).
    roots_between(&y, -1.0, tiny, (1.0 - 1e-9) / y_max, &mut roots);
    // Positive side: x in (0, 2(ȳ - y_min)/y_min²], capped so a near-zero y_min cannot explode it.
    let upper = (2.0 * (mean - y_min) / (y_min * y_min)).min(1e9 / mean);
    roots_between(&y, 1.0, tiny, upper.max(2.0 * tiny), &mut roots);
    for x in roots {
        let v = 1.0 + y.iter().map(|yi| (1.0 + x * yi).ln()).sum::<f64>() / n;
        let shape = v - 1.0;
        let scale = shape / x;
        if !(scale > 0.0 && scale.is_finite()) {
            continue;
        }
        let candidate = Gpd { shape, scale };
        let ll = log_likelihood(&y, candidate);
        if ll > best_ll {
            best = candidate;
            best_ll = ll;
        }
    }
    Some(best)
}

/// The level z_q exceeded with probability `q`, given threshold `t`, `n` observations of which
/// `n_peaks` exceeded `t`: z_q = t + σ/γ·((q·n/N_t)^(−γ) − 1), or t − σ·ln(q·n/N_t) when γ = 0.
pub fn quantile(gpd: Gpd, t: f64, q: f64, n: usize, n_peaks: usize) -> f64 {
    let r = q * n as f64 / n_peaks as f64;
    if gpd.shape.abs() < 1e-12 {
        t - gpd.scale * r.ln()
    } else {
        t + gpd.scale / gpd.shape * (r.powf(-gpd.shape) - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sample_gpd(shape: f64, scale: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let u: f64 = rng.gen_range(1e-12..1.0);
                if shape.abs() < 1e-12 {
                    -scale * u.ln()
                } else {
                    scale / shape * (u.powf(-shape) - 1.0)
                }
            })
            .collect()
    }

    #[test]
    fn recovers_known_parameters() {
        for &(shape, scale) in &[(0.3, 1.0), (-0.2, 2.0), (0.0, 0.5), (0.1, 1e-3)] {
            let y = sample_gpd(shape, scale, 20_000, 7);
            let fit = fit_gpd(&y).unwrap();
            assert!(
                (fit.shape - shape).abs() < 0.05,
                "shape {shape}: fitted {fit:?}"
            );
            assert!(
                (fit.scale / scale - 1.0).abs() < 0.06,
                "scale {scale}: fitted {fit:?}"
            );
        }
    }

    #[test]
    fn fitted_likelihood_beats_the_truth_or_ties() {
        // The MLE must score at least as well as the generating parameters on the same sample.
        let y = sample_gpd(0.25, 1.5, 2_000, 11);
        let fit = fit_gpd(&y).unwrap();
        assert!(
            log_likelihood(&y, fit)
                >= log_likelihood(
                    &y,
                    Gpd {
                        shape: 0.25,
                        scale: 1.5
                    }
                ) - 1e-9
        );
    }

    #[test]
    fn exponential_quantile_matches_closed_form() {
        // For γ = 0 and threshold 0 with every point a peak, z_q = -σ ln q.
        let z = quantile(
            Gpd {
                shape: 0.0,
                scale: 2.0,
            },
            0.0,
            0.01,
            100,
            100,
        );
        assert!((z - 2.0 * 100f64.ln()).abs() < 1e-12);
    }
}
