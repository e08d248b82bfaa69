//! Rotary embeddings as fusion custom operations and an autodiff node that keeps only the
//! tables (the backward is the transposed rotation of the output gradient).

use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionRuntime;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::fusion_op::{self, Inner, Primitive, Runtime};
use super::rotary;
use super::{Diff, Fused};

type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;

#[derive(Debug)]
struct Rotate {
    desc: CustomOpIr,
    backward: bool,
}

impl Operation<Runtime> for Rotate {
    fn execute(&self, handles: &mut Handles) {
        let ([x, cos, sin], [y]) = self.desc.as_fixed();
        let mut get = |t: &TensorIr| handles.get_float_tensor::<Inner>(t);
        let (x, cos, sin) = (get(x), get(cos), get(sin));
        handles.register_float_tensor::<Inner>(&y.id, rotary::apply(x, cos, sin, self.backward));
    }
}

fn rotate(x: Primitive, cos: Primitive, sin: Primitive, backward: bool) -> Primitive {
    let client = x.client.clone();
    let y = TensorIr::uninit(client.create_empty_handle(), x.shape.clone(), x.dtype);
    let streams = OperationStreams::with_inputs([&x, &cos, &sin]);
    let name = if backward { "rmd_rotary_bwd" } else { "rmd_rotary_fwd" };
    let desc = CustomOpIr::new(name, &[x.into_ir(), cos.into_ir(), sin.into_ir()], &[y]);
    client.register(streams, OperationIr::Custom(desc.clone()), Rotate { desc, backward }).output()
}

/// Whether the kernel takes these operands: bf16 `x: [rows, heads, L, d]` with `d` a multiple
/// of 4, f32 tables `[rows, 1, L, d]`.
pub(crate) fn eligible(x: [usize; 4], table: [usize; 4], dtypes: [DType; 3]) -> bool {
    dtypes == [DType::BF16, DType::F32, DType::F32] && x[3].is_multiple_of(4) && x[3] > 0 && table == [x[0], 1, x[2], x[3]] && x.iter().all(|&d| d > 0)
}

#[derive(Debug)]
struct RotaryNode;

impl Backward<Fused, 1> for RotaryNode {
    // (cos, sin)
    type State = (Primitive, Primitive);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (cos, sin) = ops.state;
        unary::<Fused, _>(ops.parents, ops.node, grads, |grad| {
            rotate(fusion_op::with_dtype(grad, DType::BF16), cos, sin, true)
        });
    }
}

/// `x` rotated on `Autodiff<Cuda>` (operands checked with [`eligible`]; the tables carry no gradient).
pub(crate) fn rotary_diff(x: Tensor<Diff, 4>, cos: Tensor<Diff, 4>, sin: Tensor<Diff, 4>) -> Tensor<Diff, 4> {
    let x = x.into_primitive().tensor();
    let (cos, sin) = (cos.into_primitive().tensor().primitive, sin.into_primitive().tensor().primitive);
    let y = rotate(x.primitive, cos.clone(), sin.clone(), false);
    let out = match RotaryNode.prepare::<NoCheckpointing>([x.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((cos, sin), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `x` rotated on `Cuda` (inference).
pub(crate) fn rotary_fused(x: Tensor<Fused, 4>, cos: Tensor<Fused, 4>, sin: Tensor<Fused, 4>) -> Tensor<Fused, 4> {
    let y = rotate(x.into_primitive().tensor(), cos.into_primitive().tensor(), sin.into_primitive().tensor(), false);
    Tensor::from_primitive(TensorPrimitive::Float(y))
}
