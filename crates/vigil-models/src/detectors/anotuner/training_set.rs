//! The training set of one AnoTuner fit: windows of the series, with each step's label, and
//! (when fine-tuning from feedback) windows generated from the windows labelled anomalous.
//! Series windows are gathered per batch. Their conditions are decomposed once, before the
//! first epoch, when they fit in [`CACHED_CONDITIONS_BYTES`] (one SMD machine's take 170 MB at
//! the defaults, and decomposing them again every epoch cost 2.5 s of it on 2 cores); beyond
//! it, per batch.

use super::condition::Decomposer;
use crate::detector::MtsInput;
use crate::error::Result;

/// The most memory a fit spends on keeping its windows' conditions between epochs.
pub(super) const CACHED_CONDITIONS_BYTES: usize = 512 << 20;

/// One batch: windows' values (`n × d`), conditions (`n × 2d`), each value's label (`n × d`:
/// 1 where its step is labelled anomalous) and each window's (`n`: 1 when any step is).
pub(super) struct Batch {
    pub values: Vec<f32>,
    pub conditions: Vec<f32>,
    pub value_anomalous: Vec<f32>,
    pub window_anomalous: Vec<f32>,
}

/// Windows generated from labelled windows: their values and the condition they were decoded
/// under (the source's), each step labelled as the source's step was, `count` of them.
pub(super) struct Generated {
    pub values: Vec<f32>,
    pub conditions: Vec<f32>,
    pub step_labels: Vec<u8>,
    pub weights: Vec<f64>,
    pub count: usize,
}

impl Generated {
    pub fn none() -> Self {
        Generated {
            values: Vec::new(),
            conditions: Vec::new(),
            step_labels: Vec::new(),
            weights: Vec::new(),
            count: 0,
        }
    }
}

pub(super) struct TrainingSet<'i, 'a> {
    input: &'i MtsInput<'a>,
    window: usize,
    starts: Vec<usize>,
    /// Whether the input's labels count (fine-tuning) or only choose windows (training).
    labelled: bool,
    /// The series windows' conditions, window after window, when they were decomposed ahead.
    conditions: Option<Vec<f32>>,
    generated: Generated,
}

impl<'i, 'a> TrainingSet<'i, 'a> {
    /// Unsupervised training: every full window, less those holding a step labelled anomalous
    /// (the contract's rule: what an operator flagged is not learnt as normal).
    pub fn unsupervised(input: &'i MtsInput<'a>, window: usize) -> Self {
        let starts = (0..input.n_full_windows(window))
            .filter(|&s| !input.window_labelled_anomalous(s, window))
            .collect();
        Self::of(input, window, starts, false)
    }

    /// Fine-tuning from feedback: every full window, its steps labelled as the input says.
    pub fn labelled(input: &'i MtsInput<'a>, window: usize) -> Self {
        Self::of(
            input,
            window,
            (0..input.n_full_windows(window)).collect(),
            true,
        )
    }

    fn of(input: &'i MtsInput<'a>, window: usize, starts: Vec<usize>, labelled: bool) -> Self {
        // Windows of weight 0 are never drawn; leaving them out here also keeps them from
        // counting as feedback (and from being augmented).
        let starts = starts
            .into_iter()
            .filter(|&s| input.window_weight(s, window) != Some(0.0))
            .collect();
        TrainingSet {
            input,
            window,
            starts,
            labelled,
            conditions: None,
            generated: Generated::none(),
        }
    }

    fn step_anomalous(&self, t: usize) -> bool {
        self.labelled
            && self
                .input
                .labels
                .is_some_and(|l| l.get(t).is_some_and(|&v| v != 0))
    }

    /// The starts of the series windows holding a step labelled anomalous, and of the others.
    pub fn starts_by_label(&self) -> (Vec<usize>, Vec<usize>) {
        let w = self.window;
        self.starts
            .iter()
            .partition(|&&s| (s..s + w).any(|t| self.step_anomalous(t)))
    }

    /// Decomposes every series window's condition now, if they fit in `cap_bytes`
    /// ([`CACHED_CONDITIONS_BYTES`] in a fit), so that epochs only gather them.
    pub fn decompose_ahead(&mut self, stl: &Decomposer, cap_bytes: usize) -> Result<()> {
        let (m, w) = (self.input.n_metrics, self.window);
        let width = Decomposer::width(w, m);
        if self.starts.len().saturating_mul(width * 4) > cap_bytes {
            return Ok(());
        }
        let mut conditions = Vec::with_capacity(self.starts.len() * width);
        for chunk in self.starts.chunks(1024) {
            let mut values = Vec::with_capacity(chunk.len() * w * m);
            self.input.gather_windows(w, chunk, &mut values);
            conditions.extend(stl.conditions(&values, chunk.len(), m)?);
        }
        self.conditions = Some(conditions);
        Ok(())
    }

    /// Adds generated windows (false-negative augmentation), after the series' windows.
    pub fn add_generated(&mut self, generated: Generated) {
        self.generated = generated;
    }

    /// How many windows there are.
    pub fn len(&self) -> usize {
        self.starts.len() + self.generated.count
    }

