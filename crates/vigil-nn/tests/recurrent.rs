//! The fused recurrent layers against burn's own LSTM and GRU: same weights, same outputs and
//! the same gradients through burn's autodiff (the kernels' own finite-difference checks are in
//! `nn::rnn::kernels`).

use burn::module::Param;
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{GateController, Lstm, LstmConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use vigil_nn::rnn::{Cell, Recurrent, RecurrentLayer};

const BATCH: usize = 4;
const STEPS: usize = 6;
const INPUT: usize = 5;
const HIDDEN: usize = 3;

/// Weights `[gates*H, I]`, `[gates*H, H]` and biases of burn gate controllers, in our gate order.
fn pytorch_layout(gates: &[&GateController]) -> RecurrentLayer {
    let weight = |l: &burn::nn::Linear| l.weight.val().transpose();
    let bias = |l: &burn::nn::Linear| l.bias.as_ref().expect("bias").val();
    RecurrentLayer::from_weights(
        Tensor::cat(
            gates.iter().map(|g| weight(&g.input_transform)).collect(),
            0,
        ),
        Tensor::cat(
            gates.iter().map(|g| weight(&g.hidden_transform)).collect(),
            0,
        ),
        Tensor::cat(gates.iter().map(|g| bias(&g.input_transform)).collect(), 0),
        Tensor::cat(gates.iter().map(|g| bias(&g.hidden_transform)).collect(), 0),
    )
}

fn close(a: Tensor<2>, b: Tensor<2>, what: &str) {
    let (a, b) = (
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{what}: sizes differ");
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() < 1e-4 * (1.0 + y.abs()),
            "{what}[{k}]: {x} vs burn {y}"
        );
    }
}

/// Runs both layers on the same input with loss Σ h ⊙ probe; compares h and the gradients of
/// the input and of the recurrent weights.
fn compare(
    cell: Cell,
    ours: &Recurrent,
    theirs: impl Fn(Tensor<3>) -> Tensor<3>,
    their_hidden_weights: impl Fn(&burn::tensor::Gradients) -> Tensor<2>,
    device: &Device,
) {
    let x = Tensor::<3>::random(
        [BATCH, STEPS, INPUT],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let probe = Tensor::<3>::random(
        [BATCH, STEPS, HIDDEN],
        Distribution::Normal(0.0, 1.0),
        device,
    );

    let x_ours = x.clone().detach().require_grad();
    let h_ours = ours.forward(x_ours.clone());
    let grads_ours = (h_ours.clone() * probe.clone()).sum().backward();

    let x_theirs = x.detach().require_grad();
    let h_theirs = theirs(x_theirs.clone());
    let grads_theirs = (h_theirs.clone() * probe).sum().backward();

    let flat = |t: Tensor<3>| t.reshape([BATCH * STEPS, HIDDEN]);
    close(
        flat(h_ours),
        flat(h_theirs),
        &format!("{cell:?} hidden states"),
    );
    let dx = |t: Tensor<3>| t.reshape([BATCH * STEPS, INPUT]);
    close(
        dx(x_ours.grad(&grads_ours).unwrap()),
        dx(x_theirs.grad(&grads_theirs).unwrap()),
        &format!("{cell:?} input gradient"),
    );
    let [_, w_hh] = ours.layers()[0].weights();
    close(
        w_hh.val().grad(&grads_ours).unwrap(),
        their_hidden_weights(&grads_theirs),
        &format!("{cell:?} recurrent weight gradient"),
    );
}

fn hidden_grad(gates: &[&GateController], grads: &burn::tensor::Gradients) -> Tensor<2> {
    let g = |p: &Param<Tensor<2>>| p.val().grad(grads).expect("gradient").transpose();
    Tensor::cat(
        gates
            .iter()
            .map(|c| g(&c.hidden_transform.weight))
            .collect(),
        0,
    )
}

#[test]
fn fused_lstm_matches_burn_lstm() {
    let device = vigil_nn::device().autodiff();
    device.seed(11);
    let lstm: Lstm = LstmConfig::new(INPUT, HIDDEN, true)
        .with_initializer(burn::nn::Initializer::Uniform {
            min: -0.6,
            max: 0.6,
        })
        .init(&device);
    let forget = lstm.forget_gate.as_ref().expect("forget gate");
    let order = [&lstm.input_gate, forget, &lstm.cell_gate, &lstm.output_gate];
    let ours = Recurrent::from_layers(Cell::Lstm, vec![pytorch_layout(&order)]);
    compare(
        Cell::Lstm,
        &ours,
        |x| lstm.forward(x, None).0,
        |grads| hidden_grad(&order, grads),
        &device,
    );
}

#[test]
fn fused_gru_matches_burn_gru() {
    let device = vigil_nn::device().autodiff();
    device.seed(12);
    let gru: Gru = GruConfig::new(INPUT, HIDDEN, true)
        .with_initializer(burn::nn::Initializer::Uniform {
            min: -0.6,
            max: 0.6,
        })
        .init(&device);
    assert!(
        gru.reset_after,
        "PyTorch's GRU applies the reset after the product"
    );
    let order = [&gru.reset_gate, &gru.update_gate, &gru.new_gate];
    let ours = Recurrent::from_layers(Cell::Gru, vec![pytorch_layout(&order)]);
    compare(
        Cell::Gru,
        &ours,
        |x| gru.forward(x, None),
        |grads| hidden_grad(&order, grads),
        &device,
    );
}

#[test]
fn stacked_layers_run_without_tracking_gradients() {
    let device = vigil_nn::device();
    device.seed(13);
    let stack = Recurrent::new(Cell::Gru, INPUT, HIDDEN, 2, &device);
    let x = Tensor::<3>::random(
        [BATCH, STEPS, INPUT],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let h = stack.forward(x);
    assert_eq!(h.dims(), [BATCH, STEPS, HIDDEN]);
    let v = h.into_data().try_to_vec::<f32>().unwrap();
    assert!(v.iter().all(|x| x.is_finite() && x.abs() < 1.0));
}
