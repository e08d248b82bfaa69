//! Autodiff nodes that keep less than burn's op-by-op graph would, each with its backward by
//! hand. Generic over the inner backend: the CUDA training path (`Autodiff<Cuda>`) uses them
//! through the crate's entry points ([`crate::attention`], [`crate::swiglu`],
//! [`crate::rms_norm`]); the tests run them on `Autodiff<NdArray>` against burn's own
//! gradients of the plain formulas.
//!
//! What each keeps for the backward, per call:
//! - [`attention`]: `q`, `k`, `v` and one log-sum-exp per query (scores and probabilities are
//!   recomputed), instead of the scores, probabilities and softmax intermediates, several
//!   `[rows, heads, len, len]` each;
//! - [`swiglu`]: `gate` and `up`, instead of `gate`, `sigmoid(gate)`, `silu(gate)` and `up`;
//! - [`rms_norm`]: `x` and one f32 scale per row, instead of an f32 copy of `x`, the
//!   normalised `x` and the row statistics.

mod attention;
mod rms_norm;
mod swiglu;

pub use attention::attention;
pub use rms_norm::rms_norm;
pub use swiglu::swiglu;
pub(crate) use rms_norm::forward as rms_norm_forward;
pub(crate) use swiglu::forward as swiglu_forward;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

/// The inner tensor of an autodiff tensor (the graph node is dropped; callers keep it).
fn inner<I: Backend, const D: usize>(p: &I::FloatTensorPrimitive) -> Tensor<I, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p.clone()))
}
