//! The training windows of one fit and the batches gathered from them. Windows are never
//! materialised all at once (`MtsInput::gather_windows` says why); a batch is copied out of the
//! series into one reused buffer.

use super::{tensor2, tensor3};
use crate::detector::MtsInput;
use burn::prelude::{Device, Tensor};

/// Windows of `window` steps, numbered `0..len()`, each known by the step it starts at.
pub struct TrainingWindows<'i, 'a> {
    input: &'i MtsInput<'a>,
    window: usize,
    starts: Vec<usize>,
    buffer: Vec<f32>,
}

impl<'i, 'a> TrainingWindows<'i, 'a> {
    /// Every full window of the series.
    pub fn all(input: &'i MtsInput<'a>, window: usize) -> Self {
        Self::every(input, window, input.len(), 1)
    }

    /// The windows that start every `stride` steps and end by step `end` (exclusive) — `end`
    /// below the series' length leaves a tail out, e.g. for validation.
    pub fn every(input: &'i MtsInput<'a>, window: usize, end: usize, stride: usize) -> Self {
        let last_start = (end.min(input.len()) + 1).saturating_sub(window.max(1));
        Self::starting_at(
            input,
            window,
            (0..last_start).step_by(stride.max(1)).collect(),
        )
    }

    /// The windows starting at `starts`, less those that hold a step labelled anomalous when
    /// the input carries labels (an operator's feedback is not learnt as normal).
    pub fn starting_at(input: &'i MtsInput<'a>, window: usize, mut starts: Vec<usize>) -> Self {
        starts.retain(|&s| !input.window_labelled_anomalous(s, window));
        Self {
            input,
            window,
            starts,
            buffer: Vec::new(),
        }
    }

    /// How many windows there are.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Each window's weight ([`MtsInput::window_weight`]), or `None` when the input has no
    /// weights.
    pub fn weights(&self) -> Option<Vec<f64>> {
        self.input.weights?;
        Some(
            self.starts
                .iter()
                .map(|&s| self.input.window_weight(s, self.window).unwrap_or(1.0))
                .collect(),
        )
    }

    /// Whether there are none (a series shorter than the window).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The values of the windows numbered `batch`, window after window, each `window × metrics`
    /// values in time order.
    pub fn gather(&mut self, batch: &[usize]) -> &[f32] {
        let m = self.input.n_metrics;
        self.buffer.clear();
        for &i in batch {
            let start = self.starts[i];
            self.buffer
                .extend_from_slice(&self.input.values[start * m..(start + self.window) * m]);
        }
        &self.buffer
    }

    /// The windows numbered `batch` as a `[batch, window, metrics]` tensor.
    pub fn tensor3(&mut self, batch: &[usize], device: &Device) -> Tensor<3> {
        let (w, m) = (self.window, self.input.n_metrics);
        tensor3(self.gather(batch).to_vec(), batch.len(), w, m, device)
    }

    /// The windows numbered `batch` flattened, as a `[batch, window × metrics]` tensor.
    pub fn tensor2(&mut self, batch: &[usize], device: &Device) -> Tensor<2> {
        let d = self.window * self.input.n_metrics;
        tensor2(self.gather(batch).to_vec(), batch.len(), d, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_the_chosen_windows_in_order() {
        // 6 steps of 2 metrics: step t holds (10t, 10t + 1).
        let values: Vec<f32> = (0..6)
            .flat_map(|t| [10.0 * t as f32, 10.0 * t as f32 + 1.0])
            .collect();
        let input = MtsInput::new(&values, 2);
        let mut all = TrainingWindows::all(&input, 3);
        assert_eq!(all.len(), 4);
        assert_eq!(
            all.gather(&[3, 0]),
            &[30., 31., 40., 41., 50., 51., 0., 1., 10., 11., 20., 21.]
        );
        // Stride 2 up to step 5 (exclusive): windows start at 0 and 2.
        let mut strided = TrainingWindows::every(&input, 3, 5, 2);
        assert_eq!(strided.len(), 2);
        assert_eq!(strided.gather(&[1]), &[20., 21., 30., 31., 40., 41.]);
        let longer_than_the_series = TrainingWindows::all(&input, 7);
        assert!(longer_than_the_series.is_empty());
    }

    #[test]
    fn windows_holding_a_step_labelled_anomalous_are_left_out() {
        let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let labels = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0];
        let input = MtsInput::new(&values, 1).with_labels(&labels);
        // Windows of 3 start at 0..=9; those covering step 3 (1..=3) or step 10 (8, 9) go.
        let mut kept = TrainingWindows::all(&input, 3);
        assert_eq!(kept.len(), 5);
        assert_eq!(
            kept.gather(&[0, 1, 4]),
            &[0., 1., 2., 4., 5., 6., 7., 8., 9.]
        );
    }

    #[test]
    fn a_window_weighs_its_least_weighted_step() {
        let values: Vec<f32> = (0..7).map(|v| v as f32).collect();
        let weights = [1.0, 1.0, 0.0, 1.0, 1.0, 2.0, 2.0];
        let input = MtsInput::new(&values, 1);
        assert_eq!(TrainingWindows::all(&input, 2).weights(), None);
        let weighted = input.with_weights(&weights);
        assert_eq!(
            TrainingWindows::all(&weighted, 2).weights().unwrap(),
            [1.0, 0.0, 0.0, 1.0, 1.0, 2.0]
        );
    }
}