    /// Each window's weight ([`MtsInput::window_weight`]; a generated window weighs what its
    /// source does), or `None` when the input has no weights.
    pub fn weights(&self) -> Option<Vec<f64>> {
        self.input.weights?;
        let series = self
            .starts
            .iter()
            .map(|&s| self.input.window_weight(s, self.window).unwrap_or(1.0));
        Some(
            series
                .chain(self.generated.weights.iter().copied())
                .collect(),
        )
    }

    /// The windows numbered `batch`.
    pub fn batch(&self, batch: &[usize], stl: &Decomposer) -> Result<Batch> {
        let (m, w) = (self.input.n_metrics, self.window);
        let d = w * m;
        let n_series = self.starts.len();
        let mut out = Batch {
            values: Vec::with_capacity(batch.len() * d),
            conditions: Vec::with_capacity(batch.len() * 2 * d),
            value_anomalous: Vec::with_capacity(batch.len() * d),
            window_anomalous: Vec::with_capacity(batch.len()),
        };
        // Series windows not decomposed ahead are decomposed now, together (in parallel).
        let from_series: Vec<usize> = batch.iter().copied().filter(|&i| i < n_series).collect();
        let fresh = match &self.conditions {
            Some(_) => Vec::new(),
            None => {
                let mut values = Vec::with_capacity(from_series.len() * d);
                let starts: Vec<usize> = from_series.iter().map(|&i| self.starts[i]).collect();
                self.input.gather_windows(w, &starts, &mut values);
                stl.conditions(&values, from_series.len(), m)?
            }
        };
        let mut next_fresh = 0;
        for &i in batch {
            let step_labels: Vec<bool> = if i < n_series {
                let s = self.starts[i];
                out.values
                    .extend_from_slice(&self.input.values[s * m..(s + w) * m]);
                let condition = match &self.conditions {
                    Some(all) => &all[i * 2 * d..(i + 1) * 2 * d],
                    None => {
                        next_fresh += 1;
                        &fresh[(next_fresh - 1) * 2 * d..next_fresh * 2 * d]
                    }
                };
                out.conditions.extend_from_slice(condition);
                (s..s + w).map(|t| self.step_anomalous(t)).collect()
            } else {
                let g = i - n_series;
                let generated = &self.generated;
                out.values
                    .extend_from_slice(&generated.values[g * d..(g + 1) * d]);
                out.conditions
                    .extend_from_slice(&generated.conditions[g * 2 * d..(g + 1) * 2 * d]);
                generated.step_labels[g * w..(g + 1) * w]
                    .iter()
                    .map(|&l| l != 0)
                    .collect()
            };
            for &anomalous in &step_labels {
                out.value_anomalous
                    .extend(std::iter::repeat_n(f32::from(u8::from(anomalous)), m));
            }
            let any = step_labels.iter().any(|&a| a);
            out.window_anomalous.push(f32::from(u8::from(any)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_align_values_conditions_and_labels_whether_decomposed_ahead_or_not() {
        let m = 2;
        let values: Vec<f32> = (0..60).map(|i| ((i as f32) * 0.37).sin()).collect();
        let mut labels = vec![0u8; 30];
        labels[12] = 1;
        let input = MtsInput::new(&values, m).with_labels(&labels);
        let stl = Decomposer {
            period: 2,
            robust_loops: 0,
        };
        let mut ahead = TrainingSet::labelled(&input, 5);
        ahead.decompose_ahead(&stl, usize::MAX).unwrap();
        let mut lazy = TrainingSet::labelled(&input, 5);
        lazy.decompose_ahead(&stl, 0).unwrap();
        assert!(ahead.conditions.is_some() && lazy.conditions.is_none());
        let order = [11, 3, 8, 0, 25];
        let (a, b) = (
            ahead.batch(&order, &stl).unwrap(),
            lazy.batch(&order, &stl).unwrap(),
        );
        assert_eq!(a.values, b.values);
        assert_eq!(a.conditions, b.conditions);
        assert_eq!(a.value_anomalous, b.value_anomalous);
        // Window 11 holds step 12 second; window 8 holds it last; 3, 0 and 25 do not.
        assert_eq!(a.window_anomalous, [1.0, 0.0, 1.0, 0.0, 0.0]);
        let labels_of = |k: usize| &a.value_anomalous[k * 5 * m..(k + 1) * 5 * m];
        assert_eq!(labels_of(0), [0., 0., 1., 1., 0., 0., 0., 0., 0., 0.]);
        assert_eq!(labels_of(2), [0., 0., 0., 0., 0., 0., 0., 0., 1., 1.]);
        // Each window's values and condition are its own.
        assert_eq!(&a.values[..5 * m], &values[11 * m..16 * m]);
        let mut own = Vec::new();
        stl.condition_into(&values[11 * m..16 * m], m, &mut own)
            .unwrap();
        assert_eq!(&a.conditions[..own.len()], &own[..]);
        // Unsupervised training leaves the labelled windows out and sees no label.
        let plain = TrainingSet::unsupervised(&input, 5);
        assert_eq!(plain.len(), 26 - 5);
        let batch = plain.batch(&[0, 20], &stl).unwrap();
        assert!(batch.value_anomalous.iter().all(|&v| v == 0.0));
    }
}
