//! Grouped-query attention written as explicit products, with its backward by hand.
//!
//! The CUDA training path runs these as one autodiff node that saves only `q`, `k`, `v` and
//! recomputes the scores and probabilities in the backward: no `[rows, heads, len, len]`
//! tensor outlives its layer (PyTorch's SDPA keeps none either). Everything here is generic
//! over the backend so the same formulas are checked on the CPU against burn's autodiff.
//!
//! Grouped queries without copies: query heads `g·n .. (g+1)·n` all read kv head `g`, so
//! `q: [rows, heads, len, d]` viewed as `[rows, kv_heads, n·len, d]` multiplies `k` directly;
//! the kv gradients then sum over the group inside the GEMM.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, FloatDType, Tensor};

use crate::matmul::matmul;
use crate::work_dtype;

/// `q·kᵀ` as `[rows, heads, len_q, len_k]` for `q: [rows, heads, len_q, d]`, `k: [rows, kv_heads, len_k, d]`.
pub(crate) fn scores<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>) -> Tensor<B, 4> {
    let [rows, heads, len, d] = q.dims();
    let [_, kvh, len_k, _] = k.dims();
    let grouped = q.reshape([rows, kvh, heads / kvh * len, d]);
    matmul(grouped, k.swap_dims(2, 3)).reshape([rows, heads, len, len_k])
}

/// `p·v` as `[rows, heads, len_q, d]` for `p: [rows, heads, len_q, len_k]`, `v: [rows, kv_heads, len_k, d]`.
fn apply<B: Backend>(p: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [rows, heads, len, len_k] = p.dims();
    let [_, kvh, _, d] = v.dims();
    matmul(p.reshape([rows, kvh, heads / kvh * len, len_k]), v).reshape([rows, heads, len, d])
}

/// For a `[rows, heads, len_q, x]` tensor: its `[rows, kv_heads, x, n·len_q]` transpose (a view).
fn grouped_t<B: Backend>(t: Tensor<B, 4>, kvh: usize) -> Tensor<B, 4> {
    grouped(t, kvh).swap_dims(2, 3)
}

/// `softmax(mask(scores · scale))` over the last dim, in f32 (f64 stays f64), returned in the
/// scores' dtype, with each row's log-sum-exp (`[.., 1]`, working dtype). NaN-safe: a fully
/// masked row gives zeros (and a hugely negative, finite log-sum-exp).
pub(crate) fn softmax_forward<B: Backend>(scores: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let dtype = scores.dtype();
    let s = scores.cast(work_dtype(dtype)).mul_scalar(scale).mask_fill(mask, f32::NEG_INFINITY);
    let finfo = s.dtype().finfo().expect("float scores");
    let max = s.clone().max_dim(3).clamp_min(finfo.min);
    let num = (s - max.clone()).exp();
    let sum = num.clone().sum_dim(3).clamp_min(finfo.min_positive);
    let lse = max + sum.clone().log();
    ((num / sum).cast(FloatDType::from(dtype)), lse)
}

/// The probabilities again from the scores and the forward's log-sum-exp: one elementwise pass,
/// no row reductions. Masked entries (and fully masked rows) give exactly zero.
fn softmax_from_lse<B: Backend>(scores: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64, lse: Tensor<B, 4>) -> Tensor<B, 4> {
    let dtype = scores.dtype();
    let s = scores.cast(work_dtype(dtype)).mul_scalar(scale).mask_fill(mask, f32::NEG_INFINITY);
    (s - lse).exp().cast(FloatDType::from(dtype))
}

/// The scores' gradient from the probabilities `p` and their gradient `dp`:
/// `dS = scale · p ⊙ (dp − Σⱼ dp ⊙ p)` (masked entries have `p = 0`, so they get none).
pub(crate) fn softmax_backward<B: Backend>(p: Tensor<B, 4>, dp: Tensor<B, 4>, scale: f64) -> Tensor<B, 4> {
    let dtype = dp.dtype();
    let work = work_dtype(dtype);
    let (p, g) = (p.cast(work), dp.cast(work));
    let gp = g * p.clone();
    let s = gp.clone().sum_dim(3);
    (gp - p * s).mul_scalar(scale).cast(FloatDType::from(dtype))
}

/// Grouped-query attention forward: `softmax(q·kᵀ·scale, masked) · v`.
/// `q: [rows, heads, len, d]`, `k, v: [rows, kv_heads, len, d]`, `mask: [rows, heads, len, len]`.
pub fn grouped_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>, scale: f64) -> Tensor<B, 4> {
    grouped_attention_with_lse(q, k, v, mask, scale).0
}

/// [`grouped_attention`] and each query's log-sum-exp of its masked, scaled scores
/// (`[rows, heads, len, 1]`, f32; f64 for f64 inputs), which is what the backward needs.
pub fn grouped_attention_with_lse<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
    scale: f64,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let (p, lse) = softmax_forward(scores(q, k), mask, scale);
    (apply(p, v), lse)
}

/// The gradients `(dq, dk, dv)` of [`grouped_attention`] for the output gradient `d_out`, from
/// the inputs and the forward's log-sum-exp `lse` ([`grouped_attention_with_lse`]): the scores
/// are recomputed by one product and the probabilities by one elementwise pass.
pub fn grouped_attention_backward<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
    scale: f64,
    lse: Tensor<B, 4>,
    d_out: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let kvh = k.dims()[1];
    let p = softmax_from_lse(scores(q.clone(), k.clone()), mask, scale, lse);
    // dV = Pᵀ·dO and dP = dO·Vᵀ, summed over each kv head's query group by the grouped views.
    let dv = matmul(grouped_t(p.clone(), kvh), grouped(d_out.clone(), kvh));
    let dp = scores(d_out, v);
    let ds = softmax_backward(p, dp, scale);
    // dQ = dS·K, dK = dSᵀ·Q.
    let dq = apply(ds.clone(), k);
    let dk = matmul(grouped_t(ds, kvh), grouped(q, kvh));
    (dq, dk, dv)
}

/// A `[rows, heads, len, x]` tensor as `[rows, kv_heads, n·len, x]` (a reshape).
fn grouped<B: Backend>(t: Tensor<B, 4>, kvh: usize) -> Tensor<B, 4> {
    let [rows, heads, len, x] = t.dims();
    t.reshape([rows, kvh, heads / kvh * len, x])
}
