//! Flash attention as fusion custom operations (forward, backward) and the autodiff node that
//! ties them together. The node keeps `q`, `k`, `v`, the output and one f32 log-sum-exp per
//! query; nothing `[L, L]`-sized is stored or even materialised.

use burn::tensor::{Bool, DType, Shape, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionRuntime;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::flash;
use super::fusion_op::{self, Inner, Primitive, Runtime};
use super::{Diff, Fused};

type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;

#[derive(Debug)]
struct FlashForward {
    desc: CustomOpIr,
    scale: f64,
}

impl Operation<Runtime> for FlashForward {
    fn execute(&self, handles: &mut Handles) {
        let ([q, k, v, mask], [out, lse]) = self.desc.as_fixed();
        let (q, k, v) = (handles.get_float_tensor::<Inner>(q), handles.get_float_tensor::<Inner>(k), handles.get_float_tensor::<Inner>(v));
        let mask = handles.get_bool_tensor::<Inner>(mask);
        let (o, l) = flash::forward(q, k, v, mask, self.scale);
        handles.register_float_tensor::<Inner>(&out.id, o);
        handles.register_float_tensor::<Inner>(&lse.id, l);
    }
}

#[derive(Debug)]
struct FlashBackward {
    desc: CustomOpIr,
    scale: f64,
}

impl Operation<Runtime> for FlashBackward {
    fn execute(&self, handles: &mut Handles) {
        let ([q, k, v, o, lse, d_out, mask], [dq, dk, dv]) = self.desc.as_fixed();
        let mut get = |t: &TensorIr| handles.get_float_tensor::<Inner>(t);
        let (q, k, v, o, lse, d_out) = (get(q), get(k), get(v), get(o), get(lse), get(d_out));
        let mask = handles.get_bool_tensor::<Inner>(mask);
        let (gq, gk, gv) = flash::backward(q, k, v, o, lse, d_out, mask, self.scale);
        handles.register_float_tensor::<Inner>(&dq.id, gq);
        handles.register_float_tensor::<Inner>(&dk.id, gk);
        handles.register_float_tensor::<Inner>(&dv.id, gv);
    }
}

fn uninit(like: &Primitive, shape: Shape, dtype: DType) -> TensorIr {
    TensorIr::uninit(like.client.create_empty_handle(), shape, dtype)
}

/// `(out, lse)` on fused tensors (shapes checked by the caller).
fn forward(q: Primitive, k: Primitive, v: Primitive, mask: Primitive, scale: f64) -> (Primitive, Primitive) {
    let client = q.client.clone();
    let s = q.shape.clone();
    let out = uninit(&q, s.clone(), q.dtype);
    let lse = uninit(&q, Shape::from(vec![s[0], s[1], s[2], 1]), DType::F32);
    let streams = OperationStreams::with_inputs([&q, &k, &v, &mask]);
    let desc = CustomOpIr::new("rmd_flash_fwd", &[q.into_ir(), k.into_ir(), v.into_ir(), mask.into_ir()], &[out, lse]);
    let [o, l] = client.register(streams, OperationIr::Custom(desc.clone()), FlashForward { desc, scale }).outputs();
    (o, l)
}

#[allow(clippy::too_many_arguments)]
fn backward(q: Primitive, k: Primitive, v: Primitive, o: Primitive, lse: Primitive, d_out: Primitive, mask: Primitive, scale: f64) -> (Primitive, Primitive, Primitive) {
    let client = q.client.clone();
    let dq = uninit(&q, q.shape.clone(), q.dtype);
    let dk = uninit(&q, k.shape.clone(), k.dtype);
    let dv = uninit(&q, v.shape.clone(), v.dtype);
    let streams = OperationStreams::with_inputs([&q, &k, &v, &o, &lse, &d_out, &mask]);
    let inputs = [q.into_ir(), k.into_ir(), v.into_ir(), o.into_ir(), lse.into_ir(), d_out.into_ir(), mask.into_ir()];
    let desc = CustomOpIr::new("rmd_flash_bwd", &inputs, &[dq, dk, dv]);
    let [dq, dk, dv] = client.register(streams, OperationIr::Custom(desc.clone()), FlashBackward { desc, scale }).outputs();
    (dq, dk, dv)
}

/// Whether the flash kernels take these operands (`[dims; q, k, v, mask]`, `[dtype; q, k, v]`):
/// bf16 `q`, `k`, `v` of one head dim they are built for (64, 128), `v` shaped like `k`, a mask
/// of the scores' shape.
pub(crate) fn eligible([q, k, v, mask]: [[usize; 4]; 4], dtypes: [DType; 3]) -> bool {
    dtypes == [DType::BF16; 3]
        && flash::supported(q[3])
        && k[3] == q[3]
        && k[0] == q[0]
        && k[2] == q[2]
        && v == k
        && mask == [q[0], q[1], q[2], q[2]]
        && q[2] <= i32::MAX as usize
}

#[derive(Debug)]
struct FlashNode;

impl Backward<Fused, 3> for FlashNode {
    // (q, k, v, out, lse, mask, scale)
    type State = (Primitive, Primitive, Primitive, Primitive, Primitive, Primitive, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (q, k, v, o, lse, mask, scale) = ops.state;
        let d_out = fusion_op::with_dtype(grads.consume::<Fused>(&ops.node), q.dtype);
        let (dq, dk, dv) = backward(q, k, v, o, lse, d_out, mask, scale);
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<Fused>(node.id, grad);
            }
        }
    }
}

/// Flash attention on `Autodiff<Cuda>` (operands checked with [`eligible`]).
pub(crate) fn attention_diff(q: Tensor<Diff, 4>, k: Tensor<Diff, 4>, v: Tensor<Diff, 4>, mask: Tensor<Diff, 4, Bool>, scale: f64) -> Tensor<Diff, 4> {
    let (q, k, v) = (q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor());
    let mask: Primitive = mask.into_primitive();
    let (out, lse) = forward(q.primitive.clone(), k.primitive.clone(), v.primitive.clone(), mask.clone(), scale);
    let prep = FlashNode.prepare::<NoCheckpointing>([q.node, k.node, v.node]).compute_bound().stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((q.primitive, k.primitive, v.primitive, out.clone(), lse, mask, scale), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Flash attention forward on `Cuda` (inference).
pub(crate) fn attention_fused(q: Tensor<Fused, 4>, k: Tensor<Fused, 4>, v: Tensor<Fused, 4>, mask: Tensor<Fused, 4, Bool>, scale: f64) -> Tensor<Fused, 4> {
    let (out, _) = forward(q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor(), mask.into_primitive(), scale);
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
