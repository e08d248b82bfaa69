//! Flash attention (flash.cu) on cubecl CUDA tensors: compiled once per device and head dim
//! with NVRTC, launched on cubecl's own stream (like the cuBLAS GEMMs, no host sync).
//!
//! Nothing `[L, L]`-sized ever reaches device memory: the forward keeps each query tile's
//! softmax state on chip and writes the output and one log-sum-exp per query; the backward
//! recomputes the probabilities tile by tile from them.

use std::ffi::c_void;

use burn::tensor::DType;
use cudarc::driver::result as drv;
use cudarc::driver::sys as cu;

use super::launch::{bind, dims4, empty, empty_seq_major, launch, params, readable, T, THREADS};
use super::nvrtc;

const SOURCE: &str = include_str!("flash.cu");
const TILE: usize = 64;

/// Head dims the kernels are built for.
pub(crate) fn supported(head_dim: usize) -> bool {
    head_dim == 64 || head_dim == 128
}

// Shared memory of each kernel: SMEM_FWD / SMEM_BWD of flash.cu (bf16 tiles padded to hd + 8
// columns, f32 score tiles to 68, mask rows to 68 bytes); the CPU emulation launches with those
// and checks every access against them.
fn smem_fwd(hd: usize) -> usize {
    3 * TILE * (hd + 8) * 2 + TILE * 68 * 4 + TILE * 72 * 2 + TILE * (hd + 4) * 4 + TILE * 68
}

fn smem_bwd(hd: usize) -> usize {
    4 * TILE * (hd + 8) * 2 + 2 * TILE * 68 * 4 + 2 * TILE * 72 * 2 + TILE * 68 + 2 * TILE * 4
}

#[derive(Clone, Copy)]
struct Kernels {
    fwd: cu::CUfunction,
    prep: cu::CUfunction,
    bwd: cu::CUfunction,
    reduce: cu::CUfunction,
    dq: cu::CUfunction,
}

// SAFETY: function handles of a loaded module are plain driver handles, valid on any thread
// with the module's context current.
unsafe impl Send for Kernels {}

static KERNELS: nvrtc::Cache<usize, Kernels> = nvrtc::Cache::new();

/// Device `index`'s kernels for head dim `hd` (compiled on first use), its context current.
fn kernels(index: usize, hd: usize) -> Kernels {
    KERNELS.get(index, hd, || compile(index, hd))
}

fn compile(index: usize, hd: usize) -> Kernels {
    let (major, minor) = nvrtc::compute_capability(index);
    assert!(major >= 8, "flash attention needs bf16 tensor cores (sm_80+), device has sm_{major}{minor}");
    // RMD_FLASH_MASK_WORDS=0 reads the mask a byte at a time (a diagnostic for the word path).
    let words = std::env::var("RMD_FLASH_MASK_WORDS").map_or(1, |v| u8::from(v != "0"));
    let module = nvrtc::compile(index, "flash.cu", SOURCE, &[format!("-DHD={hd}"), format!("-DMASK_WORDS={words}")]);
    let k = Kernels { fwd: module.function("flash_fwd"), prep: module.function("flash_bwd_prep"), bwd: module.function("flash_bwd"), reduce: module.function("flash_bwd_reduce"), dq: module.function("flash_bwd_dq") };
    let attr = cu::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
    // SAFETY: attributes of functions of a module loaded in the current context.
    unsafe {
        drv::function::set_function_attribute(k.fwd, attr, smem_fwd(hd) as i32).expect("flash_fwd shared memory");
        drv::function::set_function_attribute(k.bwd, attr, smem_bwd(hd) as i32).expect("flash_bwd shared memory");
    }
    tracing::debug!(hd, "compiled flash attention kernels for sm_{major}{minor}");
    k
}

/// The mask's element strides and byte width (`true` = masked; broadcast dims have stride 0).
fn mask_meta(mask: &T) -> ([i64; 4], i32) {
    let s = mask.meta.strides();
    ([s[0] as i64, s[1] as i64, s[2] as i64, s[3] as i64], mask.dtype.size() as i32)
}

/// One block per (64-position tile, query head, row): the grid of flash_fwd and flash_bwd.
fn tile_grid(rows: usize, heads: usize, len: usize) -> (u32, u32, u32) {
    (len.div_ceil(TILE) as u32, heads as u32, rows as u32)
}

