//! rmd-kernels: the matmul, attention, SwiGLU, RMSNorm and embedding entry points the model and
//! the losses call.
//!
//! Every function is generic over burn's `Backend` and, by default, is the plain burn formula.
//! With the `cuda` feature, when the backend is burn's CUDA backend (`Cuda`, or
//! `Autodiff<Cuda>` for training), matmuls run through cuBLAS instead of cubecl's kernels: a
//! custom fusion operation with its own backward (dA = dC·Bᵀ, dB = Aᵀ·dC, both cuBLAS too),
//! enqueued on cubecl's CUDA stream. On an H200 cuBLAS is ~8x faster than burn 0.21's bf16
//! matmul (docs/benchmarks.md). For training, attention, SwiGLU and RMSNorm are single
//! autodiff nodes that keep only what their backward needs ([`autodiff`]), and the embedding's
//! weight gradient is our own scatter-add kernel ([`embedding()`]).
//!
//! The fast path is chosen at run time by the backend's type (`TypeId`), so library code keeps
//! its plain `B: Backend` bounds. It can be switched off with `RMD_CUBLAS=0` or
//! [`set_fast_path`] (the numerics tests compare both paths).

mod attention;
pub mod autodiff;
#[cfg(feature = "cuda")]
mod cuda;
mod elementwise;
mod embedding;
mod grouped;
mod layout;
mod matmul;
mod rotary;

pub use attention::{attention, repeat_kv};
pub use elementwise::{rms_norm, swiglu};
pub use embedding::embedding;
pub use grouped::{grouped_attention, grouped_attention_backward, grouped_attention_with_lse};
pub use matmul::{linear, matmul};
pub use rotary::rotary;

use std::sync::atomic::{AtomicU8, Ordering};

// 0 = not read yet, 1 = on, 2 = off.
static FAST_PATH: AtomicU8 = AtomicU8::new(0);

/// The working dtype of the nodes' softmax/normalisation arithmetic: f32, or f64 for f64 inputs.
pub(crate) fn work_dtype(d: burn::tensor::DType) -> burn::tensor::FloatDType {
    if d == burn::tensor::DType::F64 {
        burn::tensor::FloatDType::F64
    } else {
        burn::tensor::FloatDType::F32
    }
}

/// Whether backend-specific fast paths are used (default: on; `RMD_CUBLAS=0` turns them off).
pub fn fast_path_enabled() -> bool {
    match FAST_PATH.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("RMD_CUBLAS").map(|v| v != "0").unwrap_or(true);
            FAST_PATH.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the fast paths on or off for the whole process (for A/B comparisons).
pub fn set_fast_path(on: bool) {
    FAST_PATH.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether this build and backend take a fast path for matmuls (`true` only for burn's CUDA
/// backend with the `cuda` feature, cuBLAS loadable and the fast path on).
pub fn has_fast_matmul<B: burn::tensor::backend::Backend>() -> bool {
    #[cfg(feature = "cuda")]
    {
        fast_path_enabled() && cuda::is_cuda_backend::<B>() && cuda::cublas_available()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}
