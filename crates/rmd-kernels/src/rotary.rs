//! Rotary position embeddings in HF's `rotate_half` layout: `x · cos + rotate_half(x) · sin`,
//! where `rotate_half` swaps the two halves of the head dim and negates the new first half.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `x: [rows, heads, len, head_dim]` rotated by the tables `cos`, `sin: [rows, 1, len,
/// head_dim]` (f32, cast to `x`'s dtype as transformers does under bf16/f16 compute). On CUDA
/// with bf16 `x` one kernel per direction (rotary.cu), reading `x` through its strides.
pub fn rotary<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "cuda")]
    let [x, cos, sin] = match crate::cuda::try_rotary(x, cos, sin) {
        Ok(y) => return y,
        Err(operands) => operands,
    };
    let [rows, heads, len, dim] = x.dims();
    let half = dim / 2;
    let x1 = x.clone().slice([0..rows, 0..heads, 0..len, 0..half]);
    let x2 = x.clone().slice([0..rows, 0..heads, 0..len, half..dim]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    let dtype = x.dtype();
    x * cos.cast(dtype) + rotated * sin.cast(dtype)
}
