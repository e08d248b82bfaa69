//! SwiGLU's gating (swiglu.cu) on cubecl CUDA tensors: `silu(gate) ⊙ up` and both input
//! gradients, one bandwidth-bound kernel each (burn's formula took three kernels and an f32
//! intermediate per layer forward). Compiled once per device with NVRTC, launched on cubecl's
//! own stream.

use std::ffi::c_void;

use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use cudarc::driver::sys as cu;

use super::launch::{bind, launch, params, THREADS, T};
use super::nvrtc;


const SOURCE: &str = include_str!("swiglu.cu");

#[derive(Clone, Copy)]
struct Kernels {
    fwd_bf16: cu::CUfunction,
    fwd_f32: cu::CUfunction,
    bwd_bf16: cu::CUfunction,
    bwd_f32: cu::CUfunction,
}

// SAFETY: function handles of a loaded module are plain driver handles, valid on any thread
// with the module's context current.
unsafe impl Send for Kernels {}

static KERNELS: nvrtc::Cache<(), Kernels> = nvrtc::Cache::new();

/// Device `index`'s kernels (compiled on first use), its context current.
fn kernels(index: usize) -> Kernels {
    KERNELS.get(index, (), || {
        let module = nvrtc::compile(index, "swiglu.cu", SOURCE, &[]);
        tracing::debug!("compiled the SwiGLU kernels");
        Kernels {
            fwd_bf16: module.function("swiglu_fwd_bf16"),
            fwd_f32: module.function("swiglu_fwd_f32"),
            bwd_bf16: module.function("swiglu_bwd_bf16"),
            bwd_f32: module.function("swiglu_bwd_f32"),
        }
    })
}

/// Whether the kernels take this dtype.
pub(crate) fn supported(dtype: DType) -> bool {
    matches!(dtype, DType::BF16 | DType::F32)
}

/// A new contiguous tensor of `shape` and `dtype` on `like`'s device.
fn empty(like: &T, shape: Shape, dtype: DType) -> T {
    let handle = like.client.empty(shape.num_elements() * dtype.size());
    T::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, dtype)
}

/// Blocks of `launch`'s [`THREADS`] for `n` elements, 8 per thread.
fn grid(n: usize) -> (u32, u32, u32) {
    (u32::try_from(n.div_ceil(8).div_ceil(THREADS as usize)).expect("grid fits the launch limit"), 1, 1)
}

/// 16-byte loads and stores need every buffer 16-byte aligned (the groups of 8 then are too).
fn vectorised(ptrs: &[u64]) -> i32 {
    i32::from(ptrs.iter().all(|p| p % 16 == 0))
}

/// `silu(gate) ⊙ up` for `gate`, `up` of one shape and dtype (bf16 or f32, checked by the
/// caller), in that dtype.
pub(crate) fn forward(gate: T, up: T) -> T {
    let (gate, up) = (into_contiguous(gate), into_contiguous(up));
    let dtype = gate.dtype;
    debug_assert!(supported(dtype) && up.dtype == dtype && up.meta.shape() == gate.meta.shape());
    let shape = gate.meta.shape().clone();
    let n = shape.num_elements();
    let out = empty(&gate, shape, dtype);
    if n == 0 {
        return out;
    }
    let kern = kernels(gate.device.index);
    let b = bind(&[&gate, &up, &out]);
    let [pg, pu, po] = std::array::from_fn(|i| b.ptrs[i]);
    let vec = vectorised(&b.ptrs);
    let f = if dtype == DType::BF16 { kern.fwd_bf16 } else { kern.fwd_f32 };
    let n_i = n as i64;
    let mut p = params![pg, pu, po, n_i, vec];
    launch(f, grid(n), 0, b.stream, &mut p);
    out
}

/// `(d_gate, d_up)` for the forward's inputs and the output gradient `grad`, all of one shape
/// and dtype (bf16 or f32, checked by the caller), in that dtype.
pub(crate) fn backward(gate: T, up: T, grad: T) -> (T, T) {
    let (gate, up, grad) = (into_contiguous(gate), into_contiguous(up), into_contiguous(grad));
    let dtype = gate.dtype;
    debug_assert!(supported(dtype) && up.dtype == dtype && grad.dtype == dtype);
    debug_assert!(up.meta.shape() == gate.meta.shape() && grad.meta.shape() == gate.meta.shape());
    let shape = gate.meta.shape().clone();
    let n = shape.num_elements();
    let d_gate = empty(&gate, shape.clone(), dtype);
    let d_up = empty(&gate, shape, dtype);
    if n == 0 {
        return (d_gate, d_up);
    }
    let kern = kernels(gate.device.index);
    let b = bind(&[&gate, &up, &grad, &d_gate, &d_up]);
    let [pg, pu, pd, pdg, pdu] = std::array::from_fn(|i| b.ptrs[i]);
    let vec = vectorised(&b.ptrs);
    let f = if dtype == DType::BF16 { kern.bwd_bf16 } else { kern.bwd_f32 };
    let n_i = n as i64;
    let mut p = params![pg, pu, pd, pdg, pdu, n_i, vec];
    launch(f, grid(n), 0, b.stream, &mut p);
    (d_gate, d_up)
}