/// `(out, lse)` for bf16 `q: [rows, heads, L, d]`, `k, v: [rows, kv_heads, L, d]` (any strides
/// with `d` contiguous, see [`readable`]) and the bool `mask` (`[rows, heads, L, L]`, any
/// strides); `out` is stored sequence-major ([`empty_seq_major`]), `lse: [rows, heads, L]` in f32.
pub(crate) fn forward(q: T, k: T, v: T, mask: T, scale: f64) -> (T, T) {
    let ((q, qs), (k, ks), (v, vs)) = (readable(q), readable(k), readable(v));
    let [rows, heads, len, hd] = dims4(&q);
    let kvh = dims4(&k)[1];
    let kern = kernels(q.device.index, hd);
    let (out, os) = empty_seq_major(&q, [rows, heads, len, hd], q.dtype);
    let lse = empty(&q, [rows, heads, len, 1], DType::F32);
    let b = bind(&[&q, &k, &v, &mask, &out, &lse]);
    let (ms, melem) = mask_meta(&mask);
    let (heads_i, kvh_i, len_i, scale_f) = (heads as i32, kvh as i32, len as i32, scale as f32);
    let [pq, pk, pv, pm, po, pl] = std::array::from_fn(|i| b.ptrs[i]);
    let mut p = params![pq, qs, pk, ks, pv, vs, pm, ms[0], ms[1], ms[2], ms[3], melem, po, os, pl, heads_i, kvh_i, len_i, scale_f];
    launch(kern.fwd, tile_grid(rows, heads, len), smem_fwd(hd), b.stream, &mut p);
    (out, lse)
}

/// `(dq, dk, dv)` (the inputs' dtype, stored sequence-major) for the forward's inputs, its
/// output `out`, `lse` and the output gradient `d_out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(q: T, k: T, v: T, out: T, lse: T, d_out: T, mask: T, scale: f64) -> (T, T, T) {
    let [(q, qs), (k, ks), (v, vs), (out, os), (d_out, dos)] = [q, k, v, out, d_out].map(readable);
    let [rows, heads, len, hd] = dims4(&q);
    let kvh = dims4(&k)[1];
    let len_pad = len.div_ceil(TILE) * TILE;
    let kern = kernels(q.device.index, hd);
    let (dq, dqs) = empty_seq_major(&q, [rows, heads, len, hd], q.dtype);
    let (dk, dks) = empty_seq_major(&q, [rows, kvh, len, hd], k.dtype);
    let (dv, _) = empty_seq_major(&q, [rows, kvh, len, hd], v.dtype);
    let dq_acc = empty(&q, [rows, heads, len, hd], DType::F32);
    let dvec = empty(&q, [rows, heads, len, 1], DType::F32);
    // Per-query-head dK, dV (every key tile written whole, hence the padded length).
    let dk_part = empty(&q, [rows, heads, len_pad, hd], DType::F32);
    let dv_part = empty(&q, [rows, heads, len_pad, hd], DType::F32);
    let b = bind(&[&q, &k, &v, &out, &d_out, &lse, &mask, &dq, &dk, &dv, &dvec, &dk_part, &dv_part, &dq_acc]);
    let [pq, pk, pv, po, pdo, pl, pm, pdq, pdk, pdv, pd, pkp, pvp, pacc] = std::array::from_fn(|i| b.ptrs[i]);
    let n = (rows * heads * len) as i64;
    let (heads_i, kvh_i, len_i, len_pad_i, scale_f) = (heads as i32, kvh as i32, len as i32, len_pad as i32, scale as f32);
    // SAFETY: `pacc` is a live allocation of `n * hd` f32 ordered on `b.stream`.
    unsafe { drv::memset_d8_async(pacc, 0, n as usize * hd * 4, b.stream).expect("zero dQ") };
    let mut p = params![po, os, pdo, dos, pd, heads_i, len_i, n];
    launch(kern.prep, ((n as usize).div_ceil(THREADS as usize / 32) as u32, 1, 1), 0, b.stream, &mut p);
    let (ms, melem) = mask_meta(&mask);
    let mut p = params![pq, qs, pk, ks, pv, vs, pdo, dos, pl, pd, pm, ms[0], ms[1], ms[2], ms[3], melem, pacc, pkp, pvp, heads_i, kvh_i, len_i, len_pad_i, scale_f];
    launch(kern.bwd, tile_grid(rows, heads, len), smem_bwd(hd), b.stream, &mut p);
    let total = (rows * kvh * len * hd) as i64;
    let mut p = params![pkp, pvp, pdk, pdv, dks, heads_i, kvh_i, len_i, len_pad_i, total];
    launch(kern.reduce, ((total as usize).div_ceil(THREADS as usize) as u32, 1, 1), 0, b.stream, &mut p);
    let nq = n * hd as i64;
    let mut p = params![pacc, pdq, dqs, heads_i, len_i, nq];
    launch(kern.dq, ((nq as usize / 2).div_ceil(THREADS as usize) as u32, 1, 1), 0, b.stream, &mut p);
    (dq, dk, dv)
}
