//! The embedding as an autodiff node on `Autodiff<Cuda>`: the forward is burn's own gather on
//! the fused backend; the weight gradient is a fusion custom operation running embedding.cu.
//! The node keeps only the ids (burn's keeps the weight too).

use burn::tensor::ops::ModuleOps;
use burn::tensor::{DType, FloatDType, Int, Shape, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::FusionRuntime;
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::embedding;
use super::fusion_op::{Inner, Primitive, Runtime};
use super::{Diff, Fused};

type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;

#[derive(Debug)]
struct EmbeddingBackward {
    desc: CustomOpIr,
}

impl Operation<Runtime> for EmbeddingBackward {
    fn execute(&self, handles: &mut Handles) {
        let ([d_out, ids], [d_weight]) = self.desc.as_fixed();
        let d_out = handles.get_float_tensor::<Inner>(d_out);
        let ids = handles.get_int_tensor::<Inner>(ids);
        let grad = embedding::backward(d_out, ids, d_weight.shape[0], d_weight.dtype);
        handles.register_float_tensor::<Inner>(&d_weight.id, grad);
    }
}

/// The weight gradient (`shape`, `dtype`) on fused tensors.
fn backward(d_out: Primitive, ids: Primitive, shape: Shape, dtype: DType) -> Primitive {
    let client = d_out.client.clone();
    let d_weight = TensorIr::uninit(client.create_empty_handle(), shape, dtype);
    let streams = OperationStreams::with_inputs([&d_out, &ids]);
    let desc = CustomOpIr::new("rmd_embedding_bwd", &[d_out.into_ir(), ids.into_ir()], &[d_weight]);
    client.register(streams, OperationIr::Custom(desc.clone()), EmbeddingBackward { desc }).output()
}

/// Whether the kernels take these operands: a bf16 or f32 weight, i32 or i64 ids, no zero-sized
/// dim.
pub(crate) fn eligible(weight: [usize; 2], ids: [usize; 2], dtypes: (DType, DType)) -> bool {
    matches!(dtypes.0, DType::BF16 | DType::F32) && matches!(dtypes.1, DType::I32 | DType::I64) && weight.iter().chain(&ids).all(|&d| d > 0)
}

#[derive(Debug)]
struct EmbeddingNode;

impl Backward<Fused, 1> for EmbeddingNode {
    // (ids, the weight's shape, the weight's dtype)
    type State = (Primitive, Shape, DType);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (ids, shape, dtype) = ops.state;
        unary::<Fused, _>(ops.parents, ops.node, grads, |grad| {
            // The kernels read a bf16 or f32 output gradient (it has the weight's dtype unless
            // something downstream changed it).
            let grad = match grad.dtype {
                DType::BF16 | DType::F32 => grad,
                _ => Tensor::<Fused, 3>::from_primitive(TensorPrimitive::Float(grad)).cast(FloatDType::F32).into_primitive().tensor(),
            };
            backward(grad, ids, shape, dtype)
        });
    }
}

/// `weight[ids]` on `Autodiff<Cuda>` (operands checked with [`eligible`]).
pub(crate) fn embedding_diff(weight: Tensor<Diff, 2>, ids: Tensor<Diff, 2, Int>) -> Tensor<Diff, 3> {
    let weight = weight.into_primitive().tensor();
    let ids: Primitive = ids.into_primitive();
    let (shape, dtype) = (weight.primitive.shape.clone(), weight.primitive.dtype);
    let out = match EmbeddingNode.prepare::<NoCheckpointing>([weight.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((ids.clone(), shape, dtype), Fused::embedding(weight.primitive, ids)),
        OpsKind::UnTracked(prep) => prep.finish(Fused::embedding(weight.primitive, ids)),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
