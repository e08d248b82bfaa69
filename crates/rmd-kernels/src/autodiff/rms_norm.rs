//! RMSNorm `y = x / s · γ`, `s = √(mean(x²) + ε)` over the last dim, as one node that keeps
//! `x` and `s` (one f32 per row).
//!
//! With `x̂ = x / s` and `h = g ⊙ γ`: `dx = (h − x̂ · mean(h ⊙ x̂)) / s`, `dγ = Σ_rows g ⊙ x̂`.
//! Statistics and gradients in f32 (f64 stays f64); outputs in the inputs' dtypes. Divisions,
//! not reciprocals: burn-ndarray's `recip` is not bit-reproducible across allocations.

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;

use super::inner;
use crate::work_dtype;

#[derive(Debug)]
struct RmsNormBackward<const D: usize>;

impl<I: Backend, const D: usize> Backward<I, 2> for RmsNormBackward<D> {
    // (x, s, γ)
    type State = (Tensor<I, D>, Tensor<I, D>, Tensor<I, 1>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, s, gamma) = ops.state;
        let g = Tensor::<I, D>::from_primitive(TensorPrimitive::Float(grads.consume::<I>(&ops.node)));
        let (x_dtype, gamma_dtype) = (FloatDType::from(x.dtype()), FloatDType::from(gamma.dtype()));
        let work = work_dtype(g.dtype());
        let g = g.cast(work);
        let x_hat = x.cast(work) / s.clone();
        let [p_x, p_gamma] = ops.parents;
        if let Some(node) = p_gamma {
            let n = gamma.dims()[0];
            let rows = g.shape().num_elements() / n;
            let d = (g.clone() * x_hat.clone()).reshape([rows, n]).sum_dim(0).reshape([n]);
            grads.register::<I>(node.id, d.cast(gamma_dtype).into_primitive().tensor());
        }
        if let Some(node) = p_x {
            let h = g * gamma.cast(work).unsqueeze::<D>();
            let m = (h.clone() * x_hat.clone()).mean_dim(D - 1);
            let d = (h - x_hat * m) / s;
            grads.register::<I>(node.id, d.cast(x_dtype).into_primitive().tensor());
        }
    }
}

/// RMSNorm over the last dim of `x` with weight `gamma: [features]` and `eps` inside the root.
pub fn rms_norm<I: Backend, const D: usize>(x: Tensor<Autodiff<I>, D>, gamma: Tensor<Autodiff<I>, 1>, eps: f64) -> Tensor<Autodiff<I>, D> {
    let (x, gamma) = (x.into_primitive().tensor(), gamma.into_primitive().tensor());
    let (xi, gi) = (inner::<I, D>(&x.primitive), inner::<I, 1>(&gamma.primitive));
    let (out, s) = forward_with_rms(xi.clone(), gi.clone(), eps);
    let out = out.into_primitive().tensor();
    let prep = RmsNormBackward::<D>.prepare::<NoCheckpointing>([x.node, gamma.node]).compute_bound().stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((xi, s, gi), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `y` and the per-row `s = √(mean(x²) + ε)` (`[.., 1]`, working dtype); `x` is cast once.
fn forward_with_rms<B: Backend, const D: usize>(x: Tensor<B, D>, gamma: Tensor<B, 1>, eps: f64) -> (Tensor<B, D>, Tensor<B, D>) {
    let dtype = x.dtype();
    let work = work_dtype(dtype);
    let x = x.cast(work);
    let s = (x.clone().square().mean_dim(D - 1) + eps).sqrt();
    let y = (x / s.clone() * gamma.cast(work).unsqueeze::<D>()).cast(FloatDType::from(dtype));
    (y, s)
}

/// The plain forward (no node), in f32 and back.
pub(crate) fn forward<B: Backend, const D: usize>(x: Tensor<B, D>, gamma: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    forward_with_rms(x, gamma, eps).0
}
