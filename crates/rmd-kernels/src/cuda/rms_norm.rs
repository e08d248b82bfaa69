//! RMSNorm (rms_norm.cu) on cubecl CUDA tensors: one warp per row forward and backward, plus a
//! column reduction for the weight gradient. Compiled once per device and weight dtype with
//! NVRTC, launched on cubecl's own stream.

use std::ffi::c_void;

use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use cudarc::driver::sys as cu;

use super::launch::{bind, empty, launch, params, THREADS, T};
use super::nvrtc;


const SOURCE: &str = include_str!("rms_norm.cu");
/// Rows per backward block: `RPB` of rms_norm.cu.
const RPB: usize = 64;

#[derive(Clone, Copy)]
struct Kernels {
    fwd: cu::CUfunction,
    bwd: cu::CUfunction,
    dgamma: cu::CUfunction,
}

// SAFETY: function handles of a loaded module are plain driver handles, valid on any thread
// with the module's context current.
unsafe impl Send for Kernels {}

static KERNELS: nvrtc::Cache<bool, Kernels> = nvrtc::Cache::new();

/// Device `index`'s kernels for an f32 (`true`) or bf16 weight, compiled on first use.
fn kernels(index: usize, gamma_f32: bool) -> Kernels {
    KERNELS.get(index, gamma_f32, || {
        let options = if gamma_f32 { vec!["-DGAMMA_F32".to_string()] } else { vec![] };
        let module = nvrtc::compile(index, "rms_norm.cu", SOURCE, &options);
        Kernels { fwd: module.function("rms_fwd"), bwd: module.function("rms_bwd"), dgamma: module.function("rms_dgamma") }
    })
}

/// `(rows, n)` of `x: [.., n]`.
fn rows_n(x: &T) -> (usize, usize) {
    let shape = x.meta.shape();
    let n = *shape.last().expect("x has a feature dim");
    (shape.num_elements() / n, n)
}

/// 8-column vectors need whole vectors per row and 16-byte-aligned buffers.
fn vectorised(n: usize, ptrs: &[u64]) -> i32 {
    i32::from(n.is_multiple_of(8) && ptrs.iter().all(|p| p.is_multiple_of(16)))
}

fn blocks(count: usize) -> (u32, u32, u32) {
    (u32::try_from(count).expect("grid fits the launch limit"), 1, 1)
}

/// `(y, s)`: `y` like `x` (bf16, `[.., n]`), `s = √(mean(x²) + eps)` per row as f32 `[.., 1]`.
/// `gamma: [n]` bf16 or f32.
pub(crate) fn forward(x: T, gamma: T, eps: f64) -> (T, T) {
    let (x, gamma) = (into_contiguous(x), into_contiguous(gamma));
    let (rows, n) = rows_n(&x);
    let kern = kernels(x.device.index, gamma.dtype == DType::F32);
    let y = empty(&x, [rows, n], x.dtype);
    let s = empty(&x, [rows, 1], DType::F32);
    let b = bind(&[&x, &gamma, &y, &s]);
    let [px, pg, py, ps] = std::array::from_fn(|i| b.ptrs[i]);
    let vec = vectorised(n, &b.ptrs);
    let (rows_i, n_i, eps_f) = (rows as i64, n as i32, eps as f32);
    let mut p = params![px, pg, py, ps, rows_i, n_i, eps_f, vec];
    launch(kern.fwd, blocks(rows.div_ceil(THREADS as usize / 32)), 0, b.stream, &mut p);
    let mut stat_shape = x.meta.shape().clone();
    let last = stat_shape.num_dims() - 1;
    stat_shape[last] = 1;
    (reshape(y, x.meta.shape().clone()), reshape(s, stat_shape))
}

/// `(dx, d gamma)` from the forward's `x`, `gamma`, `s` and the output gradient `g` (bf16, like `x`).
pub(crate) fn backward(x: T, gamma: T, s: T, g: T) -> (T, T) {
    let [x, gamma, s, g] = [x, gamma, s, g].map(into_contiguous);
    let (rows, n) = rows_n(&x);
    let kern = kernels(x.device.index, gamma.dtype == DType::F32);
    let nblocks = rows.div_ceil(RPB);
    let dx = empty(&x, [rows, n], x.dtype);
    let partials = empty(&x, [nblocks, n], DType::F32);
    let dgamma = empty(&x, [n], gamma.dtype);
    let b = bind(&[&x, &gamma, &s, &g, &dx, &partials, &dgamma]);
    let [px, pgm, ps, pg, pdx, ppart, pdg] = std::array::from_fn(|i| b.ptrs[i]);
    let vec = vectorised(n, &[px, pgm, pg, pdx]);
    let (rows_i, n_i, nblocks_i) = (rows as i64, n as i32, nblocks as i32);
    let mut p = params![px, pgm, ps, pg, pdx, ppart, rows_i, n_i, vec];
    launch(kern.bwd, blocks(nblocks), n * 4, b.stream, &mut p);
    let mut p = params![ppart, pdg, nblocks_i, n_i];
    launch(kern.dgamma, blocks(n.div_ceil(THREADS as usize)), 0, b.stream, &mut p);
    (reshape(dx, x.meta.shape().clone()), dgamma)
}

/// A contiguous tensor viewed with another shape of the same size.
fn reshape(t: T, shape: Shape) -> T {
    T::new_contiguous(t.client.clone(), t.device.clone(), shape, t.handle, t.dtype)
}
