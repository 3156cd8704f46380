//! Phase alignment (OmniTransfer §III-B, eq. 1): the circular shift of a segment that best
//! matches a reference, by normalised cross-correlation (NCC) summed over metrics.
//!
//! NCC for every shift at once through the FFT — `corr(s) = IFFT(FFT(a) · conj(FFT(b)))[s]` —
//! O(n log n) per metric instead of O(n²). Circular shifts `s` and `s − n` are the same
//! rotation, so the paper's range `[−n+1, n−1]` is covered by `0..n`.

use crate::segments::Segment;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// FFT plans for one segment length; shareable across threads.
#[derive(Clone)]
pub struct Aligner {
    len: usize,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
}

/// A reference segment in the frequency domain: each metric's spectrum and norm.
#[derive(Debug, Clone)]
pub struct Reference {
    spectra: Vec<Vec<Complex<f64>>>,
    norms: Vec<f64>,
}

impl Aligner {
    /// Plans for segments of `len` steps.
    pub fn new(len: usize) -> Aligner {
        let mut planner = FftPlanner::new();
        Aligner {
            len,
            forward: planner.plan_fft_forward(len),
            inverse: planner.plan_fft_inverse(len),
        }
    }

    fn spectrum(&self, values: &[f32]) -> Vec<Complex<f64>> {
        let mut buffer: Vec<Complex<f64>> = values
            .iter()
            .map(|&v| Complex::new(v as f64, 0.0))
            .collect();
        self.forward.process(&mut buffer);
        buffer
    }

    /// Prepares `segment` as the reference others are aligned to.
    pub fn reference(&self, segment: &Segment) -> Reference {
        debug_assert_eq!(segment.len, self.len);
        Reference {
            spectra: (0..segment.metrics)
                .map(|j| self.spectrum(segment.metric(j)))
                .collect(),
            norms: (0..segment.metrics)
                .map(|j| norm(segment.metric(j)))
                .collect(),
        }
    }

    /// NCC(reference, segment rolled right by `s`) for every `s` in `0..len`.
    pub fn ncc(&self, reference: &Reference, segment: &Segment) -> Vec<f64> {
        let n = self.len;
        let mut total = vec![0.0f64; n];
        for j in 0..segment.metrics {
            let b = segment.metric(j);
            let denominator = reference.norms[j] * norm(b);
            if denominator <= 1e-12 {
                continue; // a flat metric matches every shift equally
            }
            let mut product: Vec<Complex<f64>> = reference.spectra[j]
                .iter()
                .zip(self.spectrum(b))
                .map(|(a, b)| a * b.conj())
                .collect();
            self.inverse.process(&mut product);
            // rustfft's inverse is unnormalised: divide by n.
            for (t, c) in total.iter_mut().zip(&product) {
                *t += c.re / n as f64 / denominator;
            }
        }
        total
    }

    /// The roll (right, in steps, `0..len`) that best aligns `segment` to `reference`, and the
    /// NCC it reaches. A segment that is the reference delayed by `d` steps gets `(len − d) % len`.
    pub fn best_shift(&self, reference: &Reference, segment: &Segment) -> (usize, f64) {
        let scores = self.ncc(reference, segment);
        // The first maximum, so that ties resolve the same way every run.
        scores
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (s, &v)| {
                if v > best.1 {
                    (s, v)
                } else {
                    best
                }
            })
    }
}

fn norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `segment` rolled right by `shift` steps (eq. 1): step `i` takes step `(i − shift) mod len`.
pub fn roll(segment: &Segment, shift: usize) -> Segment {
    let n = segment.len;
    let mut values = Vec::with_capacity(segment.values.len());
    for j in 0..segment.metrics {
        let metric = segment.metric(j);
        values.extend((0..n).map(|i| metric[(i + n - shift % n) % n]));
    }
    Segment {
        values,
        ..segment.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(values: Vec<f32>, len: usize) -> Segment {
        Segment {
            entity: 0,
            start: 0,
            len,
            metrics: values.len() / len,
            values,
        }
    }

    #[test]
    fn the_fft_ncc_equals_the_definition() {
        let len = 12;
        let a = segment(
            (0..2 * len).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
            len,
        );
        let b = segment(
            (0..2 * len).map(|i| ((i * 3) % 7) as f32 - 3.0).collect(),
            len,
        );
        let aligner = Aligner::new(len);
        let fast = aligner.ncc(&aligner.reference(&a), &b);
        for (s, &got) in fast.iter().enumerate() {
            let rolled = roll(&b, s);
            let want: f64 = (0..2)
                .map(|j| {
                    let (x, y) = (a.metric(j), rolled.metric(j));
                    let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
                    dot / (norm(x) * norm(y))
                })
                .sum();
            assert!((got - want).abs() < 1e-9, "shift {s}: {got} vs {want}");
        }
    }

    #[test]
    fn a_rolled_copy_is_rolled_back_exactly() {
        let len = 50;
        let a = segment(
            (0..3 * len)
                .map(|i| {
                    let x = (i % len) as f32 / len as f32 * std::f32::consts::TAU;
                    (x + (i / len) as f32).sin() + 0.3 * (3.0 * x).cos()
                })
                .collect(),
            len,
        );
        let aligner = Aligner::new(len);
        let reference = aligner.reference(&a);
        for delay in [0, 1, 17, 49] {
            let delayed = roll(&a, delay);
            let (shift, score) = aligner.best_shift(&reference, &delayed);
            assert_eq!((len - shift) % len, delay);
            assert!(
                (score - 3.0).abs() < 1e-9,
                "three metrics, each NCC 1: {score}"
            );
            assert_eq!(roll(&delayed, shift).values, a.values);
        }
    }
}
