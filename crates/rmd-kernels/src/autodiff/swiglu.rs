//! `silu(gate) ⊙ up` as one node that keeps only `gate` and `up`.
//!
//! With `σ = sigmoid(gate)`: `d gate = g ⊙ up ⊙ σ ⊙ (1 + gate ⊙ (1 − σ))`, `d up = g ⊙ silu(gate)`.
//! Computed in f32 (f64 stays f64), returned in the inputs' dtype.

use burn::tensor::activation::sigmoid;
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
struct SwigluBackward<const D: usize>;

impl<I: Backend, const D: usize> Backward<I, 2> for SwigluBackward<D> {
    type State = (Tensor<I, D>, Tensor<I, D>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let g = Tensor::<I, D>::from_primitive(TensorPrimitive::Float(grads.consume::<I>(&ops.node)));
        let out = FloatDType::from(g.dtype());
        let work = work_dtype(g.dtype());
        let (a, b, g) = (gate.cast(work), up.cast(work), g.cast(work));
        let s = sigmoid(a.clone());
        let silu = a.clone() * s.clone();
        let [p_gate, p_up] = ops.parents;
        if let Some(node) = p_gate {
            let d = g.clone() * b * s.clone() * (a * (s.neg() + 1.0) + 1.0);
            grads.register::<I>(node.id, d.cast(out).into_primitive().tensor());
        }
        if let Some(node) = p_up {
            grads.register::<I>(node.id, (g * silu).cast(out).into_primitive().tensor());
        }
    }
}

/// `silu(gate) ⊙ up` (SwiGLU's gating), both of one shape and dtype.
pub fn swiglu<I: Backend, const D: usize>(gate: Tensor<Autodiff<I>, D>, up: Tensor<Autodiff<I>, D>) -> Tensor<Autodiff<I>, D> {
    let (gate, up) = (gate.into_primitive().tensor(), up.into_primitive().tensor());
    let (a, b) = (inner::<I, D>(&gate.primitive), inner::<I, D>(&up.primitive));
    let out = forward(a.clone(), b.clone()).into_primitive().tensor();
    let prep = SwigluBackward::<D>.prepare::<NoCheckpointing>([gate.node, up.node]).compute_bound().stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((a, b), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The plain forward, in f32 and back.
pub(crate) fn forward<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = gate.dtype();
    let a = gate.cast(work_dtype(dtype));
    (a.clone() * sigmoid(a) * up.cast(work_dtype(dtype))).cast(FloatDType::from(dtype))
}
