//! SwiGLU gating and RMSNorm: burn's formulas, or one autodiff node each on `Autodiff<Cuda>`
//! (see [`crate::autodiff`]: they keep far fewer activations for the backward).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `silu(gate) ⊙ up`. Computed in f32 and returned in the inputs' dtype.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    // bf16 / f32 on CUDA: one kernel per direction (swiglu.cu).
    #[cfg(feature = "cuda")]
    let (gate, up) = match crate::cuda::try_swiglu(gate, up) {
        Ok(out) => return out,
        Err(operands) => operands,
    };
    #[cfg(feature = "cuda")]
    if crate::cuda::is_diff::<B>() {
        use crate::cuda::{retype, Fused};
        return retype(crate::autodiff::swiglu::<Fused, D>(retype(gate), retype(up)));
    }
    crate::autodiff::swiglu_forward(gate, up)
}

/// RMSNorm over the last dim: `x / √(mean(x²) + eps) · gamma`, statistics in f32, returned in
/// `x`'s dtype.
pub fn rms_norm<B: Backend, const D: usize>(x: Tensor<B, D>, gamma: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    // bf16 on CUDA: one kernel per direction (rms_norm.cu).
    #[cfg(feature = "cuda")]
    let (x, gamma) = match crate::cuda::try_rms_norm(x, gamma, eps) {
        Ok(y) => return y,
        Err(operands) => operands,
    };
    #[cfg(feature = "cuda")]
    if crate::cuda::is_diff::<B>() {
        use crate::cuda::{retype, Fused};
        return retype(crate::autodiff::rms_norm::<Fused, D>(retype(x), retype(gamma), eps));
    }
    crate::autodiff::rms_norm_forward(x, gamma, eps)
}
