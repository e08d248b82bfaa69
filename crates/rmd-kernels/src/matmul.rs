//! `matmul` and `linear`: burn's ops, or cuBLAS on the CUDA backend.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `lhs · rhs` over the last two dimensions, like [`Tensor::matmul`].
///
/// The cuBLAS path takes operands whose batch dimensions are equal (no broadcasting) and of
/// one float dtype (f32, bf16 or f16); anything else goes to burn's matmul.
pub fn matmul<B: Backend, const D: usize>(lhs: Tensor<B, D>, rhs: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "cuda")]
    let (lhs, rhs) = match crate::cuda::try_matmul(lhs, rhs) {
        Ok(out) => return out,
        Err(operands) => operands,
    };
    lhs.matmul(rhs)
}

/// `x · weight + bias` for `x: [.., d_in]`, `weight: [d_in, d_out]` (burn's `Linear` layout),
/// `bias: [d_out]`. Without a fast path this is burn's `linear`; with one, the leading
/// dimensions are folded into one so a single GEMM does the work.
pub fn linear<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Tensor<B, D> {
    if !crate::has_fast_matmul::<B>() {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let [_, d_out] = weight.dims();
    let y = matmul(x.reshape([rows, d_in]), weight);
    #[cfg(feature = "cuda")]
    let y = match bias {
        Some(b) => crate::cuda::bias_add(y, b),
        None => y,
    };
    #[cfg(not(feature = "cuda"))]
    let y = match bias {
        Some(b) => y + b.unsqueeze_dim(0),
        None => y,
    };
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}
