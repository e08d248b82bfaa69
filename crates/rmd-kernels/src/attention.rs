//! Scaled dot-product attention with grouped-query heads and a boolean mask.

use burn::tensor::backend::Backend;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

/// `softmax(q·kᵀ·scale, masked) · v` for `q: [rows, heads, len, d]`, `k, v: [rows, kv_heads,
/// len, d]` (grouped-query attention: `heads` is a multiple of `kv_heads` and query head `i`
/// reads kv head `i / (heads / kv_heads)`, as in transformers) and `mask: [rows, heads, len,
/// len]` (`true` = masked).
///
/// - `Cuda` / `Autodiff<Cuda>`, bf16, head dim 64 or 128, with `RMD_KERNELS=1`: flash attention
///   (our CUDA kernels, forward and backward; nothing `[len, len]`-sized is materialised).
///   Opt-in until the current kernels have passed the GPU numerics tests;
/// - other `Autodiff<Cuda>` inputs: one autodiff node over cuBLAS products that keeps only `q`,
///   `k`, `v` and recomputes the probabilities in its backward ([`crate::autodiff::attention`]);
/// - other `Cuda` (inference) inputs: the same products, no kv copies ([`grouped_attention`]);
/// - otherwise: burn's `attention` on kv heads repeated to `heads`.
///
/// # Panics
/// If `heads` is not a multiple of `kv_heads`.
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> Tensor<B, 4> {
    let (heads, kv_heads) = (q.dims()[1], k.dims()[1]);
    assert!(kv_heads > 0 && heads % kv_heads == 0, "{heads} query heads cannot share {kv_heads} kv heads");
    if skip_for_profiling() {
        // Profiling only (RMD_PROFILE_SKIP_ATTENTION=1): the step without attention's cost.
        drop((k, v, mask));
        return q;
    }
    #[cfg(feature = "cuda")]
    let (q, k, v, mask) = match crate::cuda::try_flash(q, k, v, mask, scale) {
        Ok(out) => return out,
        Err(operands) => operands,
    };
    #[cfg(feature = "cuda")]
    if crate::cuda::is_diff::<B>() {
        use crate::cuda::{retype, Fused};
        return retype(crate::autodiff::attention::<Fused>(retype(q), retype(k), retype(v), retype(mask), scale));
    }
    if crate::has_fast_matmul::<B>() {
        return crate::grouped::grouped_attention(q, k, v, mask, scale);
    }
    let n_rep = heads / kv_heads;
    let options = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
    module::attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), Some(mask), None, options)
}

/// `[rows, kv_heads, len, d]` -> `[rows, kv_heads * n_rep, len, d]`; head `i` of the result is
/// kv head `i / n_rep`, as in transformers' `repeat_kv`.
pub fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n_rep: usize) -> Tensor<B, 4> {
    if n_rep == 1 {
        return x;
    }
    let [rows, kvh, len, d] = x.dims();
    x.reshape([rows, kvh, 1, len, d]).expand([rows, kvh, n_rep, len, d]).reshape([rows, kvh * n_rep, len, d])
}

/// `RMD_PROFILE_SKIP_ATTENTION=1` replaces attention by a pass-through of `q` (wrong model
/// output, same graph shape elsewhere): the GPU bench uses it to measure attention's share of
/// a training step. Never set it for real work.
fn skip_for_profiling() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var("RMD_PROFILE_SKIP_ATTENTION").is_ok_and(|v| v == "1"))
}
