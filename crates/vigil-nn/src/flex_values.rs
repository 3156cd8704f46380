//! Reading and building flex tensors inside our backend extensions (the fused recurrent layers
//! and attention), which run their kernels on plain slices.

use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::tensor::{Shape, TensorData};
use std::borrow::Cow;

/// A tensor's values: borrowed when it is a contiguous f32 tensor (the usual case), otherwise
/// materialised. Copying every input was a tenth of a recurrent training step (page faults,
/// memmove).
pub fn values(t: &FloatTensor<Flex>) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("a float tensor converts to f32"),
        ),
    }
}

/// A flex tensor of `shape` holding `values` (row-major).
pub fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Flex> {
    Flex::float_from_data(
        TensorData::new(values, Shape::from(shape)),
        &Default::default(),
    )
}
