//! SwiGLU's gating as fusion custom operations (forward: `gate, up -> out`; backward:
//! `gate, up, g -> d_gate, d_up`, one kernel each, swiglu.cu) and the autodiff node on
//! `Autodiff<Cuda>` that keeps only `gate` and `up`, like the generic node of
//! [`crate::autodiff::swiglu`] it replaces for bf16 and f32.

use std::any::TypeId;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionRuntime;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::fusion_op::{self, Inner, Primitive, Runtime};
use super::{is_cuda_backend, retype, swiglu, Diff, Fused};

type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;

#[derive(Debug)]
struct SwigluForward {
    desc: CustomOpIr,
}

impl Operation<Runtime> for SwigluForward {
    fn execute(&self, handles: &mut Handles) {
        let ([gate, up], [out]) = self.desc.as_fixed();
        let (gate, up) = (handles.get_float_tensor::<Inner>(gate), handles.get_float_tensor::<Inner>(up));
        handles.register_float_tensor::<Inner>(&out.id, swiglu::forward(gate, up));
    }
}

#[derive(Debug)]
struct SwigluBackward {
    desc: CustomOpIr,
}

impl Operation<Runtime> for SwigluBackward {
    fn execute(&self, handles: &mut Handles) {
        let ([gate, up, grad], [d_gate, d_up]) = self.desc.as_fixed();
        let mut get = |t: &TensorIr| handles.get_float_tensor::<Inner>(t);
        let (gate, up, grad) = (get(gate), get(up), get(grad));
        let (dg, du) = swiglu::backward(gate, up, grad);
        handles.register_float_tensor::<Inner>(&d_gate.id, dg);
        handles.register_float_tensor::<Inner>(&d_up.id, du);
    }
}

fn uninit(like: &Primitive) -> TensorIr {
    TensorIr::uninit(like.client.create_empty_handle(), like.shape.clone(), like.dtype)
}

/// `silu(gate) ⊙ up` on fused tensors (operands checked with [`eligible`]).
fn forward(gate: Primitive, up: Primitive) -> Primitive {
    let client = gate.client.clone();
    let out = uninit(&gate);
    let streams = OperationStreams::with_inputs([&gate, &up]);
    let desc = CustomOpIr::new("rmd_swiglu_fwd", &[gate.into_ir(), up.into_ir()], &[out]);
    client.register(streams, OperationIr::Custom(desc.clone()), SwigluForward { desc }).output()
}

/// `(d_gate, d_up)` on fused tensors, all three of one shape and dtype.
fn backward(gate: Primitive, up: Primitive, grad: Primitive) -> (Primitive, Primitive) {
    let client = gate.client.clone();
    let (d_gate, d_up) = (uninit(&gate), uninit(&up));
    let streams = OperationStreams::with_inputs([&gate, &up, &grad]);
    let desc = CustomOpIr::new("rmd_swiglu_bwd", &[gate.into_ir(), up.into_ir(), grad.into_ir()], &[d_gate, d_up]);
    let [dg, du] = client.register(streams, OperationIr::Custom(desc.clone()), SwigluBackward { desc }).outputs();
    (dg, du)
}

/// Whether the kernels take these operands: one shape with no zero-sized dim, one dtype, bf16
/// or f32.
pub(crate) fn eligible(gate: &[usize], up: &[usize], dtypes: (DType, DType)) -> bool {
    swiglu::supported(dtypes.0) && dtypes.0 == dtypes.1 && gate == up && gate.iter().all(|&d| d > 0)
}

#[derive(Debug)]
struct SwigluNode;

impl Backward<Fused, 2> for SwigluNode {
    // (gate, up)
    type State = (Primitive, Primitive);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let grad = grads.consume::<Fused>(&ops.node);
        // The kernel reads the output gradient in the inputs' dtype (it has it unless something
        // downstream changed it).
        let grad = fusion_op::with_dtype(grad, gate.dtype);
        let (d_gate, d_up) = backward(gate, up, grad);
        for (parent, grad) in ops.parents.into_iter().zip([d_gate, d_up]) {
            if let Some(node) = parent {
                grads.register::<Fused>(node.id, grad);
            }
        }
    }
}

/// `silu(gate) ⊙ up` on `Autodiff<Cuda>` (operands checked with [`eligible`]).
fn swiglu_diff<const D: usize>(gate: Tensor<Diff, D>, up: Tensor<Diff, D>) -> Tensor<Diff, D> {
    let (gate, up) = (gate.into_primitive().tensor(), up.into_primitive().tensor());
    let out = forward(gate.primitive.clone(), up.primitive.clone());
    let out = match SwigluNode.prepare::<NoCheckpointing>([gate.node, up.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((gate.primitive, up.primitive), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `silu(gate) ⊙ up` on `Cuda` (inference).
fn swiglu_fused<const D: usize>(gate: Tensor<Fused, D>, up: Tensor<Fused, D>) -> Tensor<Fused, D> {
    let out = forward(gate.into_primitive().tensor(), up.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `Ok(silu(gate) ⊙ up)` through swiglu.cu on `Cuda` / `Autodiff<Cuda>` when the operands allow
/// it (see [`eligible`]), else the operands back.
pub(crate) fn try_swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let ok = super::kernels_enabled() && is_cuda_backend::<B>() && eligible(&gate.dims(), &up.dims(), (gate.dtype(), up.dtype()));
    if !ok {
        return Err((gate, up));
    }
    if TypeId::of::<B>() == TypeId::of::<Diff>() {
        return Ok(retype(swiglu_diff::<D>(retype(gate), retype(up))));
    }
    Ok(retype(swiglu_fused::<D>(retype(gate), retype(up))))
}
