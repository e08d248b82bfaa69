//! Rotary position embeddings (rotary.cu) on cubecl CUDA tensors, forward and backward, reading
//! the model's `[rows, L, heads, d]` projections in place and writing sequence-major outputs
//! (what attention reads and what the projections' gradients need, so no transposes either way).

use std::ffi::c_void;

use burn::tensor::DType;
use burn_cubecl::kernel::into_contiguous;
use cudarc::driver::sys as cu;

use super::launch::{bind, dims4, empty_seq_major, launch, params, readable, THREADS, T};
use super::nvrtc;


const SOURCE: &str = include_str!("rotary.cu");

#[derive(Clone, Copy)]
struct Kernel(cu::CUfunction);

// SAFETY: a function handle of a loaded module is a plain driver handle, valid on any thread
// with the module's context current.
unsafe impl Send for Kernel {}

static KERNEL: nvrtc::Cache<(), Kernel> = nvrtc::Cache::new();

/// `x` rotated (forward) or the gradient `x` rotated back (`backward`): bf16 `x: [rows, heads,
/// L, d]` (`d` a multiple of 4), f32 `cos`, `sin: [rows, 1, L, d]`; the result is bf16,
/// stored sequence-major.
pub(crate) fn apply(x: T, cos: T, sin: T, backward: bool) -> T {
    let (x, xs) = readable(x);
    let (cos, sin) = (into_contiguous(cos), into_contiguous(sin));
    let [rows, heads, len, d] = dims4(&x);
    let Kernel(f) = KERNEL.get(x.device.index, (), || Kernel(nvrtc::compile(x.device.index, "rotary.cu", SOURCE, &[]).function("rotary")));
    let (y, ys) = empty_seq_major(&x, [rows, heads, len, d], DType::BF16);
    let b = bind(&[&x, &cos, &sin, &y]);
    let [px, pc, ps, py] = std::array::from_fn(|i| b.ptrs[i]);
    let (ts_r, ts_p) = ((len * d) as i64, d as i64);
    let n = (rows * heads * len * d / 4) as i64;
    let (heads_i, len_i, d_i, bwd) = (heads as i32, len as i32, d as i32, i32::from(backward));
    let mut p = params![px, xs, pc, ps, ts_r, ts_p, py, ys, heads_i, len_i, d_i, bwd, n];
    let grid = u32::try_from((n as usize).div_ceil(THREADS as usize)).expect("grid fits the launch limit");
    launch(f, (grid, 1, 1), 0, b.stream, &mut p);
    y
}
