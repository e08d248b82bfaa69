//! The cuBLAS GEMM as a custom operation of burn's fusion stream.
//!
//! Registering it (rather than resolving the fused tensors and calling cuBLAS directly) keeps
//! the fusion queue lazy: the GEMM runs when the stream reaches it, between the kernels that
//! produce its inputs and those that read its output.

use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::CubeBackend;
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use cubecl::cuda::CudaRuntime;

use super::{gemm, Fused};

pub(crate) type Inner = CubeBackend<CudaRuntime, f32, i32, u8>;
pub(crate) type Runtime = <Inner as burn_fusion::FusionBackend>::FusionRuntime;
pub(crate) type Primitive = FusionTensor<Runtime>;

#[derive(Debug)]
struct CublasMatmul {
    desc: CustomOpIr,
}

impl Operation<Runtime> for CublasMatmul {
    fn execute(&self, handles: &mut HandleContainer<<Runtime as FusionRuntime>::FusionHandle>) {
        let ([lhs, rhs], [out]) = self.desc.as_fixed();
        let lhs = handles.get_float_tensor::<Inner>(lhs);
        let rhs = handles.get_float_tensor::<Inner>(rhs);
        handles.register_float_tensor::<Inner>(&out.id, gemm::matmul(lhs, rhs));
    }
}

/// `lhs · rhs` on fused CUDA tensors of equal batch shape (checked by the caller).
pub(crate) fn matmul(lhs: Primitive, rhs: Primitive) -> Primitive {
    let client = lhs.client.clone();
    let mut shape = lhs.shape.clone();
    let d = shape.num_dims();
    shape[d - 1] = rhs.shape[d - 1];
    let out = TensorIr::uninit(client.create_empty_handle(), shape, lhs.dtype);
    let streams = OperationStreams::with_inputs([&lhs, &rhs]);
    let desc = CustomOpIr::new("rmd_cublas_matmul", &[lhs.into_ir(), rhs.into_ir()], &[out]);
    client.register(streams, OperationIr::Custom(desc.clone()), CublasMatmul { desc }).output()
}

pub(crate) fn matmul_tensor<const D: usize>(lhs: Tensor<Fused, D>, rhs: Tensor<Fused, D>) -> Tensor<Fused, D> {
    let out = matmul(lhs.into_primitive().tensor(), rhs.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `p` in `dtype` (a cast only when it differs): our kernels read output gradients in their
/// inputs' dtype, whatever dtype the graph delivered them in.
pub(crate) fn with_dtype(p: Primitive, dtype: burn::tensor::DType) -> Primitive {
    use burn::tensor::ops::FloatTensorOps;
    if p.dtype == dtype {
        p
    } else {
        Fused::float_cast(p, dtype.into())
    }
}
