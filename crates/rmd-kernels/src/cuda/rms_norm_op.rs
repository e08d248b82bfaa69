//! RMSNorm as fusion custom operations (forward, backward) and the autodiff node over them: the
//! same node as [`crate::autodiff::rms_norm`] (it keeps `x`, `γ` and one f32 scale per row), with
//! each direction one CUDA kernel instead of burn's f32 op chain.

use burn::tensor::{DType, Shape, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionRuntime;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::fusion_op::{self, Inner, Primitive, Runtime};
use super::rms_norm;
use super::{Diff, Fused};

type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;

#[derive(Debug)]
struct RmsForward {
    desc: CustomOpIr,
    eps: f64,
}

impl Operation<Runtime> for RmsForward {
    fn execute(&self, handles: &mut Handles) {
        let ([x, gamma], [y, s]) = self.desc.as_fixed();
        let (x, gamma) = (handles.get_float_tensor::<Inner>(x), handles.get_float_tensor::<Inner>(gamma));
        let (yt, st) = rms_norm::forward(x, gamma, self.eps);
        handles.register_float_tensor::<Inner>(&y.id, yt);
        handles.register_float_tensor::<Inner>(&s.id, st);
    }
}

#[derive(Debug)]
struct RmsBackward {
    desc: CustomOpIr,
}

impl Operation<Runtime> for RmsBackward {
    fn execute(&self, handles: &mut Handles) {
        let ([x, gamma, s, g], [dx, dgamma]) = self.desc.as_fixed();
        let mut get = |t: &TensorIr| handles.get_float_tensor::<Inner>(t);
        let (x, gamma, s, g) = (get(x), get(gamma), get(s), get(g));
        let (dxt, dgt) = rms_norm::backward(x, gamma, s, g);
        handles.register_float_tensor::<Inner>(&dx.id, dxt);
        handles.register_float_tensor::<Inner>(&dgamma.id, dgt);
    }
}

fn uninit(like: &Primitive, shape: Shape, dtype: DType) -> TensorIr {
    TensorIr::uninit(like.client.create_empty_handle(), shape, dtype)
}

/// `(y, s)` on fused tensors.
fn forward(x: Primitive, gamma: Primitive, eps: f64) -> (Primitive, Primitive) {
    let client = x.client.clone();
    let mut stat = x.shape.clone();
    let last = stat.num_dims() - 1;
    stat[last] = 1;
    let y = uninit(&x, x.shape.clone(), x.dtype);
    let s = uninit(&x, stat, DType::F32);
    let streams = OperationStreams::with_inputs([&x, &gamma]);
    let desc = CustomOpIr::new("rmd_rms_fwd", &[x.into_ir(), gamma.into_ir()], &[y, s]);
    let [y, s] = client.register(streams, OperationIr::Custom(desc.clone()), RmsForward { desc, eps }).outputs();
    (y, s)
}

/// `(dx, dγ)` on fused tensors.
fn backward(x: Primitive, gamma: Primitive, s: Primitive, g: Primitive) -> (Primitive, Primitive) {
    let client = x.client.clone();
    let dx = uninit(&x, x.shape.clone(), x.dtype);
    let dgamma = uninit(&x, gamma.shape.clone(), gamma.dtype);
    let streams = OperationStreams::with_inputs([&x, &gamma, &s, &g]);
    let desc = CustomOpIr::new("rmd_rms_bwd", &[x.into_ir(), gamma.into_ir(), s.into_ir(), g.into_ir()], &[dx, dgamma]);
    let [dx, dgamma] = client.register(streams, OperationIr::Custom(desc.clone()), RmsBackward { desc }).outputs();
    (dx, dgamma)
}

/// Whether the kernels take these operands: bf16 `x` with a non-empty last dim `n` whose f32
/// backward accumulator fits the default 48 KB of shared memory, `γ: [n]` bf16 or f32.
pub(crate) fn eligible(x: &[usize], gamma: [usize; 1], dtypes: [DType; 2]) -> bool {
    let n = x.last().copied().unwrap_or(0);
    dtypes[0] == DType::BF16
        && matches!(dtypes[1], DType::BF16 | DType::F32)
        && gamma[0] == n
        && n > 0
        && n * 4 <= 48 * 1024
        && x.iter().all(|&d| d > 0)
        && n <= i32::MAX as usize
}

#[derive(Debug)]
struct RmsNode;

impl Backward<Fused, 2> for RmsNode {
    // (x, γ, s)
    type State = (Primitive, Primitive, Primitive);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, gamma, s) = ops.state;
        let g = grads.consume::<Fused>(&ops.node);
        let g = fusion_op::with_dtype(g, x.dtype);
        let (dx, dgamma) = backward(x, gamma, s, g);
        let [p_x, p_gamma] = ops.parents;
        if let Some(node) = p_x {
            grads.register::<Fused>(node.id, dx);
        }
        if let Some(node) = p_gamma {
            grads.register::<Fused>(node.id, dgamma);
        }
    }
}

/// RMSNorm over the last dim on `Autodiff<Cuda>` (operands checked with [`eligible`]).
pub(crate) fn rms_norm_diff<const D: usize>(x: Tensor<Diff, D>, gamma: Tensor<Diff, 1>, eps: f64) -> Tensor<Diff, D> {
    let (x, gamma) = (x.into_primitive().tensor(), gamma.into_primitive().tensor());
    let (y, s) = forward(x.primitive.clone(), gamma.primitive.clone(), eps);
    let out = match RmsNode.prepare::<NoCheckpointing>([x.node, gamma.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((x.primitive, gamma.primitive, s), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// RMSNorm forward on `Cuda` (inference).
pub(crate) fn rms_norm_fused<const D: usize>(x: Tensor<Fused, D>, gamma: Tensor<Fused, 1>, eps: f64) -> Tensor<Fused, D> {
    let (y, _) = forward(x.into_primitive().tensor(), gamma.into_primitive().tensor(), eps);
    Tensor::from_primitive(TensorPrimitive::Float(y))
}
