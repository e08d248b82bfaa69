//! cuBLAS strided-batched GEMM on cubecl CUDA tensors.
//!
//! Ordering with cubecl's own work: the GEMM is enqueued on the CUDA stream cubecl runs this
//! client's kernels on (exposed by our one-field patch of cubecl-cuda, vendor/cubecl-cuda), so
//! it runs after the kernels that wrote its inputs and before those that read its output, and
//! the host never waits. cubecl's memory pools are stream-ordered, so buffers released after
//! the call can be reused at once by later work on that stream.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::tensor::DType;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;
use cudarc::cublas::sys as blas;
use cudarc::driver::result as drv;
use cudarc::driver::sys as cu;

use crate::layout::{describe, gemm_args, MatrixLayout};

type T = CubeTensor<CudaRuntime>;

/// The operand as a tensor cuBLAS can read in place (made contiguous only when it cannot).
fn operand(tensor: T) -> (T, MatrixLayout) {
    let layout = |t: &T| {
        let shape: Vec<usize> = t.meta.shape().iter().copied().collect();
        let strides: Vec<usize> = t.meta.strides().iter().copied().collect();
        describe(&shape, &strides)
    };
    match layout(&tensor) {
        Some(l) => (tensor, l),
        None => {
            let t = into_contiguous(tensor);
            let l = layout(&t).expect("a contiguous tensor is row-major");
            (t, l)
        }
    }
}

struct Blas {
    handle: blas::cublasHandle_t,
    ctx: cu::CUcontext,
}

// SAFETY: the handle is only used under the `BLAS` mutex.
unsafe impl Send for Blas {}

static BLAS: Mutex<Option<HashMap<usize, Blas>>> = Mutex::new(None);

/// Makes device `index`'s primary context (the one cubecl uses) current on this thread.
pub(super) fn make_current(index: usize) -> cu::CUcontext {
    // SAFETY: plain driver calls on a device cubecl already initialised; retaining the primary
    // context again only bumps its reference count.
    unsafe {
        let dev = drv::device::get(index as i32).expect("CUDA device");
        let ctx = drv::primary_ctx::retain(dev).expect("primary context");
        drv::ctx::set_current(ctx).expect("set context");
        ctx
    }
}

fn check(status: blas::cublasStatus_t, what: &str) {
    assert!(status == blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS, "cuBLAS {what} failed: {status:?}");
}

/// Runs `f` with device `index`'s cuBLAS handle bound to `stream`, the device's context current.
fn with_blas<R>(index: usize, stream: cu::CUstream, f: impl FnOnce(&Blas) -> R) -> R {
    let mut guard = BLAS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let b = map.entry(index).or_insert_with(|| {
        let ctx = make_current(index);
        // SAFETY: plain cuBLAS setup on a device whose context is current.
        unsafe {
            let mut handle = std::ptr::null_mut();
            check(blas::cublasCreate_v2(&mut handle), "create");
            Blas { handle, ctx }
        }
    });
    // SAFETY: `ctx` is the retained primary context of this device; `stream` is a live cubecl
    // stream of that context (several client threads may own different ones).
    unsafe {
        drv::ctx::set_current(b.ctx).expect("set context");
        check(blas::cublasSetStream_v2(b.handle, stream as blas::cudaStream_t), "set stream");
    }
    f(b)
}

fn data_type(dtype: DType) -> blas::cudaDataType {
    match dtype {
        DType::F32 => blas::cudaDataType::CUDA_R_32F,
        DType::BF16 => blas::cudaDataType::CUDA_R_16BF,
        DType::F16 => blas::cudaDataType::CUDA_R_16F,
        other => panic!("cuBLAS matmul does not take {other:?} (callers check the dtype)"),
    }
}

/// `lhs · rhs` for `[.., m, k] x [.., k, n]` with equal batch dimensions and one float dtype.
pub(crate) fn matmul(lhs: T, rhs: T) -> T {
    let shape = lhs.meta.shape().clone();
    let d = shape.num_dims();
    let (m, k, n) = (shape[d - 2], shape[d - 1], rhs.meta.shape()[d - 1]);
    let batch: usize = (0..d - 2).map(|i| shape[i]).product();
    let dtype = lhs.dtype;
    let ((lhs, ll), (rhs, rl)) = (operand(lhs), operand(rhs));
    let g = gemm_args(m, k, n, batch, ll, rl);

    let client = lhs.client.clone();
    let device = lhs.device.clone();
    let mut out_shape = shape;
    out_shape[d - 1] = n;
    let handle = client.empty(batch * m * n * dtype.size());
    let out = CubeTensor::new_contiguous(client.clone(), device.clone(), out_shape, handle, dtype);

    // The resources keep the allocations alive while cuBLAS uses the raw pointers.
    let ra = client.get_resource(rhs.handle.clone()).expect("rhs resource");
    let rb = client.get_resource(lhs.handle.clone()).expect("lhs resource");
    let rc = client.get_resource(out.handle.clone()).expect("output resource");
    let stream = rc.resource().stream;
    assert!(!stream.is_null(), "cubecl-cuda without the stream patch (vendor/cubecl-cuda)");

    let op = |t: bool| if t { blas::cublasOperation_t::CUBLAS_OP_T } else { blas::cublasOperation_t::CUBLAS_OP_N };
    let ty = data_type(dtype);
    let (alpha, beta) = (1.0f32, 0.0f32);
    with_blas(device.index, stream, |h| {
        // SAFETY: pointers come from live cubecl allocations of the checked sizes, used on the
        // stream those allocations are ordered on.
        unsafe {
            check(
                blas::cublasGemmStridedBatchedEx(
                    h.handle,
                    op(g.trans_a),
                    op(g.trans_b),
                    g.m as i32,
                    g.n as i32,
                    g.k as i32,
                    (&alpha as *const f32).cast(),
                    ra.resource().ptr as *const _,
                    ty,
                    g.lda as i32,
                    g.stride_a,
                    rb.resource().ptr as *const _,
                    ty,
                    g.ldb as i32,
                    g.stride_b,
                    (&beta as *const f32).cast(),
                    rc.resource().ptr as *mut _,
                    ty,
                    g.ldc as i32,
                    g.stride_c,
                    g.batch as i32,
                    blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                ),
                "GemmStridedBatchedEx",
            );
        }
    });
    out
}
