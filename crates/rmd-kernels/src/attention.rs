//! Scaled dot-product attention with a boolean mask.

use burn::tensor::backend::Backend;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use crate::matmul::matmul;

/// `softmax(q·kᵀ·scale, masked) · v` for `q, k, v: [rows, heads, len, d]` and
/// `mask: [rows, heads, len, len]` (`true` = masked).
///
/// With a fast matmul (cuBLAS) the two products go through it and the softmax is the NaN-safe
/// one of burn's fallback (a fully masked row gives zeros); otherwise this is burn's
/// `attention` (which under autodiff materialises the same score matrix).
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> Tensor<B, 4> {
    if crate::has_fast_matmul::<B>() {
        return attention_materialized(q, k, v, mask, scale);
    }
    let options = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
    module::attention(q, k, v, Some(mask), None, options)
}

/// The explicit form the fast path runs: both products through [`matmul`] and
/// [`masked_softmax`]. Public so it can be checked against burn's `attention` on any backend.
pub fn attention_materialized<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> Tensor<B, 4> {
    let scores = matmul(q, k.swap_dims(2, 3));
    matmul(masked_softmax(scores, mask, scale), v)
}

/// `softmax(mask(scores · scale))` over the last dim; a fully masked row gives zeros. On
/// `Autodiff<Cuda>` one autodiff node that saves only its output (f32 inside).
pub fn masked_softmax<B: Backend>(scores: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> Tensor<B, 4> {
    #[cfg(feature = "cuda")]
    let (scores, mask) = match crate::cuda::try_masked_softmax(scores, mask, scale) {
        Ok(p) => return p,
        Err(inputs) => inputs,
    };
    let scores = scores.mul_scalar(scale).mask_fill(mask, f32::NEG_INFINITY);
    let finfo = scores.dtype().finfo().expect("float scores");
    let max = scores.clone().max_dim(3).clamp_min(finfo.min);
    let num = (scores - max).exp();
    let sum = num.clone().sum_dim(3).clamp_min(finfo.min_positive);
    num / sum
}
