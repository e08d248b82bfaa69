//! Grouped-query attention as one node that keeps only its inputs and one log-sum-exp per query,
//! and recomputes the scores (one product) and probabilities (one elementwise pass) in the
//! backward, so no `[rows, heads, len, len]` tensor outlives its layer.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;

use super::inner;
use crate::grouped::{grouped_attention_backward, grouped_attention_with_lse};

#[derive(Debug)]
struct AttentionBackward;

impl<I: Backend> Backward<I, 3> for AttentionBackward {
    // (q, k, v, mask, scale, log-sum-exp per query)
    type State = (Tensor<I, 4>, Tensor<I, 4>, Tensor<I, 4>, Tensor<I, 4, Bool>, f64, Tensor<I, 4>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (q, k, v, mask, scale, lse) = ops.state;
        let d_out = Tensor::<I, 4>::from_primitive(TensorPrimitive::Float(grads.consume::<I>(&ops.node)));
        let (dq, dk, dv) = grouped_attention_backward(q, k, v, mask, scale, lse, d_out);
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<I>(node.id, grad.into_primitive().tensor());
            }
        }
    }
}

/// `softmax(q·kᵀ·scale, masked) · v` for `q: [rows, heads, len, d]`, `k, v: [rows, kv_heads,
/// len, d]` (`heads` a multiple of `kv_heads`; query head `i` reads kv head `i / (heads /
/// kv_heads)`), `mask: [rows, heads, len, len]` (`true` = masked; a fully masked query row
/// gives zeros). Matmuls go through [`crate::matmul`] (cuBLAS on CUDA).
pub fn attention<I: Backend>(
    q: Tensor<Autodiff<I>, 4>,
    k: Tensor<Autodiff<I>, 4>,
    v: Tensor<Autodiff<I>, 4>,
    mask: Tensor<Autodiff<I>, 4, Bool>,
    scale: f64,
) -> Tensor<Autodiff<I>, 4> {
    let (q, k, v) = (q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor());
    let (qi, ki, vi) = (inner::<I, 4>(&q.primitive), inner::<I, 4>(&k.primitive), inner::<I, 4>(&v.primitive));
    let mask = Tensor::<I, 4, Bool>::from_primitive(mask.into_primitive());
    let (out, lse) = grouped_attention_with_lse(qi.clone(), ki.clone(), vi.clone(), mask.clone(), scale);
    let out = out.into_primitive().tensor();
    let prep = AttentionBackward.prepare::<NoCheckpointing>([q.node, k.node, v.node]).compute_bound().stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((qi, ki, vi, mask, scale, lse), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
