//! Masked, scaled softmax over the last dim as one autodiff node that keeps only its output.
//!
//! Written with burn ops, the softmax saves its input, the exp and the sum for backward: three
//! `[rows, heads, len, len]` tensors per layer. The gradient only needs the output `p`:
//! `dS = scale · p ⊙ (g − Σⱼ g ⊙ p)` (masked entries have `p = 0`, so they get no gradient).
//! Computed in f32 and returned in the scores' dtype.

use burn::tensor::{Bool, DType, FloatDType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};

use super::fusion_op::Primitive;
use super::{Diff, Fused};

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Fused, 1> for SoftmaxBackward {
    type State = (Primitive, f64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (p, scale) = ops.state;
        unary::<Fused, _>(ops.parents, ops.node, grads, |grad| {
            let dtype = grad.dtype;
            let p = Tensor::<Fused, 4>::from_primitive(TensorPrimitive::Float(p)).cast(FloatDType::F32);
            let g = Tensor::<Fused, 4>::from_primitive(TensorPrimitive::Float(grad)).cast(FloatDType::F32);
            let gp = g * p.clone();
            let s = gp.clone().sum_dim(3);
            let d = (gp - p * s).mul_scalar(scale);
            let d = d.cast(float_dtype(dtype));
            d.into_primitive().tensor()
        });
    }
}

fn float_dtype(d: DType) -> FloatDType {
    match d {
        DType::BF16 => FloatDType::BF16,
        DType::F16 => FloatDType::F16,
        DType::F64 => FloatDType::F64,
        _ => FloatDType::F32,
    }
}

/// The forward on the inner backend: NaN-safe (a fully masked row gives zeros).
fn forward(scores: Primitive, mask: Tensor<Fused, 4, Bool>, scale: f64) -> Primitive {
    let dtype = scores.dtype;
    let s = Tensor::<Fused, 4>::from_primitive(TensorPrimitive::Float(scores)).cast(FloatDType::F32).mul_scalar(scale);
    let s = s.mask_fill(mask, f32::NEG_INFINITY);
    let max = s.clone().max_dim(3).clamp_min(f32::MIN);
    let num = (s - max).exp();
    let sum = num.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    (num / sum).cast(float_dtype(dtype)).into_primitive().tensor()
}

pub(crate) fn masked_softmax(scores: Tensor<Diff, 4>, mask: Tensor<Diff, 4, Bool>, scale: f64) -> Tensor<Diff, 4> {
    let scores = scores.into_primitive().tensor();
    let mask = Tensor::<Fused, 4, Bool>::from_primitive(mask.into_primitive());
    let p = forward(scores.primitive.clone(), mask, scale);
    let out = match SoftmaxBackward.prepare::<NoCheckpointing>([scores.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((p.clone(), scale), p),
        OpsKind::UnTracked(prep) => prep.finish(p),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
