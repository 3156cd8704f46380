//! One Adam step of an LSTM (or GRU) encoder-decoder on the shape of issue 5's table: batch 64,
//! window 100, 38 metrics, hidden 64. The encoder reads the window; its last hidden state,
//! repeated over the window, feeds the decoder; a linear layer maps back to the metrics; the
//! loss is the mean squared reconstruction error. Times vigil's fused layer and burn's own
//! layer; prints one JSON line per implementation (mean milliseconds per step after warm-up).
//!
//!     cargo bench -p vigil-models --bench recurrent_step -- --cell lstm --steps 20
//!
//! `bench/reference/recurrent_step.py` is the same model in PyTorch; `bench/speed.sh` runs both.

use burn::module::Module;
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{Linear, LinearConfig, Lstm, LstmConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;
use vigil_models::memory::peak_rss_bytes;
use vigil_models::nn::{self, rnn::Cell, rnn::Recurrent};

const BATCH: usize = 64;
const WINDOW: usize = 100;
const METRICS: usize = 38;
const HIDDEN: usize = 64;

#[derive(Module, Debug)]
struct Fused {
    encoder: Recurrent,
    decoder: Recurrent,
    out: Linear,
}

#[derive(Module, Debug)]
struct BurnLstm {
    encoder: Lstm,
    decoder: Lstm,
    out: Linear,
}

#[derive(Module, Debug)]
struct BurnGru {
    encoder: Gru,
    decoder: Gru,
    out: Linear,
}

/// The last step of `h` repeated over the window: the decoder's input.
fn repeat_last(h: Tensor<3>) -> Tensor<3> {
    h.narrow(1, WINDOW - 1, 1).repeat_dim(1, WINDOW)
}

trait EncoderDecoder: Module + Sized {
    fn reconstruct(&self, x: Tensor<3>) -> Tensor<3>;
}

impl EncoderDecoder for Fused {
    fn reconstruct(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.decoder.forward(repeat_last(self.encoder.forward(x)));
        self.out.forward(h)
    }
}

impl EncoderDecoder for BurnLstm {
    fn reconstruct(&self, x: Tensor<3>) -> Tensor<3> {
        let (h, _) = self.encoder.forward(x, None);
        let (h, _) = self.decoder.forward(repeat_last(h), None);
        self.out.forward(h)
    }
}

impl EncoderDecoder for BurnGru {
    fn reconstruct(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self
            .decoder
            .forward(repeat_last(self.encoder.forward(x, None)), None);
        self.out.forward(h)
    }
}

/// Mean milliseconds per Adam step over `steps` steps after two warm-up steps.
fn time_steps<M: EncoderDecoder>(mut model: M, steps: usize, device: &Device) -> f64 {
    let mut opt = nn::adam().init();
    let x = Tensor::<3>::random(
        [BATCH, WINDOW, METRICS],
        Distribution::Uniform(0.0, 1.0),
        device,
    );
    let mut started = Instant::now();
    for step in 0..steps + 2 {
        if step == 2 {
            started = Instant::now();
        }
        let loss = (model.reconstruct(x.clone()) - x.clone()).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(1e-3, model, grads);
    }
    started.elapsed().as_secs_f64() * 1000.0 / steps as f64
}

fn main() {
    vigil_models::allocator::keep_freed_buffers();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let cell = match arg("--cell").as_deref() {
        Some("gru") => Cell::Gru,
        _ => Cell::Lstm,
    };
    let steps: usize = arg("--steps").and_then(|s| s.parse().ok()).unwrap_or(20);
    let which = arg("--implementation").unwrap_or_else(|| "both".into());
    let device = nn::device().autodiff();
    device.seed(0);
    let out = || LinearConfig::new(HIDDEN, METRICS).init(&device);
    let report = |implementation: &str, ms: f64| {
        let json = serde_json::json!({
            "model": format!("{} encoder-decoder step", format!("{cell:?}").to_lowercase()),
            "implementation": implementation,
            "ms_per_step": ms,
            "peak_rss_mb": peak_rss_bytes().map_or(f64::NAN, |b| b as f64 / 1048576.0),
        });
        println!("{json}");
    };
    if which == "both" || which == "fused" {
        let model = Fused {
            encoder: Recurrent::new(cell, METRICS, HIDDEN, 1, &device),
            decoder: Recurrent::new(cell, HIDDEN, HIDDEN, 1, &device),
            out: out(),
        };
        report("vigil fused", time_steps(model, steps, &device));
    }
    if which == "both" || which == "burn" {
        let ms = match cell {
            Cell::Lstm => time_steps(
                BurnLstm {
                    encoder: LstmConfig::new(METRICS, HIDDEN, true).init(&device),
                    decoder: LstmConfig::new(HIDDEN, HIDDEN, true).init(&device),
                    out: out(),
                },
                steps,
                &device,
            ),
            Cell::Gru => time_steps(
                BurnGru {
                    encoder: GruConfig::new(METRICS, HIDDEN, true).init(&device),
                    decoder: GruConfig::new(HIDDEN, HIDDEN, true).init(&device),
                    out: out(),
                },
                steps,
                &device,
            ),
        };
        report("burn 0.22 layer", ms);
    }
}
