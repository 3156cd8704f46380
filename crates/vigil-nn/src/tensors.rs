//! Tensors from row-major values and back.

use burn::prelude::*;

/// A `rows x cols` tensor from row-major values.
pub fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A `batch x window x metrics` tensor from row-major windows.
pub fn tensor3(
    values: Vec<f32>,
    batch: usize,
    window: usize,
    metrics: usize,
    device: &Device,
) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, [batch, window, metrics]), device)
}

/// The values of a tensor, row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("float tensors hold f32 in vigil")
}

/// The mean of a scalar-valued tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t).first().copied().unwrap_or(f32::NAN) as f64
}
